// RMSNorm: out = x / sqrt(mean(x^2) + eps) * weight.
#pragma once

#include <cstddef>

namespace brise::kernels {

// `out` may alias `x`.
void rmsnorm(const float* x, const float* weight, size_t n, float eps, float* out);
void rmsnorm_ref(const float* x, const float* weight, size_t n, float eps, float* out);

}  // namespace brise::kernels
