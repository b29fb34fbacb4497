#!/usr/bin/env bash
# bench/serve_compare.sh MODEL [ROUNDS]
#
# The same load (bench/serve_load.sh) against brise serve and llama.cpp's llama-server on one
# GGUF file, the engines alternated (brise first in odd rounds, llama-server first in even ones),
# ROUNDS rounds (default 3), then the medians as a Markdown table on stdout: completion tokens/s,
# time to first token p50, per-token p50, and the errors. Two workloads: plain (both endpoints,
# streamed and not, greedy and seeded, prompts short, --no-pairs) and structured (every request
# chat with a response_format json_schema: bench_serve --json-schema).
#
# Both servers get PARALLEL slots of CTX positions each and THREADS threads:
#   brise serve --parallel PARALLEL -t THREADS --ctx-size CTX
#   llama-server -np PARALLEL -c PARALLEL*CTX -t THREADS
#
# Environment: PARALLEL (8), THREADS (2), CTX (1024), CLIENTS (8), REQUESTS (32), MAX_TOKENS (32),
# BRISE, BENCH_SERVE, LLAMA_SERVER (as serve_load.sh), KEEP (a folder for the JSON reports).
# Needs jq.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 MODEL [ROUNDS]" >&2
  exit 2
fi
model=$1
rounds=${2:-3}
parallel=${PARALLEL:-8} threads=${THREADS:-2} ctx=${CTX:-1024}
clients=${CLIENTS:-8} requests=${REQUESTS:-32} max_tokens=${MAX_TOKENS:-32}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v jq >/dev/null || { echo "serve_compare: needs jq" >&2; exit 2; }
out=${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/serve_compare.XXXXXX")}
mkdir -p "$out"

run() {  # run ENGINE WORKLOAD ROUND
  local engine=$1 workload=$2 round=$3 extra=()
  [ "$workload" = structured ] && extra=(--json-schema)
  local report="$out/$engine-$workload-$round.json"
  # bench_serve exits 1 when a response was invalid; the report counts them.
  SERVE_ENGINE=$engine BRISE_SERVE_ARGS="-t $threads --ctx-size $ctx" \
    LLAMA_SERVER_ARGS="-c $((parallel * ctx)) -t $threads" \
    "$here/serve_load.sh" "$model" "$parallel" --clients "$clients" --requests "$requests" \
    --max-tokens "$max_tokens" --prompts short --no-pairs --seed "$round" "${extra[@]}" \
    --json >"$report" 2>"$out/$engine-$workload-$round.err" || true
  [ -s "$report" ] && jq -e .completion_tokens_per_second "$report" >/dev/null 2>&1 ||
    { echo "serve_compare: $engine $workload round $round gave no report:" >&2
      tail -n 5 "$out/$engine-$workload-$round.err" >&2; exit 1; }
  echo "serve_compare: $engine $workload round $round:" \
    "$(jq -r '"\(.completion_tokens_per_second | . * 10 | round / 10) tok/s, TTFT p50 \(.ttft_p50_ms | round) ms, errors \(.errors)"' "$report")" >&2
}

for ((r = 1; r <= rounds; r++)); do
  order=(brise llama-server)
  ((r % 2 == 0)) && order=(llama-server brise)
  for workload in plain structured; do
    for engine in "${order[@]}"; do run "$engine" "$workload" "$r"; done
  done
done

median() {  # median ENGINE WORKLOAD FIELD
  jq -s "[.[].$3 // empty] | sort | if length == 0 then null else .[(length - 1) / 2 | floor] end" \
    "$out/$1-$2-"*.json
}
echo "| workload | engine | completion tok/s | TTFT p50 ms | per-token p50 ms | errors (all rounds) |"
echo "|---|---|---|---|---|---|"
for workload in plain structured; do
  for engine in brise llama-server; do
    errors=$(jq -s 'map(.errors) | add' "$out/$engine-$workload-"*.json)
    printf '| %s | %s | %.1f | %.0f | %.1f | %s |\n' "$workload" "$engine" \
      "$(median "$engine" "$workload" completion_tokens_per_second)" \
      "$(median "$engine" "$workload" ttft_p50_ms)" \
      "$(median "$engine" "$workload" per_token_p50_ms)" "$errors"
  done
  b=$(median brise "$workload" completion_tokens_per_second)
  l=$(median llama-server "$workload" completion_tokens_per_second)
  bt=$(median brise "$workload" ttft_p50_ms)
  lt=$(median llama-server "$workload" ttft_p50_ms)
  printf '| %s | brise / llama-server | %.2fx | %.2fx | | |\n' "$workload" \
    "$(jq -n "$b / $l")" "$(jq -n "$bt / $lt")"
done
echo "serve_compare: reports in $out" >&2
