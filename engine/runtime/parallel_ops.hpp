// Model-level building blocks that decide threading around the pure kernels.
#pragma once

#include <atomic>
#include <cstddef>
#include <initializer_list>
#include <optional>

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

// A matmul input: n_tokens rows of f32 activations (row t at f32 + t * cols), and, when set, the
// same rows quantized to int8 (kernels::quantize_activations: `q8` for the types of 32-element
// blocks, `q8k` for those of 256, the K-quants), which quantized matrices are multiplied with;
// without them they are multiplied with the f32 rows (the exact mode).
struct MatmulInput {
  const float* f32 = nullptr;
  size_t n_tokens = 0;
  std::optional<kernels::Q8Activations> q8;
  std::optional<kernels::Q8KActivations> q8k;
};

// The products of several matrices with one input of n tokens (wq, wk, wv; w1, w3) as one
// parallel loop over pieces of their rows taken one after the other: no barrier between the
// matrices, and a thread that falls behind (a shared machine) is made up for by the others taking
// more pieces. The kernels sum every dot product the same way whatever rows they are given, so
// the result depends neither on the thread count nor on which thread took which piece.
//
// team_matmuls is that loop as every thread of an OpenMP team runs it (the forward pass's team):
// pieces are taken from `next` (0 before the first thread starts, shared by the team); it returns
// when no piece is left, without waiting for the other threads. parallel_matmuls starts a team.
void team_matmuls(std::initializer_list<MatmulOutput> outputs, const MatmulInput& x,
                  std::atomic<size_t>& next);
void parallel_matmuls(std::initializer_list<MatmulOutput> outputs, const MatmulInput& x,
                      int threads);

inline void parallel_matmul(const kernels::WeightMatrix& w, const MatmulInput& x, float* y,
                            int threads) {
  parallel_matmuls({{w, y}}, x, threads);
}

// Row `token` of an embedding matrix of any type (unpacked), as f32.
void embedding_row(const kernels::WeightMatrix& embedding, int32_t token, float* out);

}  // namespace brise
