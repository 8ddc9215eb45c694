#!/usr/bin/env bash
# What the browser bundle holds: first what each page's first load downloads (the main module and
# the page's split-off chunks, scripts/bundle_pages.py), then the main module per crate: rebuilt
# from the same split output as build.sh's, through the same wasm-bindgen and wasm-opt -Oz, but
# keeping function names (-g); twiggy sizes every function and scripts/bundle_crates.py charges
# each to a crate. Prints Markdown. Run after build.sh (it reads the output build.sh left).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
if ! command -v twiggy >/dev/null; then
  log "installing twiggy (once)"
  env -u CARGO_TARGET_DIR cargo install -q twiggy --version 0.8.0 --locked
fi
wasm_opt="$ROOT/scripts/tools/node_modules/.bin/wasm-opt"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 "$ROOT/scripts/bundle_pages.py" "$LEPTOS_SITE_ROOT/$SITE_PKG_DIR" "$SITE_OUTPUT_NAME"
echo
echo "The main module, per crate:"
echo
wasm-bindgen --target web --no-typescript --keep-lld-exports --out-dir "$tmp" --out-name "$SITE_OUTPUT_NAME" \
  "${WASM_FILE%.wasm}_split.wasm"
named="$tmp/${SITE_OUTPUT_NAME}_bg.wasm"
if [ -x "$wasm_opt" ]; then
  "$wasm_opt" -Oz -g --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue -o "$tmp/named.wasm" "$named"
  named="$tmp/named.wasm"
fi
twiggy top -n 1000000 -f csv "$named" >"$tmp/top.csv"
python3 "$ROOT/scripts/bundle_crates.py" "$tmp/top.csv" "${1:-20}" "${2:-10}"
