// What the codecs of 32-element blocks with 4- or 5-bit codes share (q4_0, q4_1, q5_0, q5_1,
// iq4_nl): ggml's layout of the codes, its reference quantizers, decoders and the int8 matmul's
// form of a block with one scale (kernels/types/int8_block.hpp).
//
// Layout: an fp16 d, for the _1 types an fp16 m, then the codes: 16 bytes qs, byte j holding
// element j's low 4 bits in its low nibble and element j + 16's in its high nibble, after (5-bit
// types) 4 bytes qh holding each element's fifth bit (bit j for element j, little-endian).
#pragma once

#include <cfloat>
#include <cstdint>
#include <cstring>

#include "kernels/types/codec.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/rounding.hpp"

namespace brise::kernels::BRISE_ISA::block32 {

// 32 codes' low 4 bits into qs.
inline void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (size_t j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
}

// The 32 nibbles of qs, in element order.
inline void unpack_nibbles(const uint8_t* qs, uint8_t* q) {
  for (size_t j = 0; j < 16; ++j) {
    q[j] = qs[j] & 0x0F;
    q[j + 16] = qs[j] >> 4;
  }
}

// The fifth bits of 32 codes (0..31) into the 4 bytes qh.
inline void pack_fifth_bits(const uint8_t* q, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (size_t j = 0; j < 32; ++j) qh |= static_cast<uint32_t>(q[j] >> 4) << j;
  std::memcpy(qh_bytes, &qh, sizeof qh);
}

// The 32 five-bit codes of a block: low nibbles from qs, fifth bits from qh.
inline void unpack_5bit(const uint8_t* qh_bytes, const uint8_t* qs, uint8_t* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof qh);
  unpack_nibbles(qs, q);
  for (size_t j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(q[j] | (((qh >> j) & 1u) << 4));
}

// The smallest and largest of 32 values as ggml's _1 quantizers scan them (from FLT_MAX and
// -FLT_MAX).
struct MinMax {
  float min;
  float max;
};
inline MinMax min_max(const float* x) {
  MinMax m{FLT_MAX, -FLT_MAX};
  for (size_t j = 0; j < 32; ++j) {
    if (x[j] < m.min) m.min = x[j];
    if (x[j] > m.max) m.max = x[j];
  }
  return m;
}

// A block's int8 matmul form but its codes: one scale for both halves of 16, a min of 1 (the
// _1 types: value = d * code - dmin) or none, the code offset, d and dmin.
inline void one_scale(Int8Block& out, int32_t offset, bool has_min, float d, float dmin) {
  out.scale[0] = out.scale[1] = 1;
  out.min[0] = out.min[1] = has_min ? 1 : 0;
  out.offset = offset;
  out.d = d;
  out.dmin = dmin;
}

// The codes of kBits (4 or 5) at `at` (qs, or qh then qs), and back.
template <int kBits>
inline void pack_codes(const uint8_t* q, uint8_t* at) {
  static_assert(kBits == 4 || kBits == 5);
  if constexpr (kBits == 5) {
    pack_fifth_bits(q, at);
    at += 4;
  }
  pack_nibbles(q, at);
}
template <int kBits>
inline void unpack_codes(const uint8_t* at, uint8_t* q) {
  if constexpr (kBits == 5)
    unpack_5bit(at, at + 4, q);
  else
    unpack_nibbles(at, q);
}

// v truncated to a code of kBits (q4_code, q5_code).
template <int kBits>
inline uint8_t truncated_code(float v) {
  return kBits == 4 ? q4_code(v) : q5_code(v);
}

inline void store_f16(uint8_t* at, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(at, &h, sizeof h);
}

// The _0 types (Q4_0, Q5_0), value = d * (code - 2^(bits - 1)), d at byte 0 and the codes from 2.
// Quantized as ggml's quantize_row_q4_0_ref and _q5_0_ref: d = m / -2^(bits - 1) where m is the
// block's first value of largest magnitude, code = min(2^bits - 1, (int)(x / d + 2^(bits - 1) +
// 0.5)), the product and the sum rounded apart as ggml's (kernels are built without FMA
// contraction).
template <int kBits>
struct Signed {
  static constexpr float kHalf = 1 << (kBits - 1);
  static constexpr size_t kBlockBytes = 2 + (kBits == 5 ? 20 : 16);

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<uint8_t*>(out);
    uint8_t q[32];
    for (size_t b = 0; b < n / 32; ++b) {
      const float* xb = x + b * 32;
      uint8_t* block = y + b * kBlockBytes;
      const float d = largest_magnitude(xb, 32).max / -kHalf;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      store_f16(block, d);
      for (size_t j = 0; j < 32; ++j) q[j] = truncated_code<kBits>(xb[j] * id + (kHalf + 0.5f));
      pack_codes<kBits>(q, block + 2);
    }
  }

  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    uint8_t q[32];
    for (size_t b = 0; b < n / 32; ++b) {
      const uint8_t* block = x + b * kBlockBytes;
      const float d = f16_to_f32(read_u16(block));
      unpack_codes<kBits>(block + 2, q);
      for (size_t j = 0; j < 32; ++j)
        out[b * 32 + j] = static_cast<float>(q[j] - static_cast<int>(kHalf)) * d;
    }
  }

  // One block in the int8 matmul's form: the codes with offset 2^(bits - 1), no minimum.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    unpack_codes<kBits>(block + 2, out.code);
    one_scale(out, static_cast<int32_t>(kHalf), false, f16_to_f32(read_u16(block)), 0.0f);
  }
};

// The _1 types (Q4_1, Q5_1), value = d * code + m, d at byte 0, m at 2 and the codes from 4.
// Quantized as ggml's quantize_row_q4_1_ref and _q5_1_ref (what llama-quantize runs without an
// importance matrix): min and max of the block, d = (max - min) / (2^bits - 1), m = min,
// code = (int)((x - min) / d + 0.5) (at most 2^bits - 1), the roundings apart as ggml's.
template <int kBits>
struct WithMin {
  static constexpr float kLevels = (1 << kBits) - 1;
  static constexpr size_t kBlockBytes = 4 + (kBits == 5 ? 20 : 16);

  static void encode_row_ref(const float* x, void* out, size_t n) {
    auto* y = static_cast<uint8_t*>(out);
    uint8_t q[32];
    for (size_t b = 0; b < n / 32; ++b) {
      const float* xb = x + b * 32;
      uint8_t* block = y + b * kBlockBytes;
      const MinMax m = min_max(xb);
      const float d = (m.max - m.min) / kLevels;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      store_f16(block, d);
      store_f16(block + 2, m.min);
      for (size_t j = 0; j < 32; ++j) q[j] = truncated_code<kBits>((xb[j] - m.min) * id + 0.5f);
      pack_codes<kBits>(q, block + 4);
    }
  }

  static void decode_row_ref(const void* in, float* out, size_t n) {
    const auto* x = static_cast<const uint8_t*>(in);
    uint8_t q[32];
    for (size_t b = 0; b < n / 32; ++b) {
      const uint8_t* block = x + b * kBlockBytes;
      const float d = f16_to_f32(read_u16(block));
      const float m = f16_to_f32(read_u16(block + 2));
      unpack_codes<kBits>(block + 4, q);
      for (size_t j = 0; j < 32; ++j) out[b * 32 + j] = static_cast<float>(q[j]) * d + m;
    }
  }

  // One block in the int8 matmul's form: the codes with no offset, d * code - dmin * 1 with
  // dmin = -m.
  static void to_int8(const uint8_t* block, Int8Block& out) {
    unpack_codes<kBits>(block + 4, out.code);
    one_scale(out, 0, true, f16_to_f32(read_u16(block)), -f16_to_f32(read_u16(block + 2)));
  }
};

}  // namespace brise::kernels::BRISE_ISA::block32
