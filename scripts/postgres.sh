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
