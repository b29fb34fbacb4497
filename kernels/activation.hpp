// Element-wise and reduction kernels: softmax, SwiGLU, argmax.
#pragma once

#include <cstddef>

namespace brise::kernels {

// In place, numerically stable (subtracts the max). n == 0 does nothing.
void softmax(float* x, size_t n);
void softmax_ref(float* x, size_t n);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). `out` may alias either input.
void silu_mul(const float* gate, const float* up, float* out, size_t n);
void silu_mul_ref(const float* gate, const float* up, float* out, size_t n);

// Index of the largest value (the first one on ties; -0 and +0 tie); NaN is never chosen over a
// number, so an all-NaN input gives 0. n >= 1 (n == 0 returns 0, which is not an index).
size_t argmax(const float* x, size_t n);
size_t argmax_ref(const float* x, size_t n);

}  // namespace brise::kernels
