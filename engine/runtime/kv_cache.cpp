#include "engine/runtime/kv_cache.hpp"

#include <algorithm>

#include "engine/gguf/tensor_encoding.hpp"

namespace brise {

KVCache::KVCache(std::vector<uint32_t> max_slots, uint32_t kv_dim, TensorType type)
    : type_(&type_traits(type)), row_bytes_(size_t{kv_dim} * type_->block_bytes) {
  for (const uint32_t slots : max_slots) layers_.push_back({slots, 0, {}, {}});
}

void KVCache::reserve(uint64_t end) {
  for (Ring& ring : layers_) {
    const uint64_t needed = std::min<uint64_t>(end, ring.max_slots);
    if (needed <= ring.allocated_slots) continue;
    // Grow geometrically; positions below allocated_slots keep their slots (slot = pos until the
    // ring is full, and it only wraps once all max_slots exist).
    const uint64_t grown = std::max<uint64_t>(
        needed, std::min<uint64_t>(ring.max_slots, uint64_t{ring.allocated_slots} * 2));
    ring.allocated_slots = static_cast<uint32_t>(grown);
    ring.keys.resize(ring.allocated_slots * row_bytes_);
    ring.values.resize(ring.allocated_slots * row_bytes_);
  }
}

uint32_t KVCache::largest_max_slots() const {
  uint32_t most = 0;
  for (const Ring& ring : layers_) most = std::max(most, ring.max_slots);
  return most;
}

uint64_t KVCache::allocated_bytes() const {
  uint64_t total = 0;
  for (const Ring& ring : layers_) total += uint64_t{ring.allocated_slots} * row_bytes_ * 2;
  return total;
}

}  // namespace brise
