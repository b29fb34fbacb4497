#include "kernels/norm.hpp"

#include <cmath>

#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"

namespace brise::kernels {
namespace BRISE_ISA {

namespace {
using Batch = xsimd::batch<float>;
constexpr size_t kWidth = Batch::size;
}  // namespace

void rmsnorm(const float* x, const float* weight, size_t n, float eps, float* out) {
  // Four independent accumulators hide the FMA latency; the order is fixed by n alone.
  Batch acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);
  size_t i = 0;
  for (; i + 4 * kWidth <= n; i += 4 * kWidth) {
    const Batch a = Batch::load_unaligned(x + i);
    const Batch b = Batch::load_unaligned(x + i + kWidth);
    const Batch c = Batch::load_unaligned(x + i + 2 * kWidth);
    const Batch d = Batch::load_unaligned(x + i + 3 * kWidth);
    acc0 = xsimd::fma(a, a, acc0);
    acc1 = xsimd::fma(b, b, acc1);
    acc2 = xsimd::fma(c, c, acc2);
    acc3 = xsimd::fma(d, d, acc3);
  }
  for (; i + kWidth <= n; i += kWidth) {
    const Batch a = Batch::load_unaligned(x + i);
    acc0 = xsimd::fma(a, a, acc0);
  }
  float sum = xsimd::hadd((acc0 + acc1) + (acc2 + acc3));
  for (; i < n; ++i) sum += x[i] * x[i];

  const float inv_rms = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
  const Batch inv(inv_rms);
  i = 0;
  for (; i + kWidth <= n; i += kWidth) {
    const Batch a = Batch::load_unaligned(x + i);
    const Batch w = Batch::load_unaligned(weight + i);
    (a * inv * w).store_unaligned(out + i);
  }
  for (; i < n; ++i) out[i] = x[i] * inv_rms * weight[i];
}

}  // namespace BRISE_ISA

#if defined(BRISE_ISA_GENERIC)
void rmsnorm_ref(const float* x, const float* weight, size_t n, float eps, float* out) {
  // Sum of squares in double: an accurate yardstick for the f32 SIMD sum.
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float inv_rms =
      static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + static_cast<double>(eps)));
  for (size_t i = 0; i < n; ++i) out[i] = x[i] * inv_rms * weight[i];
}
#endif

}  // namespace brise::kernels
