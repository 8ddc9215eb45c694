#!/usr/bin/env python3
"""What each page's first load downloads of the split browser bundle, gzip -9 as served.

The main module (everything the pages share, and the framework) is fetched by every page; a
page's lazy route adds the chunks the split manifest lists for it (its own code and the code it
shares with some other pages, not all). Sizes are of the `.gz` copies build.sh writes, which the
server sends to browsers that accept gzip.

usage: bundle_pages.py PKG_DIR OUTPUT_NAME
"""
import json
import os
import re
import sys


def main() -> None:
    pkg, name = sys.argv[1], sys.argv[2]

    def gz(file: str) -> int:
        return os.path.getsize(os.path.join(pkg, file + ".gz"))

    def raw(file: str) -> int:
        return os.path.getsize(os.path.join(pkg, file))

    manifest = json.load(open(os.path.join(pkg, "__wasm_split_manifest.json")))
    main_wasm = f"{name}_bg.wasm"
    loader = "__wasm_split.______________________.js"
    js = gz(f"{name}.js") + gz(loader)
    wasm_files = [f for f in os.listdir(pkg) if f.endswith(".wasm")]
    print(f"- Main module: {raw(main_wasm)} bytes raw, **{gz(main_wasm)} bytes gzip -9**;"
          f" JS glue and chunk loader {js} bytes gzip.")
    print(f"- All {len(wasm_files)} WASM files together: {sum(raw(f) for f in wasm_files)} bytes raw,"
          f" {sum(gz(f) for f in wasm_files)} bytes gzip (each compressed on its own).")
    print()
    print("| page (lazy route) | files | first load, WASM gzip (main + chunks) |")
    print("|---|---:|---:|")
    rows = []
    for split, chunks in manifest.items():
        page = re.sub(r"^__(.*)_page_view_\d+$", r"\1", split).replace("_", " ")
        rows.append((page, 1 + len(chunks), gz(main_wasm) + sum(gz(c + ".wasm") for c in chunks)))
    for page, files, total in sorted(rows, key=lambda r: -r[2]):
        print(f"| {page} | {files} | {total} |")


if __name__ == "__main__":
    main()
