// Keys (after RoPE) and values of past positions, per layer, each layer in a rolling buffer of
// its own: position p lives in slot p mod max_slots(layer). A layer with a sliding window W has
// max_slots = W, so its memory never exceeds W positions; a full-attention layer has one slot
// per position of the context (model_config.hpp, kv_cache_slots). Slots are allocated as
// positions arrive (doubling), so a short conversation with a long context does not commit
// memory it never uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "brise/tensor_type.hpp"
#include "kernels/attention.hpp"
#include "kernels/type_traits.hpp"

namespace brise {

class KVCache {
 public:
  // max_slots: of each layer. type: f32 or f16.
  KVCache(std::vector<uint32_t> max_slots, uint32_t kv_dim, TensorType type);

  // Makes room for positions [0, end) in every layer (up to its max_slots).
  void reserve(uint64_t end);

  uint32_t n_layers() const { return static_cast<uint32_t>(layers_.size()); }
  uint32_t max_slots(uint32_t layer) const { return layers_[layer].max_slots; }
  // The most slots of any layer: the positions the largest ring holds.
  uint32_t largest_max_slots() const;
  uint32_t slot(uint32_t layer, uint64_t pos) const {
    return static_cast<uint32_t>(pos % layers_[layer].max_slots);
  }
  size_t element_bytes() const { return type_->block_bytes; }
  size_t row_bytes() const { return row_bytes_; }
  const kernels::TypeTraits& type() const { return *type_; }

  // Row of kv_dim elements for `slot` of `layer`.
  std::byte* key(uint32_t layer, uint32_t slot) { return row(layers_[layer].keys, slot); }
  std::byte* value(uint32_t layer, uint32_t slot) { return row(layers_[layer].values, slot); }
  const std::byte* key(uint32_t layer, uint32_t slot) const {
    return crow(layers_[layer].keys, slot);
  }
  const std::byte* value(uint32_t layer, uint32_t slot) const {
    return crow(layers_[layer].values, slot);
  }

  uint64_t allocated_bytes() const;

 private:
  struct Ring {
    uint32_t max_slots = 0;
    uint32_t allocated_slots = 0;
    std::vector<std::byte> keys, values;
  };
  std::byte* row(std::vector<std::byte>& v, uint32_t slot) { return v.data() + slot * row_bytes_; }
  const std::byte* crow(const std::vector<std::byte>& v, uint32_t slot) const {
    return v.data() + slot * row_bytes_;
  }

  const kernels::TypeTraits* type_;
  size_t row_bytes_;
  std::vector<Ring> layers_;
};

}  // namespace brise
