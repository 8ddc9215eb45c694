#!/usr/bin/env bash
# Every test: formatting, lints (host and wasm32), unit + integration tests on SQLite and
# PostgreSQL, the WASM release build, and the Playwright suite in headless Chromium, once on
# SQLite and once on PostgreSQL.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh" test

log "cargo fmt --check"
cargo fmt --all -- --check

log "no import circles between files of one crate"
python3 scripts/import_circles.py app/src server/src simulator/src bench/src frontend/src

log "cargo clippy (server side and tests)"
cargo clippy --workspace --exclude frontend --all-targets -- -D warnings
log "cargo clippy (browser side, wasm32)"
mode="$(cat "$WASM_MODE_FILE" 2>/dev/null || echo rustup)"
if [ "$mode" = rustup ]; then
  cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
else
  log "skipping the wasm32 clippy pass: Debian's rustc-web has no clippy"
fi

log "cargo deny: licenses, bans, sources (deny.toml)"
cargo deny --locked check --hide-inclusion-graph licenses bans sources
# The RustSec advisory database is a GitHub repository. Where it can be fetched, it is checked;
# where it cannot (no route to GitHub), a copy fetched earlier into cargo-deny's folder is used,
# and otherwise the check is skipped, loudly.
if cargo deny --locked fetch db >/dev/null 2>&1; then
  log "cargo deny: advisories (RustSec database just fetched)"
  cargo deny --locked --offline check --hide-inclusion-graph advisories
elif compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-*/crates" >/dev/null; then
  copy_date="$(git -C "$(compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-*" | head -1)" log -1 --format=%cs 2>/dev/null || echo unknown)"
  log "cargo deny: advisories (RustSec database could not be fetched: using the copy from an earlier fetch, dated $copy_date)"
  cargo deny --locked --offline check --hide-inclusion-graph advisories
else
  log "WARNING: advisories NOT checked: the RustSec database (GitHub) cannot be fetched from here"
fi

log "cargo machete: no dependency declared and unused"
cargo machete

log "starting PostgreSQL for the integration tests"
source "$ROOT/scripts/postgres.sh"
start_postgres
drop_stale_test_databases
export TEST_POSTGRES_URL="$PG_URL"

log "cargo test"
cargo test --workspace --exclude frontend

"$ROOT/scripts/build.sh" dev

log "Playwright (headless Chromium) on SQLite"
cd "$ROOT/end2end"
export IMPACT_SERVER_BIN="$CARGO_TARGET_DIR/debug/$SITE_BIN_TARGET"
# A test.only left behind fails the run instead of skipping the rest (forbidOnly).
export CI="${CI:-1}"
npx playwright test

log "Playwright (headless Chromium) on PostgreSQL"
# The whole suite again (about 100 s, as on SQLite), the server on a fresh database of the
# PostgreSQL started above.
e2e_db="impact_e2e_$$_$(date +%s)"
psql "$PG_URL" -q -c "CREATE DATABASE $e2e_db"
trap 'psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $e2e_db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
E2E_DATABASE_URL="${PG_URL%/*}/$e2e_db" npx playwright test
