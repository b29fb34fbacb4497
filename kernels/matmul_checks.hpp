// Argument checks shared by the matmul's kernel choice and its references (internal to kernels/;
// kernels/runtime/matmul_entry.cpp). Each throws std::invalid_argument naming the problem.
#pragma once

#include "kernels/matmul.hpp"

namespace brise::kernels {

// A matrix the kernels can read: packed, or a row-major type as stored (for_reference: the
// references read the file's layout only).
void check_matrix(const WeightMatrix& w, bool for_reference);

// The activations a matmul of w reads from x: the int8 format of w's type when x holds it (its
// width checked), f32 for a float type or when x holds no int8 form (the exact mode).
ActivationFormat input_format(const WeightMatrix& w, const MatmulInput& x);

// A row range of w and the pointers a call reads and writes.
void check_rows(const WeightMatrix& w, const MatmulInput& x, ActivationFormat reads, const float* y,
                size_t row_begin, size_t row_end);

}  // namespace brise::kernels
