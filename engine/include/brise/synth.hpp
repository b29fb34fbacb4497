// Synthetic models: random weights in real Mistral shapes, written straight to GGUF. They let the
// engine be run, tested and benchmarked at full size without downloading a checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "brise/model_config.hpp"
#include "brise/tensor_type.hpp"
#include "brise/tokenizer.hpp"
#include "brise/write_progress.hpp"

namespace brise {

struct SynthSpec {
  ModelConfig config;
  TensorType type = TensorType::F16;  // of the matrices; norm weights are always f32
  uint64_t seed = 1;
  bool tied_embeddings = false;  // true: no output.weight (the classifier is token_embd.weight)
};

// "mistral-7b" (Mistral 7B v0.1/v0.3 shapes without the window), "mistral-1b" (a 1B-class model
// with Mistral's head layout) or "tiny" (a few hundred kB, for tests). Throws brise::Error
// otherwise.
SynthSpec synth_preset(std::string_view name);
std::vector<std::string_view> synth_preset_names();

// A SentencePiece-style byte-fallback vocabulary of `size` pieces: <unk>=0, <s>=1, </s>=2,
// <0x00>..<0xFF> (ids 3..258), then "▁", and letter strings ("▁a", "a", "▁b", ..., "▁aa", ...)
// with decreasing scores. Throws brise::Error when size < 260.
Vocabulary synthetic_vocabulary(uint32_t size);

// Writes the model to `out` (through a temporary file renamed at the end: on error nothing is left
// at `out`). Weights are uniform random, row r of tensor i drawn from a counter-based generator
// keyed by (seed, i, r): the same spec gives the same bytes whatever the thread count. The scales
// keep activations O(1) through the layers; `progress` follows the writing. Throws brise::Error
// for an invalid config, a vocabulary below 260, or row lengths that are not whole blocks of the
// type.
void write_synthetic_model(const std::filesystem::path& out, const SynthSpec& spec,
                           const WriteProgressCallback& progress = {});

}  // namespace brise
