#!/usr/bin/env bash
# bench/slowloris.sh MODEL [bench_slowloris options: --connections 200 --samples 50 --trickle-ms 500]
#
# Starts `brise serve -m MODEL --port 0 --parallel 1` (more options in BRISE_SERVE_ARGS), holds
# a slowloris of stalled connections against it with build/bench/bench_slowloris, and reports the
# latency (p50/p99) of GET /health and of a small completion from fresh connections, without and
# with the attack; then stops the server with SIGTERM and checks that it exits 0
# (bench/serve_load.sh does the starting and stopping).
#
# Example:
#   BRISE_SERVE_ARGS="-t 2" bench/slowloris.sh model.gguf --connections 200 --samples 50
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 MODEL [bench_slowloris options...]" >&2
  exit 2
fi
model=$1
shift
here=$(dirname "$0")
BENCH_SERVE=${BENCH_SLOWLORIS:-build/bench/bench_slowloris} exec "$here/serve_load.sh" "$model" 1 "$@"
