// GGUF block quantization formats Q8_0 and Q4_0 (32 elements per block, fp16 scale).
#pragma once

#include <cstddef>
#include <cstdint>

namespace brise::kernels {

inline constexpr size_t kQuantBlock = 32;

// value = d * qs[i]
struct BlockQ8_0 {
  uint16_t d;  // fp16
  int8_t qs[kQuantBlock];
};
static_assert(sizeof(BlockQ8_0) == 34);

// value = d * (q - 8); byte j holds element j in its low nibble and element j + 16 in its high.
struct BlockQ4_0 {
  uint16_t d;  // fp16
  uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// Round-to-nearest quantization as ggml defines it. n must be a multiple of 32.
// The SIMD versions give bit-identical blocks to the scalar references.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, size_t n);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, size_t n);
void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, size_t n);
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, size_t n);

// value = fp16(d) * q, computed as one f32 multiply per element (the SIMD versions give the
// same bits as the scalar references).
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, size_t n);
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, size_t n);
void dequantize_row_q8_0_ref(const BlockQ8_0* x, float* y, size_t n);
void dequantize_row_q4_0_ref(const BlockQ4_0* x, float* y, size_t n);

}  // namespace brise::kernels
