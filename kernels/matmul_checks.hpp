// Argument checks shared by the matmul kernels and references (internal to kernels/).
#pragma once

#include "kernels/isa.hpp"

#include <stdexcept>
#include <string>

#include "kernels/matmul.hpp"

namespace brise::kernels::BRISE_ISA {

// The kernels read packed matrices, the references (for_reference) the file's layout.
inline void check_matmul_args(const WeightMatrix& w, size_t n_tokens, bool have_x, const float* y,
                              size_t row_begin, size_t row_end, bool for_reference = false) {
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
  if (row_begin > row_end || row_end > w.rows)
    throw std::invalid_argument("matmul: row range [" + std::to_string(row_begin) + ", " +
                                std::to_string(row_end) + ") outside the matrix's " +
                                std::to_string(w.rows) + " rows");
  if (w.packed &&
      (row_begin % kMatmulRowAlign != 0 || (row_end % kMatmulRowAlign != 0 && row_end != w.rows)))
    throw std::invalid_argument("matmul: a packed matrix's row range must be whole groups of " +
                                std::to_string(kMatmulRowAlign) + " rows");
  if (row_begin < row_end && n_tokens > 0 && (!w.data || !have_x || !y))
    throw std::invalid_argument("matmul: null weight, activation or output pointer");
}

inline void check_q8_args(const WeightMatrix& w, const Q8Activations& x, size_t n_tokens) {
  if (w.type && !w.type->quantized)
    throw std::invalid_argument("matmul_q8: " + std::string(w.type->name) +
                                " weights have no int8 path");
  if (w.type && w.type->activation != ActivationFormat::Q8)
    throw std::invalid_argument("matmul_q8: " + std::string(w.type->name) +
                                " takes Q8_K activations (matmul_q8k)");
  if (n_tokens > 0 && x.cols != w.cols)
    throw std::invalid_argument("matmul_q8: activations of " + std::to_string(x.cols) +
                                " columns for a matrix of " + std::to_string(w.cols));
}

inline void check_q8k_args(const WeightMatrix& w, const Q8KActivations& x, size_t n_tokens) {
  if (w.type && w.type->activation != ActivationFormat::Q8K)
    throw std::invalid_argument("matmul_q8k: " + std::string(w.type->name) +
                                " weights do not take Q8_K activations");
  if (n_tokens > 0 && x.cols != w.cols)
    throw std::invalid_argument("matmul_q8k: activations of " + std::to_string(x.cols) +
                                " columns for a matrix of " + std::to_string(w.cols));
}

}  // namespace brise::kernels::BRISE_ISA
