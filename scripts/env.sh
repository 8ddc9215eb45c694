# Sourced by the other scripts: one place for paths shared by build, run and test.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The cargo build cache lives outside the clone so a fresh clone (CI) starts warm when the
# machine has built before; a machine without it simply builds from cold.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/impact-connect/target}"
# The site (names, folders, packages) is declared once, in the root Cargo.toml's
# [[workspace.metadata.leptos]] (cargo-leptos's format; the server compiles the same table in).
# site_setting KEY prints one of its plain values.
site_setting() {
  awk -v key="$1" '
    /^[[:space:]]*\[/ { in_site = ($0 ~ /^\[\[workspace\.metadata\.leptos\]\][[:space:]]*$/); next }
    in_site && $1 == key && $2 == "=" {
      sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]*(#.*)?$/, ""); gsub(/^"|"$/, ""); print; exit
    }' "$ROOT/Cargo.toml"
}
site_value() { # VARIABLE KEY: sets VARIABLE to the value, or stops when the table lacks it
  local value
  value="$(site_setting "$2")"
  [ -n "$value" ] || { echo "Cargo.toml: [[workspace.metadata.leptos]] has no $2" >&2; exit 1; }
  printf -v "$1" '%s' "$value"
}
site_value SITE_OUTPUT_NAME output-name
site_value SITE_PKG_DIR site-pkg-dir
site_value SITE_STYLE_FILE style-file
site_value SITE_ASSETS_DIR assets-dir
site_value SITE_ADDR site-addr
site_value SITE_BIN_PACKAGE bin-package
site_value SITE_BIN_TARGET bin-target
site_value SITE_LIB_PACKAGE lib-package
site_value SITE_LIB_PROFILE lib-profile-release
site_value site_root site-root
case "$site_root" in /*) ;; *) site_root="$ROOT/$site_root" ;; esac
# Where the site is written and served from (the server reads LEPTOS_SITE_ROOT, as leptos does).
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-$site_root}"
# Not exported: LEPTOS_OUTPUT_NAME. Leptos reads it at compile time too, and when it is set
# expects cargo-leptos's file names (no `_bg` in the .wasm's); every change of it would also
# rebuild leptos and everything above it.
# The browser build's output, as cargo writes it (wasm-bindgen's input).
WASM_FILE="$CARGO_TARGET_DIR/wasm32-unknown-unknown/$SITE_LIB_PROFILE/${SITE_LIB_PACKAGE//-/_}.wasm"
export PATH="$HOME/.cargo/bin:$PATH"
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' "$ROOT/Cargo.lock" 2>/dev/null)"
WASM_BINDGEN_VERSION="${WASM_BINDGEN_VERSION:-0.2.130}"
CARGO_DENY_VERSION=0.20.2
CARGO_MACHETE_VERSION=0.9.2
# How the wasm32 target is built: "rustup" (the target is installed) or "debian" (rustc-web and
# build-std, see shared/TOOLCHAIN.md). setup.sh records the choice.
WASM_MODE_FILE="$HOME/.cache/impact-connect/wasm-mode"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
