#!/usr/bin/env bash
# bench/serve_load.sh MODEL PARALLEL [bench_serve args...]
#
# Starts `brise serve -m MODEL --port 0 --parallel PARALLEL` (or llama.cpp's llama-server: see
# SERVE_ENGINE), waits for it to listen, runs
# bench_serve against it (its report goes to stdout; add --json for JSON), stops the server with
# SIGTERM and checks that it exits 0. The exit status is bench_serve's (0: every response valid),
# or 1 when the server did not start, did not stop, or stopped with another status.
#
# Environment:
#   BRISE              the brise binary (default: build/bin/brise)
#   BENCH_SERVE        the bench_serve binary (default: build/bench/bench_serve)
#   BRISE_SERVE_ARGS   more `brise serve` options, split on spaces (e.g. "-t 2 --queue 8")
#   SERVE_START_TIMEOUT seconds to wait for the listening line (default: 60)
#   SERVE_STOP_TIMEOUT  seconds to wait for the server to exit after SIGTERM (default: 30)
#   SERVE_ENGINE       brise (default) or llama-server: the same load against llama.cpp's server,
#                      `LLAMA_SERVER -m MODEL -np PARALLEL --host 127.0.0.1 --port P
#                      LLAMA_SERVER_ARGS` (P a free port drawn at random; bench_serve gets
#                      --lenient for its stream forms)
#   LLAMA_SERVER       its binary (default: ../shared/peers/llama.cpp/bin/llama-server beside the
#                      repository)
#   LLAMA_SERVER_ARGS  more llama-server options, split on spaces (e.g. "-c 8192 -t 2")
#
# Example:
#   BRISE_SERVE_ARGS="-t 2" bench/serve_load.sh model.gguf 8 --clients 8 --requests 48 \
#       --max-tokens 32 --prompts short
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 MODEL PARALLEL [bench_serve args...]" >&2
  exit 2
fi
model=$1
parallel=$2
shift 2
brise=${BRISE:-build/bin/brise}
bench=${BENCH_SERVE:-build/bench/bench_serve}
start_timeout=${SERVE_START_TIMEOUT:-60}
stop_timeout=${SERVE_STOP_TIMEOUT:-30}
engine=${SERVE_ENGINE:-brise}
read -r -a serve_args <<<"${BRISE_SERVE_ARGS:-}"
case $engine in
  brise) ;;
  llama-server)
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    brise=${LLAMA_SERVER:-$repo/../shared/peers/llama.cpp/bin/llama-server}
    read -r -a serve_args <<<"${LLAMA_SERVER_ARGS:-}"
    ;;
  *)
    echo "serve_load: SERVE_ENGINE is brise or llama-server, not '$engine'" >&2
    exit 2
    ;;
esac

for f in "$brise" "$bench"; do
  if [ ! -x "$f" ]; then
    echo "serve_load: $f is not an executable (set BRISE / BENCH_SERVE)" >&2
    exit 2
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/serve_load.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

server_log() {
  echo "serve_load: the server's stderr (last lines):" >&2
  tail -n 20 "$work/err" >&2 || true
}

: >"$work/out"  # exist before the server's first line (sed reads them both)
: >"$work/err"
bench_args=()
if [ "$engine" = brise ]; then
  "$brise" serve -m "$model" --port 0 --parallel "$parallel" "${serve_args[@]}" \
    >"$work/out" 2>"$work/err" &
  listening='s|^brise serve: listening on \(http://[^ ]*\)$|\1|p'
else  # llama-server logs its address to stderr; it has no port 0
  "$brise" -m "$model" --host 127.0.0.1 --port $((20000 + RANDOM % 20000)) -np "$parallel" \
    "${serve_args[@]}" >"$work/out" 2>"$work/err" &
  listening='s|.*server: listening on \(http://[^ ]*\)$|\1|p'
  bench_args=(--lenient)
fi
server_pid=$!

url=
for _ in $(seq $((start_timeout * 10))); do
  url=$(sed -n "$listening" "$work/out" "$work/err" | head -n 1)
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "serve_load: the server exited before listening" >&2
    server_log
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "serve_load: no listening line within ${start_timeout} s" >&2
  server_log
  exit 1
fi
echo "serve_load: $engine --parallel $parallel ${serve_args[*]} at $url" >&2

bench_rc=0
"$bench" --url "$url" "${bench_args[@]}" "$@" || bench_rc=$?

kill -TERM "$server_pid"
stopped=
for _ in $(seq $((stop_timeout * 10))); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    stopped=1
    break
  fi
  sleep 0.1
done
server_rc=0
if [ -z "$stopped" ]; then
  echo "serve_load: the server did not stop within ${stop_timeout} s of SIGTERM" >&2
  kill -KILL "$server_pid" 2>/dev/null || true
  server_rc=1
fi
wait "$server_pid" || server_rc=$?
[ -n "$stopped" ] || server_rc=1
server_pid=
if [ "$server_rc" -ne 0 ]; then
  echo "serve_load: the server exited with status $server_rc" >&2
  server_log
  exit 1
fi
if [ "$bench_rc" -ne 0 ]; then
  echo "serve_load: bench_serve failed (exit $bench_rc)" >&2
  server_log
fi
exit "$bench_rc"
