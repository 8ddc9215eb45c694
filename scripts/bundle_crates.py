#!/usr/bin/env python3
"""Per-crate totals of a WASM bundle, from `twiggy top -f csv` of a build that kept its names.

Each function is charged to one crate, read from its (demangled) name: the crate of the type a
trait method is implemented for (`<serde_json::de::Deserializer as serde::Deserializer>::x` is
serde_json), else the first path segment (`chrono::format::parse::parse_internal` is chrono).
Blanket and std impls on a crate's own types land in that crate; code inlined into a caller is
the caller's. Data segments and tables are one "(data)" row. A heuristic, good to a few percent.

usage: bundle_crates.py TWIGGY_CSV [N] [K]
  prints a Markdown table of the N biggest crates, then the K biggest functions
"""
import csv
import re
import sys
from collections import defaultdict

STD = {"core", "alloc", "std", "dlmalloc", "compiler_builtins", "panic_abort", "hashbrown", "__rustc"}
# Methods of primitive types print as `<char>::is_whitespace`, `<u64>::_fmt`.
PRIMITIVE = re.compile(r"<(\[?&?(char|str|bool|[iuf](8|16|32|64|128|size))\]?)>::")
ALIAS = {"serde_core": "serde", "serde_derive": "serde"}


def crate_of(name: str) -> str:
    if name.startswith(("data segment", "elem[", "table[", "global[", "memory[", "type[", "import ", "export ")):
        return "(data, tables)"
    if name.startswith('"') or name.startswith("custom section"):
        return "(names, custom sections)"
    name = re.sub(r"\[[0-9a-f]{1,16}\]", "", name)  # crate disambiguators: core[c5930c85a12de822]
    if PRIMITIVE.match(name):
        return "core"
    if re.match(r"code\[\d+\]$", name):
        return "(unnamed: wasm-bindgen's generated glue)"
    if name == "hydrate":
        return "frontend (hydrate, with what was inlined into it)"
    if name.startswith("<"):
        # "<Self as Trait>::f": the crate of Self when it is a path, else of the trait.
        depth, i = 0, 1
        while i < len(name):
            c = name[i]
            if c == "<":
                depth += 1
            elif c == ">":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and name.startswith(" as ", i):
                self_ty, rest = name[1:i], name[i + 4 :]
                m = re.match(r"[&*\[( ]*(?:mut |const |dyn )*([A-Za-z_][A-Za-z0-9_]*)::", self_ty)
                if m:
                    return ALIAS.get(m.group(1), m.group(1))
                m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", rest)
                return ALIAS.get(m.group(1), m.group(1)) if m else "(other)"
            i += 1
        m = re.match(r"<[&*\[( ]*(?:mut |const |dyn )*([A-Za-z_][A-Za-z0-9_]*)::", name)
        return ALIAS.get(m.group(1), m.group(1)) if m else "(other)"
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    if m:
        return ALIAS.get(m.group(1), m.group(1))
    return name.split("(")[0]


def main() -> None:
    rows = list(csv.DictReader(open(sys.argv[1])))
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    sizes: dict[str, int] = defaultdict(int)
    total = 0
    for r in rows:
        b = int(r["ShallowSize"])
        c = crate_of(r["Name"])
        if c == "(names, custom sections)":
            continue  # the served bundle has no name section
        c = "std (core, alloc, dlmalloc)" if c in STD else c
        sizes[c] += b
        total += b
    print("| crate | bytes | share |")
    print("|---|---:|---:|")
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1])
    for c, b in ranked[:top]:
        print(f"| {c} | {b} | {100 * b / total:.1f}% |")
    rest = sum(b for _, b in ranked[top:])
    if rest:
        print(f"| {len(ranked) - top} others | {rest} | {100 * rest / total:.1f}% |")
    print(f"| **total (code + data, no names)** | {total} | 100% |")
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if k:
        print(f"\nLargest functions (`twiggy top`, bytes after wasm-opt):\n")
        funcs = [r for r in rows if crate_of(r["Name"]) not in ("(names, custom sections)", "(data, tables)")]
        for r in sorted(funcs, key=lambda r: -int(r["ShallowSize"]))[:k]:
            print(f"- {r['ShallowSize']} `{r['Name'][:140]}`")


if __name__ == "__main__":
    main()
