// A model checkpoint folder in the Hugging Face layout (config.json + model*.safetensors,
// optionally sharded with model.safetensors.index.json) or Mistral's native layout (params.json +
// consolidated.safetensors), opened without copying any weights. Of a model with a vision encoder
// (Hugging Face's Mistral3ForConditionalGeneration, a params.json with vision_encoder) the text
// model is read.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "brise/model_config.hpp"
#include "engine/convert/safetensors.hpp"

namespace brise {

enum class CheckpointLayout { HuggingFace, MistralNative };

// One weight of the model, in GGUF naming, with where it comes from in the checkpoint.
struct CheckpointWeight {
  std::string gguf_name;  // e.g. "blk.3.attn_q.weight"
  const SafetensorsTensor* source = nullptr;
  std::vector<uint64_t> shape;  // PyTorch order, as the architecture requires it
  // Hugging Face q_proj/k_proj rows are permuted for rotate-half RoPE; > 0 means "un-permute
  // back to interleaved pairs with this many heads".
  uint32_t unpermute_heads = 0;
  bool is_norm = false;  // norm weights are always stored as f32
};

struct Checkpoint {
  std::filesystem::path dir;
  CheckpointLayout layout = CheckpointLayout::HuggingFace;
  ModelConfig config;
  bool tied_embeddings = false;        // the classifier reuses the token embedding
  TensorType dtype = TensorType::F32;  // dtype of the checkpoint's matrices
  std::vector<std::filesystem::path> weight_files;
  std::vector<std::string> notes;         // what the conversion leaves out (a vision encoder)
  std::vector<CheckpointWeight> weights;  // in GGUF order

  std::vector<std::unique_ptr<SafetensorsFile>> files;
};

// True when `p` is a regular file (false on any error: a checkpoint's optional files).
bool is_file(const std::filesystem::path& p);

// Reads the config and every safetensors header, then checks that exactly the tensors of the
// architecture are present with the right shapes. Throws brise::Error naming the file and the
// problem: missing files or tensors, unexpected tensors, shape mismatches, unknown dtypes,
// inconsistent config.
Checkpoint open_checkpoint(const std::filesystem::path& dir);

// The config alone (config.json or params.json), for checking configs without weights.
ModelConfig read_checkpoint_config(const std::filesystem::path& dir, CheckpointLayout* layout,
                                   bool* tied_embeddings);

}  // namespace brise
