// Keys (after RoPE) and values of past positions, per layer, in a rolling buffer:
// position p lives in slot p mod max_slots. For a sliding window W, max_slots = W, so memory
// never exceeds W positions; for full attention max_slots is the context length. Slots are
// allocated as positions arrive (doubling), so a short conversation with a long context does
// not commit memory it never uses.
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
  // type: f32 or f16.
  KVCache(uint32_t n_layers, uint32_t kv_dim, uint32_t max_slots, TensorType type);

  // Makes room for positions [0, end) (up to max_slots).
  void reserve(uint64_t end);

  uint32_t max_slots() const { return max_slots_; }
  uint32_t slot(uint64_t pos) const { return static_cast<uint32_t>(pos % max_slots_); }
  size_t element_bytes() const { return type_->block_bytes; }
  const kernels::TypeTraits& type() const { return *type_; }

  // Row of kv_dim elements for `slot` of `layer`.
  std::byte* key(uint32_t layer, uint32_t slot) { return row(keys_[layer], slot); }
  std::byte* value(uint32_t layer, uint32_t slot) { return row(values_[layer], slot); }
  const std::byte* key(uint32_t layer, uint32_t slot) const { return crow(keys_[layer], slot); }
  const std::byte* value(uint32_t layer, uint32_t slot) const { return crow(values_[layer], slot); }

  uint64_t allocated_bytes() const;
  uint32_t allocated_slots() const { return allocated_slots_; }

 private:
  std::byte* row(std::vector<std::byte>& v, uint32_t slot) { return v.data() + slot * row_bytes_; }
  const std::byte* crow(const std::vector<std::byte>& v, uint32_t slot) const {
    return v.data() + slot * row_bytes_;
  }

  uint32_t max_slots_;
  const kernels::TypeTraits* type_;
  size_t row_bytes_;
  uint32_t allocated_slots_ = 0;
  std::vector<std::vector<std::byte>> keys_, values_;
};

}  // namespace brise
