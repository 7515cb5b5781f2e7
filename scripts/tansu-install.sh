#!/usr/bin/env bash
# Installs the Tansu Kafka-protocol broker the Kafka tests run against, once, into a fixed
# root that later runs reuse (a cold build takes 25-35 minutes on two cores).
#
#   SLUICE_TOOLS  where tools are kept (default /opt/sluice-tools); the broker ends up in
#                 $SLUICE_TOOLS/tansu/bin/tansu
set -euo pipefail

TOOLS="${SLUICE_TOOLS:-/opt/sluice-tools}"
BIN="$TOOLS/tansu/bin/tansu"
if [ -x "$BIN" ]; then
  echo "tansu: $("$BIN" --version 2>/dev/null || echo present) at $BIN"
  exit 0
fi
mkdir -p "$TOOLS"
echo "tansu: building with cargo install (one time, 25-35 min)" >&2
# Its own target dir keeps intermediate artifacts for a rebuild after an interrupted install.
cargo install tansu --version 0.6.0 --locked --features dynostore --root "$TOOLS/tansu" --target-dir "$TOOLS/tansu-target"
"$BIN" --version
