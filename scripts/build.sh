#!/usr/bin/env bash
# Builds what the app serves: the server binary and the site (WASM bundle, JS glue, CSS, assets).
#   build.sh release | dev     (the WASM bundle is always the size-tuned release profile)
set -euo pipefail
source "$(dirname "$0")/env.sh"
profile="${1:-release}"
cd "$ROOT"

log "building the server ($profile)"
if [ "$profile" = release ]; then cargo build --release -p "$SITE_BIN_PACKAGE" --bin "$SITE_BIN_TARGET"
else cargo build -p "$SITE_BIN_PACKAGE" --bin "$SITE_BIN_TARGET"; fi

log "building the WASM bundle"
mode="$(cat "$WASM_MODE_FILE" 2>/dev/null || echo rustup)"
# The bundle's standard library is compiled with it, for size (opt-level z like the rest instead
# of the prebuilt std's 3) and with panics that abort at once (no panic-message machinery in the
# browser): 381 -> 354 KB gzip (docs/BENCHMARKS.md). It needs the standard library's source
# (rustup's rust-src, or Debian's rust-web-src) and unstable flags (RUSTC_BOOTSTRAP); without the
# source the prebuilt std is used and the bundle is larger. The target's rustflags replace
# .cargo/config.toml's, so the type-erased views are asked for here again.
# --emit-relocs keeps what the splitter below needs to cut the module at the lazy routes.
wasm_flags="--cfg erase_components -Zunstable-options -Cpanic=immediate-abort -Clink-args=--emit-relocs"
if [ "$mode" = debian ]; then
  lld="$(command -v rust-lld || true)"
  PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="${lld:-rust-lld}" \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$wasm_flags" \
    /usr/bin/cargo build -p "$SITE_LIB_PACKAGE" --target wasm32-unknown-unknown --profile "$SITE_LIB_PROFILE" \
    -Zbuild-std=std,panic_abort
elif [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
  RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$wasm_flags" \
    cargo build -p "$SITE_LIB_PACKAGE" --target wasm32-unknown-unknown --profile "$SITE_LIB_PROFILE" \
    -Zbuild-std=std,panic_abort
else
  log "no standard library source (rustup component rust-src): the bundle uses the prebuilt std and is larger"
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--cfg erase_components -Clink-args=--emit-relocs" \
    cargo build -p "$SITE_LIB_PACKAGE" --target wasm32-unknown-unknown --profile "$SITE_LIB_PROFILE"
fi

# The layout the server serves: [[workspace.metadata.leptos]] in Cargo.toml (see env.sh).
site="$LEPTOS_SITE_ROOT"
pkg="$site/$SITE_PKG_DIR"
name="$SITE_OUTPUT_NAME"
rm -rf "$pkg" && mkdir -p "$pkg"
# Each page is a lazy route (app/src/lib.rs): the splitter cuts the linked module into the main
# module (everything pages share) and one chunk per page, fetched when the page is first shown;
# the main module then goes through wasm-bindgen as usual (cargo-leptos --split's steps).
log "splitting the WASM bundle at its lazy routes"
cargo build -q -p wasm-split
split_main="${WASM_FILE%.wasm}_split.wasm"
"$CARGO_TARGET_DIR/debug/wasm-split" "$WASM_FILE" "$pkg" "$name" "$split_main" >/dev/null
wasm-bindgen --target web --no-typescript --keep-lld-exports --no-demangle \
  --out-dir "$pkg" --out-name "$name" "$split_main"
wasm_opt="$ROOT/scripts/tools/node_modules/.bin/wasm-opt"
# One wasm-opt per file (the main module and about 120 chunks), as many at once as there are
# cores: each starts a Node process, so one after another took minutes.
optimize() {
  local wasm="$1"
  if "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      -o "${wasm%.wasm}.opt.wasm" "$wasm" 2>/dev/null; then
    mv "${wasm%.wasm}.opt.wasm" "$wasm"
  else
    rm -f "${wasm%.wasm}.opt.wasm"
    log "wasm-opt could not process $(basename "$wasm"); serving it as it is"
  fi
}
if [ -x "$wasm_opt" ]; then
  export -f optimize log
  export wasm_opt
  printf '%s\0' "$pkg"/*.wasm | xargs -0 -n 1 -P "$(nproc)" bash -c 'optimize "$1"' _
else
  log "wasm-opt is not installed here (scripts/setup.sh installs it): the bundle is served unoptimised, about half again larger"
fi
cp "$SITE_STYLE_FILE" "$pkg/$name.css"
# Served as is to browsers that accept gzip (the server's ServeDir looks for FILE.gz): the bundle
# travels at about a third of its size, compressed once here instead of on every request.
find "$pkg" -maxdepth 1 -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' \) \
  -exec gzip -9 -k -f {} \;
cp -r "$SITE_ASSETS_DIR"/. "$site/"
log "site ready in $site"
