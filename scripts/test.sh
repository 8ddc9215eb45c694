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
python3 scripts/import_circles.py app/src server/src simulator/src bench/src frontend/src tools/wasm-split/src

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
# Each run keeps its screenshots in end2end/screenshots/<run>/ for a person to look at; a
# run starts from an empty folder so no picture is left from an earlier build.
rm -rf screenshots/sqlite screenshots/postgres screenshots/nginx
E2E_RUN=sqlite npx playwright test

log "Playwright (headless Chromium) on PostgreSQL"
# The suite again, the server on a fresh database of the PostgreSQL started above.
e2e_db="impact_e2e_$$_$(date +%s)"
psql "$PG_URL" -q -c "CREATE DATABASE $e2e_db"
trap 'psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $e2e_db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
# The accessibility spec (a11y) checks pages, not storage: once, on SQLite, is enough.
E2E_RUN=postgres E2E_DATABASE_URL="${PG_URL%/*}/$e2e_db" npx playwright test --grep-invert "axe-core"

log "Playwright through nginx: the seed flow on two replicas sharing PostgreSQL (scripts/cluster.sh)"
# The page comes from one replica and the next request may go to the other (round robin); the
# access log shows which replica answered each request, and both must have served the flow.
cargo build -p simulator --bin provider-sim
cluster_state="$(mktemp -d)"
cluster_db="impact_e2e_cluster_$$_$(date +%s)"
cluster_port="${E2E_CLUSTER_PORT:-3120}"
stop_cluster() {
  [ -s "$cluster_state/pids" ] && kill $(cat "$cluster_state/pids") 2>/dev/null || true
  sleep 1
  psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $e2e_db WITH (FORCE)" >/dev/null 2>&1 || true
  psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $cluster_db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap stop_cluster EXIT
CLUSTER_DETACH=1 CLUSTER_PROFILE=debug CLUSTER_STATE="$cluster_state" CLUSTER_DB="$cluster_db" \
  CLUSTER_PORT="$cluster_port" CLUSTER_ADMIN_PASSWORD='e2e admin password 1' \
  bash "$ROOT/scripts/cluster.sh"
E2E_RUN=nginx E2E_EXTERNAL_URL="http://127.0.0.1:$cluster_port" E2E_SIM_PORT=$((cluster_port + 3)) \
  npx playwright test flow.spec.ts
stop_cluster
python3 - "$cluster_state/nginx/access.log" "$((cluster_port + 1))" "$((cluster_port + 2))" <<'PY'
import re, sys
log, a, b = sys.argv[1], sys.argv[2], sys.argv[3]
served = {a: 0, b: 0}
for line in open(log):
    m = re.search(r'"(POST|PUT) [^"]*" \d+ \d+ upstream=127\.0\.0\.1:(\d+)', line)
    if m and m.group(2) in served:
        served[m.group(2)] += 1
print(f"actions (POST/PUT) answered through nginx, by replica port: {served}")
if min(served.values()) == 0:
    sys.exit("one replica answered none of the flow's actions: the cluster run did not exercise both")
PY
log "screenshots of the three Playwright runs, for a person to look at: end2end/screenshots/{sqlite,postgres,nginx}/ ($(find "$ROOT/end2end/screenshots" -name '*.png' | wc -l) pictures)"
