// Checkpoint folders of the tekken-mini models (../shared/models/tekken-mini), written from the
// reference GGUF files' weights the way Mistral and Hugging Face publish the real models (Mistral
// Nemo, Ministral 8B, Mistral Small 3.x), with a Tekken vocabulary beside them:
//  - Mistral's native layout: params.json + consolidated.safetensors, q/k rows as in the GGUF
//    (RoPE on interleaved pairs);
//  - Hugging Face's: config.json + two shards + model.safetensors.index.json, q/k rows permuted
//    for rotate-half RoPE as transformers' convert_mistral_weights_to_hf.py stores them;
//  - Mistral Small 3.1's multimodal forms of either, a few vision tensors beside the text model.
// The hyperparameters come from the data set's models.json, not from the GGUF files.
#pragma once

#include <filesystem>
#include <string>

namespace brise::test {

enum class CheckpointForm {
  Native,
  HuggingFace,
  NativeWithVision,  // params.json with vision_encoder; vision_encoder.*, patch_merger.* ...
  Mistral3,          // Mistral3ForConditionalGeneration: text_config, language_model.model.*
  Mistral3NewNames,  // the same as transformers >= 4.52 saves it: model.language_model.*
};

struct TekkenCheckpoint {
  std::string model = "nemo-mini";  // or "ministral-mini"
  CheckpointForm form = CheckpointForm::Native;
  // Safetensors dtype of the tensors: F32, BF16 or F16. Every value of these models is exact in
  // f16, and the matrices' are in bf16, the norm weights' not (values such as 1.00390625 need 9
  // bits): a BF16 checkpoint keeps its norms in F32, as some checkpoints do.
  std::string dtype = "F32";
  // The file of models/tekken-mini copied into the folder as tekken.json; empty: none.
  std::string tekken = "tekken.json";
};

// Writes the checkpoint into the new folder `dir` and returns `dir`.
std::filesystem::path write_tekken_checkpoint(const std::filesystem::path& data,
                                              const TekkenCheckpoint& spec,
                                              const std::filesystem::path& dir);

// The reference GGUF file of spec.model.
std::filesystem::path tekken_reference_model(const std::filesystem::path& data,
                                             const std::string& model);

}  // namespace brise::test
