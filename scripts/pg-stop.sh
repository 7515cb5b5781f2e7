#!/usr/bin/env bash
# Stops the cluster pg-start.sh started. `--purge` also deletes its data directory.
set -euo pipefail

PG_DIR="${SLUICE_PG_DIR:-/tmp/sluice-pg}"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ -n "$PG_BIN" ] && [ -f "$PG_DIR/data/PG_VERSION" ]; then
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
fi
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$PG_DIR"
fi
