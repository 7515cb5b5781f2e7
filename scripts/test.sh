#!/usr/bin/env bash
# Runs every check sluice has: formatting, lints, unit and end-to-end tests (the Kafka ones
# against a Tansu broker each test starts), the demo, the Postgres starter smoke check and
# benchmark smoke runs. Installs what a fresh Debian machine lacks: the C toolchain pieces
# librdkafka builds with, the Tansu broker (once, cached under /opt/sluice-tools),
# PostgreSQL and MariaDB for the starter checks, and Chromium for the status page's test.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n==> [%ss] %s\n' "$((SECONDS - started))" "$*"; }
# Every long step has a time limit, so a hang fails the run with its step named instead of
# eating CI's whole budget. `timeout` signals the step's whole process group.
limit() {
  local seconds=$1; shift
  local rc=0
  timeout -k 15 "$seconds" "$@" || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "TIMED OUT after ${seconds}s: $*" >&2
  fi
  return "$rc"
}

step "toolchain"
cargo --version
cargo fmt --version
cargo clippy --version

step "native build dependencies (librdkafka is built from source; openssl makes the TLS test's certificates)"
missing=""
for pkg in libssl-dev pkg-config make perl openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq $missing >/dev/null
fi

step "Tansu broker for the Kafka tests"
scripts/tansu-install.sh

step "WASM plugins: the wasm32-wasip2 target and the example plugins, built from source"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
# Into plugins/target, where the tests load them from (they build them there themselves too).
limit 1200 env -u CARGO_TARGET_DIR cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml

step "format (cargo fmt --check)"
cargo fmt --all -- --check
(cd plugins && cargo fmt --all -- --check)

step "lint (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "postgres starter: wal_level=logical on a private port (installs PostgreSQL before the tests need it)"
export SLUICE_PG_DIR="$(mktemp -d /tmp/sluice-pg-check.XXXXXX)" SLUICE_PG_PORT=54391
scripts/pg-start.sh
scripts/pg-start.sh >/dev/null   # idempotent
wal_level="$(psql -h 127.0.0.1 -p "$SLUICE_PG_PORT" -U postgres -Atc 'show wal_level')"
scripts/pg-stop.sh --purge
if [ "$wal_level" != "logical" ]; then echo "wal_level is $wal_level, expected logical" >&2; exit 1; fi
echo "postgres starter ok (wal_level=$wal_level)"
unset SLUICE_PG_DIR SLUICE_PG_PORT

step "mariadb starter: ROW binlog on a private port (installs MariaDB before the tests need it)"
export SLUICE_MARIADB_DIR="$(mktemp -d /tmp/sluice-mariadb-check.XXXXXX)" SLUICE_MARIADB_PORT=33391
scripts/mariadb-start.sh
scripts/mariadb-start.sh >/dev/null   # idempotent
binlog_format="$(mariadb --protocol=tcp -h 127.0.0.1 -P "$SLUICE_MARIADB_PORT" -u root -N -B -e 'select @@binlog_format')"
scripts/mariadb-stop.sh --purge
if [ "$binlog_format" != "ROW" ]; then echo "binlog_format is $binlog_format, expected ROW" >&2; exit 1; fi
echo "mariadb starter ok (binlog_format=$binlog_format)"
unset SLUICE_MARIADB_DIR SLUICE_MARIADB_PORT

step "chromium and chromedriver for the status page's browser test"
scripts/chromium-install.sh

step "unit and end-to-end tests"
limit 1800 cargo test --workspace

step "fuzz tests: how many generated cases each property ran (SLUICE_FUZZ_CASES for a longer run)"
limit 600 cargo test -p sluice --test fuzz -- --nocapture 2>&1 | grep -E '^fuzz |test result'

step "demo"
SLUICE_DEMO_DIR="$(mktemp -d /tmp/sluice-demo.XXXXXX)" limit 900 scripts/demo.sh

step "benchmark smoke run (figures for the README come from a full run)"
limit 900 cargo bench -p sluice --bench file_pipeline -- --lines 100000
limit 900 cargo bench -p sluice --bench kafka_pipeline -- --lines 20000
limit 900 cargo bench -p sluice --bench pg_pipeline -- --rows 20000 --snapshot-rows 50000
limit 900 cargo bench -p sluice --bench mysql_pipeline -- --rows 20000 --snapshot-rows 50000
limit 900 cargo bench -p sluice --bench transform_pipeline -- --records 5000
limit 900 cargo bench -p sluice --bench es_pipeline -- --docs 20000
limit 900 cargo bench -p sluice --bench latency -- --seconds 1
limit 900 cargo bench -p sluice --bench distributed -- --connectors 10
limit 900 cargo bench -p sluice --bench status_page -- --pairs 10

step "all checks passed"
