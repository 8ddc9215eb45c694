#!/usr/bin/env bash
# Sets up, builds (release) and serves the app on an embedded SQLite file.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh" run
"$ROOT/scripts/build.sh" release
export LEPTOS_SITE_ADDR="${LEPTOS_SITE_ADDR:-$SITE_ADDR}"
export DATABASE_URL="${DATABASE_URL:-sqlite://$ROOT/impact-connect.db?mode=rwc}"
log "serving on http://$LEPTOS_SITE_ADDR (database: ${DATABASE_URL%%\?*})"
exec "$CARGO_TARGET_DIR/release/$SITE_BIN_TARGET"
