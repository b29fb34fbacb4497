#include "engine/runtime/kv_cache.hpp"

#include <algorithm>

#include "engine/gguf/tensor_encoding.hpp"

namespace brise {

KVCache::KVCache(uint32_t n_layers, uint32_t kv_dim, uint32_t max_slots, TensorType type)
    : max_slots_(max_slots),
      type_(&type_traits(type)),
      row_bytes_(size_t{kv_dim} * type_->block_bytes),
      keys_(n_layers),
      values_(n_layers) {}

void KVCache::reserve(uint64_t end) {
  const uint64_t needed = std::min<uint64_t>(end, max_slots_);
  if (needed <= allocated_slots_) return;
  // Grow geometrically; positions below allocated_slots_ keep their slots (slot = pos until the
  // buffer is full, and it only wraps once all max_slots exist).
  const uint64_t grown =
      std::max<uint64_t>(needed, std::min<uint64_t>(max_slots_, uint64_t{allocated_slots_} * 2));
  allocated_slots_ = static_cast<uint32_t>(grown);
  for (auto& k : keys_) k.resize(allocated_slots_ * row_bytes_);
  for (auto& v : values_) v.resize(allocated_slots_ * row_bytes_);
}

uint64_t KVCache::allocated_bytes() const {
  return uint64_t{allocated_slots_} * row_bytes_ * 2 * keys_.size();
}

}  // namespace brise
