// Hyperparameters of a Mistral-architecture model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

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
  uint32_t head_dim = 0;    // attention.key_length (= dim / n_heads unless stated)
  uint32_t hidden_dim = 0;  // feed_forward_length (intermediate_size)
  uint32_t vocab_size = 0;
  uint32_t context_length = 0;
  float norm_eps = 1e-5f;
  double rope_theta = 10000.0;
  // Mistral's sliding window W: query i attends keys j with i - W < j <= i. nullopt = full.
  std::optional<uint32_t> sliding_window;

  uint32_t group_size() const { return n_heads / n_kv_heads; }
  uint32_t q_dim() const { return n_heads * head_dim; }
  uint32_t kv_dim() const { return n_kv_heads * head_dim; }

  // Throws brise::Error "<where>: <problem>" for zero sizes, heads that do not divide, absurd
  // values (sizes beyond what any file could hold), non-finite eps/theta.
  void validate(const std::string& where) const;
};

// llama.* metadata keys as llama.cpp writes them, plus brise.attention.sliding_window.
ModelConfig read_model_config(const gguf::File& file);
void write_model_config(gguf::Writer& writer, const ModelConfig& config);

}  // namespace brise
