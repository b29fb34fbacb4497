#include "bench/support/roofline_counters.hpp"

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "bench/support/roofline.hpp"
#include "kernels/kernel_set.hpp"

namespace brise::bench {

const Roofline& machine_roofline(int threads) {
  static std::mutex mu;
  static std::map<std::pair<std::string, int>, Roofline> cache;
  std::lock_guard<std::mutex> lock(mu);
  const std::string set(kernels::kernel_set().name);
  auto it = cache.find({set, threads});
  if (it != cache.end()) return it->second;
  Roofline r;
  r.read_gbs = measure_read_bandwidth_gbs(threads);
  r.fma_gflops = measure_fma_peak_gflops(threads);
  r.int8_gops = measure_int8_peak_gops(threads);
  return cache.emplace(std::make_pair(set, threads), r).first->second;
}

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

LoopTimer::LoopTimer() : start_(now_seconds()) {}
double LoopTimer::seconds() const {
  return now_seconds() - start_;
}

void set_roofline_counters(benchmark::State& state, double seconds, double bytes_per_iter,
                           double flops_per_iter, int threads, Peak peak) {
  const Roofline& r = machine_roofline(threads);
  if (seconds <= 0 || state.iterations() == 0) return;
  const double per_second = static_cast<double>(state.iterations()) / seconds;
  const double gbs = bytes_per_iter * per_second / 1e9;
  const double gflops = flops_per_iter * per_second / 1e9;
  const double ceiling = peak == Peak::Int8 ? r.int8_gops : r.fma_gflops;
  state.counters["GB/s"] = gbs;
  state.counters["GFLOP/s"] = gflops;
  if (r.read_gbs > 0) state.counters["BW%"] = 100 * gbs / r.read_gbs;
  if (ceiling > 0) state.counters["peak%"] = 100 * gflops / ceiling;
}

}  // namespace brise::bench
