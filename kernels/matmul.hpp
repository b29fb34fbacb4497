// Weight matrix x activations: y = W x for one token (GEMV, decode) or a chunk of tokens
// (blocked GEMM, prefill), f32 activations and accumulation, weights in any TensorType.
#pragma once

#include <cstddef>

#include "brise/tensor_type.hpp"

namespace brise::kernels {

// `rows` rows of `cols` elements of `type`; row r starts at data + r * row_bytes.
struct WeightMatrix {
  const void* data = nullptr;
  TensorType type = TensorType::F32;
  size_t rows = 0;
  size_t cols = 0;
  size_t row_bytes = 0;
};

// For tokens t in [0, n_tokens) and rows r in [row_begin, row_end):
//   y[t * y_stride + r] = sum_k W[r][k] * x[t * x_stride + k]
// Determinism contract: every dot product is summed in the same lane partition and order
// whatever n_tokens and the row range are, so one token, a chunk, or any split of rows across
// threads gives bit-identical results. Callers parallelise by splitting [0, rows) into ranges
// (multiples of kMatmulRowAlign rows are fastest).
void matmul(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens, float* y,
            size_t y_stride, size_t row_begin, size_t row_end);

// Plain scalar reference with the same contract except the summation order (sequential k).
void matmul_ref(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens, float* y,
                size_t y_stride, size_t row_begin, size_t row_end);

inline constexpr size_t kMatmulRowAlign = 16;

}  // namespace brise::kernels
