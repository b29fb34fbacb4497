// f32 activations to the int8 formats (kernels/matmul_input.hpp: blocks of 32 with an f32 scale
// and the sum of the codes, Q8; blocks of 256 with sums per 16, Q8_K), once per matmul input. The
// SIMD versions equal the reference bit for bit: the largest magnitude is exact and order-free,
// and every code is one rounding of x * (1 / d).
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/matmul.hpp"
#include "kernels/types/rounding.hpp"

namespace brise::kernels {

namespace {
// d = max|x| / 127 and 1 / d (0 for an all-zero block). A NaN anywhere makes d NaN, so the
// products of the block are NaN too (the numeric fault checks see it), and its codes are zero.
struct BlockScale {
  float d;
  float id;
};
inline BlockScale block_scale(float amax, bool has_nan) {
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  return {has_nan ? std::numeric_limits<float>::quiet_NaN() : d, has_nan ? 0.0f : id};
}
}  // namespace

#if defined(BRISE_ISA_GENERIC)
namespace {
// Both formats' reference: per block of `block` values its scale d and codes, and the codes' sums
// per `sum_elems` (a divisor of `block`).
void quantize_blocks_ref(const float* x, size_t x_stride, size_t n_tokens, size_t cols,
                         size_t block, size_t sum_elems, int8_t* q, float* d, int32_t* s) {
  const size_t n_blocks = cols / block, n_sums = cols / sum_elems;
  for (size_t t = 0; t < n_tokens; ++t) {
    for (size_t b = 0; b < n_blocks; ++b) {
      const float* xb = x + t * x_stride + b * block;
      float amax = 0.0f;
      bool has_nan = false;
      for (size_t j = 0; j < block; ++j) {
        has_nan = has_nan || std::isnan(xb[j]);
        amax = std::fabs(xb[j]) > amax ? std::fabs(xb[j]) : amax;
      }
      const BlockScale scale = block_scale(amax, has_nan);
      int8_t* qb = q + t * cols + b * block;
      for (size_t j = 0; j < block; j += sum_elems) {
        int32_t sum = 0;
        for (size_t i = j; i < j + sum_elems; ++i) {
          qb[i] = BRISE_ISA::q8_code(xb[i] * scale.id);
          sum += qb[i];
        }
        s[t * n_sums + (b * block + j) / sum_elems] = sum;
      }
      d[t * n_blocks + b] = scale.d;
    }
  }
}
}  // namespace

void quantize_activations_ref(const float* x, size_t x_stride, size_t n_tokens,
                              const Q8Activations& out) {
  quantize_blocks_ref(x, x_stride, n_tokens, out.cols, kQ8Block, kQ8Block, out.q, out.d, out.s);
}

void quantize_activations_k_ref(const float* x, size_t x_stride, size_t n_tokens,
                                const Q8KActivations& out) {
  quantize_blocks_ref(x, x_stride, n_tokens, out.cols, kQ8KBlock, 16, out.q, out.d, out.s16);
}
#endif

namespace BRISE_ISA {

void quantize_activations_k(const float* x, size_t x_stride, size_t n_tokens,
                            const Q8KActivations& out) {
#if defined(BRISE_AVX512)
  const size_t n_blocks = out.cols / kQ8KBlock;
  for (size_t t = 0; t < n_tokens; ++t) {
    for (size_t b = 0; b < n_blocks; ++b) {
      const float* xb = x + t * x_stride + b * kQ8KBlock;
      __m512 amax16 = _mm512_setzero_ps();
      __mmask16 nan = 0;
      for (size_t j = 0; j < 16; ++j) {
        const __m512 v = _mm512_loadu_ps(xb + 16 * j);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        amax16 = _mm512_max_ps(amax16, abs_not_nan(v));
      }
      const BlockScale s = block_scale(_mm512_reduce_max_ps(amax16), nan != 0);
      const __m512 id = _mm512_set1_ps(s.id);
      int8_t* q = out.q + t * out.cols + b * kQ8KBlock;
      int32_t* s16 = out.s16 + t * (out.cols / 16) + b * (kQ8KBlock / 16);
      for (size_t j = 0; j < 16; ++j) {
        const __m512i c = q8_codes_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 16 * j), id));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * j), _mm512_cvtepi32_epi8(c));
        s16[j] = _mm512_reduce_add_epi32(c);
      }
      out.d[t * n_blocks + b] = s.d;
    }
  }
#else
  quantize_activations_k_ref(x, x_stride, n_tokens, out);
#endif
}

void quantize_activations(const float* x, size_t x_stride, size_t n_tokens,
                          const Q8Activations& out) {
#if defined(BRISE_AVX512) || defined(BRISE_AVX2)
  const size_t n_blocks = out.cols / kQ8Block;
  for (size_t t = 0; t < n_tokens; ++t) {
    for (size_t b = 0; b < n_blocks; ++b) {
      const float* xb = x + t * x_stride + b * kQ8Block;
      int8_t* q = out.q + t * out.cols + b * kQ8Block;
#if defined(BRISE_AVX512)
      const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
      const bool has_nan = (_mm512_cmp_ps_mask(x0, x0, _CMP_UNORD_Q) |
                            _mm512_cmp_ps_mask(x1, x1, _CMP_UNORD_Q)) != 0;
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs_not_nan(x0), abs_not_nan(x1)));
      const BlockScale s = block_scale(amax, has_nan);
      const __m512 id = _mm512_set1_ps(s.id);
      const __m512i q0 = q8_codes_epi32(_mm512_mul_ps(x0, id));
      const __m512i q1 = q8_codes_epi32(_mm512_mul_ps(x1, id));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(q1));
      out.s[t * n_blocks + b] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
#else
      __m256 v[4];
      __m256 amax8 = _mm256_setzero_ps();
      __m256 nan8 = _mm256_setzero_ps();
      for (size_t i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(xb + 8 * i);
        amax8 = _mm256_max_ps(amax8, abs_not_nan(v[i]));
        nan8 = _mm256_or_ps(nan8, _mm256_cmp_ps(v[i], v[i], _CMP_UNORD_Q));
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, amax8);
      float amax = 0.0f;
      for (float l : lanes) amax = l > amax ? l : amax;
      const BlockScale s = block_scale(amax, _mm256_movemask_ps(nan8) != 0);
      const __m256 id = _mm256_set1_ps(s.id);
      __m256i sum = _mm256_setzero_si256();
      for (size_t i = 0; i < 4; ++i) {
        const __m256i c = q8_codes_epi32(_mm256_mul_ps(v[i], id));
        sum = _mm256_add_epi32(sum, c);
        // 8 int32 codes in [-127, 127] to 8 bytes.
        const __m128i w16 =
            _mm_packs_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(q + 8 * i), _mm_packs_epi16(w16, w16));
      }
      alignas(32) int32_t sums[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(sums), sum);
      int32_t total = 0;
      for (int32_t l : sums) total += l;
      out.s[t * n_blocks + b] = total;
#endif
      out.d[t * n_blocks + b] = s.d;
    }
  }
#else
  quantize_activations_ref(x, x_stride, n_tokens, out);
#endif
}

}  // namespace BRISE_ISA
}  // namespace brise::kernels
