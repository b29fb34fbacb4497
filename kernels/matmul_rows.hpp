// The matmul of the row-major quantized types (kernels/types/int8_block.hpp), for matmul.cpp's
// entry points: the K-quants, Q4_1, Q5_0, Q5_1, IQ4_NL and IQ4_XS, multiplied in the file's
// layout a block at a time.
#pragma once

#include <cstddef>

#include "kernels/isa.hpp"
#include "kernels/matmul.hpp"

namespace brise::kernels::BRISE_ISA {

// f32 activations (the exact mode): per row and token, 16 partial sums (lane k mod 16) of
// fma(w[k], x[k]) in order, then sum_lanes16.
void row_major_matmul(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens,
                      float* y, size_t y_stride, size_t row_begin, size_t row_end);
// Int8 activations: blocks of 32 (Q8Activations) or of 256 (Q8KActivations), per block
// add_block(exact integer sums).
void row_major_matmul_q8(const WeightMatrix& w, const Q8Activations& x, size_t n_tokens, float* y,
                         size_t y_stride, size_t row_begin, size_t row_end);
void row_major_matmul_q8k(const WeightMatrix& w, const Q8KActivations& x, size_t n_tokens, float* y,
                          size_t y_stride, size_t row_begin, size_t row_end);

}  // namespace brise::kernels::BRISE_ISA
