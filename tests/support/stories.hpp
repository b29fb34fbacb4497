// The stories260k checkpoints and their reference cases from ../shared, for model tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "brise/tensor_type.hpp"

namespace brise::test {

struct ReferenceCase {
  std::string name;
  std::string kind;
  std::filesystem::path dir;  // the case's folder
  std::string model_dir;      // relative to the data folder, e.g. models/stories260k/native
  std::vector<std::string> equivalent_dirs;  // other layouts with the same weights
  bool bf16 = false;                         // weights are hf-bf16 (convert with --type bf16)
  std::optional<uint32_t> sliding_window;
  std::vector<int32_t> token_ids;
  std::vector<int32_t> prompt_ids;  // generation cases only
  size_t rows = 0;
  size_t vocab = 0;
  std::vector<float> logits;  // [rows, vocab] from logits.f32
};

std::vector<ReferenceCase> load_reference_cases(const std::filesystem::path& data);

// Converts `model_dir` (relative to data) once per process and returns the GGUF path.
std::filesystem::path converted_model(const std::filesystem::path& data,
                                      const std::string& model_dir,
                                      TensorType type = TensorType::F32);

// Largest |a - b| over two equally long arrays.
float max_abs_diff(const float* a, const float* b, size_t n);

}  // namespace brise::test
