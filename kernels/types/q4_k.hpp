// Q4_K (ggml-common.h block_q4_K): super-blocks of 256 weights in 8 sub-blocks of 32. Each
// sub-block has a 6-bit scale and a 6-bit min (12 bytes, kquant::scale_min_k4), the super-block an
// fp16 d and dmin; value = d * scale * q - dmin * min, q 4-bit: in each 64 elements, byte l of its
// 32 holds element l in the low nibble and element l + 32 in the high one. Quantized as ggml's
// quantize_row_q4_K_ref (llama-quantize's path without an importance matrix): each sub-block's
// scale and min by make_qkx2_quants weighted by rms(x) + |x|, both sets rounded to 6 bits against
// their maximum, then the codes recomputed from the rounded values; bit for bit on finite input.
#pragma once

#include <cstddef>
#include <cstring>

#include "kernels/group_decode_ops.hpp"
#include "kernels/types/byte_group.hpp"
#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/k_quants.hpp"

namespace brise::kernels::BRISE_ISA {

struct Q4_K {
  static constexpr std::string_view kName = "q4_K";
  static constexpr uint32_t kBlockElems = 256;
  static constexpr uint32_t kBlockBytes = 144;
  // The group decode reads a block's words in order (matmul_group_decode.hpp's prefetch).
  static constexpr bool kReadsWordsInOrder = true;
  static constexpr uint32_t kFileType = 14;  // LLAMA_FTYPE_MOSTLY_Q4_K_S
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8K;
  static constexpr bool kRowMajor = true;  // multiplied in the file's layout (int8_block.hpp)

  struct Block {
    uint16_t d;          // fp16
    uint16_t dmin;       // fp16
    uint8_t scales[12];  // 8 6-bit scales and 8 6-bit mins
    uint8_t qs[128];
  };
  static_assert(sizeof(Block) == kBlockBytes);
  static_assert(offsetof(Block, dmin) == kquant::kK4DminAt &&
                offsetof(Block, scales) == kquant::kK4ScalesAt);

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<uint8_t*>(out);
    for (size_t b = 0; b < n / 256; ++b, x += 256) {
      Block blk{};
      uint8_t L[256];
      kquant::quantize_scale_min_k4(x, 15, -1.0f, 0.1f, 20, blk.scales, blk.d, blk.dmin, L);
      for (size_t c = 0; c < 4; ++c)
        for (size_t l = 0; l < 32; ++l)
          blk.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + l + 32] << 4));
      std::memcpy(y + b * kBlockBytes, &blk, kBlockBytes);
    }
  }

  // ggml's dequantize_row_q4_K: (d * scale) * q - (dmin * min), in that order.
  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    for (size_t b = 0; b < n / 256; ++b, out += 256) {
      const uint8_t* block = x + b * kBlockBytes;
      const uint8_t* qs = block + offsetof(Block, qs);
      kquant::decode_k4(
          block, [&](int s, size_t l) { return (qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 0x0F; },
          out);
    }
  }

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // One block (kBlockBytes at `block`) in the int8 matmul's form (int8_block.hpp): codes 0..15,
  // offset 0, each sub-block's scale and min in both its halves of 16.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    const uint8_t* qs = block + offsetof(Block, qs);
    for (size_t c = 0; c < 4; ++c)
      for (size_t l = 0; l < 32; ++l) {
        out.code[64 * c + l] = qs[32 * c + l] & 0x0F;
        out.code[64 * c + 32 + l] = qs[32 * c + l] >> 4;
      }
    kquant::int8_form_k4(block, out);
  }

#if defined(BRISE_AVX2)
  // to_int8 + block_weights16 (codec.hpp) with SIMD: each 32 qs bytes widened to 16-bit words
  // hold sub-block 2 c in their low nibbles and 2 c + 1 in their high ones, so `& 0x0F` and
  // `>> 4` give the codes in element order, times the sub-block's scale (offset 0).
  static void to_weights16(const uint8_t* block, int16_t* w16, Int8Block& meta) {
    const kquant::ScaleMinK4 sm = kquant::unpack_scale_min_k4(block + offsetof(Block, scales));
    const uint8_t* qs = block + offsetof(Block, qs);
#if defined(BRISE_AVX512)
    const __m512i nibble = _mm512_set1_epi16(0x0F);
    for (size_t c = 0; c < 4; ++c) {
      const __m512i q =
          _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c)));
      _mm512_store_si512(w16 + 64 * c, _mm512_mullo_epi16(_mm512_and_si512(q, nibble),
                                                          _mm512_set1_epi16(sm.sc[2 * c])));
      _mm512_store_si512(
          w16 + 64 * c + 32,
          _mm512_mullo_epi16(_mm512_srli_epi16(q, 4), _mm512_set1_epi16(sm.sc[2 * c + 1])));
    }
#else
    const __m256i nibble = _mm256_set1_epi16(0x0F);
    for (size_t c = 0; c < 4; ++c)
      for (size_t i = 0; i < 2; ++i) {  // the two halves of 16 of each sub-block
        const __m256i q = _mm256_cvtepu8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 32 * c + 16 * i)));
        _mm256_store_si256(
            reinterpret_cast<__m256i*>(w16 + 64 * c + 16 * i),
            _mm256_mullo_epi16(_mm256_and_si256(q, nibble), _mm256_set1_epi16(sm.sc[2 * c])));
        _mm256_store_si256(
            reinterpret_cast<__m256i*>(w16 + 64 * c + 32 + 16 * i),
            _mm256_mullo_epi16(_mm256_srli_epi16(q, 4), _mm256_set1_epi16(sm.sc[2 * c + 1])));
      }
#endif
    kquant::weights16_meta_k4(block, sm, meta);
  }
#endif

#if defined(BRISE_AVX2)
// gcc 12 flags its own avx512fintrin.h here (`__m512i __Y = __Y;`, the undefined first operand of
// the shift and convert intrinsics, once inlined): a false -Wuninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"

  // Lane by lane, as unpack_scale_min_k4: from the scale words u0, u1, u2 of a vector's rows
  // (GroupOps, kernels/group_decode_ops.hpp; or 16 rows' Lanes16, byte_group::Lanes16Ops, for
  // the prefill's byte_group_head), the 6-bit scales 0..3 and 4..7 (sc03, sc47) and mins (m03,
  // m47) of each row, a byte each.
  template <class Ops>
  struct GroupScaleMins {
    typename Ops::I sc03, sc47, m03, m47;
  };
  template <class Ops, class I = typename Ops::I>
  static GroupScaleMins<Ops> group_scale_mins(I u0, I u1, I u2) {
    const I k6 = Ops::splat32(0x3F3F3F3F), k4 = Ops::splat32(0x0F0F0F0F),
            k2 = Ops::splat32(0x03030303);
    GroupScaleMins<Ops> x;
    x.sc03 = Ops::and_(u0, k6);
    x.sc47 = Ops::or_(Ops::and_(u2, k4),
                      Ops::template slli32<4>(Ops::and_(Ops::template srli32<6>(u0), k2)));
    x.m03 = Ops::and_(u1, k6);
    x.m47 = Ops::or_(Ops::and_(Ops::template srli32<4>(u2), k4),
                     Ops::template slli32<4>(Ops::and_(Ops::template srli32<6>(u1), k2)));
    return x;
  }
  // The mins as 16-bit pairs per lane: pairs p = 0..3 hold mins 2 p and 2 p + 1.
  template <class Ops>
  static void group_min_pairs(const GroupScaleMins<Ops>& x, typename Ops::I pairs[4]) {
    pairs[0] = Ops::template lane_bytes<0, -1, 1, -1>(x.m03);
    pairs[1] = Ops::template lane_bytes<2, -1, 3, -1>(x.m03);
    pairs[2] = Ops::template lane_bytes<0, -1, 1, -1>(x.m47);
    pairs[3] = Ops::template lane_bytes<2, -1, 3, -1>(x.m47);
  }

  // The one-token path over group blocks packed in word units (packed::pack_block_words), the
  // same integers as dot_q8k for 16 rows at once, row r in lane r of its vector, so no horizontal
  // sums; the group's vectors (one on AVX-512, two on AVX2: WordVectors, group_decode_ops.hpp)
  // share each broadcast activation. Word unit 0 holds d | dmin << 16, units 1..3 the scale words,
  // unit 4 + 8 c + j the qs bytes 32 c + 4 j .. + 3, whose low nibbles are elements 64 c + 4 j .. +
  // 3 (sub-block 2 c) and high nibbles the 4 elements 32 further on (sub-block 2 c + 1). Eight
  // 4-byte dot products with 4 broadcast activations give a sub-block's integer sum per row. With
  // vpdpbusd (32-bit sums) the high nibbles are multiplied in place (code x 16, masked with 0xF0)
  // and the sum shifted back once, exactly (|sum| <= 32 x 240 x 127); vpmaddubsw's 16-bit pairs
  // would saturate, so without VNNI they are shifted down first. Times the sub-block's scale
  // (vpmulld) into sumi; the mins meet the token's activation sums per 32 (`pairs`,
  // byte_group::pair_sums<32>) in vpdpwssd into summ.
  template <class V>
  static void dot_groups_q8k(const V& w, const int8_t* a, const int32_t* s16, typename V::I* sumi,
                             typename V::I* summ, typename V::F* d, typename V::F* dmin) {
    dot_groups_k4<NibbleCodes<typename V::Ops>>(w, a, s16, sumi, summ, d, dmin);
  }
  // Word j of sub-blocks 2 c (lo) and 2 c + 1 (hi): the codes, the high ones times 16 in place
  // where kHighTimes16.
  template <class Ops>
  struct NibbleCodes {
    static constexpr bool kHighTimes16 = Ops::kWideDot;
    template <size_t c, class V, class I = typename Ops::I>
    static void get(const V& w, size_t s, size_t j, I& lo, I& hi) {
      const I v = w.word(s, 4 + 8 * c + j), low = Ops::splat8(0x0F);
      lo = Ops::and_(v, low);
      hi = kHighTimes16 ? Ops::and_(v, Ops::splat8(0xF0))
                        : Ops::and_(Ops::template srl16<4>(v), low);
    }
  };

  // The integers of dot_groups_q8k over the codes Codes::get gives (Q5_K adds its fifth bit):
  // the scale and min words are Q4_K's.
  template <class Codes, class V>
  static void dot_groups_k4(const V& w, const int8_t* a, const int32_t* s16, typename V::I* sumi,
                            typename V::I* summ, typename V::F* d, typename V::F* dmin) {
    using Ops = typename V::Ops;
    using I = typename V::I;
    constexpr size_t S = V::kStreams;
    int32_t pairs[4];  // the activation sums per 32, as pairs
    byte_group::pair_sums<kPairElems>(s16, pairs);
    GroupScaleMins<Ops> x[S];
    for (size_t s = 0; s < S; ++s) {
      x[s] = group_scale_mins<Ops>(w.word(s, 1), w.word(s, 2), w.word(s, 3));
      sumi[s] = Ops::zero();
    }
    const auto sub_blocks = [&]<size_t c>() __attribute__((always_inline)) {
      I lo[S], hi[S];
      for (size_t s = 0; s < S; ++s) lo[s] = hi[s] = Ops::zero();
      for (size_t j = 0; j < 8; ++j) {
        const I a_lo = Ops::broadcast4(a + 64 * c + 4 * j);
        const I a_hi = Ops::broadcast4(a + 64 * c + 32 + 4 * j);
        for (size_t s = 0; s < S; ++s) {
          I code_lo, code_hi;
          Codes::template get<c>(w, s, j, code_lo, code_hi);
          lo[s] = Ops::dot_unsigned(lo[s], code_lo, a_lo);
          hi[s] = Ops::dot_unsigned(hi[s], code_hi, a_hi);
        }
      }
      // Scales 2 c and 2 c + 1: bytes 2 (c % 2) and 2 (c % 2) + 1 of sc03 (c < 2) or sc47.
      for (size_t s = 0; s < S; ++s) {
        const I sc = c < 2 ? x[s].sc03 : x[s].sc47;
        const I sc_lo = Ops::template byte_unsigned<2 * (c % 2)>(sc);
        const I sc_hi = Ops::template byte_unsigned<2 * (c % 2) + 1>(sc);
        const I hi_sum = Codes::kHighTimes16 ? Ops::template srai32<4>(hi[s]) : hi[s];
        sumi[s] = Ops::add32(sumi[s], Ops::mullo32(lo[s], sc_lo));
        sumi[s] = Ops::add32(sumi[s], Ops::mullo32(hi_sum, sc_hi));
      }
    };
    sub_blocks.template operator()<0>();
    sub_blocks.template operator()<1>();
    sub_blocks.template operator()<2>();
    sub_blocks.template operator()<3>();
    for (size_t s = 0; s < S; ++s) {
      I mp[4];
      group_min_pairs(x[s], mp);
      I m = Ops::zero();
      for (size_t p = 0; p < 4; ++p) m = Ops::dot_pairs(m, mp[p], Ops::splat32(pairs[p]));
      summ[s] = m;
      const I head = w.word(s, 0);
      d[s] = Ops::low_f16(head);
      dmin[s] = Ops::high_f16(head);
    }
  }
#pragma GCC diagnostic pop
  // The prefill's form (byte_group.hpp): codes 0..15, a scale and a min per 32 elements; the
  // pairs are the mins per 32, into summ.
  static constexpr int kCodeMax = 15;
  static constexpr size_t kScaleElems = 32;
  static constexpr bool kPairsAreMins = true;
  static constexpr size_t kPairElems = 32;
  // What Q4_K and Q5_K share: from the head words (d | dmin << 16, then the 12 scale bytes as
  // ggml's utmp words u0, u1, u2), the scales of the halves, the mins' pairs, d and dmin.
  static void byte_group_head(const Lanes16 head[4], ByteGroup& g) {
    using namespace byte_group;
    const GroupScaleMins<Lanes16Ops> x = group_scale_mins<Lanes16Ops>(head[1], head[2], head[3]);
    Lanes16 sc[8];
    lane_bytes_each<false>({x.sc03, x.sc47}, sc);
    for (size_t s = 0; s < 8; ++s) {
      lanes::store(g.scale[2 * s], sc[s]);
      lanes::store(g.scale[2 * s + 1], sc[s]);
    }
    Lanes16 pairs[4];
    group_min_pairs(x, pairs);
    for (size_t p = 0; p < 4; ++p) lanes::store(g.pairs[p], pairs[p]);
    g.any_pairs = lanes::any(lanes::or_(x.m03, x.m47));
    lanes::low_f16_to_f32(head[0], g.d);
    lanes::low_f16_to_f32(lanes::srli32(head[0], 16), g.dmin);
  }

  template <class Rows>
  static void to_byte_group(const Rows& blocks, ByteGroup& g) {
    using namespace lanes;
    Lanes16 head[4];
    blocks.words(0, head);
    byte_group_head(head, g);
    // 16 qs bytes hold elements 64 c + 16 i .. (low nibbles) and 32 more on (high nibbles).
    const Lanes16 nibble = set1_8(0x0F);
    for (size_t c = 0; c < 4; ++c)
      for (size_t i = 0; i < 2; ++i) {
        Lanes16 q[4];
        blocks.words(offsetof(Block, qs) + 32 * c + 16 * i, q);
        for (size_t j = 0; j < 4; ++j) {
          store(g.code[4 * c + i][j], and_(q[j], nibble));
          store(g.code[4 * c + 2 + i][j], and_(srli16(q[j], 4), nibble));
        }
      }
  }
#endif

#if defined(BRISE_AVX512_VNNI)
  // The one-token path: the block's integer sums (int8_block.hpp) with a Q8_K activation block
  // `a` (its sums per 16 `s16`) straight from the bytes, without 16-bit weights, as 16 int32
  // lanes each (sumi, summ) that the caller adds up. 64 qs bytes hold
  // 128 elements: their low nibbles elements 0..31 and 64..95, the high ones 32..63 and 96..127,
  // so the activations are regrouped by 256-bit halves to match; vpmaddubsw multiplies codes and
  // activations into 16-bit pair sums (|2 x 15 x 127| < 2^15, exact) and vpdpwssd those by each
  // word's sub-block scale into 32-bit lanes. The same integers as to_weights16's dot product.
  static void dot_q8k(const uint8_t* block, const int8_t* a, const int32_t* s16, __m512i& sumi,
                      __m512i& summ, float& d, float& dmin) {
    const kquant::DotK4 k4(block);
    const uint8_t* qs = block + offsetof(Block, qs);
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    // Words 0..15 (32 codes) take sub-block lo's scale, words 16..31 hi's.
    const auto scales = [&](int lo, int hi) {
      const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(lo)),
                                             _mm256_set1_epi16(static_cast<int16_t>(hi)), 1);
      return _mm512_permutexvar_epi16(idx, k4.sc16);
    };
    __m512i dot = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i q = _mm512_loadu_si512(qs + 64 * h);
      const __m512i a0 = _mm512_loadu_si512(a + 128 * h);
      const __m512i a1 = _mm512_loadu_si512(a + 128 * h + 64);
      const __m512i low =
          _mm512_maddubs_epi16(_mm512_and_si512(q, nibble), _mm512_shuffle_i64x2(a0, a1, 0x44));
      const __m512i high = _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(q, 4), nibble),
                                                _mm512_shuffle_i64x2(a0, a1, 0xEE));
      dot = _mm512_dpwssd_epi32(dot, low, scales(4 * h, 4 * h + 2));
      dot = _mm512_dpwssd_epi32(dot, high, scales(4 * h + 1, 4 * h + 3));
    }
    k4.finish(block, dot, s16, sumi, summ, d, dmin);
  }
#endif
};

}  // namespace brise::kernels::BRISE_ISA
