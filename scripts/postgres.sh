# Sourced: start_postgres brings up the machine's PostgreSQL cluster on loopback and sets
# PG_URL to a superuser URL the tests create their own databases with.
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && su postgres -s /bin/sh -c "$1")
  else (cd / && sudo -u postgres sh -c "$1"); fi
}

start_postgres() {
  local ver SUDO=""
  ver="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)"
  [ -n "$ver" ] || { echo "PostgreSQL is not installed" >&2; return 1; }
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
    $SUDO pg_createcluster "$ver" main >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main"{print $4}' | grep -q online; then
    $SUDO pg_ctlcluster "$ver" main start
  fi
  local port
  port="$(pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main"{print $3}')"
  # A known password for the superuser, for loopback TCP connections from the tests.
  as_postgres "psql -q -p $port -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  export PG_URL="postgres://postgres:postgres@127.0.0.1:$port/postgres"
}

# Test databases whose test process is gone (a killed run leaves them): their names carry the
# creating process's id (impact_test_<pid>_…, impact_crash_<pid>_…, impact_e2e_<pid>_…).
# Hundreds of them make this server's start (crash recovery) take minutes.
drop_stale_test_databases() {
  local db pid dropped=0
  for db in $(psql "$PG_URL" -Atc "SELECT datname FROM pg_database WHERE datname ~ '^impact_(test|crash|e2e|secrets)_[0-9]+_'"); do
    pid="$(printf '%s' "$db" | cut -d_ -f3)"
    if ! kill -0 "$pid" 2>/dev/null; then
      psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 && dropped=$((dropped + 1))
    fi
  done
  [ "$dropped" -eq 0 ] || echo "dropped $dropped test databases left by earlier runs" >&2
}
