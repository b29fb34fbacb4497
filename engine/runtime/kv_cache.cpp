#include "engine/runtime/kv_cache.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "engine/gguf/tensor_encoding.hpp"
#include "engine/runtime/huge_pages.hpp"

namespace brise {

void BlockBuffer::Free::operator()(std::byte* p) const {
  std::free(p);
}

void BlockBuffer::grow(size_t bytes) {
  if (bytes <= size_) return;
  // Decode at depth reads every block of the ring once per token: on 2 MiB pages (where the
  // kernel grants them) it crosses 512 times fewer pages than on 4 KiB ones, and so walks the
  // page tables that much less often (the matrices' reason too, huge_pages.hpp).
  const size_t rounded = huge_page_allocation_bytes(bytes);
  auto* p = static_cast<std::byte*>(allocate_on_huge_pages(bytes));
  if (!p) throw std::bad_alloc();
  if (size_) std::memcpy(p, data_.get(), size_);
  std::memset(p + size_, 0, rounded - size_);
  data_.reset(p);
  size_ = bytes;
}

KVCache::KVCache(std::vector<uint32_t> max_slots, uint32_t n_kv_heads, uint32_t head_dim,
                 TensorType type)
    : type_(&type_traits(type)),
      n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      block_bytes_(kernels::kv_block_bytes(*type_, head_dim)) {
  for (const uint32_t slots : max_slots) {
    Ring ring;
    ring.slots = slots;
    ring.max_blocks = std::max<uint32_t>(1, (slots + kBlock - 1) / kBlock);
    layers_.push_back(std::move(ring));
  }
}

KVCache KVCache::empty_like() const {
  KVCache c(*this, Shape{});
  return c;
}

KVCache::KVCache(const KVCache& shape, Shape)
    : type_(shape.type_),
      n_kv_heads_(shape.n_kv_heads_),
      head_dim_(shape.head_dim_),
      block_bytes_(shape.block_bytes_) {
  for (const Ring& r : shape.layers_) {
    Ring ring;
    ring.slots = r.slots;
    ring.max_blocks = r.max_blocks;
    layers_.push_back(std::move(ring));
  }
}

void KVCache::reserve(uint64_t end) {
  const uint64_t blocks = (end + kBlock - 1) / kBlock;
  for (Ring& ring : layers_) {
    const uint64_t needed = std::min<uint64_t>(blocks, ring.max_blocks);
    if (needed <= ring.allocated_blocks) continue;
    // Grow geometrically; blocks below allocated_blocks keep their place (ring block = block
    // until the ring is full, and it only wraps once all max_blocks exist).
    const uint64_t grown = std::max<uint64_t>(
        needed, std::min<uint64_t>(ring.max_blocks, uint64_t{ring.allocated_blocks} * 2));
    ring.allocated_blocks = static_cast<uint32_t>(grown);
    ring.data.grow(grown * n_kv_heads_ * block_bytes_);
  }
}

uint32_t KVCache::largest_max_slots() const {
  uint32_t most = 0;
  for (uint32_t l = 0; l < n_layers(); ++l) most = std::max(most, max_slots(l));
  return most;
}

uint64_t KVCache::full_bytes() const {
  uint64_t total = 0;
  for (const Ring& ring : layers_) total += uint64_t{ring.max_blocks} * n_kv_heads_ * block_bytes_;
  return total;
}

void KVCache::reserve_all() {
  uint64_t largest = 0;
  for (uint32_t l = 0; l < n_layers(); ++l) largest = std::max(largest, ring_slots(l));
  reserve(largest);
}

uint64_t KVCache::allocated_bytes() const {
  uint64_t total = 0;
  for (const Ring& ring : layers_)
    total += uint64_t{ring.allocated_blocks} * n_kv_heads_ * block_bytes_;
  return total;
}

bool KVCache::same_layout(const KVCache& other) const {
  if (type_ != other.type_ || n_kv_heads_ != other.n_kv_heads_ || head_dim_ != other.head_dim_ ||
      layers_.size() != other.layers_.size())
    return false;
  for (size_t l = 0; l < layers_.size(); ++l)
    if (layers_[l].slots != other.layers_[l].slots) return false;
  return true;
}

void KVCache::copy_positions(const KVCache& from, uint64_t count) {
  reserve(count);
  for (uint32_t l = 0; l < n_layers(); ++l) {
    const uint64_t ring = ring_slots(l);
    const uint64_t first = count > ring ? count - ring : 0;
    for (uint64_t b = first / kBlock; b * kBlock < count; ++b)
      for (uint32_t h = 0; h < n_kv_heads_; ++h)
        std::memcpy(block(l, b, h), from.block(l, b, h), block_bytes_);
  }
}

}  // namespace brise
