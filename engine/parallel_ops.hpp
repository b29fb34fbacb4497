// Model-level building blocks that decide threading around the pure kernels.
#pragma once

#include <cstddef>
#include <initializer_list>

#include "brise/model.hpp"

namespace brise {

// Threads worth waking for `work` multiply-adds: forking a team costs microseconds, so small
// operations (tiny models, single tokens of small matrices) run on the calling thread.
int team_size(size_t work, int threads);

// One product of a parallel_matmuls call: y[t][r] = W[r] . x[t], y holding W.rows per token.
struct MatmulOutput {
  const WeightView& w;
  float* y;
};

// The products of several matrices with one input x of n tokens (wq, wk, wv; w1, w3) as one
// parallel loop over pieces of their rows taken one after the other: no barrier between the
// matrices, and a thread that falls behind (a shared machine) is made up for by the others taking
// more pieces. The kernel sums every dot product the same way whatever rows it is given, so the
// result depends neither on the thread count nor on which thread took which piece.
void parallel_matmuls(std::initializer_list<MatmulOutput> outputs, const float* x, size_t n_tokens,
                      int threads);

inline void parallel_matmul(const WeightView& w, const float* x, size_t n_tokens, float* y,
                            int threads) {
  parallel_matmuls({{w, y}}, x, n_tokens, threads);
}

// Row `token` of an embedding matrix of any type, as f32.
void embedding_row(const WeightView& embedding, int32_t token, float* out);

}  // namespace brise
