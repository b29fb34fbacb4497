// The matmul's input (kernels/matmul_input.hpp): the view and the int8 rows' owner.
#include "kernels/matmul_input.hpp"

#include <stdexcept>
#include <string>

#include "kernels/kernel_set.hpp"

namespace brise::kernels {

bool MatmulInput::holds(ActivationFormat f) const {
  switch (f) {
    case ActivationFormat::F32:
      return x != nullptr;
    case ActivationFormat::Q8:
      return q8.q != nullptr;
    case ActivationFormat::Q8K:
      return q8k.q != nullptr;
  }
  return false;
}

MatmulInput MatmulInput::tokens(size_t first, size_t count) const {
  MatmulInput in = *this;
  in.n_tokens = count;
  if (x) in.x += first * x_stride;
  if (q8.q) {
    const size_t blocks = first * q8.cols / kQ8Block;
    in.q8 = {q8.q + first * q8.cols, q8.d + blocks, q8.s + blocks, q8.cols};
  }
  if (q8k.q)
    in.q8k = {q8k.q + first * q8k.cols, q8k.d + first * q8k.cols / kQ8KBlock,
              q8k.s16 + first * q8k.cols / 16, q8k.cols};
  return in;
}

void QuantizedInput::reserve(size_t n_tokens, size_t cols) {
  const size_t values = n_tokens * cols;
  if (values <= capacity_) return;
  q8_codes_.resize(values);
  q8_scales_.resize(values / kQ8Block + 1);
  q8_sums_.resize(values / kQ8Block + 1);
  q8k_codes_.resize(values);
  q8k_scales_.resize(values / kQ8KBlock + 1);
  q8k_sums_.resize(values / 16 + 1);
  capacity_ = values;
}

void QuantizedInput::check_fits(size_t rows, size_t cols) const {
  if (rows * cols > capacity_)
    throw std::length_error("QuantizedInput: " + std::to_string(rows) + " rows of " +
                            std::to_string(cols) + " values, room reserved for " +
                            std::to_string(capacity_));
}

Q8Activations QuantizedInput::q8(size_t cols) {
  return {q8_codes_.data(), q8_scales_.data(), q8_sums_.data(), cols};
}

Q8KActivations QuantizedInput::q8k(size_t cols) {
  return {q8k_codes_.data(), q8k_scales_.data(), q8k_sums_.data(), cols};
}

void QuantizedInput::quantize_rows(const float* x, size_t x_stride, size_t first, size_t count,
                                   size_t cols, ActivationFormats formats) {
  check_fits(first + count, cols);
  const float* rows = x + first * x_stride;
  if (formats.has(ActivationFormat::Q8)) {
    const size_t blocks = first * cols / kQ8Block;
    const Q8Activations all = q8(cols);
    quantize_activations(rows, x_stride, count,
                         {all.q + first * cols, all.d + blocks, all.s + blocks, cols});
  }
  if (formats.has(ActivationFormat::Q8K)) {
    const Q8KActivations all = q8k(cols);
    quantize_activations_k(rows, x_stride, count,
                           {all.q + first * cols, all.d + first * cols / kQ8KBlock,
                            all.s16 + first * cols / 16, cols});
  }
}

MatmulInput QuantizedInput::input(const float* x, size_t x_stride, size_t n_tokens, size_t cols,
                                  ActivationFormats formats) {
  check_fits(n_tokens, cols);
  MatmulInput in{x, x_stride, n_tokens};
  if (formats.has(ActivationFormat::Q8)) in.q8 = q8(cols);
  if (formats.has(ActivationFormat::Q8K)) in.q8k = q8k(cols);
  return in;
}

MatmulInput QuantizedInput::quantize(const float* x, size_t x_stride, size_t n_tokens, size_t cols,
                                     ActivationFormats formats) {
  reserve(n_tokens, cols);
  quantize_rows(x, x_stride, 0, n_tokens, cols, formats);
  return input(x, x_stride, n_tokens, cols, formats);
}

}  // namespace brise::kernels
