// Q5_K (ggml-common.h block_q5_K): super-blocks of 256 weights in 8 sub-blocks of 32, scales and
// mins as Q4_K's (6 bits each in 12 bytes, kquant::scale_min_k4), an fp16 d and dmin; value =
// d * scale * q - dmin * min, q 5-bit: its low 4 bits packed as Q4_K's codes (in each 64
// elements, byte l of its 32 holds element l low and l + 32 high), its high bit in qh (element e:
// bit e / 32 of qh[e % 32]). Quantized as ggml's quantize_row_q5_K_ref (llama-quantize's path
// without an importance matrix): Q4_K's method with 31 levels and a finer search; bit for bit on
// finite input.
#pragma once

#include <cstddef>
#include <cstring>

#include "kernels/types/byte_group.hpp"
#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/k_quants.hpp"
#include "kernels/types/q4_k.hpp"

namespace brise::kernels::BRISE_ISA {

struct Q5_K {
  static constexpr std::string_view kName = "q5_K";
  static constexpr uint32_t kBlockElems = 256;
  static constexpr uint32_t kBlockBytes = 176;
  static constexpr uint32_t kFileType = 16;  // LLAMA_FTYPE_MOSTLY_Q5_K_S
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8K;
  static constexpr bool kRowMajor = true;  // multiplied in the file's layout (int8_block.hpp)

  struct Block {
    uint16_t d;     // fp16
    uint16_t dmin;  // fp16
    uint8_t scales[12];
    uint8_t qh[32];
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
      kquant::quantize_scale_min_k4(x, 31, -0.5f, 0.1f, 15, blk.scales, blk.d, blk.dmin, L);
      for (size_t e = 0; e < 256; ++e) {
        if (L[e] > 15) blk.qh[e % 32] = static_cast<uint8_t>(blk.qh[e % 32] | (1u << (e / 32)));
        const uint8_t low = L[e] & 0x0F;
        // Element e sits in byte e % 32 of its 64's 32 bytes, high nibble for the second 32.
        blk.qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>(low << (4 * ((e / 32) % 2)));
      }
      std::memcpy(y + b * kBlockBytes, &blk, kBlockBytes);
    }
  }

  // ggml's dequantize_row_q5_K: (d * scale) * q - (dmin * min), in that order.
  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    for (size_t b = 0; b < n / 256; ++b, out += 256) {
      const uint8_t* block = x + b * kBlockBytes;
      const uint8_t* qh = block + offsetof(Block, qh);
      const uint8_t* qs = block + offsetof(Block, qs);
      kquant::decode_k4(
          block,
          [&](int s, size_t l) {
            return ((qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 0x0F) | (((qh[l] >> s) & 1) << 4);
          },
          out);
    }
  }

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // One block (kBlockBytes at `block`) in the int8 matmul's form (int8_block.hpp): codes 0..31,
  // offset 0, each sub-block's scale and min in both its halves of 16.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    const uint8_t* qh = block + offsetof(Block, qh);
    const uint8_t* qs = block + offsetof(Block, qs);
    for (size_t c = 0; c < 4; ++c)
      for (size_t l = 0; l < 32; ++l) {
        const uint8_t q = qs[32 * c + l];
        const uint8_t h = qh[l];
        out.code[64 * c + l] = static_cast<uint8_t>((q & 0x0F) | (((h >> (2 * c)) & 1) << 4));
        out.code[64 * c + 32 + l] =
            static_cast<uint8_t>((q >> 4) | (((h >> (2 * c + 1)) & 1) << 4));
      }
    kquant::int8_form_k4(block, out);
  }

#if defined(BRISE_AVX2)
  // to_int8 + block_weights16 (codec.hpp) with SIMD: Q4_K's nibbles (qs widened to 16-bit words,
  // `& 0x0F` for sub-block 2 c, `>> 4` for 2 c + 1) plus bit s of qh[l] as bit 4 of sub-block
  // s's element l: qh widened and shifted left by 4, then right by s, masked with 0x10.
  static void to_weights16(const uint8_t* block, int16_t* w16, Int8Block& meta) {
    const kquant::ScaleMinK4 sm = kquant::unpack_scale_min_k4(block + offsetof(Block, scales));
    const uint8_t* qh = block + offsetof(Block, qh);
    const uint8_t* qs = block + offsetof(Block, qs);
#if defined(BRISE_AVX512)
    const __m512i nibble = _mm512_set1_epi16(0x0F);
    const __m512i bit4 = _mm512_set1_epi16(0x10);
    const __m512i h4 = _mm512_slli_epi16(
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh))), 4);
    for (unsigned c = 0; c < 4; ++c) {
      const __m512i q =
          _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c)));
      const __m512i lo = _mm512_or_si512(_mm512_and_si512(q, nibble),
                                         _mm512_and_si512(_mm512_srli_epi16(h4, 2 * c), bit4));
      const __m512i hi = _mm512_or_si512(_mm512_srli_epi16(q, 4),
                                         _mm512_and_si512(_mm512_srli_epi16(h4, 2 * c + 1), bit4));
      _mm512_store_si512(w16 + 64 * c, _mm512_mullo_epi16(lo, _mm512_set1_epi16(sm.sc[2 * c])));
      _mm512_store_si512(w16 + 64 * c + 32,
                         _mm512_mullo_epi16(hi, _mm512_set1_epi16(sm.sc[2 * c + 1])));
    }
#else
    const __m256i nibble = _mm256_set1_epi16(0x0F);
    const __m256i bit4 = _mm256_set1_epi16(0x10);
    for (size_t i = 0; i < 2; ++i) {  // the two halves of 16 of each sub-block
      const __m256i h4 = _mm256_slli_epi16(
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qh + 16 * i))), 4);
      for (unsigned c = 0; c < 4; ++c) {
        const __m256i q = _mm256_cvtepu8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 32 * c + 16 * i)));
        const __m256i lo =
            _mm256_or_si256(_mm256_and_si256(q, nibble),
                            _mm256_and_si256(_mm256_srli_epi16(h4, static_cast<int>(2 * c)), bit4));
        const __m256i hi = _mm256_or_si256(
            _mm256_srli_epi16(q, 4),
            _mm256_and_si256(_mm256_srli_epi16(h4, static_cast<int>(2 * c + 1)), bit4));
        _mm256_store_si256(reinterpret_cast<__m256i*>(w16 + 64 * c + 16 * i),
                           _mm256_mullo_epi16(lo, _mm256_set1_epi16(sm.sc[2 * c])));
        _mm256_store_si256(reinterpret_cast<__m256i*>(w16 + 64 * c + 32 + 16 * i),
                           _mm256_mullo_epi16(hi, _mm256_set1_epi16(sm.sc[2 * c + 1])));
      }
    }
#endif
    kquant::weights16_meta_k4(block, sm, meta);
  }
#endif

#if defined(BRISE_AVX2)
  // The one-token path over group blocks packed in word units (Q4_K::dot_groups_k4 with the
  // fifth bit): word 4 + j holds qh bytes 4 j .. + 3, whose bits 2 c and 2 c + 1 are the fifth
  // bits of the codes in word 12 + 8 c + j's low and high nibbles (sub-blocks 2 c, 2 c + 1).
  // Codes 0..31: vpmaddubsw's pair sums stay exact. On AVX-512 too, a group per vector: with the
  // group decode's prefetch into L2 two blocks ahead faster than dot_q8k over the file layout
  // (Zen 4, 4096 x 4096, one thread: 0.50 against 0.78 ms).
  template <class V>
  static void dot_groups_q8k(const V& w, const int8_t* a, const int32_t* s16, typename V::I* sumi,
                             typename V::I* summ, typename V::F* d, typename V::F* dmin) {
    Q4_K::dot_groups_k4<FiveBitCodes<typename V::Ops>>(w, a, s16, sumi, summ, d, dmin);
  }
  template <class Ops>
  struct FiveBitCodes {
    static constexpr bool kHighTimes16 = false;
    template <size_t c, class V, class I = typename Ops::I>
    static void get(const V& w, size_t s, size_t j, I& lo, I& hi) {
      constexpr size_t kQh = offsetof(Block, qh) / 4, kQs = offsetof(Block, qs) / 4;  // words
      const I q = w.word(s, kQs + 8 * c + j), h = w.word(s, kQh + j), low = Ops::splat8(0x0F);
      lo = Ops::or_(Ops::and_(q, low), Ops::template move_bit<2 * c, 4>(h));
      hi = Ops::or_(Ops::and_(Ops::template srli32<4>(q), low),
                    Ops::template move_bit<2 * c + 1, 4>(h));
    }
  };
#endif

#if defined(BRISE_AVX2)
  // The prefill's form (byte_group.hpp): Q4_K's codes, scales, mins and pairs with the fifth bit,
  // codes 0..31.
  static constexpr int kCodeMax = 31;
  static constexpr size_t kScaleElems = 32;
  static constexpr bool kPairsAreMins = true;
  static constexpr size_t kPairElems = 32;
  template <class Rows>
  static void to_byte_group(const Rows& blocks, ByteGroup& g) {
    using namespace lanes;
    Lanes16 head[4];
    blocks.words(0, head);
    Q4_K::byte_group_head(head, g);
    // 16 qs bytes hold elements 64 c + 16 i .. (low nibbles, sub-block 2 c) and 32 more on (high
    // nibbles, 2 c + 1); their fifth bits are bits 2 c and 2 c + 1 of the 16 qh bytes at 16 i.
    const Lanes16 nibble = set1_8(0x0F), bit0 = set1_8(0x01);
    const auto fifth = [&](Lanes16 bits, unsigned s) {
      return slli16(and_(srli16(bits, s), bit0), 4);
    };
    for (size_t i = 0; i < 2; ++i) {
      Lanes16 h[4];
      blocks.words(offsetof(Block, qh) + 16 * i, h);
      for (unsigned c = 0; c < 4; ++c) {
        Lanes16 q[4];
        blocks.words(offsetof(Block, qs) + 32 * c + 16 * i, q);
        for (size_t j = 0; j < 4; ++j) {
          store(g.code[4 * c + i][j], or_(and_(q[j], nibble), fifth(h[j], 2 * c)));
          store(g.code[4 * c + 2 + i][j],
                or_(and_(srli16(q[j], 4), nibble), fifth(h[j], 2 * c + 1)));
        }
      }
    }
  }
#endif

#if defined(BRISE_AVX512_VNNI)
  // The one-token path, as Q4_K::dot_q8k with the fifth bit: qh's 32 bytes in both 256-bit halves,
  // shifted right per half by the sub-block (4 h, 4 h + 2 for the low nibbles; 4 h + 1, 4 h + 3
  // for the high ones), masked to bit 0 and moved to bit 4. Codes 0..31: vpmaddubsw's pair sums
  // stay exact. The same integers as to_weights16's dot product.
  static void dot_q8k(const uint8_t* block, const int8_t* a, const int32_t* s16, __m512i& sumi,
                      __m512i& summ, float& d, float& dmin) {
    const kquant::DotK4 k4(block);
    const __m512i sc16 = k4.sc16;
    const uint8_t* qs = block + offsetof(Block, qs);
    const __m512i qh = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + offsetof(Block, qh))));
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    const __m512i bit0 = _mm512_set1_epi8(0x01);
    const auto per_half = [](int lo, int hi) {  // words 0..15 lo, 16..31 hi
      return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(lo)),
                                _mm256_set1_epi16(static_cast<int16_t>(hi)), 1);
    };
    const auto fifth_bit = [&](int lo, int hi) {
      return _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, per_half(lo, hi)), bit0), 4);
    };
    __m512i dot = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i q = _mm512_loadu_si512(qs + 64 * h);
      const __m512i a0 = _mm512_loadu_si512(a + 128 * h);
      const __m512i a1 = _mm512_loadu_si512(a + 128 * h + 64);
      const __m512i lo = _mm512_or_si512(_mm512_and_si512(q, nibble), fifth_bit(4 * h, 4 * h + 2));
      const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(q, 4), nibble),
                                         fifth_bit(4 * h + 1, 4 * h + 3));
      const __m512i low = _mm512_maddubs_epi16(lo, _mm512_shuffle_i64x2(a0, a1, 0x44));
      const __m512i high = _mm512_maddubs_epi16(hi, _mm512_shuffle_i64x2(a0, a1, 0xEE));
      dot =
          _mm512_dpwssd_epi32(dot, low, _mm512_permutexvar_epi16(per_half(4 * h, 4 * h + 2), sc16));
      dot = _mm512_dpwssd_epi32(dot, high,
                                _mm512_permutexvar_epi16(per_half(4 * h + 1, 4 * h + 3), sc16));
    }
    k4.finish(block, dot, s16, sumi, summ, d, dmin);
  }
#endif
};

}  // namespace brise::kernels::BRISE_ISA
