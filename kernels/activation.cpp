#include "kernels/activation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"

namespace brise::kernels {

namespace {
// Keeps the first maximum, and lets any number replace a NaN.
inline bool replaces(float candidate, float best) {
  return candidate > best || (best != best && candidate == candidate);
}
}  // namespace

#if defined(BRISE_ISA_GENERIC)
void softmax_ref(float* x, size_t n) {
  if (n == 0) return;
  double m = x[0];
  for (size_t i = 1; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - m);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::exp(x[i] - m) / sum);
}

void silu_mul_ref(const float* gate, const float* up, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

size_t argmax_ref(const float* x, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (replaces(x[i], x[best])) best = i;
  }
  return best;
}
#endif

namespace BRISE_ISA {
namespace {

using Batch = xsimd::batch<float>;
constexpr size_t kWidth = Batch::size;

float max_value(const float* x, size_t n) {
  float m = -std::numeric_limits<float>::infinity();
  size_t i = 0;
  if (n >= kWidth) {
    Batch acc(m);
    for (; i + kWidth <= n; i += kWidth) acc = xsimd::max(acc, Batch::load_unaligned(x + i));
    alignas(64) float lanes[kWidth];
    acc.store_aligned(lanes);
    for (float v : lanes) m = std::max(m, v);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// Result of an argmax over part of an array: the first index of its largest non-NaN value, or
// its first index when every value is NaN.
struct ArgMax {
  size_t index;
  float value;
};

// SIMD argmax of x[begin, begin + n), n >= kWidth and n < 2^24 (lane indices are kept exactly
// in f32). Each lane tracks the first maximum of its own elements; lane ties resolve to the
// lowest index.
ArgMax argmax_block(const float* x, size_t begin, size_t n) {
  const float* p = x + begin;
  alignas(64) float lane_offsets[kWidth];
  for (size_t l = 0; l < kWidth; ++l) lane_offsets[l] = static_cast<float>(l);
  const Batch offsets = Batch::load_aligned(lane_offsets);

  Batch best = Batch::load_unaligned(p);
  Batch best_idx = offsets;
  size_t i = kWidth;
  for (; i + kWidth <= n; i += kWidth) {
    const Batch v = Batch::load_unaligned(p + i);
    const auto take = (v > best) | (xsimd::isnan(best) & !xsimd::isnan(v));
    best = xsimd::select(take, v, best);
    best_idx = xsimd::select(take, offsets + Batch(static_cast<float>(i)), best_idx);
  }
  alignas(64) float vals[kWidth];
  alignas(64) float idxs[kWidth];
  best.store_aligned(vals);
  best_idx.store_aligned(idxs);
  ArgMax r{static_cast<size_t>(idxs[0]), vals[0]};
  for (size_t l = 1; l < kWidth; ++l) {
    const size_t idx = static_cast<size_t>(idxs[l]);
    const bool same = vals[l] == r.value || (vals[l] != vals[l] && r.value != r.value);
    if (replaces(vals[l], r.value) || (same && idx < r.index)) r = {idx, vals[l]};
  }
  // The scalar tail comes after every lane's elements, so a strict comparison keeps ties first.
  for (; i < n; ++i) {
    if (replaces(p[i], r.value)) r = {i, p[i]};
  }
  r.index += begin;
  return r;
}

}  // namespace

void softmax(float* x, size_t n) {
  if (n == 0) return;
  const float m = max_value(x, n);
  const Batch mb(m);
  Batch acc(0.0f);
  size_t i = 0;
  for (; i + kWidth <= n; i += kWidth) {
    const Batch e = xsimd::exp(Batch::load_unaligned(x + i) - mb);
    e.store_unaligned(x + i);
    acc += e;
  }
  float sum = xsimd::hadd(acc);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  const Batch invb(inv);
  i = 0;
  for (; i + kWidth <= n; i += kWidth) (Batch::load_unaligned(x + i) * invb).store_unaligned(x + i);
  for (; i < n; ++i) x[i] *= inv;
}

void silu_mul(const float* gate, const float* up, float* out, size_t n) {
  const Batch one(1.0f);
  size_t i = 0;
  for (; i + kWidth <= n; i += kWidth) {
    const Batch g = Batch::load_unaligned(gate + i);
    const Batch u = Batch::load_unaligned(up + i);
    (g / (one + xsimd::exp(-g)) * u).store_unaligned(out + i);
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

size_t argmax(const float* x, size_t n) {
  if (n < kWidth) return argmax_ref(x, n);
  // Blocks of < 2^24 elements keep lane indices exact in f32; later blocks only win by being
  // strictly larger (or a number against a NaN), so ties still go to the first index.
  constexpr size_t kBlock = size_t{1} << 23;
  ArgMax best = argmax_block(x, 0, std::min(n, kBlock));
  for (size_t begin = kBlock; begin < n; begin += kBlock) {
    const size_t len = std::min(kBlock, n - begin);
    ArgMax part{begin, x[begin]};
    if (len >= kWidth) {
      part = argmax_block(x, begin, len);
    } else {
      for (size_t i = begin + 1; i < begin + len; ++i) {
        if (replaces(x[i], part.value)) part = {i, x[i]};
      }
    }
    if (replaces(part.value, best.value)) best = part;
  }
  return best.index;
}

}  // namespace BRISE_ISA
}  // namespace brise::kernels
