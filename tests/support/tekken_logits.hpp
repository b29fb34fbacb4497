// The tekken-mini logits references (../shared/reference/tekken-mini/logits, README-tekken.md §5):
// each case's prompt ids, per-layer windows and f32 logits, and greedy generation as llama.cpp's
// probe ran it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "brise/model.hpp"

namespace brise::test {

struct TekkenLogitsCase {
  std::string name;
  std::filesystem::path model;  // the reference GGUF file
  std::vector<int32_t> token_ids;
  std::vector<std::optional<uint32_t>> windows;  // per layer, from the case (null = full)
  size_t rows = 0, vocab = 0;
  std::vector<float> logits;  // [rows][vocab]
};

nlohmann::json tekken_logits_index(const std::filesystem::path& data);
// Every case of the index (gtest failures when a file does not match its stated shape).
std::vector<TekkenLogitsCase> tekken_logits_cases(const std::filesystem::path& data);

// `n` tokens chosen greedily (the first of equal maxima) after `prompt`, in exact mode.
std::vector<int32_t> greedy_ids(const std::shared_ptr<const Model>& model,
                                std::span<const int32_t> prompt, size_t n);

}  // namespace brise::test
