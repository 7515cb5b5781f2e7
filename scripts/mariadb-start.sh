#!/usr/bin/env bash
# Starts a throwaway MariaDB 10.11 server for sluice's MySQL/MariaDB CDC tests: its own data
# directory, a private port, the binlog as Debezium needs it (ROW format, FULL row images,
# server id 1, GTIDs), root without a password on 127.0.0.1 only.
# Idempotent: if the server already runs, it only prints how to reach it.
#
#   SLUICE_MARIADB_DIR   data, socket and log directory (default /tmp/sluice-mariadb)
#   SLUICE_MARIADB_PORT  port (default 33069)
#   SLUICE_MARIADB_ARGS  more mariadbd options, space-separated (e.g. the TLS test's --ssl-cert=…)
#
# Prints `export MYSQL_…` lines that point the mariadb client and the tests at the server.
set -euo pipefail

DIR="${SLUICE_MARIADB_DIR:-/tmp/sluice-mariadb}"
PORT="${SLUICE_MARIADB_PORT:-33069}"

if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  echo "mariadb-start: mariadbd not found; installing Debian's mariadb-server" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "mariadb-start: run as root (or: sudo apt-get install mariadb-server)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 mariadb-server >/dev/null
fi
MARIADBD="$(command -v mariadbd || echo /usr/sbin/mariadbd)"

mkdir -p "$DIR"
USER_ARG=()
if [ "$(id -u)" -eq 0 ]; then
  chown mysql:mysql "$DIR"
  if ! runuser -u mysql -- test -x "$DIR"; then
    echo "mariadb-start: the mysql user cannot reach $DIR (a parent directory is private);" \
         "use a directory of its own, e.g. SLUICE_MARIADB_DIR=\$(mktemp -d)" >&2
    exit 1
  fi
  USER_ARG=(--user=mysql)
fi

if [ ! -d "$DIR/data/mysql" ]; then
  # Data directories are created one at a time: mariadb-install-db run concurrently (tests
  # start servers in parallel) was seen to fail now and then.
  if ! flock /tmp/sluice-mariadb-install.lock mariadb-install-db "${USER_ARG[@]}" --datadir="$DIR/data" \
      --auth-root-authentication-method=normal --skip-test-db >"$DIR/install.log" 2>&1; then
    echo "mariadb-start: mariadb-install-db failed; its log:" >&2
    tail -n 30 "$DIR/install.log" >&2 || true
    exit 1
  fi
fi

client() {
  mariadb --protocol=tcp -h 127.0.0.1 -P "$PORT" -u root "$@"
}

if ! client -e "select 1" >/dev/null 2>&1; then
  # --no-defaults must come first: the machine's /etc/mysql settings do not apply.
  "$MARIADBD" --no-defaults "${USER_ARG[@]}" --datadir="$DIR/data" --socket="$DIR/mysqld.sock" \
    --pid-file="$DIR/mysqld.pid" --port="$PORT" --bind-address=127.0.0.1 \
    --log-bin="$DIR/data/binlog" --binlog-format=ROW --binlog-row-image=FULL --server-id=1 \
    --log-error="$DIR/error.log" --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=2 \
    --sync-binlog=0 --skip-name-resolve --max-connections=200 --innodb-use-native-aio=0 \
    ${SLUICE_MARIADB_ARGS:-} >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 1 120); do
    if client -e "select 1" >/dev/null 2>&1 || ! kill -0 "$server" 2>/dev/null; then break; fi
    sleep 0.5
  done
  if ! client -e "select 1" >/dev/null 2>&1; then
    echo "mariadb-start: the server did not come up; its log:" >&2
    tail -n 30 "$DIR/error.log" >&2 || true
    exit 1
  fi
fi

echo "export MYSQL_HOST=127.0.0.1 MYSQL_TCP_PORT=$PORT MYSQL_USER=root SLUICE_MARIADB_DIR=$DIR"
