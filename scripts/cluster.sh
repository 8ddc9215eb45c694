#!/usr/bin/env bash
# `make cluster`: the app as a small production would run it, on this machine: PostgreSQL, two
# replicas of the release server sharing it (and one secret key), the provider simulator on its
# own, and nginx in front (deploy/nginx.conf.template). Ctrl-C stops everything.
#   CLUSTER_PORT   where browsers go (default 8080); the replicas listen on the next two ports
#   CLUSTER_ADMIN_PASSWORD  the administrator's password (admin@example.com; default printed)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh" cluster
"$ROOT/scripts/build.sh" release
cargo build --release -p simulator --bin provider-sim

source "$ROOT/scripts/postgres.sh"
start_postgres
psql "$PG_URL" -Atc "SELECT 1 FROM pg_database WHERE datname = 'impact_cluster'" | grep -q 1 \
  || psql "$PG_URL" -q -c "CREATE DATABASE impact_cluster"
db="${PG_URL%/*}/impact_cluster"

state="$HOME/.cache/impact-connect/cluster"
mkdir -p "$state/nginx"
# What every replica must share besides the database: the key that seals secrets at rest.
[ -s "$state/secret.key" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/secret.key")
password="${CLUSTER_ADMIN_PASSWORD:-cluster admin password}"

port="${CLUSTER_PORT:-8080}"
sim_port=$((port + 3))
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

SIM_ADDR="127.0.0.1:$sim_port" RUST_LOG=warn "$CARGO_TARGET_DIR/release/provider-sim" &
pids+=($!)
servers=""
for n in 1 2; do
  replica_port=$((port + n))
  servers+="        server 127.0.0.1:$replica_port max_fails=1 fail_timeout=5s;"$'\n'
  DATABASE_URL="$db" LEPTOS_SITE_ADDR="127.0.0.1:$replica_port" \
    IMPACT_PUBLIC_URL="http://127.0.0.1:$port" \
    IMPACT_SECRET_KEY="$(cat "$state/secret.key")" \
    IMPACT_PROVIDER_URL="http://127.0.0.1:$sim_port/i/default" \
    IMPACT_ALLOW_PROVIDER_HOSTS="127.0.0.1:$sim_port" \
    IMPACT_ADMIN_EMAIL=admin@example.com IMPACT_ADMIN_PASSWORD="$password" \
    IMPACT_MAX_CONNECTIONS_PER_IP=100000 IMPACT_TRUSTED_PROXIES=127.0.0.1 \
    "$CARGO_TARGET_DIR/release/impact-connect" > "$state/replica-$n.log" 2>&1 &
  pids+=($!)
done
sed -e "s#@PREFIX@#$state/nginx#g" -e "s#@LISTEN@#127.0.0.1:$port#" \
  -e "/@SERVERS@/{r /dev/stdin" -e "d}" deploy/nginx.conf.template <<< "${servers%$'\n'}" \
  > "$state/nginx/nginx.conf"
nginx -t -q -p "$state/nginx" -c "$state/nginx/nginx.conf"
nginx -p "$state/nginx" -c "$state/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
log "serving on http://127.0.0.1:$port (nginx → replicas on $((port + 1)) and $((port + 2)), PostgreSQL database impact_cluster)"
log "sign in as admin@example.com / $password; replica logs in $state"
wait -n "${pids[@]}"
