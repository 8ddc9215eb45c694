#!/usr/bin/env bash
# Builds what the app serves: the server binary and the site (WASM bundle, JS glue, CSS, assets).
#   build.sh release | dev     (the WASM bundle is always the size-tuned release profile)
set -euo pipefail
source "$(dirname "$0")/env.sh"
profile="${1:-release}"
cd "$ROOT"

log "building the server ($profile)"
if [ "$profile" = release ]; then cargo build --release -p server --bin impact-connect
else cargo build -p server --bin impact-connect; fi

log "building the WASM bundle"
mode="$(cat "$WASM_MODE_FILE" 2>/dev/null || echo rustup)"
if [ "$mode" = debian ]; then
  lld="$(command -v rust-lld || true)"
  PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="${lld:-rust-lld}" \
    /usr/bin/cargo build -p frontend --target wasm32-unknown-unknown --profile wasm-release \
    -Zbuild-std=std,panic_abort
else
  cargo build -p frontend --target wasm32-unknown-unknown --profile wasm-release
fi

site="$LEPTOS_SITE_ROOT"
mkdir -p "$site/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$site/pkg" --out-name impact-connect \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/frontend.wasm"
wasm_opt="$ROOT/scripts/tools/node_modules/.bin/wasm-opt"
if [ -x "$wasm_opt" ]; then
  if "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      -o "$site/pkg/impact-connect_bg.opt.wasm" "$site/pkg/impact-connect_bg.wasm" 2>/dev/null; then
    mv "$site/pkg/impact-connect_bg.opt.wasm" "$site/pkg/impact-connect_bg.wasm"
  else
    rm -f "$site/pkg/impact-connect_bg.opt.wasm"
    log "wasm-opt could not process the bundle; serving it as wasm-bindgen wrote it"
  fi
fi
cp style/main.css "$site/pkg/impact-connect.css"
# Served as is to browsers that accept gzip (the server's ServeDir looks for FILE.gz): the bundle
# travels at about a third of its size, compressed once here instead of on every request.
find "$site/pkg" -maxdepth 1 -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' \) \
  -exec gzip -9 -k -f {} \;
cp -r public/. "$site/"
log "site ready in $site"
