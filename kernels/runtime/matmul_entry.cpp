// The matmul outside the kernel sets: its argument checks, the call of a chosen kernel, and
// matmul() (kernels/matmul.hpp). The choice itself is per kernel set (kernels/matmul.cpp).
#include <stdexcept>
#include <string>

#include "kernels/kernel_set.hpp"
#include "kernels/matmul.hpp"
#include "kernels/matmul_checks.hpp"

namespace brise::kernels {
namespace {

std::string_view format_name(ActivationFormat f) {
  static constexpr std::string_view kNames[] = {"f32", "Q8", "Q8_K"};  // in the enumerators' order
  const auto i = static_cast<size_t>(f);
  return i < std::size(kNames) ? kNames[i] : "?";
}

}  // namespace

void check_matrix(const WeightMatrix& w, bool for_reference) {
  if (!w.type) throw std::invalid_argument("matmul: the weight matrix has no type");
  const auto need = row_bytes(*w.type, w.cols);
  if (!need)
    throw std::invalid_argument("matmul: cols " + std::to_string(w.cols) +
                                " is not a whole number of " + std::string(w.type->name) +
                                " blocks");
  if (w.row_bytes < *need) throw std::invalid_argument("matmul: row_bytes smaller than one row");
  // Row-major types are multiplied in the file's layout (kernels/types/int8_block.hpp), or
  // packed in word units (kernels/types/packed.hpp).
  if (for_reference && w.packed)
    throw std::invalid_argument("matmul_ref: the weights must be unpacked");
  if (!for_reference && !w.type->row_major && !w.packed)
    throw std::invalid_argument("matmul: the weights must be packed (pack_groups)");
  if (w.packed && w.row_bytes != *need)
    throw std::invalid_argument("matmul: packed rows have exactly their blocks' bytes");
}

ActivationFormat input_format(const WeightMatrix& w, const MatmulInput& x) {
  const ActivationFormat wants = w.type->activation;
  if (wants == ActivationFormat::F32) return wants;
  if (!x.holds(wants)) {
    if (x.holds(ActivationFormat::Q8) || x.holds(ActivationFormat::Q8K))
      throw std::invalid_argument("matmul: " + std::string(w.type->name) + " weights take " +
                                  std::string(format_name(wants)) +
                                  " activations, the input holds another int8 format");
    return ActivationFormat::F32;  // the exact mode
  }
  const size_t cols = wants == ActivationFormat::Q8 ? x.q8.cols : x.q8k.cols;
  if (x.n_tokens > 0 && cols != w.cols)
    throw std::invalid_argument("matmul: activations of " + std::to_string(cols) +
                                " columns for a matrix of " + std::to_string(w.cols));
  return wants;
}

void check_rows(const WeightMatrix& w, const MatmulInput& x, ActivationFormat reads, const float* y,
                size_t row_begin, size_t row_end) {
  if (row_begin > row_end || row_end > w.rows)
    throw std::invalid_argument("matmul: row range [" + std::to_string(row_begin) + ", " +
                                std::to_string(row_end) + ") outside the matrix's " +
                                std::to_string(w.rows) + " rows");
  if (w.packed &&
      (row_begin % kMatmulRowAlign != 0 || (row_end % kMatmulRowAlign != 0 && row_end != w.rows)))
    throw std::invalid_argument("matmul: a packed matrix's row range must be whole groups of " +
                                std::to_string(kMatmulRowAlign) + " rows");
  if (row_begin < row_end && x.n_tokens > 0 && (!w.data || !x.holds(reads) || !y))
    throw std::invalid_argument("matmul: null weight, activation or output pointer");
}

void MatmulKernel::operator()(const WeightMatrix& w, const MatmulInput& x, float* y,
                              size_t y_stride, size_t row_begin, size_t row_end) const {
  check_rows(w, x, reads, y, row_begin, row_end);
  if (row_begin == row_end || x.n_tokens == 0) return;
  fn(w, x, y, y_stride, row_begin, row_end);
}

void matmul(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
            size_t row_begin, size_t row_end) {
  matmul_kernel(w, x)(w, x, y, y_stride, row_begin, row_end);
}

}  // namespace brise::kernels
