#!/usr/bin/env bash
# Stops the broker tansu-start.sh started.
set -euo pipefail
RUN_DIR="${SLUICE_KAFKA_DIR:-/tmp/sluice-tansu}"
if [ -f "$RUN_DIR/pid" ]; then
  kill "$(cat "$RUN_DIR/pid")" 2>/dev/null || true
  rm -f "$RUN_DIR/pid"
fi
