#include "kernels/rope.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"

namespace brise::kernels {

#if defined(BRISE_ISA_GENERIC)
void rope_angles(size_t pos, size_t head_dim, double theta, float* cos_out, float* sin_out) {
  const double p = static_cast<double>(pos);
  for (size_t i = 0; i < head_dim / 2; ++i) {
    const double freq =
        1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(head_dim));
    const double angle = p * freq;
    cos_out[i] = static_cast<float>(std::cos(angle));
    sin_out[i] = static_cast<float>(std::sin(angle));
  }
}
#endif

namespace BRISE_ISA {
namespace {

using Batch = xsimd::batch<float>;
constexpr size_t kWidth = Batch::size;
static_assert(kWidth % 2 == 0, "pairs must not straddle SIMD lanes");

// Pairs rotated per pass: the expanded cos/sin tables for them live on the stack.
constexpr size_t kPairsPerChunk = 128;

// (x0, x1, x2, x3, ...) -> (x1, x0, x3, x2, ...). xsimd 8.1's swizzle is missing for SSE, so
// this uses the in-lane permute of each x86 width, with a portable fallback.
template <class B>
inline B swap_pairs(const B& x) {
  constexpr size_t kW = B::size;
#if defined(__AVX512F__)
  if constexpr (kW == 16) return B(_mm512_permute_ps(x, 0xB1));
#endif
#if defined(__AVX__)
  if constexpr (kW == 8) return B(_mm256_permute_ps(x, 0xB1));
#endif
#if defined(__SSE__)
  if constexpr (kW == 4) return B(_mm_shuffle_ps(x, x, 0xB1));
#endif
  alignas(64) float v[kW];
  x.store_aligned(v);
  for (size_t i = 0; i < kW; i += 2) std::swap(v[i], v[i + 1]);
  return B::load_aligned(v);
}

}  // namespace

void rope_apply(float* x, size_t n_heads, size_t head_dim, const float* cos_in,
                const float* sin_in) {
  const size_t n_pairs = head_dim / 2;
  // Per chunk of pairs, expand the tables to one value per element so that a rotation is
  //   out = x * (c0, c0, c1, c1, ...) + swap_pairs(x) * (-s0, s0, -s1, s1, ...).
  alignas(64) float cos2[2 * kPairsPerChunk];
  alignas(64) float sin2[2 * kPairsPerChunk];
  for (size_t pair0 = 0; pair0 < n_pairs; pair0 += kPairsPerChunk) {
    const size_t pairs = std::min(kPairsPerChunk, n_pairs - pair0);
    for (size_t i = 0; i < pairs; ++i) {
      cos2[2 * i] = cos_in[pair0 + i];
      cos2[2 * i + 1] = cos_in[pair0 + i];
      sin2[2 * i] = -sin_in[pair0 + i];
      sin2[2 * i + 1] = sin_in[pair0 + i];
    }
    const size_t len = 2 * pairs;
    for (size_t h = 0; h < n_heads; ++h) {
      float* xs = x + h * head_dim + 2 * pair0;
      size_t e = 0;
      for (; e + kWidth <= len; e += kWidth) {
        const Batch v = Batch::load_unaligned(xs + e);
        const Batch c = Batch::load_aligned(cos2 + e);
        const Batch s = Batch::load_aligned(sin2 + e);
        xsimd::fma(v, c, swap_pairs(v) * s).store_unaligned(xs + e);
      }
      for (; e < len; e += 2) {
        const float a = xs[e];
        const float b = xs[e + 1];
        xs[e] = a * cos2[e] + b * sin2[e];
        xs[e + 1] = b * cos2[e + 1] + a * sin2[e + 1];
      }
    }
  }
}

}  // namespace BRISE_ISA

#if defined(BRISE_ISA_GENERIC)
void rope_apply_ref(float* x, size_t n_heads, size_t head_dim, const float* cos_in,
                    const float* sin_in) {
  for (size_t h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_dim;
    for (size_t i = 0; i < head_dim / 2; ++i) {
      const float a = xh[2 * i];
      const float b = xh[2 * i + 1];
      xh[2 * i] = a * cos_in[i] - b * sin_in[i];
      xh[2 * i + 1] = a * sin_in[i] + b * cos_in[i];
    }
  }
}
#endif

}  // namespace brise::kernels
