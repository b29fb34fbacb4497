// What a matmul reads: n tokens of f32 activations and, for quantized matrices, the same rows
// quantized once to the int8 format their types are multiplied with (TypeTraits::activation,
// kernels/types/activation_format.hpp). MatmulInput is the view the kernels read; QuantizedInput
// owns the int8 rows, so that the engine only holds one and asks it to quantize.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/types/activation_format.hpp"

namespace brise::kernels {

// Int8 activations (ActivationFormat::Q8): token t has cols codes at q + t * cols, and per block
// of 32 its scale d[t * cols / 32 + b] and the sum of its codes s[...] (value = d * q).
struct Q8Activations {
  int8_t* q = nullptr;
  float* d = nullptr;
  int32_t* s = nullptr;
  size_t cols = 0;  // a multiple of 32
};

// Int8 activations for the types of 256-element blocks (ActivationFormat::Q8K, llama.cpp's Q8_K):
// token t has cols codes at q + t * cols, per block of 256 its scale d[t * cols / 256 + b], and
// per 16 codes their sum s16[t * cols / 16 + j]. Quantized as Q8Activations, with 256-element
// blocks.
struct Q8KActivations {
  int8_t* q = nullptr;
  float* d = nullptr;
  int32_t* s16 = nullptr;
  size_t cols = 0;  // a multiple of 256
};

// Quantizes n_tokens rows of cols f32 values (row t at x + t * x_stride) into `out`: per block,
// d = max|x| / 127 and q = round(x / d) (half away from zero), as ggml quantizes Q8_0 but with an
// f32 scale. A block holding a NaN gets d = NaN (and one holding an Inf d = Inf), so a non-finite
// activation still makes the product non-finite. The SIMD versions equal the references bitwise.
void quantize_activations(const float* x, size_t x_stride, size_t n_tokens,
                          const Q8Activations& out);
void quantize_activations_ref(const float* x, size_t x_stride, size_t n_tokens,
                              const Q8Activations& out);
void quantize_activations_k(const float* x, size_t x_stride, size_t n_tokens,
                            const Q8KActivations& out);
void quantize_activations_k_ref(const float* x, size_t x_stride, size_t n_tokens,
                                const Q8KActivations& out);

// A set of activation formats: those of the matrices that read one input.
class ActivationFormats {
 public:
  void add(ActivationFormat f) { bits_ |= bit(f); }
  bool has(ActivationFormat f) const { return (bits_ & bit(f)) != 0; }
  // Whether an int8 format is in the set (f32 needs no quantizing).
  bool any_int8() const { return (bits_ & ~bit(ActivationFormat::F32)) != 0; }

 private:
  static unsigned bit(ActivationFormat f) { return 1u << static_cast<unsigned>(f); }
  unsigned bits_ = 0;
};

// n_tokens rows of f32 activations (row t at x + t * x_stride) and the int8 forms of the same
// rows that the input holds (a view whose q is null is not held).
struct MatmulInput {
  const float* x = nullptr;
  size_t x_stride = 0;
  size_t n_tokens = 0;
  Q8Activations q8{};
  Q8KActivations q8k{};

  bool holds(ActivationFormat f) const;
  // Tokens [first, first + count) of this input, in every form it holds.
  MatmulInput tokens(size_t first, size_t count) const;
};

// The int8 forms of one matmul input at a time, in buffers this object owns. They only grow, so
// once reserved for the largest input no call allocates: the forward pass reserves before its
// team starts, and its threads quantize rows side by side.
class QuantizedInput {
 public:
  // Room for n_tokens rows of cols values in every int8 format (allocates only to grow).
  void reserve(size_t n_tokens, size_t cols);
  // Rows [first, first + count) of x (cols values each, row t at x + t * x_stride) quantized into
  // the same rows of each int8 format of `formats`. Threads may quantize different rows at once.
  // std::length_error when the rows do not fit what was reserved.
  void quantize_rows(const float* x, size_t x_stride, size_t first, size_t count, size_t cols,
                     ActivationFormats formats);
  // The input of n_tokens rows of x with the forms of `formats` that quantize_rows wrote.
  MatmulInput input(const float* x, size_t x_stride, size_t n_tokens, size_t cols,
                    ActivationFormats formats);
  // reserve, quantize_rows over every row, then input: one input at once, on this thread.
  MatmulInput quantize(const float* x, size_t x_stride, size_t n_tokens, size_t cols,
                       ActivationFormats formats);

 private:
  Q8Activations q8(size_t cols);
  Q8KActivations q8k(size_t cols);
  void check_fits(size_t rows, size_t cols) const;

  size_t capacity_ = 0;  // values of every format's codes
  std::vector<int8_t> q8_codes_, q8k_codes_;
  std::vector<float> q8_scales_, q8k_scales_;
  std::vector<int32_t> q8_sums_, q8k_sums_;
};

}  // namespace brise::kernels
