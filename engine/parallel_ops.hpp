// Model-level building blocks that decide threading around the pure kernels.
#pragma once

#include <cstddef>

#include "brise/model.hpp"

namespace brise {

// Threads worth waking for `work` multiply-adds: forking a team costs microseconds, so small
// operations (tiny models, single tokens of small matrices) run on the calling thread.
int team_size(size_t work, int threads);

// y[t][r] = W[r] . x[t] for n tokens, rows split across `threads` OpenMP threads in contiguous
// ranges. The kernel sums every dot product the same way whatever the split, so the result does
// not depend on the thread count.
void parallel_matmul(const WeightView& w, const float* x, size_t n_tokens, float* y, int threads);

// Row `token` of an embedding matrix of any type, as f32.
void embedding_row(const WeightView& embedding, int32_t token, float* out);

}  // namespace brise
