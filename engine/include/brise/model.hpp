// A loaded model: hyperparameters, tokenizer and weights memory-mapped from a GGUF file.
// Immutable after load and safe to share between threads and sessions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "brise/model_config.hpp"
#include "brise/tensor_type.hpp"
#include "brise/tokenizer.hpp"

namespace brise {

namespace gguf {
class File;
}

// The weights as the forward pass reads them (engine/runtime/model_weights.hpp, internal).
struct ModelWeights;

// A matrix the forward pass multiplies with, where it reads it: packed copies made at load or the
// file's mapping. For memory accounting and benchmarks (bytes read per token, FLOPs per token).
struct MatrixView {
  TensorType type;
  uint64_t rows = 0;
  uint64_t cols = 0;
  std::span<const std::byte> bytes;
};

class Model {
 public:
  // Maps the file, reads the hyperparameters and tokenizer, and checks that every tensor of the
  // architecture is present with the right shape and a supported type. The matrices are copied
  // into memory of their own on 2 MiB pages, packed for the kernels where the kernel set packs the
  // type (as large as in the file; their pages of the mapping
  // are then released, so resident memory stays about the file's size), calling
  // progress(bytes_done, bytes_total) along the way if given; the embedding and the norms stay
  // mapped. Throws brise::Error naming the file and the problem.
  static std::shared_ptr<const Model> load(
      const std::filesystem::path& path,
      const std::function<void(uint64_t, uint64_t)>& progress = {});
  ~Model();

  const ModelConfig& config() const { return config_; }
  // Throws brise::Error when the file holds no tokenizer.
  const Tokenizer& tokenizer() const;
  bool has_tokenizer() const { return tokenizer_ != nullptr; }
  const gguf::File& file() const { return *file_; }

  bool tied_embeddings() const;
  // Every matrix the forward pass multiplies with (the classifier last).
  std::vector<MatrixView> matrices() const;

  // Reads every page of the mapped weights once (from disk into the page cache), calling
  // progress(bytes_done, bytes_total) along the way, so that the first tokens do not pay for the
  // disk and a terminal can show how loading goes. Optional: weights are paged in on demand
  // otherwise.
  void prefetch(const std::function<void(uint64_t, uint64_t)>& progress = {}) const;

  // Bytes of weights read to decode one token: every layer matrix, the norms, the classifier
  // and one embedding row.
  uint64_t weight_bytes_per_token() const;

 private:
  friend const ModelWeights& model_weights(const Model& model);
  Model() = default;
  std::shared_ptr<const gguf::File> file_;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ModelWeights> weights_;
};

}  // namespace brise
