// What the K-quant codecs (q2_k.hpp ... q6_k.hpp) share: ggml's rounding and the searches for a
// sub-block's scale (and min) of its reference quantizers (ggml-quants.c: nearest_int,
// make_qkx2_quants, make_qx_quants, make_q3_quants, get_scale_min_k4). Every float operation is
// ggml's, in ggml's order and without FMA contraction (kernels are built with -ffp-contract=off,
// as ggml's baseline build has no FMA), so that the quantizers write llama-quantize's bytes.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"

namespace brise::kernels::BRISE_ISA::kquant {

inline constexpr size_t kSuperBlock = 256;  // QK_K
// Below this magnitude a group counts as all zero (ggml's GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

// Round half to even for |v| <= 2^22 - 1 (ggml's nearest_int): adding 1.5 * 2^23 leaves the
// rounded integer in the low mantissa bits. Out of range or NaN input gives some int, never UB;
// every caller clamps it.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  return static_cast<int>(std::bit_cast<uint32_t>(shifted) & 0x007FFFFFu) - 0x00400000;
}

// The codes L (0..nmax) and scale of n values as scale * L - min, min >= 0 (ggml's
// make_qkx2_quants): a first fit over [min(x, 0), max(x)], then nstep + 1 trial inverse scales
// (rmin + rdelta * is + nmax) / (max - min), each refined by weighted least squares for scale and
// min, keeping the one of least weighted error (absolute with use_mad, else squared). Returns the
// scale; *the_min receives the (non-negative) min.
inline float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                              float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                              bool use_mad) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// The signed codes l (-nmax..nmax-1, stored as l + nmax in L) and scale of n values as scale * l
// (ggml's make_qx_quants with rmse_type 1 and no importance weights): the scale that maps the
// element of largest magnitude to -nmax, then 18 trial inverse scales -(nmax + 0.1 * is) / max,
// keeping the one whose least-squares fit, weighted by x^2, explains most (sumlx^2 / suml2).
inline float make_qx_quants_rmse1(int n, int nmax, const float* x, int8_t* L) {
  const auto [amax, max] = largest_magnitude(x, static_cast<size_t>(n));
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const auto fit = [&](float iscale, float& sumlx, float& suml2) {
    sumlx = 0;
    suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
      const float w = x[i] * x[i];
      const float fl = static_cast<float>(l);
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
  };
  const auto codes = [&](float iscale) {
    for (int i = 0; i < n; ++i) {
      const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
      L[i] = static_cast<int8_t>(l + nmax);
    }
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  fit(iscale, sumlx, suml2);
  codes(iscale);
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    fit(iscale, sumlx, suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      codes(iscale);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// The codes (0..2 nmax - 1, i.e. l + nmax) and scale of n values as scale * l (ggml's
// make_q3_quants with do_rmse): the scale mapping the element of largest magnitude to -nmax, then
// up to 5 passes that move single codes where that improves the x^2-weighted least-squares fit.
inline float make_q3_quants_rmse(int n, int nmax, const float* x, int8_t* L) {
  const auto [amax, max] = largest_magnitude(x, static_cast<size_t>(n));
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    const float fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (slx > 0) {
        float sl2 = suml2 - w * li * li;
        const int new_l = std::max(-nmax, std::min(nmax - 1, nearest_int(x[i] * sl2 / slx)));
        if (new_l != L[i]) {
          const float fl = static_cast<float>(new_l);
          slx += w * x[i] * fl;
          sl2 += w * fl * fl;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Scale and min of 32-element sub-block j (0..7) from the 12 packed bytes of Q4_K and Q5_K (ggml's
// get_scale_min_k4): sub-blocks 0..3 hold 6 bits in bytes j and j + 4; 4..7 their low 4 bits in
// byte j + 4's nibbles and their high 2 bits in the top bits of bytes j - 4 and j.
inline void scale_min_k4(const uint8_t* s, int j, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Q4_K's and Q5_K's block head: fp16 d at byte 0, fp16 dmin at 2, scale_min_k4's 12 bytes at 4.
inline constexpr size_t kK4DminAt = 2;
inline constexpr size_t kK4ScalesAt = 4;

// ggml's dequantize_row_q4_K and _q5_K for one block: each sub-block s of 32 as
// (d * scale) * code - (dmin * min), in that order, code(s, l) giving its element l's code.
template <class Code>
inline void decode_k4(const uint8_t* block, Code code, float* out) {
  const float d = f16_to_f32(read_u16(block));
  const float dmin = f16_to_f32(read_u16(block + kK4DminAt));
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    scale_min_k4(block + kK4ScalesAt, s, sc, m);
    const float dl = d * static_cast<float>(sc);
    const float ml = dmin * static_cast<float>(m);
    for (size_t l = 0; l < 32; ++l) out[32 * s + l] = dl * static_cast<float>(code(s, l)) - ml;
  }
}

// Q4_K's and Q5_K's int8 matmul form but the codes (int8_block.hpp): each sub-block's scale and
// min in both its halves of 16, offset 0, d and dmin.
inline void int8_form_k4(const uint8_t* block, Int8Block& out) {
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    scale_min_k4(block + kK4ScalesAt, s, sc, m);
    out.scale[2 * s] = out.scale[2 * s + 1] = sc;
    out.min[2 * s] = out.min[2 * s + 1] = m;
  }
  out.offset = 0;
  out.d = f16_to_f32(read_u16(block));
  out.dmin = f16_to_f32(read_u16(block + kK4DminAt));
}

// All 8 scales and mins of scale_min_k4 at once (ggml's utmp trick on 32-bit words): bytes 0..7
// of the result the scales of sub-blocks 0..7, bytes 8..15 their mins.
struct ScaleMinK4 {
  uint8_t sc[8];
  uint8_t m[8];
};
inline ScaleMinK4 unpack_scale_min_k4(const uint8_t* s) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  constexpr uint32_t k6 = 0x3F3F3F3Fu, k4 = 0x0F0F0F0Fu, k2 = 0x03030303u;
  const uint32_t w[4] = {u[0] & k6, (u[2] & k4) | (((u[0] >> 6) & k2) << 4), u[1] & k6,
                         ((u[2] >> 4) & k4) | (((u[1] >> 6) & k2) << 4)};
  ScaleMinK4 r;
  std::memcpy(&r, w, sizeof r);
  return r;
}

#if defined(BRISE_AVX512)
// The 32 weight16 lanes of 2 sub-blocks of 16 (2 g and 2 g + 1): word 2 g of the 16 scales s16
// in lanes 0..15, word 2 g + 1 in lanes 16..31.
inline __m512i pair_scales(__m512i s16, int g) {
  const __m512i idx =
      _mm512_add_epi16(_mm512_set1_epi16(static_cast<int16_t>(2 * g)),
                       _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(1), 1));
  return _mm512_permutexvar_epi16(idx, s16);
}
#endif

#if defined(BRISE_AVX512)
// For 64 consecutive codes' 32 pair sums (16-bit words, word w covering codes 2 w, 2 w + 1): each
// word's scale, from the 16-bit scales sc16 of the sub-blocks of 16 codes starting at `first`.
inline __m512i scales_of_pair_sums(__m512i sc16, int first) {
  const __m512i word_sub =
      _mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                                         16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                        3);
  return _mm512_permutexvar_epi16(
      _mm512_add_epi16(word_sub, _mm512_set1_epi16(static_cast<int16_t>(first))), sc16);
}
#endif

#if defined(BRISE_AVX512)
// The sums of the 16 int32 lanes of x and of y, together: x's lanes folded into the low half of
// one vector, y's into the high half, then added down.
inline void reduce_add_pair(__m512i x, __m512i y, int32_t& sum_x, int32_t& sum_y) {
  __m512i v = _mm512_add_epi32(_mm512_shuffle_i64x2(x, y, 0x44), _mm512_shuffle_i64x2(x, y, 0xEE));
  v = _mm512_add_epi32(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC));  // + lanes 2 apart
  v = _mm512_add_epi32(v, _mm512_shuffle_epi32(v, _MM_PERM_CDAB));  // + lanes 1 apart
  // Lanes 0 and 4 hold x's two quarter sums, lanes 8 and 12 y's.
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, v);
  sum_x = lanes[0] + lanes[4];
  sum_y = lanes[8] + lanes[12];
}
#endif

#if defined(BRISE_AVX2)
// meta.min of Q4_K and Q5_K: each sub-block of 32's min in both its halves of 16.
inline void store_mins_k4(const uint8_t* m8, int32_t* min) {
  uint64_t m;
  std::memcpy(&m, m8, 8);
  const __m128i mv = _mm_cvtsi64_si128(static_cast<long long>(m));
  const __m128i dup = _mm_unpacklo_epi8(mv, mv);  // m0 m0 m1 m1 ... m7 m7
#if defined(BRISE_AVX512)
  _mm512_storeu_si512(min, _mm512_cvtepu8_epi32(dup));
#else
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(min), _mm256_cvtepu8_epi32(dup));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(min + 8),
                      _mm256_cvtepu8_epi32(_mm_srli_si128(dup, 8)));
#endif
}

// to_weights16's meta for Q4_K and Q5_K: the mins (sm: the block's unpack_scale_min_k4), d and
// dmin (vcvtph2ps: exactly f16_to_f32, without its call).
inline void weights16_meta_k4(const uint8_t* block, const ScaleMinK4& sm, Int8Block& meta) {
  store_mins_k4(sm.m, meta.min);
  meta.d = _cvtsh_ss(read_u16(block));
  meta.dmin = _cvtsh_ss(read_u16(block + kK4DminAt));
}
#endif

#if defined(BRISE_AVX512_VNNI)
// What Q4_K's and Q5_K's one-token dot_q8k share around their codes' dot product: the block's 8
// scales as 16-bit words for vpdpwssd, then the mins against the token's activation sums per 16
// and the two fp16 factors.
struct DotK4 {
  __m128i scmv;  // bytes 0..7 the sub-blocks' scales, 8..15 their mins
  __m512i sc16;  // words 0..7 the scales

  explicit DotK4(const uint8_t* block) {
    const ScaleMinK4 sm = unpack_scale_min_k4(block + kK4ScalesAt);
    std::memcpy(&scmv, &sm, sizeof scmv);
    sc16 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(scmv));
  }

  // dot_q8k's results from `dot`, the codes times the activations times the scales per lane.
  void finish(const uint8_t* block, __m512i dot, const int32_t* s16, __m512i& sumi, __m512i& summ,
              float& d, float& dmin) const {
    // Mins per 16 elements: each sub-block's min twice.
    const __m512i mins = _mm512_cvtepu8_epi32(_mm_unpackhi_epi8(scmv, scmv));
    sumi = dot;
    summ = _mm512_mullo_epi32(mins, _mm512_loadu_si512(s16));
    d = _cvtsh_ss(read_u16(block));
    dmin = _cvtsh_ss(read_u16(block + kK4DminAt));
  }
};
#endif

// ggml's dequantize_row_q3_K and _q6_K for one block: each sub-block s of 16 as
// (d * scale(s)) * value(e) for its elements e, in that order.
template <class Scale, class Value>
inline void decode_sub16(float d, Scale scale, Value value, float* out) {
  for (size_t s = 0; s < 16; ++s) {
    const float dl = d * static_cast<float>(scale(s));
    for (size_t e = 16 * s; e < 16 * s + 16; ++e) out[e] = dl * static_cast<float>(value(e));
  }
}

// The int8 matmul form but the codes of the types without mins (Q3_K, Q6_K, IQ4_XS): scale(j)
// for each 16 elements, the code offset and d.
template <class Scale>
inline void int8_form_no_min(Scale scale, int32_t offset, float d, Int8Block& out) {
  for (size_t j = 0; j < 16; ++j) {
    out.scale[j] = scale(j);
    out.min[j] = 0;
  }
  out.offset = offset;
  out.d = d;
  out.dmin = 0.0f;
}

#if defined(BRISE_AVX2)
// to_weights16's meta for the types without mins: no min, the fp16 d at d_at (vcvtph2ps: exactly
// f16_to_f32, without its call), dmin 0.
inline void weights16_meta_no_min(const uint8_t* d_at, Int8Block& meta) {
#if defined(BRISE_AVX512)
  _mm512_storeu_si512(meta.min, _mm512_setzero_si512());
#else
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(meta.min), _mm256_setzero_si256());
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(meta.min + 8), _mm256_setzero_si256());
#endif
  meta.d = _cvtsh_ss(read_u16(d_at));
  meta.dmin = 0.0f;
}
#endif

#if defined(BRISE_AVX512)
// dot_q8k's results for the types without mins: sumi = dot - offset_sums, no summ, the fp16 d at
// d_at, dmin 0.
inline void finish_no_min(const uint8_t* d_at, __m512i dot, __m512i offset_sums, __m512i& sumi,
                          __m512i& summ, float& d, float& dmin) {
  sumi = _mm512_sub_epi32(dot, offset_sums);
  summ = _mm512_setzero_si512();
  d = _cvtsh_ss(read_u16(d_at));
  dmin = 0.0f;
}
#endif

// The inverse of scale_min_k4: 8 6-bit scales and mins into 12 bytes.
inline void pack_scale_min_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* s) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] = ls[j];
      s[j + 4] = lm[j];
    } else {
      s[j + 4] = static_cast<uint8_t>((ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4));
      s[j - 4] = static_cast<uint8_t>(s[j - 4] | ((ls[j] >> 4) << 6));
      s[j] = static_cast<uint8_t>(s[j] | ((lm[j] >> 4) << 6));
    }
  }
}

// Q4_K's and Q5_K's quantizer up to the codes (they differ in nmax and the search's steps): the 8
// sub-blocks' 6-bit scales and mins packed into `scales_out`, d and dmin, the codes 0..nmax in L.
inline void quantize_scale_min_k4(const float* x, int nmax, float rmin, float rdelta, int nstep,
                                  uint8_t* scales_out, uint16_t& d_out, uint16_t& dmin_out,
                                  uint8_t* L) {
  uint8_t Laux[32];
  float weights[32];
  float scales[8];
  float mins[8];
  float max_scale = 0;  // scales are positive: the min is taken off
  float max_min = 0;
  for (size_t j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (size_t l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (size_t l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = make_qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta,
                                 nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t ls[8], lm[8];
  for (size_t j = 0; j < 8; ++j) {
    // ggml rounds into a uint8_t before clamping to 63: keep that truncation.
    ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
  }
  pack_scale_min_k4(ls, lm, scales_out);
  d_out = f32_to_f16(max_scale / 63.0f);
  dmin_out = f32_to_f16(max_min / 63.0f);
  // The codes again against the stored scales and mins (a sub-block whose scale rounded to 0
  // keeps make_qkx2_quants' codes, as in ggml).
  const float d_all = f16_to_f32(d_out);
  const float dmin_all = f16_to_f32(dmin_out);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    scale_min_k4(scales_out, j, sc, m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0) continue;
    const float dm = dmin_all * static_cast<float>(m);
    for (size_t i = 0; i < 32; ++i) {
      const int l = nearest_int((x[32 * j + i] + dm) / d);
      L[32 * j + i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

// 256 2-bit codes (Q2_K's, Q3_K's low bits) into 64 bytes: in each half of 128, byte l holds
// elements l, l + 32, l + 64, l + 96 in bits 0-1, 2-3, 4-5, 6-7.
inline void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (size_t h = 0; h < 2; ++h) {
    for (size_t l = 0; l < 32; ++l) {
      const uint8_t* e = L + 128 * h + l;
      qs[32 * h + l] = static_cast<uint8_t>(e[0] | (e[32] << 2) | (e[64] << 4) | (e[96] << 6));
    }
  }
}

// Element e's 2-bit code from pack_2bit's 64 bytes.
inline uint8_t code_2bit(const uint8_t* qs, size_t e) {
  return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

}  // namespace brise::kernels::BRISE_ISA::kquant
