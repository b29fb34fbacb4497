// Half-precision (IEEE fp16) and bfloat16 conversions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace brise::kernels {

// Scalar conversions. f32 -> f16/bf16 round to nearest even; NaN stays NaN, overflow gives Inf.
uint16_t f32_to_f16(float x);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float x);
inline float bf16_to_f32(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

// Bulk conversions (SIMD) with their scalar references; results are identical.
void convert_f32_to_f16(const float* x, uint16_t* y, size_t n);
void convert_f16_to_f32(const uint16_t* x, float* y, size_t n);
void convert_f32_to_bf16(const float* x, uint16_t* y, size_t n);
void convert_bf16_to_f32(const uint16_t* x, float* y, size_t n);
void convert_f32_to_f16_ref(const float* x, uint16_t* y, size_t n);
void convert_f16_to_f32_ref(const uint16_t* x, float* y, size_t n);
void convert_f32_to_bf16_ref(const float* x, uint16_t* y, size_t n);
void convert_bf16_to_f32_ref(const uint16_t* x, float* y, size_t n);

#if defined(BRISE_ISA)
// This kernel set's bulk conversions (kernels/fp16.cpp; also listed in kernels/kernel_set.hpp),
// for the codecs compiled with it (kernels/types/f16.hpp, bf16.hpp).
namespace BRISE_ISA {
void convert_f32_to_f16(const float* x, uint16_t* y, size_t n);
void convert_f16_to_f32(const uint16_t* x, float* y, size_t n);
void convert_f32_to_bf16(const float* x, uint16_t* y, size_t n);
void convert_bf16_to_f32(const uint16_t* x, float* y, size_t n);
}  // namespace BRISE_ISA
#endif

}  // namespace brise::kernels
