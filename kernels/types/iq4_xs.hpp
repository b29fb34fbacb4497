// IQ4_XS (ggml-common.h block_iq4_xs): super-blocks of 256 weights in 8 sub-blocks of 32; an fp16
// scale d, then a 6-bit scale ls per sub-block (low 4 bits in scales_l, a nibble per sub-block, the
// even one low; high 2 bits in scales_h, 2 bits per sub-block from bit 0), then 128 bytes of 4-bit
// indices q into kIq4Values (iq4_nl.hpp), 16 bytes per sub-block laid out as IQ4_NL's block;
// value = d * (ls - 32) * kIq4Values[q].
// Quantized as llama-quantize does without an importance matrix: ggml's quantize_iq4_xs, i.e.
// quantize_row_iq4_nl_impl over 256 with sub-blocks of 32, weights x * x and ntry = 7: each
// sub-block's scale from IQ4_NL's search, d = -max_scale / 32 (max_scale: the sub-block scale of
// largest magnitude, signed), ls = nearest_int(scale / d) clamped to [-32, 31] + 32, and each
// sub-block's indices re-picked against the f32 d * (ls - 32). Bit for bit on finite input.
#pragma once

#include <cstddef>
#include <utility>

#include "kernels/types/byte_group.hpp"
#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/iq4_nl.hpp"
#include "kernels/types/k_quants.hpp"
#include "kernels/types/rounding.hpp"

namespace brise::kernels::BRISE_ISA {

struct IQ4_XS {
  static constexpr std::string_view kName = "iq4_xs";
  static constexpr uint32_t kBlockElems = 256;
  static constexpr uint32_t kBlockBytes = 136;
  static constexpr uint32_t kFileType = 30;  // LLAMA_FTYPE_MOSTLY_IQ4_XS
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8K;
  static constexpr bool kRowMajor = true;  // multiplied in the file's layout (int8_block.hpp)

  struct Block {
    uint16_t d;  // fp16
    uint16_t scales_h;
    uint8_t scales_l[4];
    uint8_t qs[128];
  };
  static_assert(sizeof(Block) == kBlockBytes);

  // Sub-block ib's 6-bit scale, 0..63 (the scale is ls - 32).
  static int sub_scale(const uint8_t* block, size_t ib) {
    const uint16_t scales_h = read_u16(block + 2);
    const int low = (block[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F;
    const int high = (scales_h >> (2 * ib)) & 3;
    return low | (high << 4);
  }

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<Block*>(out);
    for (size_t b = 0; b < n / 256; ++b) {
      const float* xs = x + b * 256;
      float scales[8];
      for (size_t ib = 0; ib < 8; ++ib) scales[ib] = iq4_block_scale(xs + ib * 32);
      // The first sub-block scale of largest magnitude, with its sign.
      const float max_scale = largest_magnitude(scales, 8).max;
      // An all-zero super-block gives d = -0.0 (fp16 0x8000), as ggml's.
      const float d = -max_scale / 32.0f;
      y[b].d = f32_to_f16(d);
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      uint16_t scales_h = 0;
      for (size_t ib = 0; ib < 8; ++ib) {
        int l = kquant::nearest_int(id * scales[ib]);
        l = l < -32 ? -32 : (l > 31 ? 31 : l);
        // Indices against the f32 sub-block scale d * l, not the fp16 one, as ggml does.
        const float dl = d * static_cast<float>(l);
        const float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
        const float* xb = xs + ib * 32;
        uint8_t* qs = y[b].qs + ib * 16;
        for (size_t j = 0; j < 16; ++j) {
          const int q0 = iq4_best_index(idl * xb[j]);
          const int q1 = iq4_best_index(idl * xb[j + 16]);
          qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
        const int ls = l + 32;
        if (ib % 2 == 0) {
          y[b].scales_l[ib / 2] = static_cast<uint8_t>(ls & 0x0F);
        } else {
          y[b].scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0x0F) << 4);
        }
        scales_h = static_cast<uint16_t>(scales_h | ((ls >> 4) << (2 * ib)));
      }
      y[b].scales_h = scales_h;
    }
  }

  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    for (size_t b = 0; b < n / 256; ++b) {
      const uint8_t* block = x + b * kBlockBytes;
      const float d = f16_to_f32(read_u16(block));
      for (size_t ib = 0; ib < 8; ++ib) {
        // Two products, d * (ls - 32) then * level, in ggml's order.
        const float dl = d * static_cast<float>(sub_scale(block, ib) - 32);
        const uint8_t* qs = block + 8 + ib * 16;
        float* yb = out + b * 256 + ib * 32;
        for (size_t j = 0; j < 16; ++j) {
          yb[j] = dl * static_cast<float>(kIq4Values[qs[j] & 0x0F]);
          yb[j + 16] = dl * static_cast<float>(kIq4Values[qs[j] >> 4]);
        }
      }
    }
  }

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // One block (kBlockBytes at `block`) in the int8 matmul's form (int8_block.hpp): the table's
  // levels + 128 as codes, offset 128, each sub-block's ls - 32 as the scale of its two halves of
  // 16, no minimum.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    const uint8_t* qs = block + 8;
    for (size_t ib = 0; ib < 8; ++ib) {
      for (size_t j = 0; j < 16; ++j) {
        out.code[ib * 32 + j] = kIq4Codes[qs[ib * 16 + j] & 0x0F];
        out.code[ib * 32 + j + 16] = kIq4Codes[qs[ib * 16 + j] >> 4];
      }
    }
    // Each sub-block's ls - 32 as the scale of its two halves of 16.
    kquant::int8_form_no_min([&](size_t j) { return sub_scale(block, j / 2) - 32; }, 128,
                             f16_to_f32(read_u16(block)), out);
  }

#if defined(BRISE_AVX2)
  // to_int8 + block_weights16 (codec.hpp) with SIMD: (kIq4Codes[q] - 128) is kIq4Values[q], so
  // a pshufb of the 16 signed levels by the nibbles gives the signed values, widened to 16 bits
  // and times the sub-block's scale (ls - 32). A sub-block's 16 bytes hold its first 16 elements
  // in the low nibbles and the next 16 in the high ones.
  static void to_weights16(const uint8_t* block, int16_t* w16, Int8Block& meta) {
    const uint8_t* qs = block + 8;
    int16_t scale[8];
    for (unsigned ib = 0; ib < 8; ++ib) scale[ib] = static_cast<int16_t>(sub_scale(block, ib) - 32);
    const __m128i levels = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values));
#if defined(BRISE_AVX512)
    // Two sub-blocks a 32-byte load: lanes [lo 2p | lo 2p+1] and [hi 2p | hi 2p+1] after the
    // lookups, regrouped per sub-block by permute2x128.
    const __m256i table = _mm256_broadcastsi128_si256(levels);
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    for (size_t p = 0; p < 4; ++p) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * p));
      const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(v, nibble));
      const __m256i hi =
          _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
      _mm512_store_si512(
          w16 + 64 * p,
          _mm512_mullo_epi16(_mm512_cvtepi8_epi16(_mm256_permute2x128_si256(lo, hi, 0x20)),
                             _mm512_set1_epi16(scale[2 * p])));
      _mm512_store_si512(
          w16 + 64 * p + 32,
          _mm512_mullo_epi16(_mm512_cvtepi8_epi16(_mm256_permute2x128_si256(lo, hi, 0x31)),
                             _mm512_set1_epi16(scale[2 * p + 1])));
    }
#else
    const __m128i nibble = _mm_set1_epi8(0x0F);
    for (size_t ib = 0; ib < 8; ++ib) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16 * ib));
      const __m256i s = _mm256_set1_epi16(scale[ib]);
      const __m128i lo = _mm_shuffle_epi8(levels, _mm_and_si128(v, nibble));
      const __m128i hi = _mm_shuffle_epi8(levels, _mm_and_si128(_mm_srli_epi16(v, 4), nibble));
      _mm256_store_si256(reinterpret_cast<__m256i*>(w16 + 32 * ib),
                         _mm256_mullo_epi16(_mm256_cvtepi8_epi16(lo), s));
      _mm256_store_si256(reinterpret_cast<__m256i*>(w16 + 32 * ib + 16),
                         _mm256_mullo_epi16(_mm256_cvtepi8_epi16(hi), s));
    }
#endif
    kquant::weights16_meta_no_min(block, meta);
  }
#endif

#if defined(BRISE_AVX2)
  // The one-token path over group blocks packed in word units (packed::pack_block_words): the
  // integers of to_weights16's dot product for a group's rows at once, row r in lane r of its
  // vector (WordVectors, kernels/group_decode_ops.hpp). Word 0 holds d | scales_h << 16, word 1
  // scales_l, word 2 + 4 ib + j the qs bytes 16 ib + 4 j .. + 3, whose low nibbles index elements
  // 32 ib + 4 j .. + 3 and high ones the 4 elements 16 further on. pshufb looks the codes up.
  // With vpdpbusd (32-bit sums) they are the levels + 128 (kIq4Codes, unsigned), and 128 x the
  // sub-block's activation sum comes off; without it, vpmaddubsw's 16-bit pairs take the signed
  // levels as |level| times the activation with the level's sign (dot_signed: |pair| <= 2 x 127 x
  // 127 < 2^15, exact). Times the sub-block's scale ls - 32 (vpmulld). No min. On AVX-512 too, a
  // group per vector: faster than dot_q8k over the file layout (Zen 4, 4096 x 4096, one thread:
  // 0.36 against 0.74 ms).
  template <class V>
  static void dot_groups_q8k(const V& w, const int8_t* a, const int32_t* s16, typename V::I* sumi,
                             typename V::I* summ, typename V::F* d, typename V::F* dmin) {
    using Ops = typename V::Ops;
    using I = typename V::I;
    static_assert(kBlockBytes % 4 == 0 && offsetof(Block, qs) == 8);  // no tail; qs from word 2
    const I table = Ops::load16_each_lane(Ops::kWideDot ? static_cast<const void*>(kIq4Codes)
                                                        : static_cast<const void*>(kIq4Values));
    const I nibble = Ops::splat8(0x0F), k4 = Ops::splat32(0x0F), k2 = Ops::splat32(0x03);
    for (size_t s = 0; s < V::kStreams; ++s) {
      const I head = w.word(s, 0), scales_l = w.word(s, 1);
      I total = Ops::zero();
      [&]<size_t... ib>(std::index_sequence<ib...>) __attribute__((always_inline)) {
        const auto sub_block = [&]<size_t b>() __attribute__((always_inline)) {
          I lo = Ops::zero(), hi = Ops::zero();
          for (size_t j = 0; j < 4; ++j) {
            const I q = w.word(s, 2 + 4 * b + j);
            const I code_lo = Ops::lookup16(table, Ops::and_(q, nibble));
            const I code_hi = Ops::lookup16(table, Ops::and_(Ops::template srli32<4>(q), nibble));
            const I a_lo = Ops::broadcast4(a + 32 * b + 4 * j);
            const I a_hi = Ops::broadcast4(a + 32 * b + 16 + 4 * j);
            if constexpr (Ops::kWideDot) {
              lo = Ops::dot_unsigned(lo, code_lo, a_lo);
              hi = Ops::dot_unsigned(hi, code_hi, a_hi);
            } else {
              lo = Ops::dot_signed(lo, code_lo, a_lo);
              hi = Ops::dot_signed(hi, code_hi, a_hi);
            }
          }
          I dot = Ops::add32(lo, hi);
          if constexpr (Ops::kWideDot)
            dot = Ops::sub32(dot, Ops::splat32(128 * (s16[2 * b] + s16[2 * b + 1])));
          // ls: bits 4 b .. + 3 of scales_l, bits 16 + 2 b, + 1 of the head word as bits 4-5.
          const I ls = Ops::or_(
              Ops::and_(Ops::template srli32<4 * b>(scales_l), k4),
              Ops::template slli32<4>(Ops::and_(Ops::template srli32<16 + 2 * b>(head), k2)));
          return Ops::mullo32(dot, Ops::sub32(ls, Ops::splat32(32)));
        };
        ((total = Ops::add32(total, sub_block.template operator()<ib>())), ...);
      }
      (std::make_index_sequence<8>{});
      sumi[s] = total;
      summ[s] = Ops::zero();
      d[s] = Ops::low_f16(head);
      dmin[s] = Ops::zero_f();
    }
  }
#endif

#if defined(BRISE_AVX2)
  // The prefill's form (byte_group.hpp): the levels + 128 as codes (kIq4Codes, 1..241), each
  // sub-block's ls - 32 as the scale of 32 elements; the offset 128 comes off through the pairs
  // -128 x scale per 32, into sumi.
  static constexpr int kCodeMax = 241;
  static constexpr size_t kScaleElems = 32;
  static constexpr bool kPairsAreMins = false;
  static constexpr size_t kPairElems = 32;
  template <class Rows>
  static void to_byte_group(const Rows& blocks, ByteGroup& g) {
    using namespace lanes;
    Lanes16 head[4];  // d | scales_h << 16, scales_l, then qs bytes
    blocks.words(0, head);
    const Lanes16 k4 = set1_32(0x0F), k2 = set1_32(0x03);
    Lanes16 offset[8];  // -128 x (ls - 32)
    for (unsigned ib = 0; ib < 8; ++ib) {
      const Lanes16 ls =
          or_(and_(srli32(head[1], 4 * ib), k4), slli32(and_(srli32(head[0], 16 + 2 * ib), k2), 4));
      const Lanes16 scale = sub32(ls, set1_32(32));
      store(g.scale[2 * ib], scale);
      store(g.scale[2 * ib + 1], scale);
      offset[ib] = sub32(set1_32(4096), slli32(ls, 7));
    }
    for (size_t p = 0; p < 4; ++p)
      store(g.pairs[p], byte_group::pair_of(offset[2 * p], offset[2 * p + 1]));
    g.any_pairs = true;
    low_f16_to_f32(head[0], g.d);
    std::memset(g.dmin, 0, sizeof g.dmin);
    // Sub-block ib's 16 bytes: its first 16 elements in the low nibbles, the next 16 in the high
    // ones; pshufb looks the codes up in each 128-bit lane's copy of the table.
    struct Table {
      alignas(64) uint8_t codes[64];
    };
    static constexpr Table kTable = [] {
      Table t{};
      for (size_t i = 0; i < 64; ++i) t.codes[i] = kIq4Codes[i % 16];
      return t;
    }();
    const Lanes16 table = load(kTable.codes), nibble = set1_8(0x0F);
    for (size_t ib = 0; ib < 8; ++ib) {
      Lanes16 q[4];
      blocks.words(8 + 16 * ib, q);
      for (size_t j = 0; j < 4; ++j) {
        store(g.code[2 * ib][j], shuffle8(table, and_(q[j], nibble)));
        store(g.code[2 * ib + 1][j], shuffle8(table, and_(srli16(q[j], 4), nibble)));
      }
    }
  }
#endif

#if defined(BRISE_AVX512_VNNI)
  // The one-token path (see Q4_K::dot_q8k): 64 qs bytes are 4 sub-blocks, one per 128-bit lane,
  // their low nibbles elements 0..15 and high ones 16..31, so the activations are regrouped by
  // 128-bit lanes to match. pshufb looks the signed levels up; vpmaddubsw multiplies |level| with
  // the activation carrying the level's sign (|pair sum| <= 2 x 127 x 127 < 2^15, exact), and
  // vpdpwssd those by the sub-block's scale. The same integers as to_weights16's dot product
  // (offset 128 cancels: code - 128 is the level).
  static void dot_q8k(const uint8_t* block, const int8_t* a, const int32_t* /*s16*/, __m512i& sumi,
                      __m512i& summ, float& d, float& dmin) {
    const uint8_t* qs = block + 8;
    alignas(16) int16_t scale[8];
    for (unsigned ib = 0; ib < 8; ++ib) scale[ib] = static_cast<int16_t>(sub_scale(block, ib) - 32);
    const __m512i sc16 =
        _mm512_castsi128_si512(_mm_load_si128(reinterpret_cast<const __m128i*>(scale)));
    const __m512i table =
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Values)));
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    // Word w of a 64-element run belongs to its 128-bit lane's sub-block, w / 8.
    const __m512i word_lane = _mm512_srli_epi16(
        _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13,
                         12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        3);
    const auto signed_dot = [](__m512i level, __m512i act) {
      const __m512i neg =
          _mm512_mask_sub_epi8(act, _mm512_movepi8_mask(level), _mm512_setzero_si512(), act);
      return _mm512_maddubs_epi16(_mm512_abs_epi8(level), neg);
    };
    __m512i dot = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i v = _mm512_loadu_si512(qs + 64 * h);
      const __m512i a0 = _mm512_loadu_si512(a + 128 * h);
      const __m512i a1 = _mm512_loadu_si512(a + 128 * h + 64);
      const __m512i lo = _mm512_shuffle_epi8(table, _mm512_and_si512(v, nibble));
      const __m512i hi =
          _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble));
      const __m512i scales = _mm512_permutexvar_epi16(
          _mm512_add_epi16(word_lane, _mm512_set1_epi16(static_cast<int16_t>(4 * h))), sc16);
      dot = _mm512_dpwssd_epi32(dot, signed_dot(lo, _mm512_shuffle_i64x2(a0, a1, 0x88)), scales);
      dot = _mm512_dpwssd_epi32(dot, signed_dot(hi, _mm512_shuffle_i64x2(a0, a1, 0xDD)), scales);
    }
    kquant::finish_no_min(block, dot, _mm512_setzero_si512(), sumi, summ, d, dmin);
  }
#endif
};

}  // namespace brise::kernels::BRISE_ISA
