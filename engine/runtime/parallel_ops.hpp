// Model-level building blocks that decide threading around the pure kernels.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <span>

#include "kernels/matmul.hpp"

namespace brise {

// Threads worth waking for `work` multiply-adds: forking a team costs microseconds, so small
// operations (tiny models, single tokens of small matrices) run on the calling thread.
int team_size(size_t work, int threads);

// One product of a parallel_matmuls call: y[t][r] = W[r] . x[t], y holding W.rows per token.
struct MatmulOutput {
  const kernels::WeightMatrix& w;
  float* y;
};

// The products of several matrices with one input of n tokens (wq, wk, wv; w1, w3) as one
// parallel loop over pieces of their rows taken one after the other: no barrier between the
// matrices, and a thread that falls behind (a shared machine) is made up for by the others taking
// more pieces. Each matrix's kernel is chosen once for the input (kernels::matmul_kernel); the
// kernels sum every dot product the same way whatever rows they are given, so the result depends
// neither on the thread count nor on which thread took which piece. The input holds the int8
// forms of the matrices' types (kernels::QuantizedInput), or none for the exact mode.
//
// team_matmuls is that loop as every thread of an OpenMP team runs it (the forward pass's team):
// pieces are taken from `next` (0 before the first thread starts, shared by the team); it returns
// when no piece is left, without waiting for the other threads. parallel_matmuls starts a team.
void team_matmuls(std::span<const MatmulOutput> outputs,
                  std::span<const kernels::MatmulKernel> chosen, const kernels::MatmulInput& x,
                  std::atomic<size_t>& next);
void parallel_matmuls(std::span<const MatmulOutput> outputs,
                      std::span<const kernels::MatmulKernel> chosen, const kernels::MatmulInput& x,
                      int threads);

// The kernels of N matrices for input x.
template <size_t N>
std::array<kernels::MatmulKernel, N> matmul_kernels(const MatmulOutput (&outputs)[N],
                                                    const kernels::MatmulInput& x) {
  std::array<kernels::MatmulKernel, N> chosen;
  for (size_t i = 0; i < N; ++i) chosen[i] = kernels::matmul_kernel(outputs[i].w, x);
  return chosen;
}

template <size_t N>
void team_matmuls(const MatmulOutput (&outputs)[N], const kernels::MatmulInput& x,
                  std::atomic<size_t>& next) {
  team_matmuls(outputs, matmul_kernels(outputs, x), x, next);
}
template <size_t N>
void parallel_matmuls(const MatmulOutput (&outputs)[N], const kernels::MatmulInput& x,
                      int threads) {
  parallel_matmuls(outputs, matmul_kernels(outputs, x), x, threads);
}

inline void parallel_matmul(const kernels::WeightMatrix& w, const kernels::MatmulInput& x, float* y,
                            int threads) {
  parallel_matmuls({{w, y}}, x, threads);
}

// Row `token` of an embedding matrix of any type (unpacked), as f32.
void embedding_row(const kernels::WeightMatrix& embedding, int32_t token, float* out);

}  // namespace brise
