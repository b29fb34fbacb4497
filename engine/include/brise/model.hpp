// A loaded model: hyperparameters, tokenizer and weights memory-mapped from a GGUF file.
// Immutable after load and safe to share between threads and sessions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "brise/model_config.hpp"
#include "brise/tensor_type.hpp"
#include "brise/tokenizer.hpp"

namespace brise {

namespace gguf {
class File;
}

// A weight matrix in the file: `rows` rows of `cols` elements of `type` (GGUF dims [cols, rows]).
struct WeightView {
  const void* data = nullptr;
  TensorType type = TensorType::F32;
  uint32_t rows = 0;
  uint32_t cols = 0;
  uint64_t row_bytes = 0;
  uint64_t bytes() const { return row_bytes * rows; }
};

struct LayerWeights {
  const float* attention_norm = nullptr;  // [dim]
  WeightView wq, wk, wv, wo;              // [q_dim x dim], [kv_dim x dim] x2, [dim x q_dim]
  const float* ffn_norm = nullptr;        // [dim]
  WeightView w1, w2, w3;  // gate [hidden x dim], down [dim x hidden], up [hidden x dim]
};

class Model {
 public:
  // Maps the file, reads the hyperparameters and tokenizer, and checks that every tensor of the
  // architecture is present with the right shape and a supported type. Throws brise::Error
  // naming the file and the problem.
  static std::shared_ptr<const Model> load(const std::filesystem::path& path);

  const ModelConfig& config() const { return config_; }
  // Throws brise::Error when the file holds no tokenizer.
  const Tokenizer& tokenizer() const;
  bool has_tokenizer() const { return tokenizer_ != nullptr; }
  const gguf::File& file() const { return *file_; }

  const WeightView& token_embedding() const { return token_embd_; }  // [vocab x dim]
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const float* output_norm() const { return output_norm_; }  // [dim]
  const WeightView& output() const { return output_; }       // [vocab x dim]
  bool tied_embeddings() const { return tied_; }

  // Reads every page of the weights once (from disk into the page cache), calling
  // progress(bytes_done, bytes_total) along the way, so that the first tokens do not pay for the
  // disk and a terminal can show how loading goes. Optional: weights are paged in on demand
  // otherwise.
  void prefetch(const std::function<void(uint64_t, uint64_t)>& progress = {}) const;

  // Bytes of weights read to decode one token: every layer matrix, the norms, the classifier
  // and one embedding row.
  uint64_t weight_bytes_per_token() const;

 private:
  Model() = default;
  std::shared_ptr<const gguf::File> file_;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  WeightView token_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<LayerWeights> layers_;
  bool tied_ = false;
};

}  // namespace brise
