// Quantization of a GGUF model into another GGUF file, choosing each tensor's type as llama.cpp's
// llama-quantize does (its "mixes": Q4_K_M keeps some attn_v/ffn_down matrices in Q6_K, the
// classifier in Q6_K, ...).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brise/gguf.hpp"
#include "brise/tensor_type.hpp"
#include "brise/write_progress.hpp"

namespace brise {

// A file type as llama.cpp names it; values are llama.cpp's enum llama_ftype (general.file_type).
enum class QuantMix : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 7,
  Q5_0 = 8,
  Q5_1 = 9,
  Q2_K = 10,
  Q3_K_S = 11,
  Q3_K_M = 12,
  Q3_K_L = 13,
  Q4_K_S = 14,
  Q4_K_M = 15,
  Q5_K_S = 16,
  Q5_K_M = 17,
  Q6_K = 18,
  IQ4_NL = 25,
  IQ4_XS = 30,
  BF16 = 32,
};

// Case-insensitive: "q4_k_m", "Q4_K_M", llama-quantize's aliases ("Q4_K" = Q4_K_M, "Q3_K" = Q3_K_M,
// "Q5_K" = Q5_K_M) and its numbers ("15"). nullopt for anything else.
std::optional<QuantMix> quant_mix_from_name(std::string_view name);
std::string_view quant_mix_name(QuantMix mix);  // "Q4_K_M", "IQ4_XS", "F16", ...
// "Q4_0, Q4_1, ..., F16, BF16 or F32", for help texts and messages.
std::string quant_mix_names();
// The type of the mix's ordinary matrices (llama.cpp's llama_ftype_get_default_type): q4_K for
// Q4_K_M, q3_K for Q3_K_L, ...
TensorType quant_mix_base_type(QuantMix mix);

struct QuantizeOptions {
  QuantMix mix = QuantMix::Q8_0;
  // Every matrix (token_embd and output included) in the mix's base type; 1-D tensors and norm
  // weights keep their type. A matrix whose rows are not whole blocks of that type is an error.
  bool pure = false;
  std::optional<TensorType> output_type;     // output.weight
  std::optional<TensorType> embedding_type;  // token_embd.weight
  // Accept matrices that are already quantized (they are dequantized and quantized again).
  bool allow_requantize = false;
};

// One tensor of the output, in the input's order.
struct QuantizePlanEntry {
  std::string name;
  std::vector<uint64_t> dims;  // GGUF order
  TensorType from = TensorType::F32;
  TensorType to = TensorType::F32;
};

struct QuantizePlan {
  std::vector<QuantizePlanEntry> tensors;
  uint32_t file_type = 0;          // general.file_type of the output (llama_ftype)
  std::vector<std::string> notes;  // e.g. fallbacks to another type for rows not whole blocks
};

// The type each tensor of `model` gets. Throws brise::Error when the options cannot apply (rows
// that are not whole blocks of a --pure or override type, a model that is not llama-architecture).
QuantizePlan plan_quantization(const gguf::File& model, const QuantizeOptions& options);

struct QuantizeResult {
  QuantizePlan plan;
  uint64_t input_bytes = 0;
  uint64_t file_bytes = 0;
  double seconds = 0;
};

// Reads `input` and writes `output` with every tensor in its planned type, all metadata copied
// (general.file_type and general.quantization_version set as llama-quantize sets them) and the
// tensor order kept. Rows are quantized in parallel (OpenMP). The output is written to a
// temporary file and renamed on success: on any error nothing is left at `output`. Throws
// brise::Error naming the problem.
QuantizeResult quantize_model(const std::filesystem::path& input,
                              const std::filesystem::path& output, const QuantizeOptions& options,
                              const WriteProgressCallback& progress = {});

}  // namespace brise
