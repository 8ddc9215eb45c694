#!/usr/bin/env bash
# Makes a fresh machine ready. Idempotent and quick when everything is already there.
#   setup.sh run   - what `make run` needs (Rust, the wasm32 target, wasm-bindgen CLI)
#   setup.sh test  - that plus Chromium, Node packages for Playwright, PostgreSQL, nginx
#   setup.sh cluster - what `make run` needs plus PostgreSQL and nginx (`make cluster`)
set -euo pipefail
source "$(dirname "$0")/env.sh"
what="${1:-test}"
mkdir -p "$(dirname "$WASM_MODE_FILE")"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=""
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

# 1. Rust for the host.
if ! command -v cargo >/dev/null; then
  log "installing Rust (Debian packages)"
  apt_install cargo rustc
fi

# 1b. The Rust release rust-toolchain.toml pins. rustup would install it at the first cargo
#     command (it then never adds a listed target or component that is missing: steps 2 and the
#     rust-src step do); done here with a time limit, so a machine that cannot download says so.
pinned="$(awk -F'"' '/^channel *=/ {print $2; exit}' "$ROOT/rust-toolchain.toml")"
if command -v rustup >/dev/null && ! rustup toolchain list | grep -q "^$pinned-"; then
  log "installing Rust $pinned (rust-toolchain.toml)"
  if ! timeout 300 rustup toolchain install "$pinned" --profile minimal \
      --component rustfmt,clippy,rust-src --target wasm32-unknown-unknown >/dev/null 2>&1; then
    stable="$(rustc +stable --version 2>/dev/null | awk '{print $2}')"
    if [ "$stable" = "$pinned" ]; then
      # rustup cannot download, but its stable toolchain is this very release: it serves
      # under the pinned name too (what rustup would have installed is the same).
      host="$(rustc +stable -vV | awk '/^host:/ {print $2}')"
      ln -sfn "$(rustc +stable --print sysroot)" "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$pinned-$host"
      log "rustup could not download Rust $pinned: its stable toolchain ($stable) serves for it"
    else
      log "rustup cannot install Rust $pinned (rust-toolchain.toml) and its stable is ${stable:-missing}:"
      log "run 'rustup toolchain install $pinned' where static.rust-lang.org is reachable"
      exit 1
    fi
  fi
fi

# 2. The wasm32 target: rustup first (with a time limit), Debian's rustc-web otherwise.
if command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  echo rustup > "$WASM_MODE_FILE"
elif command -v rustup >/dev/null && timeout 180 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
  echo rustup > "$WASM_MODE_FILE"
else
  log "rustup could not provide wasm32-unknown-unknown: using Debian's rustc-web with build-std"
  apt_install rustc-web cargo-web rust-web-src rust-web-llvm
  echo debian > "$WASM_MODE_FILE"
fi
# The standard library's source, to compile the bundle's std for size (scripts/build.sh); the
# build works without it, with a larger bundle.
if [ "$(cat "$WASM_MODE_FILE")" = rustup ] \
    && ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  timeout 180 rustup component add rust-src >/dev/null 2>&1 \
    || log "rustup could not add rust-src: the WASM bundle will use the prebuilt std (larger)"
fi

# 3. The wasm-bindgen CLI of exactly the crate's version (the two must match).
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # Not --locked: its lockfile pins a crate release the registry here does not serve.
  cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# Node.js 20 or newer: Playwright (make test) and the npm tools below. Debian 12's own nodejs
# package is 18, too old: say where a newer one comes from instead of failing later.
node_major() { node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/'; }
node_ok() { [ "$(node_major)" -ge 20 ] 2>/dev/null; }
node_advice() {
  log "Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))."
  log "Install it from https://nodejs.org (or NodeSource's Debian packages, or 'nvm install 20'),"
  log "put it first on PATH, and run this again. Debian 12's nodejs package is version 18."
}
if ! command -v node >/dev/null; then apt_install nodejs npm || true; fi

# wasm-opt shrinks the release bundle (optional). binaryen from npm: Debian's wasm-opt 108
# mis-optimises reference types and the page then fails to hydrate.
if [ ! -x "$ROOT/scripts/tools/node_modules/.bin/wasm-opt" ] && ! node_ok; then
  node_advice
  log "going on without wasm-opt: the WASM bundle is served larger"
elif [ ! -x "$ROOT/scripts/tools/node_modules/.bin/wasm-opt" ]; then
  log "installing wasm-opt (npm binaryen)"
  (cd "$ROOT/scripts/tools" && npm ci --no-audit --no-fund --silent) \
    || log "binaryen unavailable: the WASM bundle is served without wasm-opt"
fi

if [ "$what" = "test" ]; then
  # 4. Browser, database server, load balancer (nginx, for the replica tests), and Playwright from
  #    npm (no browser download). aiosmtpd is the
  #    real SMTP relay (STARTTLS, implicit TLS, AUTH) that the outbox tests deliver to.
  apt_install chromium postgresql python3-aiosmtpd nginx
  node_ok || { node_advice; exit 1; }
  if [ ! -d "$ROOT/end2end/node_modules/@playwright/test" ] \
    || [ ! -d "$ROOT/end2end/node_modules/@axe-core/playwright" ]; then
    log "installing Playwright (npm)"
    (cd "$ROOT/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
  fi
  # 5. cargo-deny for the dependency checks (licenses, bans, sources, advisories), a pinned
  #    release built from crates.io with its own lockfile. It builds in a throw-away folder, not
  #    the shared target dir, so it never holds the project's build lock.
  if ! cargo deny --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION\$"; then
    log "installing cargo-deny $CARGO_DENY_VERSION (a few minutes, once)"
    env -u CARGO_TARGET_DIR cargo install -q --locked cargo-deny --version "$CARGO_DENY_VERSION" --force
  fi
  # 6. cargo-machete: dependencies declared but never used (about 3 minutes to build, once).
  if ! cargo machete --version 2>/dev/null | grep -q "$CARGO_MACHETE_VERSION\$"; then
    log "installing cargo-machete $CARGO_MACHETE_VERSION (a few minutes, once)"
    env -u CARGO_TARGET_DIR cargo install -q --locked cargo-machete --version "$CARGO_MACHETE_VERSION" --force
  fi
fi
if [ "$what" = "cluster" ]; then
  apt_install postgresql nginx
fi
log "setup complete ($what)"
