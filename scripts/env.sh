# Sourced by the other scripts: one place for paths shared by build, run and test.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The cargo build cache lives outside the clone so a fresh clone (CI) starts warm when the
# machine has built before; a machine without it simply builds from cold.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/impact-connect/target}"
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-$ROOT/target/site}"
export PATH="$HOME/.cargo/bin:$PATH"
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' "$ROOT/Cargo.lock" 2>/dev/null)"
WASM_BINDGEN_VERSION="${WASM_BINDGEN_VERSION:-0.2.130}"
CARGO_DENY_VERSION=0.20.2
# How the wasm32 target is built: "rustup" (the target is installed) or "debian" (rustc-web and
# build-std, see shared/TOOLCHAIN.md). setup.sh records the choice.
WASM_MODE_FILE="$HOME/.cache/impact-connect/wasm-mode"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
