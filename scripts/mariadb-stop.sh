#!/usr/bin/env bash
# Stops the server mariadb-start.sh started. `--purge` also deletes its data directory.
set -euo pipefail

DIR="${SLUICE_MARIADB_DIR:-/tmp/sluice-mariadb}"

if [ -f "$DIR/mysqld.pid" ]; then
  pid="$(cat "$DIR/mysqld.pid")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
fi
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$DIR"
fi
