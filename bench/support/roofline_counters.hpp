// Roofline counters shared by the benchmarks: the machine's read bandwidth, FMA peak and int8
// dot-product peak, measured once per kernel set and thread count in the benchmark process
// (bench/support/roofline.hpp), and the counters that express a kernel's throughput as a fraction
// of them.
#pragma once

#include <benchmark/benchmark.h>

namespace brise::bench {

struct Roofline {
  double read_gbs = 0;    // sustained DRAM read bandwidth, GB/s (1e9 bytes/s)
  double fma_gflops = 0;  // f32 FMA peak, GFLOP/s
  double int8_gops = 0;   // int8 dot-product peak, GOP/s
};

// Measured on first use for the kernel set in use and `threads` threads, then cached. (Not in the
// JSON context, which is written before any benchmark runs: BW% and peak% carry it instead.)
const Roofline& machine_roofline(int threads);

// Wall-clock time of the benchmark loop: start before `for (auto _ : state)`, read after it.
class LoopTimer {
 public:
  LoopTimer();
  double seconds() const;

 private:
  double start_;
};

enum class Peak { Fma, Int8 };

// Sets, from the work of one iteration and the loop's wall-clock time:
//   GB/s      bytes read per second
//   GFLOP/s   flops (int8: operations) per second
//   BW%       GB/s as a percentage of the measured read bandwidth for `threads` threads
//   peak%     GFLOP/s as a percentage of the measured FMA or int8 peak for `threads` threads
void set_roofline_counters(benchmark::State& state, double seconds, double bytes_per_iter,
                           double flops_per_iter, int threads, Peak peak = Peak::Fma);

}  // namespace brise::bench
