// Q6_K (ggml-common.h block_q6_K): super-blocks of 256 weights in 16 sub-blocks of 16. Each
// sub-block has a signed 8-bit scale, the super-block an fp16 d; value = d * scale * (q - 32),
// q 6-bit. In each half of 128, element 32 k + l (k = 0..3) has its low 4 bits in ql[64 h + l]
// (k = 0), ql[64 h + 32 + l] (k = 1), or those bytes' high nibbles (k = 2, 3), and its high 2
// bits in bits 2k, 2k + 1 of qh[32 h + l]. Quantized as ggml's quantize_row_q6_K_ref
// (llama-quantize's path without an importance matrix): each sub-block's signed scale by
// make_qx_quants (x^2-weighted), the scales rounded to int8 against the one of largest magnitude
// (mapped to -128), then the codes recomputed from the rounded scales; bit for bit on finite
// input.
#pragma once

#include <cstddef>
#include <cstring>
#include <utility>

#include "kernels/group_decode_ops.hpp"
#include "kernels/types/byte_group.hpp"
#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/k_quants.hpp"

namespace brise::kernels::BRISE_ISA {

struct Q6_K {
  static constexpr std::string_view kName = "q6_K";
  static constexpr uint32_t kBlockElems = 256;
  static constexpr uint32_t kBlockBytes = 210;
  static constexpr uint32_t kFileType = 18;  // LLAMA_FTYPE_MOSTLY_Q6_K
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8K;
  static constexpr bool kRowMajor = true;  // multiplied in the file's layout (int8_block.hpp)

  struct Block {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;  // fp16
  };
  static_assert(sizeof(Block) == kBlockBytes);

  // Element e's 6-bit code (0..63).
  static int code(const uint8_t* ql, const uint8_t* qh, size_t e) {
    const size_t h = e / 128, k = (e % 128) / 32, l = e % 32;
    const int low = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
    const int high = (qh[32 * h + l] >> (2 * k)) & 3;
    return low | (high << 4);
  }

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<uint8_t*>(out);
    for (size_t b = 0; b < n / 256; ++b, x += 256) {
      Block blk{};
      int8_t L[256];
      float scales[16];
      for (size_t j = 0; j < 16; ++j)
        scales[j] = kquant::make_qx_quants_rmse1(16, 32, x + 16 * j, L + 16 * j);
      // The signed scale of largest magnitude: it becomes -128.
      const auto [max_abs_scale, max_scale] = largest_magnitude(scales, 16);
      if (max_abs_scale < kquant::kGroupMaxEps) {
        // All zero: ggml writes an all-zero block (d = +0).
        std::memset(y + b * kBlockBytes, 0, kBlockBytes);
        continue;
      }
      const float iscale = -128.0f / max_scale;
      blk.d = f32_to_f16(1 / iscale);
      for (size_t j = 0; j < 16; ++j)
        blk.scales[j] = static_cast<int8_t>(std::min(127, kquant::nearest_int(iscale * scales[j])));
      // The codes again against the stored scales (a sub-block whose scale rounded to 0 keeps
      // make_qx_quants' codes, as in ggml).
      const float d_all = f16_to_f32(blk.d);
      for (size_t j = 0; j < 16; ++j) {
        const float d = d_all * static_cast<float>(blk.scales[j]);
        if (d == 0) continue;
        for (size_t i = 0; i < 16; ++i) {
          const int l = kquant::nearest_int(x[16 * j + i] / d);
          L[16 * j + i] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
        }
      }
      for (size_t e = 0; e < 256; ++e) {
        const size_t h = e / 128, k = (e % 128) / 32, l = e % 32;
        const auto q = static_cast<uint8_t>(L[e]);
        uint8_t& low = blk.ql[64 * h + 32 * (k % 2) + l];
        low = static_cast<uint8_t>(low | ((q & 0x0F) << (4 * (k / 2))));
        uint8_t& high = blk.qh[32 * h + l];
        high = static_cast<uint8_t>(high | ((q >> 4) << (2 * k)));
      }
      std::memcpy(y + b * kBlockBytes, &blk, kBlockBytes);
    }
  }

  // ggml's dequantize_row_q6_K: (d * scale) * (q - 32), in that order.
  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    for (size_t b = 0; b < n / 256; ++b, out += 256) {
      const uint8_t* block = x + b * kBlockBytes;
      const uint8_t* ql = block + offsetof(Block, ql);
      const uint8_t* qh = block + offsetof(Block, qh);
      const auto* sc = reinterpret_cast<const int8_t*>(block + offsetof(Block, scales));
      kquant::decode_sub16(
          f16_to_f32(read_u16(block + offsetof(Block, d))), [&](size_t s) { return sc[s]; },
          [&](size_t e) { return code(ql, qh, e) - 32; }, out);
    }
  }

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // One block (kBlockBytes at `block`) in the int8 matmul's form (int8_block.hpp): codes 0..63,
  // offset 32, the signed scales, no min.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    const uint8_t* ql = block + offsetof(Block, ql);
    const uint8_t* qh = block + offsetof(Block, qh);
    const auto* sc = reinterpret_cast<const int8_t*>(block + offsetof(Block, scales));
    for (size_t h = 0; h < 2; ++h)
      for (size_t l = 0; l < 32; ++l) {
        const uint8_t a = ql[64 * h + l], c = ql[64 * h + 32 + l], q = qh[32 * h + l];
        uint8_t* o = out.code + 128 * h + l;
        o[0] = static_cast<uint8_t>((a & 0x0F) | ((q & 3) << 4));
        o[32] = static_cast<uint8_t>((c & 0x0F) | (((q >> 2) & 3) << 4));
        o[64] = static_cast<uint8_t>((a >> 4) | (((q >> 4) & 3) << 4));
        o[96] = static_cast<uint8_t>((c >> 4) | (((q >> 6) & 3) << 4));
      }
    kquant::int8_form_no_min([&](size_t s) { return sc[s]; }, 32,
                             f16_to_f32(read_u16(block + offsetof(Block, d))), out);
  }

#if defined(BRISE_AVX2)
  // to_int8 + block_weights16 (codec.hpp) with SIMD. In each half of 128, the 32 bytes of
  // ql[0..31] (a), ql[32..63] (c) and qh (q) widened to 16-bit words give the 4 runs of 32 codes:
  // a's and c's low nibbles, then their high ones, each with its 2 bits of q moved to bits 4-5
  // ((q << 4), (q << 2), q, (q >> 2), masked with 0x30); minus 32, times the scales.
  static void to_weights16(const uint8_t* block, int16_t* w16, Int8Block& meta) {
    const uint8_t* ql = block + offsetof(Block, ql);
    const uint8_t* qh = block + offsetof(Block, qh);
    const uint8_t* sc = block + offsetof(Block, scales);
#if defined(BRISE_AVX512)
    const __m512i scales = _mm512_castsi256_si512(
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc))));
    const __m512i nibble = _mm512_set1_epi16(0x0F);
    const __m512i high = _mm512_set1_epi16(0x30);
    const __m512i offset = _mm512_set1_epi16(32);
    const auto load = [](const uint8_t* p) {
      return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    };
    for (int h = 0; h < 2; ++h) {
      const __m512i a = load(ql + 64 * h), c = load(ql + 64 * h + 32), q = load(qh + 32 * h);
      const __m512i codes[4] = {
          _mm512_or_si512(_mm512_and_si512(a, nibble),
                          _mm512_and_si512(_mm512_slli_epi16(q, 4), high)),
          _mm512_or_si512(_mm512_and_si512(c, nibble),
                          _mm512_and_si512(_mm512_slli_epi16(q, 2), high)),
          _mm512_or_si512(_mm512_srli_epi16(a, 4), _mm512_and_si512(q, high)),
          _mm512_or_si512(_mm512_srli_epi16(c, 4), _mm512_and_si512(_mm512_srli_epi16(q, 2), high)),
      };
      for (int k = 0; k < 4; ++k)
        _mm512_store_si512(w16 + 128 * h + 32 * k,
                           _mm512_mullo_epi16(_mm512_sub_epi16(codes[k], offset),
                                              kquant::pair_scales(scales, 4 * h + k)));
    }
#else
    const __m256i nibble = _mm256_set1_epi16(0x0F);
    const __m256i high = _mm256_set1_epi16(0x30);
    const __m256i offset = _mm256_set1_epi16(32);
    const auto load = [](const uint8_t* p) {
      return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    };
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 2; ++i) {  // the halves of 16: sub-blocks 8 h + 2 k + i
        const int o = 16 * i;
        const __m256i a = load(ql + 64 * h + o), c = load(ql + 64 * h + 32 + o),
                      q = load(qh + 32 * h + o);
        const __m256i codes[4] = {
            _mm256_or_si256(_mm256_and_si256(a, nibble),
                            _mm256_and_si256(_mm256_slli_epi16(q, 4), high)),
            _mm256_or_si256(_mm256_and_si256(c, nibble),
                            _mm256_and_si256(_mm256_slli_epi16(q, 2), high)),
            _mm256_or_si256(_mm256_srli_epi16(a, 4), _mm256_and_si256(q, high)),
            _mm256_or_si256(_mm256_srli_epi16(c, 4),
                            _mm256_and_si256(_mm256_srli_epi16(q, 2), high)),
        };
        for (int k = 0; k < 4; ++k)
          _mm256_store_si256(
              reinterpret_cast<__m256i*>(w16 + 128 * h + 32 * k + o),
              _mm256_mullo_epi16(_mm256_sub_epi16(codes[k], offset),
                                 _mm256_set1_epi16(static_cast<int8_t>(sc[8 * h + 2 * k + i]))));
      }
#endif
    kquant::weights16_meta_no_min(block + offsetof(Block, d), meta);
  }
#endif

#if defined(BRISE_AVX2) && !defined(BRISE_AVX512)
  // The one-token path over group blocks packed in word units (packed::pack_block_words): the
  // integers of dot_q8k for a group's rows at once, row r in lane r of its vector (WordVectors,
  // kernels/group_decode_ops.hpp). In half h, word j (0..7) of ql at 64 h (A) and at 64 h + 32
  // (C) and of qh at 32 h (Q) hold elements 128 h + 32 k + 4 j .. + 3: A's low nibbles (k = 0),
  // C's (1), A's high (2), C's (3), with Q's bits 2 k, 2 k + 1 as bits 4-5. Codes 0..63 dotted
  // with the activations in 32 bits (|sum| <= 16 x 63 x 127) per sub-block of 16; the offset
  // 32 x the sub-block's activation sum comes off before its signed scale multiplies it
  // (vpmulld): sum_j scale_j (dot_j - 32 s16_j), the integer dot_q8k gives. No min.
  // 256-bit sets only: on AVX-512 (Zen 4, 4096 x 4096, one thread) 1.25 ms against 0.74 for
  // dot_q8k over the file layout; with the group decode's prefetch into L2 two blocks ahead
  // 0.66-0.83 against 0.72, no clear win. A group block is 3360 bytes, so every other block's
  // 64-byte loads straddle two cache lines, but two 32-byte loads each measured no faster.
  static constexpr size_t kScaleWord = offsetof(Block, scales) / 4;
  template <class V>
  static void dot_groups_q8k(const V& w, const int8_t* a, const int32_t* s16, typename V::I* sumi,
                             typename V::I* summ, typename V::F* d, typename V::F* dmin) {
    static_assert(offsetof(Block, d) == kBlockBytes - 2);  // the tail: tail_f16
    dot_groups_signed_sub16<Q6_K>(w, a, s16, sumi, summ, d, dmin);
  }
  // sum_k scale_j (dot_j - 32 s16_j) over the sub-blocks j = 8 h + 2 k + i (k = 0..3) of vector
  // s's rows: words 4 i .. 4 i + 3 of each run.
  template <size_t h, size_t i, class V>
  static typename V::I sub_blocks(const V& w, size_t s, const int8_t* a, const int32_t* s16) {
    using Ops = typename V::Ops;
    using I = typename V::I;
    const I nibble = Ops::splat8(0x0F), top = Ops::splat8(0x30);
    I dot[4] = {Ops::zero(), Ops::zero(), Ops::zero(), Ops::zero()};
    for (size_t j = 4 * i; j < 4 * i + 4; ++j) {
      const I A = w.word(s, 16 * h + j), C = w.word(s, 16 * h + 8 + j);
      const I Q = w.word(s, offsetof(Block, qh) / 4 + 8 * h + j);
      const I code[4] = {Ops::or_(Ops::and_(A, nibble), Ops::and_(Ops::template slli32<4>(Q), top)),
                         Ops::or_(Ops::and_(C, nibble), Ops::and_(Ops::template slli32<2>(Q), top)),
                         Ops::or_(Ops::and_(Ops::template srli32<4>(A), nibble), Ops::and_(Q, top)),
                         Ops::or_(Ops::and_(Ops::template srli32<4>(C), nibble),
                                  Ops::and_(Ops::template srli32<2>(Q), top))};
      for (size_t k = 0; k < 4; ++k)
        dot[k] = Ops::dot_unsigned(dot[k], code[k], Ops::broadcast4(a + 128 * h + 32 * k + 4 * j));
    }
    I total = Ops::zero();
    [&]<size_t... k>(std::index_sequence<k...>) __attribute__((always_inline)) {
      ((total = Ops::add32(
            total, Ops::mullo32(Ops::sub32(dot[k], Ops::splat32(32 * s16[8 * h + 2 * k + i])),
                                Ops::template byte_signed<(2 * k + i) % 4>(
                                    w.word(s, kScaleWord + (8 * h + 2 * k + i) / 4))))),
       ...);
    }
    (std::make_index_sequence<4>{});
    return total;
  }
#endif

#if defined(BRISE_AVX2)
  // The prefill's form (byte_group.hpp): codes 0..63, a signed scale per 16; the offset 32 comes
  // off through the pairs -32 x scale per 16 elements, into sumi.
  static constexpr int kCodeMax = 63;
  static constexpr size_t kScaleElems = 16;
  static constexpr bool kPairsAreMins = false;
  static constexpr size_t kPairElems = 16;
  template <class Rows>
  static void to_byte_group(const Rows& blocks, ByteGroup& g) {
    static_assert(offsetof(Block, d) == kBlockBytes - 2);  // GroupWords::f16 reads the tail
    using namespace lanes;
    using byte_group::lane_bytes;
    Lanes16 s[4];  // scales 4 j .. 4 j + 3 of row r in lane r of s[j]
    blocks.words(offsetof(Block, scales), s);
    Lanes16 sc[16];
    byte_group::lane_bytes_each<true>(s, sc);
    for (size_t h = 0; h < 16; ++h) store(g.scale[h], sc[h]);
    const Lanes16 minus32 = set1_16(-32);   // |-32 x scale| <= 4096
    const auto pair = [&](Lanes16 bytes) {  // the two scales sign-extended to words, times -32
      return mullo16(srai16(bytes, 8), minus32);
    };
    for (size_t j = 0; j < 4; ++j) {
      store(g.pairs[2 * j], pair(lane_bytes<-1, 0, -1, 1>(s[j])));
      store(g.pairs[2 * j + 1], pair(lane_bytes<-1, 2, -1, 3>(s[j])));
    }
    g.any_pairs = true;
    blocks.f16(offsetof(Block, d), g.d);
    std::memset(g.dmin, 0, sizeof g.dmin);
    // 16 bytes of ql at 64 h + 16 i (a) and + 32 (b) and of qh at 32 h + 16 i give elements
    // 128 h + 16 i + 32 k .. + 15: a's low nibbles (k = 0), b's (1), a's high (2), b's (3), with
    // qh's bits 2k, 2k + 1 as bits 4-5.
    const Lanes16 nibble = set1_8(0x0F), top = set1_8(0x30);
    const auto code = [&](Lanes16 low, Lanes16 high) {
      return or_(and_(low, nibble), and_(high, top));
    };
    for (size_t h = 0; h < 2; ++h)
      for (size_t i = 0; i < 2; ++i) {
        Lanes16 a[4], b[4], q[4];
        blocks.words(offsetof(Block, ql) + 64 * h + 16 * i, a);
        blocks.words(offsetof(Block, ql) + 64 * h + 32 + 16 * i, b);
        blocks.words(offsetof(Block, qh) + 32 * h + 16 * i, q);
        for (size_t j = 0; j < 4; ++j) {
          store(g.code[8 * h + i][j], code(a[j], slli16(q[j], 4)));
          store(g.code[8 * h + 2 + i][j], code(b[j], slli16(q[j], 2)));
          store(g.code[8 * h + 4 + i][j], code(srli16(a[j], 4), q[j]));
          store(g.code[8 * h + 6 + i][j], code(srli16(b[j], 4), srli16(q[j], 2)));
        }
      }
  }
#endif

#if defined(BRISE_AVX512_VNNI)
  // The one-token path: the block's integer sums (int8_block.hpp) with a Q8_K activation block
  // `a` (its sums per 16 `s16`) straight from the bytes, as Q4_K::dot_q8k. In each half of 128,
  // the 64 ql bytes' low nibbles are elements 0..63 and their high nibbles 64..127, in order; qh's
  // 32 bytes, in both 256-bit halves, give their bits 4-5 (shifted << 4 | << 2 for the low
  // nibbles, >> 0 | >> 2 for the high ones, per half). vpmaddubsw multiplies the codes with the
  // activations into 16-bit pair sums (|2 x 63 x 127| < 2^15, exact), vpdpwssd those by each
  // word's sub-block scale into 32-bit lanes, and the offset comes off as
  // 32 x sum_j scale[j] x asum[j]. The same integers as to_weights16's dot product.
  static void dot_q8k(const uint8_t* block, const int8_t* a, const int32_t* s16, __m512i& sumi,
                      __m512i& summ, float& d, float& dmin) {
    const uint8_t* ql = block + offsetof(Block, ql);
    const uint8_t* qh = block + offsetof(Block, qh);
    const __m128i sc8 =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + offsetof(Block, scales)));
    const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(sc8));
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    const __m512i high = _mm512_set1_epi8(0x30);
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const auto scales = [&](int first) { return kquant::scales_of_pair_sums(sc16, first); };
    __m512i dot = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i l = _mm512_loadu_si512(ql + 64 * h);
      const __m512i q =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh + 32 * h)));
      const __m512i lo = _mm512_or_si512(_mm512_and_si512(l, nibble),
                                         _mm512_and_si512(_mm512_sllv_epi16(q, shl), high));
      const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), nibble),
                                         _mm512_and_si512(_mm512_srlv_epi16(q, shr), high));
      const __m512i plo = _mm512_maddubs_epi16(lo, _mm512_loadu_si512(a + 128 * h));
      const __m512i phi = _mm512_maddubs_epi16(hi, _mm512_loadu_si512(a + 128 * h + 64));
      dot = _mm512_dpwssd_epi32(dot, plo, scales(8 * h));
      dot = _mm512_dpwssd_epi32(dot, phi, scales(8 * h + 4));
    }
    const __m512i offset =
        _mm512_mullo_epi32(_mm512_cvtepi8_epi32(sc8), _mm512_loadu_si512(s16));  // x 32 below
    kquant::finish_no_min(block + offsetof(Block, d), dot, _mm512_slli_epi32(offset, 5), sumi, summ,
                          d, dmin);
  }
#endif
};

}  // namespace brise::kernels::BRISE_ISA
