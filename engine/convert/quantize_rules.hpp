// llama.cpp's choice of a type for each tensor of a quantized model (src/llama-quant.cpp:
// tensor_allows_quantization, llama_tensor_get_type_impl, tensor_type_fallback), for dense
// llama-architecture (Mistral, Llama) models. Pure functions of the mix, the tensor's name and
// shape and the model's layer and head counts; shared by brise quantize and brise convert.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "brise/quantize.hpp"
#include "brise/tensor_type.hpp"

namespace brise {

struct QuantRuleOptions {
  QuantMix mix = QuantMix::Q8_0;
  bool pure = false;
  std::optional<TensorType> output_type;     // --output-type
  std::optional<TensorType> embedding_type;  // --embedding-type
};

struct QuantRuleModel {
  uint32_t n_layers = 0;  // block_count (llama.cpp's n_ffn_down)
  uint32_t n_attn_v = 0;  // attn_v matrices in the model (llama.cpp's n_attention_wv)
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  bool tied_embeddings = false;  // no output.weight: token_embd is the classifier too
};

struct QuantRuleTensor {
  std::string_view name;
  std::span<const uint64_t> dims;  // GGUF order: dims[0] is the row length
  TensorType type = TensorType::F32;
  // Position among the model's attn_v (ffn_down) matrices in llama.cpp's order (by layer, then
  // name): llama.cpp's i_attention_wv (i_ffn_down), the layer index in a dense model.
  uint32_t i_attn_v = 0;
  uint32_t i_ffn_down = 0;
};

struct QuantRuleChoice {
  TensorType type = TensorType::F32;
  bool quantizable = false;  // false: not a matrix llama.cpp quantizes; its type is kept
  std::string note;          // set when the type fell back because rows are not whole blocks
};

// llama.cpp's tensor_allows_quantization for llama models: 2-D (or more) tensors named *weight,
// except norms and MoE routers.
bool tensor_is_quantizable(std::string_view name, std::span<const uint64_t> dims);

// The type of one tensor. Throws brise::Error when rows are not whole blocks of a type the user
// asked for (--pure, --output-type, --embedding-type) or of a type llama.cpp has no fallback for.
QuantRuleChoice choose_tensor_type(const QuantRuleOptions& options, const QuantRuleModel& model,
                                   const QuantRuleTensor& tensor);

// Every tensor of a model, in any order: fills in the counters (i_attn_v, i_ffn_down, n_attn_v,
// tied_embeddings) as llama.cpp's loop over its name-sorted tensors does. Results in the input's
// order.
std::vector<QuantRuleChoice> choose_tensor_types(const QuantRuleOptions& options, uint32_t n_layers,
                                                 uint32_t n_head, uint32_t n_head_kv,
                                                 std::span<const QuantRuleTensor> tensors);

}  // namespace brise
