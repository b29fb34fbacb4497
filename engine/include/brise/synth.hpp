// Synthetic models: random weights in real Mistral shapes, written straight to GGUF. They let the
// engine be run, tested and benchmarked at full size without downloading a checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "brise/gguf.hpp"
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
  // The vocabulary written: synthetic_vocabulary or synthetic_tekken_vocabulary.
  TokenizerModel vocabulary = TokenizerModel::SentencePiece;
};

// Real shapes (from the models' published params.json / config.json):
//   "mistral-7b"        Mistral 7B v0.1/v0.3 without the window: dim 4096, 32 layers, 32/8 heads
//                       of 128, ffn 14336, vocab 32000, context 32768, RoPE theta 1e6
//   "mistral-nemo-12b"  Mistral Nemo 12B (2407): dim 5120, 40 layers, 32/8 heads of 128 (q_dim
//                       4096 != dim), ffn 14336, vocab 131072, context 131072, theta 1e6
//   "mistral-small-24b" Mistral Small 3.1/3.2 24B (2503/2506, the text model): dim 5120, 40
//                       layers, 32/8 heads of 128, ffn 32768, vocab 131072, context 131072,
//                       theta 1e9
//   "ministral-8b"      Ministral 8B (2410): dim 4096, 36 layers, 32/8 heads of 128, ffn 12288,
//                       vocab 131072, context 131072, theta 1e8; layer 0 of every 4 has full
//                       attention, the other 3 a sliding window of 32768 ("128k, 32k, 32k, 32k")
// and "mistral-1b" (a 1B-class model with Mistral's head layout) or "tiny" (a few hundred kB,
// for tests). The 131072-token presets have a synthetic Tekken vocabulary, the others a
// SentencePiece-style one. Throws brise::Error for another name.
SynthSpec synth_preset(std::string_view name);
std::vector<std::string_view> synth_preset_names();

// The file write_synthetic_model would write, without writing it: its tensors (names, GGUF dims,
// types and byte sizes; no data), its size and its number of weights. Throws as
// write_synthetic_model does.
struct SynthLayout {
  std::vector<gguf::TensorInfo> tensors;
  uint64_t file_bytes = 0;
  uint64_t parameters = 0;
};
SynthLayout synthetic_model_layout(const SynthSpec& spec);

// A SentencePiece-style byte-fallback vocabulary of `size` pieces: <unk>=0, <s>=1, </s>=2,
// <0x00>..<0xFF> (ids 3..258), then "▁", and letter strings ("▁a", "a", "▁b", ..., "▁aa", ...)
// with decreasing scores. Throws brise::Error when size < 260.
Vocabulary synthetic_vocabulary(uint32_t size);

// A Tekken vocabulary of `size` ids, in the form of Mistral's (Nemo, Small 3, Ministral): 1000
// special tokens (tekken_default_special_tokens: BOS 1, EOS 2, UNK 0, PAD 11), then the ranks:
// the 256 single bytes, and letter strings with and without a leading space ("a" "b" are bytes;
// " a", ..., "aa", " aa", ...) each made of two earlier ranks, so that every rank has merges.
// Throws brise::Error when size < 1256 (the special tokens and the bytes).
Vocabulary synthetic_tekken_vocabulary(uint32_t size);

// Writes the model to `out` (through a temporary file renamed at the end: on error nothing is left
// at `out`). Weights are uniform random, row r of tensor i drawn from a counter-based generator
// keyed by (seed, i, r): the same spec gives the same bytes whatever the thread count. The scales
// keep activations O(1) through the layers; `progress` follows the writing. Throws brise::Error
// for an invalid config, a vocabulary below 260, or row lengths that are not whole blocks of the
// type.
void write_synthetic_model(const std::filesystem::path& out, const SynthSpec& spec,
                           const WriteProgressCallback& progress = {});

}  // namespace brise
