#!/usr/bin/env bash
# tests/fuzz/run.sh TARGET|all SECONDS [libFuzzer options...]
#
# Builds the libFuzzer targets (clang, ASan + UBSan, coverage-instrumented library) in
# $BRISE_FUZZ_BUILD (default: build-fuzz), makes the seed corpus from the shared test data
# ($BRISE_TESTDATA, default ../shared) and runs TARGET (or every target, one after the other) for
# SECONDS each. Fails on any crash, sanitizer report, leak, uncaught exception, broken invariant,
# input slower than 10 s (-timeout) or allocation beyond 2 GB (-rss_limit_mb/-malloc_limit_mb).
# The input that failed is saved under $BRISE_FUZZ_BUILD/fuzz/artifacts/TARGET/; make it a
# regression test by copying it to tests/fuzz/regressions/TARGET/.
#
# Targets: gguf safetensors config sentencepiece encode decode model request tekken chat schema
# (fuzz_targets.hpp).
# Inputs found during a run are kept in $BRISE_FUZZ_BUILD/fuzz/corpus/work/TARGET and reused.
# FUZZ_PARALLEL=N runs N targets at a time (default 1); JOBS sets the build's parallelism.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ $# -lt 2 ]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
target=$1
seconds=$2
shift 2

build=${BRISE_FUZZ_BUILD:-build-fuzz}
export BRISE_TESTDATA="${BRISE_TESTDATA:-$(cd .. && pwd)/shared}"
targets=(gguf safetensors config sentencepiece encode decode model request tekken chat schema)
if [ "$target" = all ]; then
  run_targets=("${targets[@]}")
else
  run_targets=("$target")
fi

if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRISE_FUZZ=ON -DBRISE_SANITIZE="address;undefined" \
    -DBRISE_BUILD_TESTS=OFF -DBRISE_BUILD_BENCH=OFF -DBRISE_BUILD_TOOLS=OFF
fi
cmake --build "$build" --target brise_fuzz -j"${JOBS:-2}"

bin=$build/fuzz
corpus=$bin/corpus
# The seed corpus is remade whenever the generator was rebuilt.
if [ ! -f "$corpus/seeds/.stamp" ] || [ "$bin/brise_fuzz_corpus" -nt "$corpus/seeds/.stamp" ]; then
  OMP_NUM_THREADS=2 "$bin/brise_fuzz_corpus" "$BRISE_TESTDATA" "$corpus/seeds"
  touch "$corpus/seeds/.stamp"
fi

# halt_on_error: the first report ends the run. detect_leaks stays on: a leak is a failure too.
# One OpenMP thread: the model target runs sessions with threads = 1 anyway, and libFuzzer's
# leak and RSS checks are simplest without a thread pool.
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:allocator_may_return_null=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export OMP_NUM_THREADS=1

# Runs one target; prints its statistics, or its failure and where the input is.
run_target() {
  local t=$1
  shift
  mkdir -p "$corpus/work/$t" "$bin/artifacts/$t"
  local dirs=("$corpus/work/$t" "$corpus/seeds/$t")
  [ -d "tests/fuzz/regressions/$t" ] && dirs+=("tests/fuzz/regressions/$t")
  local log=$bin/artifacts/$t/last-run.log
  if "$bin/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$bin/artifacts/$t/" "$@" "${dirs[@]}" >"$log" 2>&1; then
    echo "fuzz_$t: ok, $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs," \
      "$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')/s," \
      "peak RSS $(grep -E '^stat::peak_rss_mb' "$log" | awk '{print $2}') MB," \
      "corpus $(ls "$corpus/work/$t" | wc -l) inputs"
  else
    tail -n 60 "$log" >&2
    echo "fuzz_$t: FAILED; the input is in $bin/artifacts/$t/ (log: $log)." >&2
    echo "  Make it a regression test: copy it to tests/fuzz/regressions/$t/" >&2
    return 1
  fi
}

for t in "${run_targets[@]}"; do
  if [ ! -x "$bin/fuzz_$t" ]; then
    echo "run.sh: unknown target '$t' (known: ${targets[*]})" >&2
    exit 2
  fi
done

# FUZZ_PARALLEL targets run at a time (default 1).
parallel=${FUZZ_PARALLEL:-1}
status=0
pids=()
for t in "${run_targets[@]}"; do
  echo "=== fuzz_$t for ${seconds}s"
  run_target "$t" "$@" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$parallel" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do
  wait "$p" || status=1
done
exit $status
