// Weight matrix x activations: y = W x for one token (GEMV, decode) or a chunk of tokens (GEMM,
// prefill).
//
// Matrices are packed at load into groups of 16 rows (pack_groups, kernels/types/packed.hpp) so
// that one vector holds one element of 16 rows and each lane is one row's dot product. Float
// weights (f32, f16, bf16) are multiplied with f32 activations and FMAs. Quantized weights
// (kernels/type_traits.hpp: quantized) are multiplied either
//  - with int8 activations (matmul_q8): the input is quantized once per matmul input to int8
//    blocks of 32 with an f32 scale (quantize_activations, shared by every matrix that reads the
//    input), each block's dot product is an exact integer sum, and the blocks are scaled and
//    added in f32; or
//  - with f32 activations (matmul, the exact mode): weights dequantized exactly to f32.
//
// Determinism contract (every kernel set, every type): the value of y[t][r] depends only on row r
// of W and token t of x, never on n_tokens, on the row range, or on which other rows and tokens
// are computed in the same call. So one token at a time, a chunk of any size, and any split of
// the rows across threads give bit-identical results. Each path fixes its summation order:
//  - float weights: for k = 0, 1, ... in order, acc = fma(w[k], x[k], acc);
//  - quantized, exact: for k = 0, 1, ... in order, acc = fma(float(code_k) * d_w, x[k], acc);
//  - quantized, int8: for blocks b = 0, 1, ... in order,
//      acc = fma(float(isum_b), d_w[b] * d_x[b], acc)
//    where isum_b is the exact integer dot product of the block's codes with the int8 activations.
// These are the scalar references' orders too, so SIMD and reference are equal bit for bit, on
// every kernel set.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/type_traits.hpp"

namespace brise::kernels {

// `rows` rows of `cols` elements of `type`. Unpacked (the file's layout): row r starts at
// data + r * row_bytes. Packed (pack_groups): groups of 16 rows, row_bytes exactly one row's size.
struct WeightMatrix {
  const void* data = nullptr;
  const TypeTraits* type = nullptr;
  size_t rows = 0;
  size_t cols = 0;
  size_t row_bytes = 0;
  bool packed = false;
  // Bytes at data: rows * row_bytes, the rows rounded up to a whole group when packed.
  size_t bytes() const;
};

inline constexpr size_t kMatmulRowAlign = 16;  // = rows per packed group

// Whether the kernel set in use multiplies `type` from packed matrices: always for the types that
// are not row-major (TypeTraits::row_major), and for a row-major one when the set has a kernel over
// 16 rows at once for it (packed in word units, kernels/types/packed.hpp); else as stored. The
// kernels take both forms of a row-major type whose blocks are whole words.
bool packs_rows(const TypeTraits& type);

// Packing (scalar; runs once at load). packed_bytes: the size of a packed copy of `m`.
// pack_groups writes groups [group_begin, group_end) of the packed copy of the unpacked `m` into
// dst (which holds packed_bytes(m)); the rows of the last group beyond m.rows are zeros.
size_t packed_bytes(const WeightMatrix& m);
void pack_groups(const WeightMatrix& m, void* dst, size_t group_begin, size_t group_end);
// Row r of a packed matrix, in the file's block layout (row_bytes bytes).
void unpack_row(const WeightMatrix& packed, size_t r, void* out);

// Int8 activations: token t has cols codes at q + t * cols, and per block of 32 its scale
// d[t * cols / 32 + b] and the sum of its codes s[...] (value = d * q).
struct Q8Activations {
  int8_t* q = nullptr;
  float* d = nullptr;
  int32_t* s = nullptr;
  size_t cols = 0;  // a multiple of 32
};

// Int8 activations for the K-quants (row-major types of 256-element blocks), as llama.cpp's Q8_K:
// token t has cols codes at q + t * cols, per block of 256 its scale d[t * cols / 256 + b], and per
// 16 codes their sum s16[t * cols / 16 + j]. Quantized as Q8Activations, with 256-element blocks.
struct Q8KActivations {
  int8_t* q = nullptr;
  float* d = nullptr;
  int32_t* s16 = nullptr;
  size_t cols = 0;  // a multiple of 256
};
void quantize_activations_k(const float* x, size_t x_stride, size_t n_tokens,
                            const Q8KActivations& out);
void quantize_activations_k_ref(const float* x, size_t x_stride, size_t n_tokens,
                                const Q8KActivations& out);

// Quantizes n_tokens rows of cols f32 values (row t at x + t * x_stride) into `out`: per block,
// d = max|x| / 127 and q = round(x / d) (half away from zero), as ggml quantizes Q8_0 but with an
// f32 scale. A block holding a NaN gets d = NaN (and one holding an Inf d = Inf), so a non-finite
// activation still makes the product non-finite. The SIMD version equals the reference bitwise.
void quantize_activations(const float* x, size_t x_stride, size_t n_tokens,
                          const Q8Activations& out);
void quantize_activations_ref(const float* x, size_t x_stride, size_t n_tokens,
                              const Q8Activations& out);

// For tokens t in [0, n_tokens) and rows r in [row_begin, row_end):
//   y[t * y_stride + r] = sum_k W[r][k] * x[t * x_stride + k]
// W must be packed, and the range must start at a multiple of kMatmulRowAlign and end at one or
// at `rows`. Throws std::invalid_argument on a bad matrix or range.
void matmul(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens, float* y,
            size_t y_stride, size_t row_begin, size_t row_end);
// The same with int8 activations, for quantized weights: packed ones, and row-major ones of
// 32-element blocks (TypeTraits::row_major: Q4_1, Q5_0, Q5_1, IQ4_NL).
void matmul_q8(const WeightMatrix& w, const Q8Activations& x, size_t n_tokens, float* y,
               size_t y_stride, size_t row_begin, size_t row_end);

// The same for the row-major types of 256-element blocks (the K-quants, IQ4_XS), with Q8_K
// activations.
void matmul_q8k(const WeightMatrix& w, const Q8KActivations& x, size_t n_tokens, float* y,
                size_t y_stride, size_t row_begin, size_t row_end);

// Scalar references over unpacked matrices (the file's layout), in the kernels' orders.
void matmul_ref(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens, float* y,
                size_t y_stride, size_t row_begin, size_t row_end);
void matmul_q8_ref(const WeightMatrix& w, const Q8Activations& x, size_t n_tokens, float* y,
                   size_t y_stride, size_t row_begin, size_t row_end);
void matmul_q8k_ref(const WeightMatrix& w, const Q8KActivations& x, size_t n_tokens, float* y,
                    size_t y_stride, size_t row_begin, size_t row_end);

// `n` f32 values into `type` (rounded/quantized as ggml does), and back. The SIMD versions give
// the same bytes/values as the type's scalar references (TypeTraits::encode_row_ref).
void encode_row(const TypeTraits& type, const float* x, void* out, size_t n);
void decode_row(const TypeTraits& type, const void* in, float* out, size_t n);

}  // namespace brise::kernels
