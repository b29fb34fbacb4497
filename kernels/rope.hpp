// Rotary position embedding on interleaved pairs (x[2i], x[2i+1]), as in Mistral's reference and
// the GGUF layout.
#pragma once

#include <cstddef>

namespace brise::kernels {

// cos/sin of pos * theta^(-2i/head_dim) for i in [0, head_dim/2), computed in double so that
// large positions stay accurate.
void rope_angles(size_t pos, size_t head_dim, double theta, float* cos_out, float* sin_out);

// Rotates `n_heads` heads of `head_dim` values each (head h at x + h * head_dim), in place:
// (a, b) = (x[2i], x[2i+1]) -> (a cos_i - b sin_i, a sin_i + b cos_i). head_dim is even in every
// supported model; an odd head_dim leaves the last value of each head unchanged.
void rope_apply(float* x, size_t n_heads, size_t head_dim, const float* cos_in,
                const float* sin_in);
void rope_apply_ref(float* x, size_t n_heads, size_t head_dim, const float* cos_in,
                    const float* sin_in);

}  // namespace brise::kernels
