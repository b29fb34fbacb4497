// RMSNorm: out = x / sqrt(mean(x^2) + eps) * weight.
#pragma once

#include <cstddef>

namespace brise::kernels {

// `out` may alias `x`. n >= 1. rmsnorm sums squares in f32 SIMD lanes; rmsnorm_ref in double.
void rmsnorm(const float* x, const float* weight, size_t n, float eps, float* out);
void rmsnorm_ref(const float* x, const float* weight, size_t n, float eps, float* out);

}  // namespace brise::kernels
