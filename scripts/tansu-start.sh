#!/usr/bin/env bash
# Starts a Tansu broker (in-memory storage) on 127.0.0.1:${SLUICE_KAFKA_PORT:-19092} in the
# background, for the Kafka demo and manual runs. Tests start their own brokers. Idempotent.
set -euo pipefail

TOOLS="${SLUICE_TOOLS:-/opt/sluice-tools}"
PORT="${SLUICE_KAFKA_PORT:-19092}"
RUN_DIR="${SLUICE_KAFKA_DIR:-/tmp/sluice-tansu}"
"$(dirname "$0")/tansu-install.sh" >/dev/null
mkdir -p "$RUN_DIR"
if [ -f "$RUN_DIR/pid" ] && kill -0 "$(cat "$RUN_DIR/pid")" 2>/dev/null; then
  echo "export SLUICE_KAFKA=127.0.0.1:$PORT"
  exit 0
fi
nohup "$TOOLS/tansu/bin/tansu" broker \
  --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
  --storage-engine memory://tansu/ > "$RUN_DIR/broker.log" 2>&1 &
echo $! > "$RUN_DIR/pid"
for _ in $(seq 1 100); do
  if grep -q "ready in" "$RUN_DIR/broker.log" 2>/dev/null; then
    echo "export SLUICE_KAFKA=127.0.0.1:$PORT"
    exit 0
  fi
  sleep 0.1
done
echo "tansu did not become ready; see $RUN_DIR/broker.log" >&2
exit 1
