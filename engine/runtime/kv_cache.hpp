// Keys (after RoPE) and values of past positions, per layer, each layer in a rolling buffer of
// its own, in blocks of kernels::kKVBlock positions of one KV head (the layout of
// kernels/attention.hpp): position p lives in block p / kKVBlock, slot p mod kKVBlock, and block b
// in ring block b mod (ring_slots / kKVBlock). A layer with a sliding window W holds at least W
// positions (max_slots, what a rewind may count on), stored as W rounded up to whole blocks
// (ring_slots), so its memory never grows past them; a full-attention layer one slot per
// position of the context (model_config.hpp, kv_cache_slots). Blocks are allocated as positions
// arrive (doubling), so a short conversation with a long context does not commit memory it never
// uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "brise/tensor_type.hpp"
#include "kernels/attention.hpp"
#include "kernels/type_traits.hpp"

namespace brise {

// 64-byte aligned bytes (whole cache lines for the kernels' vector loads), zeroed when they grow;
// growing keeps the old contents.
class BlockBuffer {
 public:
  void grow(size_t bytes);
  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, Free> data_;
  size_t size_ = 0;
};

class KVCache {
 public:
  // max_slots: positions each layer's ring holds at least. type: f32, f16 or q8_0
  // (kernels::kv_block_supports).
  KVCache(std::vector<uint32_t> max_slots, uint32_t n_kv_heads, uint32_t head_dim, TensorType type);

  // A cache of the same layout (same_layout) holding nothing yet.
  KVCache empty_like() const;

  // Makes room for positions [0, end) in every layer (up to its max_slots).
  void reserve(uint64_t end);

  uint32_t n_layers() const { return static_cast<uint32_t>(layers_.size()); }
  uint32_t max_slots(uint32_t layer) const { return layers_[layer].slots; }
  // Positions the ring stores: max_slots rounded up to whole blocks.
  uint64_t ring_slots(uint32_t layer) const { return uint64_t{layers_[layer].max_blocks} * kBlock; }
  // The most slots of any layer: the positions the largest ring holds.
  uint32_t largest_max_slots() const;
  const kernels::TypeTraits& type() const { return *type_; }
  uint32_t n_kv_heads() const { return n_kv_heads_; }
  uint32_t head_dim() const { return head_dim_; }
  // Bytes of one block of one head.
  size_t block_bytes() const { return block_bytes_; }

  // The block of `head` holding positions [b * kKVBlock, (b + 1) * kKVBlock) of `layer` (its ring
  // block; positions that were reserved).
  std::byte* block(uint32_t layer, uint64_t b, uint32_t head) {
    return layers_[layer].data.data() + offset(layer, b, head);
  }
  const std::byte* block(uint32_t layer, uint64_t b, uint32_t head) const {
    return layers_[layer].data.data() + offset(layer, b, head);
  }

  uint64_t allocated_bytes() const;
  // Bytes once every ring is whole: the most this cache ever allocates.
  uint64_t full_bytes() const;
  // Allocates every ring whole now (what reserve() would reach at the end of the context).
  void reserve_all();

  // Whether `other` stores the same positions in the same blocks (type, heads, every ring).
  bool same_layout(const KVCache& other) const;
  // After `held` positions were written, the oldest position layer `layer`'s ring still holds
  // (a ring of max_slots positions has overwritten the ones before).
  uint64_t oldest_held(uint32_t layer, uint64_t held) const {
    const uint64_t slots = max_slots(layer);
    return held > slots ? held - slots : 0;
  }
  // Makes this cache hold positions [0, count) as `from` (same_layout) holds them, in every
  // layer's ring: the ring blocks of the last ring_slots of those positions, copied whole (a
  // slot past `count` is never read before it is written again).
  void copy_positions(const KVCache& from, uint64_t count);

 private:
  static constexpr uint32_t kBlock = kernels::kKVBlock;
  struct Ring {
    uint32_t slots = 0;
    uint32_t max_blocks = 0;
    uint32_t allocated_blocks = 0;
    BlockBuffer data;  // [ring block][head] blocks
  };
  struct Shape {};
  KVCache(const KVCache& shape, Shape);  // empty_like
  size_t offset(uint32_t layer, uint64_t b, uint32_t head) const {
    const uint64_t ring_block = b % layers_[layer].max_blocks;
    return (ring_block * n_kv_heads_ + head) * block_bytes_;
  }

  const kernels::TypeTraits* type_;
  uint32_t n_kv_heads_, head_dim_;
  size_t block_bytes_;
  std::vector<Ring> layers_;
};

}  // namespace brise
