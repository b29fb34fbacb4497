// Conversion of a Hugging Face or Mistral-native checkpoint folder into one GGUF file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "brise/quantize.hpp"
#include "brise/tensor_type.hpp"
#include "brise/write_progress.hpp"

namespace brise {

struct ConvertOptions {
  // Element type of the matrices; default: the checkpoint's own dtype. Norm weights are f32.
  std::optional<TensorType> type;
  // Instead of one type: llama.cpp's per-tensor types of a mix (brise/quantize.hpp), e.g. Q4_K_M.
  std::optional<QuantMix> mix;
  // Overrides the checkpoint's sliding window (ModelConfig::override_sliding_window): a value is
  // the window of the windowed layers (of every layer without a per-layer pattern), nullopt
  // inside is "none" (full attention on every layer). Absent: keep the checkpoint's.
  std::optional<std::optional<uint32_t>> sliding_window;
  std::optional<uint32_t> context_length;  // overrides the config's
  // The vocabulary: a tokenizer.model (SentencePiece), a tekken.json (Tekken) or a GGUF file.
  // Default: the checkpoint folder's tokenizer.model (or .v3/.v2/.v1) or tekken.json.
  std::filesystem::path tokenizer;
  std::string name;  // general.name; default: the folder's name
};

struct ConvertResult {
  size_t n_tensors = 0;
  uint64_t file_bytes = 0;
  double seconds = 0;
  TensorType type = TensorType::F32;
  std::vector<std::string> notes;  // e.g. tensors kept in f16 because rows are not whole blocks
};

// Reads the checkpoint in `checkpoint_dir` and writes `output` (GGUF v3, architecture llama,
// llama.cpp's tensor names, interleaved q/k rows, the vocabulary in llama.cpp's form: "llama" for
// SentencePiece, "gpt2" + pre-tokenizer "tekken" with merges for Tekken). Of a model with a
// vision encoder (Mistral Small 3.1/3.2, Pixtral) the text model is converted, with a note. The
// output is written to a temporary file in the destination folder and renamed on success: on any
// error nothing is left at `output` (an existing file there stays intact). Throws brise::Error
// naming the problem.
ConvertResult convert_checkpoint(const std::filesystem::path& checkpoint_dir,
                                 const std::filesystem::path& output, const ConvertOptions& options,
                                 const WriteProgressCallback& progress = {});

}  // namespace brise
