#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster for sluice's CDC tests and demo: its own data
# directory, a private port, wal_level=logical, trust auth on 127.0.0.1 (replication included).
# Idempotent: if the cluster already runs, it only prints how to reach it.
#
#   SLUICE_PG_DIR   data and socket directory (default /tmp/sluice-pg)
#   SLUICE_PG_PORT  port (default 54329)
#
# Prints `export PG…` lines that point psql and the tests at the cluster.
set -euo pipefail

PG_DIR="${SLUICE_PG_DIR:-/tmp/sluice-pg}"
PG_PORT="${SLUICE_PG_PORT:-54329}"

find_bin() {
  local dir
  for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

if ! PG_BIN="$(find_bin)"; then
  echo "pg-start: PostgreSQL server binaries not found; installing Debian's postgresql" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "pg-start: run as root (or: sudo apt-get install postgresql)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
  PG_BIN="$(find_bin)"
fi

# The server refuses to run as root: run its tools as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mkdir -p "$PG_DIR"
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$PG_DIR"
  if ! runuser -u postgres -- test -x "$PG_DIR"; then
    echo "pg-start: the postgres user cannot reach $PG_DIR (a parent directory is private);" \
         "use a directory of its own, e.g. SLUICE_PG_DIR=\$(mktemp -d)" >&2
    exit 1
  fi
fi

if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
  as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
  cat >> "$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  cat > "$PG_DIR/data/pg_hba.conf" <<HBA
local all         all                trust
local replication all                trust
host  all         all  127.0.0.1/32  trust
host  replication all  127.0.0.1/32  trust
HBA
fi

if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null
fi

echo "export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=postgres"
