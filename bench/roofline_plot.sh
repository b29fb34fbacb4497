#!/usr/bin/env bash
# bench/roofline_plot.sh BENCH.json [OUT.png] [KERNEL_SET] [THREADS]
#
# Turns bench_matmul's JSON (--benchmark_format=json or --benchmark_out=FILE) into a roofline
# plot (PNG): for one kernel set (default: the best this machine ran) and thread count (default 2),
#  - top: attained GFLOP/s (int8 path: GOP/s) against arithmetic intensity (operations per byte of
#    weights read), one series per type and path, under the measured ceilings: the read bandwidth
#    (a slope) and the FMA and int8 peaks (flat), all measured in the benchmark's own process;
#  - bottom: attained GB/s against the same intensity, under the read bandwidth.
# Each point is one shape x token count; intensity grows with the tokens (1, 8, 64, 512).
# Needs jq and gnuplot (Debian: apt-get install jq gnuplot-nox).
#
#   build/bench/bench_matmul --benchmark_filter='threads:2' --benchmark_min_time=0.2 \
#       --benchmark_format=json > matmul.json
#   bench/roofline_plot.sh matmul.json roofline.png
set -euo pipefail

if [ $# -lt 1 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
for tool in jq gnuplot; do
  command -v "$tool" >/dev/null || {
    echo "roofline_plot.sh: needs $tool (apt-get install jq gnuplot-nox)" >&2
    exit 2
  }
done
json=$1
out=${2:-roofline.png}
[ -r "$json" ] || { echo "roofline_plot.sh: cannot read $json" >&2; exit 1; }
set_name=${3:-$(jq -r '.context.kernel_set_best // empty' "$json")}
threads=${4:-2}
[ -n "$set_name" ] || { echo "roofline_plot.sh: $json names no kernel set; give one" >&2; exit 1; }

# The ceilings, recovered from the benchmarks' own counters (value / fraction of its ceiling): each
# was measured in the benchmark process for this set and thread count
# (bench/support/roofline_counters.hpp). PATH selects the int8 path (int8) or the f32 FMA paths.
ceiling() {
  jq -r --arg set "$set_name" --arg t "$threads" --arg path "$1" --arg counter "$2" --arg pct "$3" '
    [.benchmarks[]
     | select(.run_type != "aggregate" and (.name | test("/threads:" + $t + "(/|$)")))
     | (.name | split("/")) as $p
     | select($p[0] == "matmul" and $p[1] == $set)
     | select($path == "any"
              or ($path == "int8") == (($p[2] | test("^(f32|f16|bf16)$") | not) and $p[3] != "exact"))
     | select((.[$pct] // 0) > 0)
     | .[$counter] * 100 / .[$pct]] | first // empty' "$json"
}
bw=$(ceiling any "GB/s" "BW%")
fma=$(ceiling fma "GFLOP/s" "peak%")
int8=$(ceiling int8 "GFLOP/s" "peak%")
if [ -z "$bw" ] || [ -z "$fma" ]; then
  echo "roofline_plot.sh: no measured roofline for $set_name with $threads threads in $json" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One TSV file per series: intensity, GFLOP/s, GB/s, label (shape, tokens).
jq -r --arg set "$set_name" --arg t "$threads" '
  .benchmarks[]
  | select(.run_type != "aggregate")
  | select(.name | test("/threads:" + $t + "(/|$)"))
  | (.name | split("/")) as $p
  | select(($p[0] == "matmul" and $p[1] == $set) or $p[0] == "eigen_f32")
  | (if $p[0] == "eigen_f32" then "eigen_f32"
     elif $p[3] == "exact" then $p[2] + " exact" else $p[2] + " int8" end
     | if test("^(f32|f16|bf16) int8$") then sub(" int8$"; "") else . end) as $series
  | select(."GB/s" > 0)
  | [$series, (."GFLOP/s" / ."GB/s"), ."GFLOP/s", ."GB/s",
     (($p[] | select(test("^[0-9]+x[0-9]+$"))) + " " + ($p[] | select(startswith("tokens:"))))]
  | @tsv' "$json" |
  awk -F'\t' -v dir="$tmp" '{ f = dir "/" $1 ".tsv"; gsub(/ /, "+", f);
                              print $2 "\t" $3 "\t" $4 "\t" $5 > f }'
shopt -s nullglob
files=("$tmp"/*.tsv)
[ ${#files[@]} -gt 0 ] || { echo "roofline_plot.sh: no matmul/$set_name results with $threads threads" >&2; exit 1; }

plots_flops=""
plots_bytes=""
i=0
for f in "${files[@]}"; do
  i=$((i + 1))  # the same colour for a series in both plots
  name=$(basename "$f" .tsv | tr '+' ' ')
  plots_flops+="'$f' using 1:2 with points pt 7 ps 1.2 lc $i title '$name', "
  plots_bytes+="'$f' using 1:3 with points pt 7 ps 1.2 lc $i notitle, "
done
plots_flops=${plots_flops%, }
plots_bytes=${plots_bytes%, }
int8_line=""
[ -n "$int8" ] && int8_line="$int8 with lines dt 2 lw 2 lc rgb '#555555' title sprintf('int8 peak %.0f GOP/s', $int8), "

gnuplot <<EOF
set terminal pngcairo size 1200,1100 font ',11' noenhanced
set output '$out'
set multiplot layout 2,1 title "brise matmul roofline: kernel set $set_name, $threads threads (measured ceilings)"
set logscale xy
set grid
set key outside right
set xlabel 'arithmetic intensity (operations per byte of weights)'
set ylabel 'GFLOP/s (int8: GOP/s)'
set xrange [0.1:5000]
set yrange [1:4 * ${int8:-$fma}]
roof(x) = x * $bw
plot roof(x) with lines lw 2 lc rgb '#000000' title sprintf('read bandwidth %.1f GB/s', $bw), \
     $fma with lines dt 3 lw 2 lc rgb '#000000' title sprintf('FMA peak %.0f GFLOP/s', $fma), \
     $int8_line $plots_flops
set ylabel 'GB/s of weights'
plot $bw with lines lw 2 lc rgb '#000000' title sprintf('read bandwidth %.1f GB/s', $bw), \
     $plots_bytes
unset multiplot
EOF
echo "wrote $out ($set_name, $threads threads, ${#files[@]} series)"
