// The vector operations of the packed matmul (kernels/matmul.cpp) for this kernel set: one 32-bit
// lane per weight row, so a vector holds kRows rows of a 16-row packed group: the float loads of
// the float types, and the int8 dot product of the quantized ones.
//
// The int8 dot product: dot_unsigned(acc, u, a) adds, to each 32-bit lane, the sum of its 4
// unsigned codes times the 4 signed activation bytes broadcast to every lane. Every partial sum is
// an exact integer on every set:
//  - AVX-512 VNNI / AVX-VNNI: vpdpbusd (u8 x s8, summed in 32 bits without saturation);
//  - AVX2: vpmaddubsw (u8 x s8 pairs into saturating 16 bits) then vpmaddwd by 1 into 32 bits:
//    exact while a pair stays below 2^15, true for 4-bit codes (2 x 15 x 127) and for the
//    sign trick below (2 x 128 x 127).
// Signed codes (q8_0) have two exact forms: with vpdpbusd, code ^ 0x80 = code + 128 times the
// activations, minus 128 x their block sum (kSignedBias); without it, |code| times the activations
// with the code's sign (vpsignb), the classic AVX2 form. The generic set does the same in plain
// C++.
#pragma once

#include "kernels/isa.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/fp16.hpp"

namespace brise::kernels::BRISE_ISA {

inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The operations every set makes the same way out of its primitives (Ops: splat32, slli32,
// srai32, srli32, and_, load_f16, splat), for a set's PackedOps to inherit.
template <class Ops>
struct PackedOpsFromPrimitives {
  // Byte J of every 32-bit lane, sign- or zero-extended.
  template <int J, class I>
  static I byte_signed(I a) {
    return Ops::template srai32<24>(Ops::template slli32<24 - 8 * J>(a));
  }
  template <int J, class I>
  static I byte_unsigned(I a) {
    return Ops::and_(Ops::template srli32<8 * J>(a), Ops::splat32(0xFF));
  }
  // The 4 activation bytes at p in every lane.
  static auto broadcast4(const int8_t* p) { return Ops::splat32(load_i32(p)); }
  static auto scales(const uint8_t* p) { return Ops::load_f16(p); }  // kRows fp16 values
  static auto zero_f() { return Ops::splat(0.0f); }
};

#if defined(BRISE_AVX512_VNNI)
struct PackedOps : PackedOpsFromPrimitives<PackedOps> {
  using I = __m512i;
  using F = __m512;
  static constexpr size_t kRows = 16;
  static I load(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static I splat8(uint8_t v) { return _mm512_set1_epi8(static_cast<char>(v)); }
  static I splat32(int32_t v) { return _mm512_set1_epi32(v); }
  static I zero() { return _mm512_setzero_si512(); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I sub32(I a, I b) { return _mm512_sub_epi32(a, b); }
  template <int N>
  static I srl16(I a) {
    return _mm512_srli_epi16(a, N);
  }
  template <int N>
  static I slli32(I a) {
    return _mm512_slli_epi32(a, N);
  }
  template <int N>
  static I srai32(I a) {
    return _mm512_srai_epi32(a, N);
  }
  template <int N>
  static I srli32(I a) {
    return _mm512_srli_epi32(a, N);
  }
  static I dot_unsigned(I acc, I u, I a) { return _mm512_dpbusd_epi32(acc, u, a); }
  static constexpr int32_t kSignedBias = 128;
  static I prepare_signed(I c) { return _mm512_xor_si512(c, splat8(0x80)); }
  static I dot_signed(I acc, I prepared, I a) { return _mm512_dpbusd_epi32(acc, prepared, a); }

  // kRows consecutive values of a float type, widened exactly to f32.
  static F load_f32(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static F load_f16(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F load_bf16(const uint8_t* p) {
    const __m512i w =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  static F to_float(I a) { return _mm512_cvtepi32_ps(a); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F splat(float v) { return _mm512_set1_ps(v); }
  // The first n (<= kRows) lanes of v to y.
  static void store(float* y, F v, size_t n) {
    if (n == kRows)
      _mm512_storeu_ps(y, v);
    else
      _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << n) - 1u), v);
  }
};
#elif defined(BRISE_AVX2)
struct PackedOps : PackedOpsFromPrimitives<PackedOps> {
  using I = __m256i;
  using F = __m256;
  static constexpr size_t kRows = 8;
  static I load(const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static I splat8(uint8_t v) { return _mm256_set1_epi8(static_cast<char>(v)); }
  static I splat32(int32_t v) { return _mm256_set1_epi32(v); }
  static I zero() { return _mm256_setzero_si256(); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I sub32(I a, I b) { return _mm256_sub_epi32(a, b); }
  template <int N>
  static I srl16(I a) {
    return _mm256_srli_epi16(a, N);
  }
  template <int N>
  static I slli32(I a) {
    return _mm256_slli_epi32(a, N);
  }
  template <int N>
  static I srai32(I a) {
    return _mm256_srai_epi32(a, N);
  }
  template <int N>
  static I srli32(I a) {
    return _mm256_srli_epi32(a, N);
  }
#if defined(BRISE_AVX_VNNI)
  static I dot_unsigned(I acc, I u, I a) {
    return _mm256_dpbusd_avx_epi32(acc, u, a);
  }
#else
  static I dot_unsigned(I acc, I u, I a) {
    return _mm256_add_epi32(acc,
                            _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), _mm256_set1_epi16(1)));
  }
#endif
  static constexpr int32_t kSignedBias = 0;
  static I prepare_signed(I c) {
    return c;
  }
  static I dot_signed(I acc, I c, I a) {
    return dot_unsigned(acc, _mm256_abs_epi8(c), _mm256_sign_epi8(a, c));
  }

  static F load_f32(const uint8_t* p) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  }
  static F load_f16(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F load_bf16(const uint8_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static F to_float(I a) {
    return _mm256_cvtepi32_ps(a);
  }
  static F fma(F a, F b, F c) {
    return _mm256_fmadd_ps(a, b, c);
  }
  static F mul(F a, F b) {
    return _mm256_mul_ps(a, b);
  }
  static F splat(float v) {
    return _mm256_set1_ps(v);
  }
  static void store(float* y, F v, size_t n) {
    if (n == kRows) {
      _mm256_storeu_ps(y, v);
    } else {
      alignas(32) float lanes[kRows];
      _mm256_store_ps(lanes, v);
      std::memcpy(y, lanes, n * sizeof(float));
    }
  }
};
#else
// Portable C++ with the same lane semantics (16 lanes of 32 bits, as AVX-512), for the generic
// kernel set; the compiler vectorizes what the baseline instructions allow.
struct PackedOps : PackedOpsFromPrimitives<PackedOps> {
  struct I {
    int32_t l[16];
  };
  struct F {
    float l[16];
  };
  static constexpr size_t kRows = 16;
  static I load(const uint8_t* p) {
    I v;
    std::memcpy(v.l, p, sizeof v.l);
    return v;
  }
  static I splat8(uint8_t b) {
    I v;
    std::memset(v.l, b, sizeof v.l);
    return v;
  }
  static I splat32(int32_t x) {
    I v;
    for (auto& l : v.l) l = x;
    return v;
  }
  static I zero() { return splat32(0); }
  static I and_(I a, I b) {
    for (size_t i = 0; i < 16; ++i) a.l[i] &= b.l[i];
    return a;
  }
  static I sub32(I a, I b) {
    for (size_t i = 0; i < 16; ++i) a.l[i] -= b.l[i];
    return a;
  }
  // Each 16-bit half of a lane shifted right, as vpsrlw.
  template <int N>
  static I srl16(I a) {
    for (auto& l : a.l) {
      const auto u = static_cast<uint32_t>(l);
      const uint32_t lo = (u & 0xFFFFu) >> N, hi = (u >> 16) >> N;
      l = static_cast<int32_t>(lo | (hi << 16));
    }
    return a;
  }
  // Each lane shifted as vpslld, vpsrad and vpsrld.
  template <int N>
  static I slli32(I a) {
    for (auto& l : a.l) l = static_cast<int32_t>(static_cast<uint32_t>(l) << N);
    return a;
  }
  template <int N>
  static I srai32(I a) {
    for (auto& l : a.l) l >>= N;
    return a;
  }
  template <int N>
  static I srli32(I a) {
    for (auto& l : a.l) l = static_cast<int32_t>(static_cast<uint32_t>(l) >> N);
    return a;
  }
  // Lane += sum of its 4 bytes of u (unsigned) times its 4 bytes of a (signed), as vpdpbusd.
  static I dot_unsigned(I acc, I u, I a) {
    for (size_t i = 0; i < 16; ++i) {
      const auto uu = static_cast<uint32_t>(u.l[i]), aa = static_cast<uint32_t>(a.l[i]);
      for (int k = 0; k < 4; ++k)
        acc.l[i] += static_cast<int32_t>((uu >> (8 * k)) & 0xFF) *
                    static_cast<int8_t>((aa >> (8 * k)) & 0xFF);
    }
    return acc;
  }
  static constexpr int32_t kSignedBias = 0;
  static I prepare_signed(I c) { return c; }
  static I dot_signed(I acc, I c, I a) {
    for (size_t i = 0; i < 16; ++i) {
      const auto cc = static_cast<uint32_t>(c.l[i]), aa = static_cast<uint32_t>(a.l[i]);
      for (int k = 0; k < 4; ++k)
        acc.l[i] += int32_t{static_cast<int8_t>((cc >> (8 * k)) & 0xFF)} *
                    static_cast<int8_t>((aa >> (8 * k)) & 0xFF);
    }
    return acc;
  }
  static F load_f32(const uint8_t* p) {
    F v;
    std::memcpy(v.l, p, sizeof v.l);
    return v;
  }
  static F load_f16(const uint8_t* p) {
    F v;
    for (size_t i = 0; i < 16; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      v.l[i] = f16_to_f32(h);
    }
    return v;
  }
  static F load_bf16(const uint8_t* p) {
    F v;
    for (size_t i = 0; i < 16; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      v.l[i] = bf16_to_f32(h);
    }
    return v;
  }
  static F to_float(I a) {
    F v;
    for (size_t i = 0; i < 16; ++i) v.l[i] = static_cast<float>(a.l[i]);
    return v;
  }
  static F fma(F a, F b, F c) {
    for (size_t i = 0; i < 16; ++i) c.l[i] = std::fma(a.l[i], b.l[i], c.l[i]);
    return c;
  }
  static F mul(F a, F b) {
    for (size_t i = 0; i < 16; ++i) a.l[i] *= b.l[i];
    return a;
  }
  static F splat(float x) {
    F v;
    for (auto& l : v.l) l = x;
    return v;
  }
  static void store(float* y, F v, size_t n) { std::memcpy(y, v.l, n * sizeof(float)); }
};
#endif

}  // namespace brise::kernels::BRISE_ISA
