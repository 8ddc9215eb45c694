#!/usr/bin/env bash
# `make cluster`: the app as a small production would run it, on this machine: PostgreSQL, two
# replicas of the release server sharing it (and one secret key), the provider simulator on its
# own, and nginx in front (deploy/nginx.conf.template). Ctrl-C stops everything.
#   CLUSTER_PORT   where browsers go (default 8080); the replicas listen on the next ports (one
#                  each), the provider simulator on the one after them
#   CLUSTER_REPLICAS  how many replicas (default 2)
#   CLUSTER_NGINX_WORKERS  nginx's worker processes (default 1, as in the template); with more,
#                  each listening socket is shared out among them (`reuseport`). Each worker
#                  holds its own descriptors: an event stream takes two in nginx (the browser's
#                  share of its connection and its own upstream connection)
#   CLUSTER_ADMIN_PASSWORD  the administrator's password (admin@example.com; default printed)
# For the tests (scripts/test.sh runs Playwright through it):
#   CLUSTER_PROFILE  release (default) or debug: which build the replicas run
#   CLUSTER_DB       the PostgreSQL database (default impact_cluster; created when missing)
#   CLUSTER_STATE    the folder for logs, nginx's files and the pids (default ~/.cache/…/cluster)
#   CLUSTER_DETACH=1 start, wait until nginx answers, write the pids to $CLUSTER_STATE/pids and
#                    return (stop with: kill $(cat $CLUSTER_STATE/pids)); nothing is built
#   CLUSTER_H2C_PORT nginx also listens here for HTTP/2 without TLS (prior knowledge), as the
#                    benchmark's load generator speaks it; a deployment has TLS with ALPN instead
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
profile="${CLUSTER_PROFILE:-release}"
detach="${CLUSTER_DETACH:-}"
replicas="${CLUSTER_REPLICAS:-2}"
workers="${CLUSTER_NGINX_WORKERS:-1}"
for setting in "CLUSTER_REPLICAS=$replicas" "CLUSTER_NGINX_WORKERS=$workers"; do
  [[ "${setting#*=}" =~ ^[1-9][0-9]?$ ]] || { log "${setting%%=*} must be a whole number from 1 to 99 (it is '${setting#*=}')"; exit 2; }
done
if [ -z "$detach" ]; then
  "$ROOT/scripts/setup.sh" cluster
  "$ROOT/scripts/build.sh" release
  cargo build --release -p simulator --bin provider-sim
fi

source "$ROOT/scripts/postgres.sh"
start_postgres
dbname="${CLUSTER_DB:-impact_cluster}"
psql "$PG_URL" -Atc "SELECT 1 FROM pg_database WHERE datname = '$dbname'" | grep -q 1 \
  || psql "$PG_URL" -q -c "CREATE DATABASE $dbname"
db="${PG_URL%/*}/$dbname"

state="${CLUSTER_STATE:-$HOME/.cache/impact-connect/cluster}"
mkdir -p "$state/nginx"
# What every replica must share besides the database: the key that seals secrets at rest.
[ -s "$state/secret.key" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/secret.key")
password="${CLUSTER_ADMIN_PASSWORD:-cluster admin password}"

port="${CLUSTER_PORT:-8080}"
# Through nginx each event stream holds an upstream connection of its own: the replicas and
# nginx get as many descriptors as this account may have.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
sim_port=$((port + replicas + 1))
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
[ -n "$detach" ] || trap cleanup EXIT INT TERM

SIM_ADDR="127.0.0.1:$sim_port" RUST_LOG=warn "$CARGO_TARGET_DIR/$profile/provider-sim" \
  > "$state/provider-sim.log" 2>&1 &
pids+=($!)
servers=""
for n in $(seq "$replicas"); do
  replica_port=$((port + n))
  servers+="        server 127.0.0.1:$replica_port max_fails=1 fail_timeout=5s;"$'\n'
  DATABASE_URL="$db" LEPTOS_SITE_ADDR="127.0.0.1:$replica_port" \
    IMPACT_PUBLIC_URL="http://127.0.0.1:$port" \
    IMPACT_SECRET_KEY="$(cat "$state/secret.key")" \
    IMPACT_PROVIDER_URL="http://127.0.0.1:$sim_port/i/default" \
    IMPACT_ALLOW_PROVIDER_HOSTS="127.0.0.1:$sim_port" \
    IMPACT_ADMIN_EMAIL=admin@example.com IMPACT_ADMIN_PASSWORD="$password" \
    IMPACT_MAX_CONNECTIONS_PER_IP=100000 IMPACT_TRUSTED_PROXIES=127.0.0.1 \
    RUST_LOG="${RUST_LOG:-warn}" \
    "$CARGO_TARGET_DIR/$profile/impact-connect" > "$state/replica-$n.log" 2>&1 &
  pids+=($!)
done
shared=""
[ "$workers" -gt 1 ] && shared=" reuseport"
h2c="${CLUSTER_H2C_PORT:+\\n        listen 127.0.0.1:$CLUSTER_H2C_PORT http2$shared;}"
sed -e "s#@PREFIX@#$state/nginx#g" -e "s#listen @LISTEN@;#listen 127.0.0.1:$port$shared;$h2c#" \
  -e "s/^worker_processes 1;/worker_processes $workers;/" \
  -e "/@SERVERS@/{r /dev/stdin" -e "d}" deploy/nginx.conf.template <<< "${servers%$'\n'}" \
  > "$state/nginx/nginx.conf"
nginx -t -q -p "$state/nginx" -c "$state/nginx/nginx.conf"
nginx -p "$state/nginx" -c "$state/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
up=""
for _ in $(seq 150); do
  # Every replica and the balancer answer (the replicas' first start migrates the database).
  answered=0
  for n in $(seq "$replicas"); do
    curl -sf "http://127.0.0.1:$((port + n))/healthz" >/dev/null && answered=$((answered + 1))
  done
  if [ "$answered" = "$replicas" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then up=1; break; fi
  sleep 0.2
done
[ -n "$up" ] || { log "the cluster did not come up; logs in $state"; cleanup; exit 1; }
log "serving on http://127.0.0.1:$port (nginx → $replicas replicas on $((port + 1))-$((port + replicas)), PostgreSQL database $dbname)"
if [ -n "$detach" ]; then
  echo "${pids[*]}" > "$state/pids"
  exit 0
fi
log "sign in as admin@example.com / $password; replica logs in $state"
wait -n "${pids[@]}"
