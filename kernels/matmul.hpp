// Weight matrix x activations: y = W x for one token (GEMV, decode) or a chunk of tokens (GEMM,
// prefill).
//
// Matrices are packed at load into groups of 16 rows (pack_groups, kernels/types/packed.hpp) so
// that one vector holds one element of 16 rows and each lane is one row's dot product; the
// row-major quantized types (TypeTraits::row_major) are read as the file stores them unless the
// kernel set packs them too (packs_rows). Float weights (f32, f16, bf16) are multiplied with f32
// activations and FMAs. Quantized weights are multiplied either
//  - with int8 activations: the input is quantized once to the format the type is multiplied
//    with (TypeTraits::activation: blocks of 32 or 256 with an f32 scale,
//    kernels/matmul_input.hpp), each block's dot product is an exact integer sum, and the blocks
//    are scaled and added in f32; or
//  - with f32 activations (the exact mode): weights dequantized exactly to f32.
// A matmul is one call of the kernel matmul_kernel chooses once for (type, layout, kernel set,
// token count, mode); kernels/MATMUL.md maps which kernel that is.
//
// Determinism contract (every kernel set, every type): the value of y[t][r] depends only on row r
// of W and token t of x, never on n_tokens, on the row range, or on which other rows and tokens
// are computed in the same call. So one token at a time, a chunk of any size, and any split of
// the rows across threads give bit-identical results. Each path fixes its summation order:
//  - float weights: for k = 0, 1, ... in order, acc = fma(w[k], x[k], acc);
//  - quantized, exact: for k = 0, 1, ... in order, acc = fma(float(code_k) * d_w, x[k], acc)
//    (row-major types: 16 lane sums and a fixed tree, kernels/types/int8_block.hpp);
//  - quantized, int8: for blocks b = 0, 1, ... in order,
//      acc = fma(float(isum_b), d_w[b] * d_x[b], acc)
//    where isum_b is the exact integer dot product of the block's codes with the int8 activations
//    (row-major types: add_block, kernels/types/int8_block.hpp).
// These are the scalar references' orders too, so SIMD and reference are equal bit for bit, on
// every kernel set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernels/matmul_input.hpp"
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

// What every matmul kernel computes, for the tokens t of x and the rows r in [row_begin, row_end):
//   y[t * y_stride + r] = sum_k W[r][k] * x[t][k]
using MatmulFn = void (*)(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
                          size_t row_begin, size_t row_end);

// The kernel of one matmul, as matmul_kernel chose it: the function, the activations it reads,
// and its name in kernels/MATMUL.md.
struct MatmulKernel {
  MatmulFn fn = nullptr;
  ActivationFormat reads = ActivationFormat::F32;
  std::string_view name;

  // Rows [row_begin, row_end) of y = W x, for the matrix and an input of the token count and forms
  // the kernel was chosen for. The range must start at a multiple of kMatmulRowAlign and end at
  // one or at w.rows when w is packed; std::invalid_argument on a bad range or a null pointer.
  void operator()(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
                  size_t row_begin, size_t row_end) const;
};

// The one place where a matmul's kernel is chosen (kernels/matmul.cpp), from w's type and layout,
// the kernel set in use, x's token count and the mode: a quantized w is multiplied with int8
// activations when x holds its type's format (TypeTraits::activation), with f32 ones (the exact
// mode) when x holds no int8 form. Throws std::invalid_argument on a matrix the kernels cannot
// read (no type, rows that are not whole blocks, rows not packed where they must be), or on an
// input that holds only another int8 format, or int8 activations of another width.
MatmulKernel matmul_kernel(const WeightMatrix& w, const MatmulInput& x);

// matmul_kernel(w, x)(w, x, y, y_stride, row_begin, row_end): one matmul in one call.
void matmul(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
            size_t row_begin, size_t row_end);

// The scalar reference of the same product, over the unpacked matrix (the file's layout), int8 or
// f32 as matmul_kernel decides, in the kernels' orders.
void matmul_ref(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
                size_t row_begin, size_t row_end);

// `n` f32 values into `type` (rounded/quantized as ggml does), and back. The SIMD versions give
// the same bytes/values as the type's scalar references (TypeTraits::encode_row_ref).
void encode_row(const TypeTraits& type, const float* x, void* out, size_t n);
void decode_row(const TypeTraits& type, const void* in, float* out, size_t n);

}  // namespace brise::kernels
