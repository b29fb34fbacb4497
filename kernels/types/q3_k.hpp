// Q3_K (ggml-common.h block_q3_K): super-blocks of 256 weights in 16 sub-blocks of 16. Each
// sub-block has a 6-bit scale stored as sc + 32 (low 4 bits: nibble s % 8 of `scales[s % 8]`, low
// nibble for s < 8; high 2 bits: bits 2 (s / 4) of `scales[8 + s % 4]`), the super-block an fp16
// d; value = d * (sc - 32) * (q - 4), q 3-bit: its low 2 bits packed as Q2_K's
// (kquant::pack_2bit), its high bit in hmask (element e: bit e / 32 of hmask[e % 32]).
// Quantized as ggml's quantize_row_q3_K_ref (llama-quantize's path without an importance matrix):
// each sub-block's signed scale by make_q3_quants, the scales rounded to 6 bits against the one
// of largest magnitude (mapped to -32), then the codes recomputed from the rounded scales; bit for
// bit on finite input.
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

struct Q3_K {
  static constexpr std::string_view kName = "q3_K";
  static constexpr uint32_t kBlockElems = 256;
  static constexpr uint32_t kBlockBytes = 110;
  static constexpr uint32_t kFileType = 11;  // LLAMA_FTYPE_MOSTLY_Q3_K_S
  static constexpr bool kQuantized = true;
  static constexpr ActivationFormat kActivations = ActivationFormat::Q8K;
  static constexpr bool kRowMajor = true;  // multiplied in the file's layout (int8_block.hpp)

  struct Block {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12];  // 16 6-bit scales
    uint16_t d;          // fp16
  };
  static_assert(sizeof(Block) == kBlockBytes);

  // Sub-block s's 6-bit scale as stored (0..63, the signed scale + 32).
  static int stored_scale(const uint8_t* scales, size_t s) {
    const int low = s < 8 ? scales[s] & 0x0F : scales[s - 8] >> 4;
    const int high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    return low | (high << 4);
  }

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<uint8_t*>(out);
    for (size_t b = 0; b < n / 256; ++b, x += 256) {
      Block blk{};
      int8_t L[256];
      float scales[16];
      for (size_t j = 0; j < 16; ++j)
        scales[j] = kquant::make_q3_quants_rmse(16, 4, x + 16 * j, L + 16 * j);
      // The signed scale of largest magnitude: it becomes -32.
      const float max_scale = largest_magnitude(scales, 16).max;
      if (max_scale != 0) {
        const float iscale = -32.0f / max_scale;
        for (size_t j = 0; j < 16; ++j) {
          // ggml rounds into an int8_t before clamping: keep that truncation.
          const auto r = static_cast<int8_t>(kquant::nearest_int(iscale * scales[j]));
          const int l = std::max<int>(-32, std::min<int>(31, r)) + 32;
          if (j < 8)
            blk.scales[j] = static_cast<uint8_t>(l & 0x0F);
          else
            blk.scales[j - 8] = static_cast<uint8_t>(blk.scales[j - 8] | ((l & 0x0F) << 4));
          blk.scales[8 + j % 4] =
              static_cast<uint8_t>(blk.scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
        }
        blk.d = f32_to_f16(1 / iscale);
      } else {
        blk.d = f32_to_f16(0.0f);
      }
      // The codes again against the stored scales (a sub-block whose scale rounded to 0 keeps
      // make_q3_quants' codes, as in ggml).
      const float d_all = f16_to_f32(blk.d);
      for (size_t j = 0; j < 16; ++j) {
        const float d = d_all * static_cast<float>(stored_scale(blk.scales, j) - 32);
        if (d == 0) continue;
        for (size_t i = 0; i < 16; ++i) {
          const int l = kquant::nearest_int(x[16 * j + i] / d);
          L[16 * j + i] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
        }
      }
      uint8_t low[256];
      for (size_t e = 0; e < 256; ++e) {
        const int q = L[e];
        if (q > 3) blk.hmask[e % 32] = static_cast<uint8_t>(blk.hmask[e % 32] | (1u << (e / 32)));
        low[e] = static_cast<uint8_t>(q > 3 ? q - 4 : q);
      }
      kquant::pack_2bit(low, blk.qs);
      std::memcpy(y + b * kBlockBytes, &blk, kBlockBytes);
    }
  }

  // ggml's dequantize_row_q3_K: (d * (sc - 32)) * (q - 4), in that order.
  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    for (size_t b = 0; b < n / 256; ++b, out += 256) {
      const uint8_t* block = x + b * kBlockBytes;
      const uint8_t* hmask = block + offsetof(Block, hmask);
      const uint8_t* qs = block + offsetof(Block, qs);
      const uint8_t* scales = block + offsetof(Block, scales);
      kquant::decode_sub16(
          f16_to_f32(read_u16(block + offsetof(Block, d))),
          [&](size_t s) { return stored_scale(scales, s) - 32; },
          [&](size_t e) {
            const int high = (hmask[e % 32] >> (e / 32)) & 1;
            return kquant::code_2bit(qs, e) + 4 * high - 4;
          },
          out);
    }
  }

  static void encode_row(const float* x, void* out, size_t n) { encode_row_ref(x, out, n); }
  static void decode_row(const void* in, float* out, size_t n) { decode_row_ref(in, out, n); }

  // One block (kBlockBytes at `block`) in the int8 matmul's form (int8_block.hpp): codes 0..7
  // (low 2 bits + 4 * hmask bit), offset 4, the signed 6-bit scales, no min.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    const uint8_t* hmask = block + offsetof(Block, hmask);
    const uint8_t* qs = block + offsetof(Block, qs);
    const uint8_t* scales = block + offsetof(Block, scales);
    for (size_t h = 0; h < 2; ++h)
      for (size_t k = 0; k < 4; ++k)
        for (size_t l = 0; l < 32; ++l)
          out.code[128 * h + 32 * k + l] = static_cast<uint8_t>(
              ((qs[32 * h + l] >> (2 * k)) & 3) | (((hmask[l] >> (4 * h + k)) & 1) << 2));
    kquant::int8_form_no_min([&](size_t s) { return stored_scale(scales, s) - 32; }, 4,
                             f16_to_f32(read_u16(block + offsetof(Block, d))), out);
  }

#if defined(BRISE_AVX2)
  // The 16 stored scales (stored_scale) at once as bytes of a vector (kept out of memory: a
  // 16-byte reload of narrower stores would stall on store forwarding), ggml's way on 32-bit
  // words: the low nibbles of bytes 0..7 then their high nibbles, each with its 2 bits of bytes
  // 8..11 as bits 4-5.
  static __m128i stored_scales(const uint8_t* scales) {
    uint32_t a[3];
    std::memcpy(a, scales, 12);
    constexpr uint32_t k4 = 0x0F0F0F0Fu, k2 = 0x03030303u;
    return _mm_setr_epi32(static_cast<int>((a[0] & k4) | ((a[2] & k2) << 4)),
                          static_cast<int>((a[1] & k4) | (((a[2] >> 2) & k2) << 4)),
                          static_cast<int>(((a[0] >> 4) & k4) | (((a[2] >> 4) & k2) << 4)),
                          static_cast<int>(((a[1] >> 4) & k4) | (((a[2] >> 6) & k2) << 4)));
  }

  // to_int8 + block_weights16 (codec.hpp) with SIMD. In each half h of 128, the 32 qs bytes
  // widened to 16-bit words give run k of 32 codes' low 2 bits as (q >> 2 k) & 3; hmask widened
  // and shifted left by 2 gives bit 4 h + k (the third bit) as (hm >> (4 h + k)) & 4. Minus 4,
  // times the scales (stored - 32).
  static void to_weights16(const uint8_t* block, int16_t* w16, Int8Block& meta) {
    const uint8_t* hmask = block + offsetof(Block, hmask);
    const uint8_t* qs = block + offsetof(Block, qs);
    const __m128i stored = stored_scales(block + offsetof(Block, scales));
#if defined(BRISE_AVX512)
    const __m512i scales = _mm512_castsi256_si512(
        _mm256_sub_epi16(_mm256_cvtepu8_epi16(stored), _mm256_set1_epi16(32)));
    const __m512i low = _mm512_set1_epi16(3);
    const __m512i bit2 = _mm512_set1_epi16(4);
    const __m512i offset = _mm512_set1_epi16(4);
    const auto load = [](const uint8_t* p) {
      return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    };
    const __m512i hm = _mm512_slli_epi16(load(hmask), 2);
    for (unsigned h = 0; h < 2; ++h) {
      const __m512i q = load(qs + 32 * h);
      for (unsigned k = 0; k < 4; ++k) {
        const __m512i code =
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(q, 2 * k), low),
                            _mm512_and_si512(_mm512_srli_epi16(hm, 4 * h + k), bit2));
        _mm512_store_si512(
            w16 + 128 * h + 32 * k,
            _mm512_mullo_epi16(_mm512_sub_epi16(code, offset),
                               kquant::pair_scales(scales, static_cast<int>(4 * h + k))));
      }
    }
#else
    alignas(32) int16_t scale[16];  // one store, 2-byte reloads: forwarded
    _mm256_store_si256(reinterpret_cast<__m256i*>(scale),
                       _mm256_sub_epi16(_mm256_cvtepu8_epi16(stored), _mm256_set1_epi16(32)));
    const __m256i low = _mm256_set1_epi16(3);
    const __m256i bit2 = _mm256_set1_epi16(4);
    const __m256i offset = _mm256_set1_epi16(4);
    const auto load = [](const uint8_t* p) {
      return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    };
    for (int i = 0; i < 2; ++i) {  // the halves of 16: sub-blocks 8 h + 2 k + i
      const __m256i hm = _mm256_slli_epi16(load(hmask + 16 * i), 2);
      for (int h = 0; h < 2; ++h) {
        const __m256i q = load(qs + 32 * h + 16 * i);
        for (int k = 0; k < 4; ++k) {
          const __m256i code =
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * k), low),
                              _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + k), bit2));
          _mm256_store_si256(reinterpret_cast<__m256i*>(w16 + 128 * h + 32 * k + 16 * i),
                             _mm256_mullo_epi16(_mm256_sub_epi16(code, offset),
                                                _mm256_set1_epi16(scale[8 * h + 2 * k + i])));
        }
      }
    }
#endif
    kquant::weights16_meta_no_min(block + offsetof(Block, d), meta);
  }
#endif

#if defined(BRISE_AVX2)
  // Lane by lane, as stored_scales: the stored scales 4 q .. 4 q + 3 of each row as the bytes of
  // its lane, from its scale words a0, a1, a2 (a01 = a0 for even q, a1 for odd): the low (q < 2)
  // or high nibbles of a01's bytes, each with its 2 bits of a2 (2 q, 2 q + 1) as bits 4-5. Ops:
  // GroupOps (kernels/group_decode_ops.hpp) or byte_group::Lanes16Ops.
  template <size_t q, class Ops, class I = typename Ops::I>
  static I stored_scale_lanes(I a01, I a2) {
    const auto shifted = []<int n>(I v) __attribute__((always_inline)) {
      if constexpr (n == 0)
        return v;
      else
        return Ops::template srli32<n>(v);
    };
    return Ops::or_(
        Ops::and_(shifted.template operator()<4 * (q / 2)>(a01), Ops::splat32(0x0F0F0F0F)),
        Ops::template slli32<4>(
            Ops::and_(shifted.template operator()<2 * q>(a2), Ops::splat32(0x03030303))));
  }
#endif

#if defined(BRISE_AVX2)
  // The one-token path over group blocks packed in word units (packed::pack_block_words), as
  // Q6_K::dot_groups_q8k: the integers of to_weights16's dot product for a group's rows at once,
  // row r in lane r of its vector (WordVectors, kernels/group_decode_ops.hpp). In half h, word j
  // (0..7) of qs at 32 h (Q) and of hmask (H) hold elements 128 h + 32 k + 4 j .. + 3 (k = 0..3):
  // Q's bits 2 k, 2 k + 1 as the low 2 bits, H's bit 4 h + k as bit 2. Codes 0..7 dotted with the
  // activations in 32 bits per sub-block of 16; the offset 4 x the sub-block's activation sum
  // comes off before its signed scale (stored - 32, unpacked lane by lane as stored_scales does)
  // multiplies it (vpmulld). No min. On AVX-512 too, a group per vector: faster than dot_q8k over
  // the file layout (Zen 4, 4096 x 4096, one thread: 0.54 against 1.04 ms).
  template <class V>
  static void dot_groups_q8k(const V& w, const int8_t* a, const int32_t* s16, typename V::I* sumi,
                             typename V::I* summ, typename V::F* d, typename V::F* dmin) {
    static_assert(offsetof(Block, d) == kBlockBytes - 2);  // the tail: tail_f16
    dot_groups_signed_sub16<Q3_K>(w, a, s16, sumi, summ, d, dmin);
  }
  // sum_k scale_j (dot_j - 4 s16_j) over the sub-blocks j = 8 h + 2 k + i (k = 0..3) of vector
  // s's rows: words 4 i .. 4 i + 3 of each run.
  template <size_t h, size_t i, class V>
  static typename V::I sub_blocks(const V& w, size_t s, const int8_t* a, const int32_t* s16) {
    using Ops = typename V::Ops;
    using I = typename V::I;
    constexpr size_t kQs = offsetof(Block, qs) / 4, kHmask = offsetof(Block, hmask) / 4;
    const I two_bits = Ops::splat8(0x03);
    I dot[4] = {Ops::zero(), Ops::zero(), Ops::zero(), Ops::zero()};
    for (size_t j = 4 * i; j < 4 * i + 4; ++j) {
      const I Q = w.word(s, kQs + 8 * h + j), H = w.word(s, kHmask + j);
      [&]<size_t... k>(std::index_sequence<k...>) __attribute__((always_inline)) {
        ((dot[k] = Ops::dot_unsigned(dot[k],
                                     Ops::or_(Ops::and_(Ops::template srli32<2 * k>(Q), two_bits),
                                              Ops::template move_bit<4 * h + k, 2>(H)),
                                     Ops::broadcast4(a + 128 * h + 32 * k + 4 * j))),
         ...);
      }
      (std::make_index_sequence<4>{});
    }
    // The stored scales 8 h + i + 2 k: byte i + 2 (k % 2) of the scale lanes of 4 (2 h + k / 2) ..
    // + 3.
    constexpr size_t kScales = offsetof(Block, scales) / 4;
    const I a2 = w.word(s, kScales + 2);
    const I st[2] = {stored_scale_lanes<2 * h, Ops>(w.word(s, kScales + (2 * h) % 2), a2),
                     stored_scale_lanes<2 * h + 1, Ops>(w.word(s, kScales + (2 * h + 1) % 2), a2)};
    I total = Ops::zero();
    [&]<size_t... k>(std::index_sequence<k...>) __attribute__((always_inline)) {
      ((total = Ops::add32(
            total, Ops::mullo32(Ops::sub32(dot[k], Ops::splat32(4 * s16[8 * h + 2 * k + i])),
                                Ops::sub32(Ops::template byte_unsigned<i + 2 * (k % 2)>(st[k / 2]),
                                           Ops::splat32(32))))),
       ...);
    }
    (std::make_index_sequence<4>{});
    return total;
  }
#endif

#if defined(BRISE_AVX2)
  // The prefill's form (byte_group.hpp). AVX-512 VNNI: each code with its scale,
  // (code - 4) x scale + 124 (0..252, a byte: -4..3 times -32..31), so that a block's sum is one
  // vpdpbusd chain, and the 124 comes off through the pairs -124 per 128 elements, into sumi.
  // AVX2 (vpmaddubsw: the scaled codes' pair sums would not fit 16 bits): codes 0..7, the signed
  // scales per 16, and the offset 4 comes off through the pairs -4 x scale per 16.
  static constexpr int kCodeMax = 7;
  static constexpr size_t kScaleElems = 16;
  static constexpr bool kPairsAreMins = false;
#if defined(BRISE_AVX512_VNNI)
  static constexpr bool kScaledCodes = true;
  static constexpr size_t kPairElems = 128;
#else
  static constexpr bool kScaledCodes = false;
  static constexpr size_t kPairElems = 16;
#endif
  template <class Rows>
  static void to_byte_group(const Rows& blocks, ByteGroup& g) {
    static_assert(offsetof(Block, d) == kBlockBytes - 2);  // GroupWords::f16 reads the tail
    using namespace lanes;
    // The 12 scale bytes as words a0, a1, a2 (the 16 bytes at 92 end with them), the stored scales
    // lane by lane as stored_scales does: 4 j .. 4 j + 3 in the bytes of st[j].
    Lanes16 a[4];
    blocks.words(offsetof(Block, scales) - 4, a);
    using byte_group::Lanes16Ops;
    const Lanes16 st[4] = {stored_scale_lanes<0, Lanes16Ops>(a[1], a[3]),
                           stored_scale_lanes<1, Lanes16Ops>(a[2], a[3]),
                           stored_scale_lanes<2, Lanes16Ops>(a[1], a[3]),
                           stored_scale_lanes<3, Lanes16Ops>(a[2], a[3])};
    Lanes16 stored[16];
    byte_group::lane_bytes_each<false>(st, stored);
    const Lanes16 k32 = set1_32(32), k128 = set1_32(128), k124 = set1_32(124);
    // Scaled codes: each half's scale in both 16-bit words of a lane, and 124 - 4 x scale in
    // its 4 bytes; mullo16 of 2 codes by the scale plus that is both bytes' (code - 4) x scale
    // + 124, no carry between them (each is 0..252).
    Lanes16 scale16[16], bias[16];
    Lanes16 offset[16];  // -4 x (stored - 32)
    for (size_t h = 0; h < 16; ++h) {
      const Lanes16 scale = sub32(stored[h], k32);
      store(g.scale[h], scale);
      offset[h] = sub32(k128, slli32(stored[h], 2));
      scale16[h] = mullo32(and_(scale, set1_32(0xFFFF)), set1_32(0x10001));
      bias[h] = mullo32(sub32(k124, slli32(scale, 2)), set1_32(0x01010101));
    }
    if constexpr (kScaledCodes)
      store(g.pairs[0], byte_group::pair_of(set1_32(-124), set1_32(-124)));
    else
      for (size_t p = 0; p < 8; ++p)
        store(g.pairs[p], byte_group::pair_of(offset[2 * p], offset[2 * p + 1]));
    g.any_pairs = true;
    blocks.f16(offsetof(Block, d), g.d);
    std::memset(g.dmin, 0, sizeof g.dmin);
    // The low 2 bits as Q2_K's; bit `bit` (4 h + k) of hmask byte 16 i + l as bit 2.
    Lanes16 hm[2][4];
    for (size_t i = 0; i < 2; ++i) blocks.words(offsetof(Block, hmask) + 16 * i, hm[i]);
    const Lanes16 bit0 = set1_8(0x01);
    byte_group::two_bit_codes(
        blocks, offsetof(Block, qs),
        [&](size_t half, unsigned bit, size_t i, size_t j, Lanes16 low) {
          const Lanes16 code = or_(low, slli16(and_(srli16(hm[i][j], bit), bit0), 2));
          store(g.code[half][j],
                kScaledCodes ? add16(mullo16(code, scale16[half]), bias[half]) : code);
        });
  }
#endif

#if defined(BRISE_AVX512_VNNI)
  // The one-token path (see Q6_K::dot_q8k): in each half h of 128, the 32 qs bytes in both
  // 256-bit halves give runs 0, 1 (shifted right 0 | 2) and 2, 3 (4 | 6) masked to 2 bits, hmask's
  // bits 4 h + k move to bit 2; vpmaddubsw, vpdpwssd by each word's sub-block scale, and the
  // offset comes off as 4 x sum_j scale[j] x asum[j]. The same integers as to_weights16's.
  static void dot_q8k(const uint8_t* block, const int8_t* a, const int32_t* s16, __m512i& sumi,
                      __m512i& summ, float& d, float& dmin) {
    const __m128i stored = stored_scales(block + offsetof(Block, scales));
    const __m512i sc16 = _mm512_castsi256_si512(
        _mm256_sub_epi16(_mm256_cvtepu8_epi16(stored), _mm256_set1_epi16(32)));
    const __m512i hm = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + offsetof(Block, hmask))));
    const uint8_t* qs = block + offsetof(Block, qs);
    const __m512i two_bits = _mm512_set1_epi8(0x03);
    const __m512i bit0 = _mm512_set1_epi8(0x01);
    const auto per_half = [](int lo, int hi) {  // words 0..15 lo, 16..31 hi
      return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(lo)),
                                _mm256_set1_epi16(static_cast<int16_t>(hi)), 1);
    };
    const auto scales = [&](int first) { return kquant::scales_of_pair_sums(sc16, first); };
    const auto codes = [&](__m512i q, int k, int h) {  // runs k, k + 1 of half h
      const __m512i low =
          _mm512_and_si512(_mm512_srlv_epi16(q, per_half(2 * k, 2 * k + 2)), two_bits);
      const __m512i third = _mm512_slli_epi16(
          _mm512_and_si512(_mm512_srlv_epi16(hm, per_half(4 * h + k, 4 * h + k + 1)), bit0), 2);
      return _mm512_or_si512(low, third);
    };
    __m512i dot = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i q =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h)));
      const __m512i p01 = _mm512_maddubs_epi16(codes(q, 0, h), _mm512_loadu_si512(a + 128 * h));
      const __m512i p23 =
          _mm512_maddubs_epi16(codes(q, 2, h), _mm512_loadu_si512(a + 128 * h + 64));
      dot = _mm512_dpwssd_epi32(dot, p01, scales(8 * h));
      dot = _mm512_dpwssd_epi32(dot, p23, scales(8 * h + 4));
    }
    const __m512i offset =
        _mm512_mullo_epi32(_mm512_sub_epi32(_mm512_cvtepu8_epi32(stored), _mm512_set1_epi32(32)),
                           _mm512_loadu_si512(s16));  // x 4 below
    kquant::finish_no_min(block + offsetof(Block, d), dot, _mm512_slli_epi32(offset, 2), sumi, summ,
                          d, dmin);
  }
#endif
};

}  // namespace brise::kernels::BRISE_ISA
