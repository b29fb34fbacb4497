// Attention of a group of query heads that share one KV head (grouped-query attention), over a
// sequence of cached key/value rows, with an online (running max) softmax.
#pragma once

#include <cstddef>
#include <span>

#include "kernels/type_traits.hpp"

namespace brise::kernels {

// `count` consecutive key positions: key i at k + i * row_stride, value i at v + i * row_stride
// (elements of the view's type; each row holds head_dim values).
struct KVSegment {
  const void* k = nullptr;
  const void* v = nullptr;
  size_t count = 0;
};

// The keys one query attends to, oldest first, as up to a few contiguous segments (a rolling
// cache wraps; the chunk being prefilled lives in its own buffer).
struct KVView {
  const TypeTraits* type = nullptr;  // f32 or f16 (the engine checks; anything else reads as f32)
  size_t head_dim = 0;
  size_t row_stride = 0;  // elements between consecutive rows of a segment
  std::span<const KVSegment> segments;
};

// For each of the `group` query heads g (q + g * q_stride):
//   out[g] = sum_j softmax_j(scale * q[g] . k_j) v_j   over all keys of `kv` in order.
// Reads each K and V row once for the whole group. Keys are processed in tiles of kAttentionTile
// counted from the first key of the view, so the result depends only on the sequence of keys,
// never on how it is split into segments (bit-identical). No heap allocation.
// Preconditions: at least one key (an empty view is a caller bug; it yields zeros); `out` does
// not overlap `q` or the KV rows (it is used as the accumulator); row_stride >= head_dim.
// Up to 8 heads share each pass over a tile's rows; up to 64 heads share one pass over the keys
// (a larger group re-reads the keys once per 64 heads).
void attention(const float* q, size_t q_stride, size_t group, const KVView& kv, float scale,
               float* out, size_t out_stride);
// Scalar reference: scores, plain softmax, weighted sum.
void attention_ref(const float* q, size_t q_stride, size_t group, const KVView& kv, float scale,
                   float* out, size_t out_stride);

inline constexpr size_t kAttentionTile = 32;

}  // namespace brise::kernels
