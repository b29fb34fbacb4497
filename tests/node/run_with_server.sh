#!/usr/bin/env bash
# Runs one Node end-to-end test file against a fresh `brise serve` (the ctest wrapper).
#
#   run_with_server.sh BRISE_BIN SHARED_DIR TEST_FILE.mjs [extra serve args...]
#
# Converts stories260k (SHARED_DIR/models/stories260k/hf) into a temporary folder, records
# `brise generate --temp 0` as the greedy reference, starts `BRISE_BIN serve --port 0` there,
# runs `node --test TEST_FILE` with BRISE_URL, BRISE_MODEL_ID and BRISE_EXPECTED_GREEDY set
# (and BRISE_API_KEY when the extra args hold --api-key), then stops the server with SIGTERM.
# Exits with node's status, or non-zero when the server fails to start or to exit cleanly.
# BRISE_NODE_GGUF (a GGUF file under SHARED_DIR) serves that model instead of stories260k, e.g.
# models/tekken-mini/nemo-mini.gguf for tool calls, which need [TOOL_CALLS] in the vocabulary.
set -euo pipefail

if (($# < 3)); then
  echo "usage: $0 BRISE_BIN SHARED_DIR TEST_FILE.mjs [extra serve args...]" >&2
  exit 2
fi
# An empty SHARED_DIR means $BRISE_TESTDATA, else ../shared beside the checkout (as the C++ tests).
brise=$1 shared=${2:-${BRISE_TESTDATA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}} test_file=$3
shift 3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ ! -d "$here/node_modules" ]]; then
  echo "error: $here/node_modules is missing; run tools/install-deps.sh (or: cd tests/node && npm ci)" >&2
  exit 1
fi
command -v node >/dev/null || { echo "error: node is not installed; run tools/install-deps.sh" >&2; exit 1; }
[[ -x "$brise" ]] || { echo "error: $brise is not an executable" >&2; exit 1; }
hf="$shared/models/stories260k/hf"
[[ -d "$hf" ]] || { echo "error: $hf is missing (SHARED_DIR is the reference data folder)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/brise-node.XXXXXX")
server_pid=

stop_server() {  # stop_server SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL; sets server_rc
  server_rc=0
  [[ -n "$server_pid" ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "error: brise serve did not exit within $1 s of SIGTERM; killing it" >&2
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || server_rc=$?
  server_pid=
}

cleanup() {
  local rc=$?
  stop_server 5 || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_server_log() {
  echo "--- brise serve stdout ---" >&2; cat "$tmp/serve.out" >&2 || true
  echo "--- brise serve stderr ---" >&2; tail -n 50 "$tmp/serve.err" >&2 || true
}

if [[ -n "${BRISE_NODE_GGUF:-}" ]]; then
  gguf="$shared/$BRISE_NODE_GGUF"
  [[ -f "$gguf" ]] || { echo "error: $gguf is missing (BRISE_NODE_GGUF is under SHARED_DIR)" >&2; exit 1; }
else
  gguf="$tmp/stories260k.gguf"
  "$brise" convert "$hf" -o "$gguf" >/dev/null
fi
model_id=$(basename "$gguf" .gguf)

# The greedy reference for /v1/completions: {prompt, max_tokens, text}.
export GREEDY_PROMPT="Once upon a time" GREEDY_N=24
"$brise" generate -m "$gguf" -p "$GREEDY_PROMPT" -n "$GREEDY_N" --temp 0 --json 2>/dev/null >"$tmp/greedy.out"
node -e '
  const fs = require("fs");
  const g = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  fs.writeFileSync(process.argv[2], JSON.stringify({
    prompt: process.env.GREEDY_PROMPT, max_tokens: Number(process.env.GREEDY_N), text: g.text }));
' "$tmp/greedy.out" "$tmp/greedy.json"

: >"$tmp/serve.out"  # exists before the background job opens it
"$brise" serve -m "$gguf" --port 0 --host 127.0.0.1 --parallel 2 "$@" >"$tmp/serve.out" 2>"$tmp/serve.err" &
server_pid=$!

url=
for ((i = 0; i < 300; i++)); do  # 30 s
  url=$(sed -n 's#^brise serve: listening on \(http://[^ ]*\)$#\1#p' "$tmp/serve.out" | head -n 1)
  [[ -n "$url" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: brise serve exited before listening" >&2
    show_server_log
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$url" ]]; then
  echo "error: brise serve did not print 'listening on' within 30 s" >&2
  show_server_log
  exit 1
fi

export BRISE_URL=$url BRISE_MODEL_ID=$model_id BRISE_EXPECTED_GREEDY="$tmp/greedy.json"
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  [[ "${args[i]}" == --api-key ]] && export BRISE_API_KEY="${args[i + 1]}"
done

node_rc=0
TMPDIR="$tmp" node --test "$test_file" || node_rc=$?

stop_server 10
if ((server_rc != 0)); then
  echo "error: brise serve exited with status $server_rc after SIGTERM (expected 0)" >&2
  show_server_log
  ((node_rc != 0)) || node_rc=1
elif ((node_rc != 0)); then
  show_server_log
fi
exit "$node_rc"
