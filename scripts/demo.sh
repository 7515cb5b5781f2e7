#!/usr/bin/env bash
# The sluice demo on the embedded default (no Kafka): local Postgres → sluice (Debezium-config
# Postgres CDC source) → RegexRouter transform → JSON-lines file. It builds sluice, starts a
# throwaway PostgreSQL 15 on port 54329 (scripts/pg-start.sh; installs Debian's postgresql when
# missing), creates a table, runs `sluice standalone`, makes changes while it runs, shows the
# Debezium change events arriving, stops cleanly and shows that the replication slot stands
# exactly at the committed offset.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

echo "==> building sluice (release)"
cargo build --release -p sluice --quiet
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/sluice"

DEMO_DIR="${SLUICE_DEMO_DIR:-$(mktemp -d /tmp/sluice-demo.XXXXXX)}"
mkdir -p "$DEMO_DIR"
REST=http://127.0.0.1:18083
export SLUICE_PG_DIR="${SLUICE_DEMO_PG_DIR:-$(mktemp -d /tmp/sluice-demo-pg.XXXXXX)}" SLUICE_PG_PORT=54329
echo "==> starting PostgreSQL 15 (wal_level=logical) in $SLUICE_PG_DIR on port $SLUICE_PG_PORT"
scripts/pg-start.sh >/dev/null
trap '"$ROOT"/scripts/pg-stop.sh --purge >/dev/null 2>&1 || true' EXIT
psql_() { PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -p "$SLUICE_PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq "$@"; }
psql_ -c "drop table if exists customers" -c "select pg_drop_replication_slot('sluice_demo') from pg_replication_slots where slot_name = 'sluice_demo'" >/dev/null
psql_ -c "create table customers (id int primary key, email text not null, balance numeric(10,2))"
psql_ -c "insert into customers values (1, 'ada@example.com', 10.50), (2, 'grace@example.com', null)"

cd "$DEMO_DIR"
rm -f customers.jsonl demo.offsets worker.log
"$BIN" standalone "$ROOT/configs/demo/worker.properties" \
  "$ROOT/configs/demo/cdc-sink.properties" "$ROOT/configs/demo/inventory-source.json" 2>> worker.log &
WORKER=$!

wait_lines() {
  for _ in $(seq 1 150); do
    [ -f customers.jsonl ] && [ "$(wc -l < customers.jsonl)" -ge "$1" ] && return 0
    sleep 0.1
  done
  echo "expected $1 events in customers.jsonl; worker log:" >&2; cat worker.log >&2; exit 1
}

show() {
  python3 - "$1" <<'PY'
import json, sys
for line in open("customers.jsonl").readlines()[int(sys.argv[1]):]:
    e = json.loads(line)
    v = e["value"]
    if v is None:
        print(f"  {e['topic']:<14} key={json.dumps(e['key'])} (tombstone)")
    else:
        print(f"  {e['topic']:<14} op={v['op']} key={json.dumps(e['key'])} before={json.dumps(v['before'])} after={json.dumps(v['after'])} lsn={v['source']['lsn']}")
PY
}

wait_lines 2
echo "==> snapshot of the existing rows (op=r), topic routed dbserver1.public.customers -> cdc.customers:"
show 0
echo "==> changing the table while sluice runs"
psql_ -c "insert into customers values (3, 'linus@example.com', 3.00)"
psql_ -c "update customers set balance = 99.99 where id = 2"
psql_ -c "set synchronous_commit = on; delete from customers where id = 1"
wait_lines 6
show 2
echo "==> GET /connectors?expand=status"
curl -s "$REST/connectors?expand=status"; echo

echo "==> clean stop (SIGTERM): the sink flushes, the offset is committed, then the slot is confirmed"
kill -TERM "$WORKER"; wait "$WORKER"
committed=$(python3 -c 'import json;print(json.load(open("demo.offsets"))["offsets"][0]["value"]["lsn"])')
confirmed=$(psql_ -c "select (confirmed_flush_lsn - '0/0')::bigint from pg_replication_slots where slot_name = 'sluice_demo'")
echo "committed offset lsn=$committed, slot confirmed_flush_lsn=$confirmed"
if [ "$committed" != "$confirmed" ]; then echo "the slot is not at the committed offset" >&2; exit 1; fi
echo "==> done: Debezium change events are in $DEMO_DIR/customers.jsonl"
