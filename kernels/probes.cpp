#include "kernels/probes.hpp"

#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/packed_ops.hpp"
#include "kernels/types/codec.hpp"

namespace brise::kernels::BRISE_ISA {

float sum_floats(const float* p, size_t n) {
  // Eight independent accumulators hide the add latency; the loop is load-bound.
  constexpr size_t kAcc = 8;
  Batch acc[kAcc];
  for (auto& a : acc) a = Batch(0.0f);
  size_t i = 0;
  for (; i + kAcc * kLanes <= n; i += kAcc * kLanes)
    for (size_t j = 0; j < kAcc; ++j) acc[j] += Batch::load_unaligned(p + i + j * kLanes);
  float s = 0.0f;
  for (; i < n; ++i) s += p[i];
  for (auto& a : acc) s += xsimd::hadd(a);
  return s;
}

double fma_peak_probe(size_t iterations, float b, float c, float* sink) {
  // Enough independent chains to cover FMA latency x FMA ports on current x86 cores.
  constexpr size_t kChains = 16;
  const Batch vb(b), vc(c);
  Batch acc[kChains];
  for (size_t j = 0; j < kChains; ++j) acc[j] = Batch(static_cast<float>(j));
  for (size_t i = 0; i < iterations; ++i)
    for (size_t j = 0; j < kChains; ++j) acc[j] = fmadd(acc[j], vb, vc);
  float s = 0.0f;
  for (auto& a : acc) s += xsimd::hadd(a);
  *sink = s;
  return 2.0 * static_cast<double>(kLanes * kChains * iterations);
}

double int8_peak_probe(size_t iterations, int32_t* sink) {
  using Ops = PackedOps;
  constexpr size_t kChains = 12;
  const Ops::I u = Ops::splat8(3), a = Ops::splat8(1);
  Ops::I acc[kChains];
  for (size_t j = 0; j < kChains; ++j) acc[j] = Ops::splat32(static_cast<int32_t>(j));
  for (size_t i = 0; i < iterations; ++i)
    for (size_t j = 0; j < kChains; ++j) acc[j] = Ops::dot_unsigned(acc[j], u, a);
  int32_t lanes[Ops::kRows];
  int32_t s = 0;
  for (auto& v : acc) {
    std::memcpy(lanes, &v, sizeof lanes);
    for (int32_t l : lanes) s += l;
  }
  *sink = s;
  return 2.0 * 4.0 * static_cast<double>(Ops::kRows * kChains * iterations);
}

}  // namespace brise::kernels::BRISE_ISA
