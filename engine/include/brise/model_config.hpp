// Hyperparameters of a Mistral-architecture model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "brise/tensor_type.hpp"

namespace brise {

namespace gguf {
class File;
class Writer;
}  // namespace gguf

struct ModelConfig {
  std::string name;
  uint32_t dim = 0;         // embedding_length (hidden_size)
  uint32_t n_layers = 0;    // block_count
  uint32_t n_heads = 0;     // attention.head_count
  uint32_t n_kv_heads = 0;  // attention.head_count_kv
  // attention.key_length (= value_length), dim / n_heads unless stated. Mistral Nemo and Small 3
  // have dim 5120 and 32 heads of 128: wq is [n_heads * head_dim, dim], wo [dim, n_heads *
  // head_dim].
  uint32_t head_dim = 0;
  uint32_t hidden_dim = 0;  // feed_forward_length (intermediate_size)
  uint32_t vocab_size = 0;
  uint32_t context_length = 0;
  float norm_eps = 1e-5f;
  double rope_theta = 10000.0;
  // Mistral's sliding window W: on a windowed layer, query i attends keys j with
  // i - W < j <= i. nullopt = full attention on every layer.
  std::optional<uint32_t> sliding_window;
  // Which layers use the window (Ministral 8B interleaves windowed and full-attention layers):
  // one entry per layer, true = windowed, false = full attention, as llama.cpp's
  // llama.attention.sliding_window_pattern. Empty: every layer uses sliding_window. Needs a
  // sliding_window (validate()).
  std::vector<bool> sliding_window_pattern;

  uint32_t group_size() const { return n_heads / n_kv_heads; }
  uint32_t q_dim() const { return n_heads * head_dim; }
  uint32_t kv_dim() const { return n_kv_heads * head_dim; }

  // The window of each layer (nullopt = full attention).
  std::vector<std::optional<uint32_t>> layer_windows() const;
  // What `--sliding-window` does: nullopt = full attention on every layer (the pattern is
  // dropped); W = the window of the windowed layers, or of every layer when the model has no
  // pattern.
  void override_sliding_window(std::optional<uint32_t> window);

  // Throws brise::Error "<where>: <problem>" for zero sizes, heads that do not divide, absurd
  // values (sizes beyond what any file could hold), non-finite eps/theta, a window pattern
  // without a window or whose length is not n_layers.
  void validate(const std::string& where) const;
};

// Positions each layer's KV cache holds in a session of at most `context` positions: a
// full-attention layer the context; a windowed layer its window W (a ring: slot = position mod
// W), or min(W, context) when a full-attention layer bounds the session to the context anyway.
// When every layer is windowed the session has no position limit and each ring holds W.
std::vector<uint32_t> kv_cache_slots(const std::vector<std::optional<uint32_t>>& windows,
                                     uint32_t context);
// True when some layer attends to every earlier position: the session is then limited to its
// context length.
bool has_full_attention_layer(const std::vector<std::optional<uint32_t>>& windows);
// Bytes of keys and values of those slots in a cache of `type` (f32, f16 or q8_0): each layer
// stores its slots rounded up to whole blocks of 32 positions (the attention kernels' unit), each
// position's keys and values of every KV head in the type (q8_0: 34 bytes per 32 values).
uint64_t kv_cache_bytes(const ModelConfig& config, const std::vector<uint32_t>& slots,
                        TensorType type);

// llama.* metadata keys as llama.cpp writes them. The window: brise.attention.sliding_window
// (every layer), or llama.attention.sliding_window with llama.attention.sliding_window_pattern
// (llama.cpp's per-layer form: an array of one bool per layer) or alone (every layer).
ModelConfig read_model_config(const gguf::File& file);
// Writes a window without pattern as brise.attention.sliding_window, a pattern in llama.cpp's
// per-layer form.
void write_model_config(gguf::Writer& writer, const ModelConfig& config);

}  // namespace brise
