// A model's weights as the forward pass reads them (internal to the engine). The matrices are
// copies owned here (packed for the kernels where the kernel set packs the type:
// kernels/matmul.hpp), made at load on 2 MiB pages, after which their pages in the file's mapping
// are released; the embedding and the norms are read from the mapping.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <vector>

#include "brise/model.hpp"
#include "kernels/matmul.hpp"

namespace brise {

struct LayerWeights {
  const float* attention_norm = nullptr;  // [dim]
  kernels::WeightMatrix wq, wk, wv, wo;   // [q_dim x dim], [kv_dim x dim] x2, [dim x q_dim]
  const float* ffn_norm = nullptr;        // [dim]
  kernels::WeightMatrix w1, w2, w3;  // gate [hidden x dim], down [dim x hidden], up [hidden x dim]
};

struct ModelWeights {
  kernels::WeightMatrix token_embedding;  // [vocab x dim], as stored (rows are looked up)
  std::vector<LayerWeights> layers;
  const float* output_norm = nullptr;  // [dim]
  kernels::WeightMatrix output;        // [vocab x dim]
  bool tied = false;                   // output is token_embedding (packed separately if quantized)

  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<std::byte, FreeDeleter>> packed;  // the matrices' copies
  std::vector<const void*> released;  // tensors (data in the mapping) no longer read from it

  // Every matrix the forward pass multiplies with (the classifier last).
  std::vector<kernels::WeightMatrix*> matrices();
  std::vector<const kernels::WeightMatrix*> matrices() const;
};

// The weights of a loaded model (the forward pass's view; Model keeps them private).
inline const ModelWeights& model_weights(const Model& model) {
  return *model.weights_;
}

}  // namespace brise
