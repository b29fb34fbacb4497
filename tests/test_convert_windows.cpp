// Per-layer attention windows from every checkpoint form: Hugging Face's layer_types (Ministral)
// and Mistral's params.json sliding_window as an int or a list, through brise convert into
// llama.cpp's GGUF keys, and the converted model's logits against the reference forward pass with
// the windows written out here. Bad forms are clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "brise/convert.hpp"
#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"
#include "support/json_text.hpp"
#include "support/logits_compare.hpp"
#include "support/reference_model.hpp"
#include "support/safetensors_writer.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using brise::test::scratch_dir;
using nlohmann::json;
using Windows = std::vector<std::optional<uint32_t>>;

namespace {

// A copy of a stories260k checkpoint (5 layers) whose config file gets `edit`.
fs::path edited_checkpoint(const fs::path& data, const std::string& layout, const std::string& name,
                           const std::function<void(json&)>& edit) {
  const auto dir = scratch_dir("convert_windows_" + name) / "ck";
  brise::test::copy_folder(data / "models/stories260k" / layout, dir);
  const fs::path config = dir / (layout == "hf" ? "config.json" : "params.json");
  json j = brise::test::parse_json(brise::test::read_file_text(config));
  edit(j);
  std::ofstream(config, std::ios::trunc) << j.dump(2);
  return dir;
}

// The converted file's per-layer pattern (empty when absent) and window.
struct Converted {
  fs::path path;
  std::optional<uint64_t> brise_window, llama_window;
  std::vector<bool> pattern;
};

Converted convert(const fs::path& dir) {
  Converted c{dir.parent_path() / "out.gguf", {}, {}, {}};
  brise::convert_checkpoint(dir, c.path, {});
  const auto file = brise::gguf::File::open(c.path);
  c.brise_window = file->get_uint_or("brise.attention.sliding_window");
  c.llama_window = file->get_uint_or("llama.attention.sliding_window");
  if (const auto* p = file->find("llama.attention.sliding_window_pattern"))
    for (const auto& v : p->as_array("pattern").items) c.pattern.push_back(v.as_bool("pattern"));
  return c;
}

std::string convert_error(const fs::path& dir) {
  try {
    brise::convert_checkpoint(dir, dir.parent_path() / "out.gguf", {});
  } catch (const brise::Error& e) {
    EXPECT_FALSE(fs::exists(dir.parent_path() / "out.gguf"));
    return e.what();
  }
  return "";
}

// The converted model's logits, one session with chunks of 3, against the reference forward
// pass run with `windows`.
void expect_logits_follow(const fs::path& model_path, const Windows& windows) {
  const auto model = brise::Model::load(model_path);
  brise::SessionOptions options;
  options.prefill_chunk = 3;
  EXPECT_EQ(brise::Session(model, options).layer_windows(), windows);
  std::vector<int32_t> tokens{1};
  for (int i = 0; i < 30; ++i) tokens.push_back(3 + (i * 97) % 509);
  const auto file = brise::gguf::File::open(model_path);
  EXPECT_LE(brise::test::max_abs_diff(brise::test::all_row_logits(model, tokens, options),
                                      brise::reference::forward_layer_windows(
                                          brise::reference::load(*file), tokens, windows)),
            1e-4f);
}

}  // namespace

TEST(ConvertWindows, HuggingFaceLayerTypes) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto ministral = edited_checkpoint(data, "hf", "layer_types", [](json& j) {
    j["architectures"] = {"MinistralForCausalLM"};
    j["model_type"] = "ministral";
    j["sliding_window"] = 4;
    j["layer_types"] = {"full_attention", "sliding_attention", "sliding_attention",
                        "full_attention", "sliding_attention"};
  });
  const Converted c = convert(ministral);
  EXPECT_EQ(c.llama_window, std::optional<uint64_t>(4));
  EXPECT_EQ(c.pattern, (std::vector<bool>{false, true, true, false, true}));
  EXPECT_EQ(c.brise_window, std::nullopt);  // it would mean a window on every layer
  expect_logits_follow(c.path, {std::nullopt, 4u, 4u, std::nullopt, 4u});

  // Every layer sliding: one window for all, brise's key as for Mistral 7B v0.1.
  const auto all = edited_checkpoint(data, "hf", "layer_types_all", [](json& j) {
    j["sliding_window"] = 6;
    j["layer_types"] = json::array();
    for (int i = 0; i < 5; ++i) j["layer_types"].push_back("sliding_attention");
  });
  const Converted a = convert(all);
  EXPECT_EQ(a.brise_window, std::optional<uint64_t>(6));
  EXPECT_TRUE(a.pattern.empty());
  EXPECT_EQ(a.llama_window, std::nullopt);
}

TEST(ConvertWindows, NativeParamsIntOrList) {
  BRISE_REQUIRE_TESTDATA(data);
  // A list repeats over the layers; null is full attention.
  const auto list = edited_checkpoint(data, "native", "list", [](json& j) {
    j["sliding_window"] = {nullptr, 5, 5, 5, 5};
  });
  const Converted l = convert(list);
  EXPECT_EQ(l.llama_window, std::optional<uint64_t>(5));
  EXPECT_EQ(l.pattern, (std::vector<bool>{false, true, true, true, true}));
  expect_logits_follow(l.path, {std::nullopt, 5u, 5u, 5u, 5u});

  // Ministral's form: the full layers' entry is the context (here 64), the others a window.
  const auto ragged = edited_checkpoint(data, "native", "ragged", [](json& j) {
    j["max_seq_len"] = 64;
    j["sliding_window"] = {7, 7, 64, 7, 7};
  });
  const Converted r = convert(ragged);
  EXPECT_EQ(r.llama_window, std::optional<uint64_t>(7));
  EXPECT_EQ(r.pattern, (std::vector<bool>{true, true, false, true, true}));

  // One entry: every layer.
  const auto one =
      edited_checkpoint(data, "native", "one", [](json& j) { j["sliding_window"] = {9}; });
  EXPECT_EQ(convert(one).brise_window, std::optional<uint64_t>(9));
  const auto integer =
      edited_checkpoint(data, "native", "int", [](json& j) { j["sliding_window"] = 9; });
  EXPECT_EQ(convert(integer).brise_window, std::optional<uint64_t>(9));
}

TEST(ConvertWindows, BadFormsAreClearErrors) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto expect_error = [&](const std::string& layout, const std::string& name,
                                const std::function<void(json&)>& edit, const std::string& phrase) {
    const std::string message = convert_error(edited_checkpoint(data, layout, name, edit));
    EXPECT_NE(message.find(phrase), std::string::npos) << name << ": " << message;
  };
  expect_error(
      "hf", "short_layer_types",
      [](json& j) {
        j["sliding_window"] = 4;
        j["layer_types"] = {"sliding_attention", "full_attention"};
      },
      "layer_types must be a list of one entry per layer (5)");
  expect_error(
      "hf", "unknown_layer_type",
      [](json& j) {
        j["sliding_window"] = 4;
        j["layer_types"] = {"sliding_attention", "chunked_attention", "full_attention",
                            "full_attention", "full_attention"};
      },
      "layer_types[1] is \"chunked_attention\"");
  expect_error(
      "hf", "layer_types_without_window",
      [](json& j) {
        j["layer_types"] = {"sliding_attention", "full_attention", "full_attention",
                            "full_attention", "full_attention"};
      },
      "layer_types has sliding_attention layers but no sliding_window");
  expect_error(
      "native", "list_not_dividing",
      [](json& j) {
        j["sliding_window"] = {8, nullptr};
      },
      "the sliding_window list has 2 entries, which do not divide the 5 layers");
  expect_error(
      "native", "two_sizes",
      [](json& j) {
        j["sliding_window"] = {16, 8, 8, 8, 8};
      },
      "layers with windows of different sizes (16 and 8) are not supported");
  expect_error(
      "native", "string_entry", [](json& j) { j["sliding_window"] = {"8"}; },
      "sliding_window entries must be non-negative integers or null");
  expect_error(
      "native", "zero",
      [](json& j) {
        j["sliding_window"] = {0, nullptr, 0, 0, 0};
      },
      "sliding_window must be positive");
}
