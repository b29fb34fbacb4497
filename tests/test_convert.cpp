// The converter against the checkpoints in ../shared/models/stories260k: every layout gives the
// same tensors as Mistral's native checkpoint (the independent ground truth), dtypes are kept or
// converted as asked, and bad checkpoints are clear errors that leave nothing behind.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "brise/convert.hpp"
#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model_config.hpp"
#include "engine/convert/checkpoint.hpp"
#include "kernels/fp16.hpp"
#include "support/safetensors_writer.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using brise::TensorType;
using namespace brise::test;

namespace {

// GGUF name -> native checkpoint name.
std::string native_name(const std::string& gguf) {
  if (gguf == "token_embd.weight") return "tok_embeddings.weight";
  if (gguf == "output_norm.weight") return "norm.weight";
  if (gguf == "output.weight") return "output.weight";
  static const std::map<std::string, std::string> layer = {
      {"attn_norm", "attention_norm"}, {"attn_q", "attention.wq"},
      {"attn_k", "attention.wk"},      {"attn_v", "attention.wv"},
      {"attn_output", "attention.wo"}, {"ffn_norm", "ffn_norm"},
      {"ffn_gate", "feed_forward.w1"}, {"ffn_up", "feed_forward.w3"},
      {"ffn_down", "feed_forward.w2"}};
  const auto dot1 = gguf.find('.'), dot2 = gguf.find('.', dot1 + 1), dot3 = gguf.rfind('.');
  const std::string idx = gguf.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string part = gguf.substr(dot2 + 1, dot3 - dot2 - 1);
  return "layers." + idx + "." + layer.at(part) + ".weight";
}

std::map<std::string, StTensor> native_tensors(const fs::path& data) {
  std::map<std::string, StTensor> m;
  for (auto& t : read_safetensors(data / "models/stories260k/native/consolidated.safetensors"))
    m.emplace(t.name, std::move(t));
  return m;
}

fs::path convert(const fs::path& dir, const fs::path& out, brise::ConvertOptions options = {}) {
  brise::convert_checkpoint(dir, out, options);
  return out;
}

uint16_t bf16_round_nearest_even(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

}  // namespace

TEST(Convert, EveryLayoutGivesTheNativeTensorsBitForBit) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto scratch = scratch_dir("convert_layouts");
  const auto native = native_tensors(data);
  for (const char* layout : {"hf", "hf-sharded", "hf-tied", "native"}) {
    SCOPED_TRACE(layout);
    const auto out =
        convert(data / "models/stories260k" / layout, scratch / (std::string(layout) + ".gguf"));
    auto file = brise::gguf::File::open(out);
    EXPECT_EQ(file->tensors().size(), 2u + 5u * 9u + 1u);
    for (const auto& t : file->tensors()) {
      SCOPED_TRACE(t.name);
      EXPECT_EQ(t.type, TensorType::F32);
      const StTensor& ref = native.at(native_name(t.name));
      // GGUF dims are the PyTorch shape reversed.
      std::vector<uint64_t> reversed(ref.shape.rbegin(), ref.shape.rend());
      EXPECT_EQ(t.dims, reversed);
      ASSERT_EQ(t.n_bytes, ref.data.size());
      EXPECT_EQ(std::memcmp(t.data, ref.data.data(), t.n_bytes), 0);
    }
    const auto config = brise::read_model_config(*file);
    EXPECT_EQ(config.dim, 64u);
    EXPECT_EQ(config.n_layers, 5u);
    EXPECT_EQ(config.n_heads, 8u);
    EXPECT_EQ(config.n_kv_heads, 4u);
    EXPECT_EQ(config.head_dim, 8u);
    EXPECT_EQ(config.hidden_dim, 172u);
    EXPECT_EQ(config.vocab_size, 512u);
    EXPECT_FLOAT_EQ(config.norm_eps, 1e-5f);
    EXPECT_DOUBLE_EQ(config.rope_theta, 10000.0);
    EXPECT_FALSE(config.sliding_window.has_value());
    EXPECT_EQ(file->get_string("general.architecture"), "llama");
    EXPECT_EQ(file->get_string("tokenizer.ggml.model"), "llama");
    EXPECT_EQ(file->get("tokenizer.ggml.tokens").as_array("tokens").items.size(), 512u);
    if (std::string(layout) != "native") {
      EXPECT_EQ(config.context_length, 512u);
    }
  }
}

TEST(Convert, Bf16CheckpointKeepsEveryBf16ValueBitExact) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto scratch = scratch_dir("convert_bf16");
  const auto native = native_tensors(data);
  brise::ConvertOptions bf16;
  bf16.type = TensorType::BF16;
  const auto explicit_type = convert(data / "models/stories260k/hf-bf16", scratch / "a.gguf", bf16);
  const auto default_type = convert(data / "models/stories260k/hf-bf16", scratch / "b.gguf");
  for (const auto& path : {explicit_type, default_type}) {
    auto file = brise::gguf::File::open(path);
    for (const auto& t : file->tensors()) {
      SCOPED_TRACE(t.name);
      const StTensor& ref = native.at(native_name(t.name));
      const size_t n = ref.data.size() / 4;
      const bool norm = t.name.find("norm") != std::string::npos;
      if (norm) {
        // Norms are stored as f32: the bf16 value widened exactly.
        ASSERT_EQ(t.type, TensorType::F32);
        for (size_t i = 0; i < n; ++i) {
          float src, got;
          std::memcpy(&src, ref.data.data() + 4 * i, 4);
          std::memcpy(&got, t.data + 4 * i, 4);
          uint32_t bits = static_cast<uint32_t>(bf16_round_nearest_even(src)) << 16;
          float expect;
          std::memcpy(&expect, &bits, 4);
          ASSERT_EQ(got, expect) << i;
        }
        continue;
      }
      ASSERT_EQ(t.type, TensorType::BF16);
      ASSERT_EQ(t.n_bytes, n * 2);
      for (size_t i = 0; i < n; ++i) {
        float src;
        std::memcpy(&src, ref.data.data() + 4 * i, 4);
        uint16_t got;
        std::memcpy(&got, t.data + 2 * i, 2);
        ASSERT_EQ(got, bf16_round_nearest_even(src)) << i;
      }
    }
  }
  // Non-permuted matrices are the checkpoint's own bytes.
  auto file = brise::gguf::File::open(explicit_type);
  for (auto& src : read_safetensors(data / "models/stories260k/hf-bf16/model.safetensors"))
    if (src.name == "model.layers.2.mlp.down_proj.weight") {
      const auto& t = file->tensor("blk.2.ffn_down.weight");
      ASSERT_EQ(t.n_bytes, src.data.size());
      EXPECT_EQ(std::memcmp(t.data, src.data.data(), t.n_bytes), 0);
    }
}

TEST(Convert, TypesF16AndQuantizedStayCloseToTheSource) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto scratch = scratch_dir("convert_types");
  for (const char* type : {"f16", "q8_0", "q4_0"}) {
    SCOPED_TRACE(type);
    brise::ConvertOptions options;
    options.type = brise::tensor_type_from_name(type);
    const auto path =
        convert(data / "models/stories260k/hf", scratch / (std::string(type) + ".gguf"), options);
    auto file = brise::gguf::File::open(path);
    EXPECT_EQ(file->tensor("blk.0.attn_norm.weight").type, TensorType::F32);
    EXPECT_EQ(file->tensor("blk.0.attn_q.weight").type, *options.type);
    // ffn_down rows hold 172 values, not a whole number of 32-blocks: kept as f16.
    EXPECT_EQ(file->tensor("blk.0.ffn_down.weight").type, TensorType::F16);
    EXPECT_EQ(file->get_uint("general.file_type"),
              std::string(type) == "f16" ? 1u : (std::string(type) == "q8_0" ? 7u : 2u));
  }
}

TEST(Convert, SlidingWindowComesFromTheCheckpointOrTheOverride) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto scratch = scratch_dir("convert_window");
  for (const char* dir : {"hf-sw8", "native-sw8"}) {
    auto file = brise::gguf::File::open(
        convert(data / "models/stories260k" / dir, scratch / (std::string(dir) + ".gguf")));
    EXPECT_EQ(file->get_uint("brise.attention.sliding_window"), 8u) << dir;
  }
  brise::ConvertOptions none;
  none.sliding_window = std::optional<uint32_t>{};
  auto full = brise::gguf::File::open(
      convert(data / "models/stories260k/hf-sw8", scratch / "none.gguf", none));
  EXPECT_EQ(full->find("brise.attention.sliding_window"), nullptr);
  brise::ConvertOptions w16;
  w16.sliding_window = std::optional<uint32_t>{16};
  auto windowed =
      brise::gguf::File::open(convert(data / "models/stories260k/hf", scratch / "w16.gguf", w16));
  EXPECT_EQ(windowed->get_uint("brise.attention.sliding_window"), 16u);
}

TEST(Convert, RealMistralConfigsParse) {
  BRISE_REQUIRE_TESTDATA(data);
  brise::CheckpointLayout layout;
  bool tied = true;
  const auto v01 = brise::read_checkpoint_config(data / "configs/mistral-7b-v0.1", &layout, &tied);
  EXPECT_EQ(layout, brise::CheckpointLayout::HuggingFace);
  EXPECT_FALSE(tied);
  EXPECT_EQ(v01.dim, 4096u);
  EXPECT_EQ(v01.n_layers, 32u);
  EXPECT_EQ(v01.n_heads, 32u);
  EXPECT_EQ(v01.n_kv_heads, 8u);
  EXPECT_EQ(v01.head_dim, 128u);
  EXPECT_EQ(v01.hidden_dim, 14336u);
  EXPECT_EQ(v01.vocab_size, 32000u);
  EXPECT_EQ(v01.context_length, 32768u);
  EXPECT_EQ(v01.sliding_window, std::optional<uint32_t>(4096));
  const auto v03 =
      brise::read_checkpoint_config(data / "configs/mistral-7b-instruct-v0.3", &layout, &tied);
  EXPECT_EQ(v03.vocab_size, 32768u);
  EXPECT_DOUBLE_EQ(v03.rope_theta, 1e6);
  EXPECT_FALSE(v03.sliding_window.has_value());
  // Config without weights: a clear error, and nothing written.
  const auto scratch = scratch_dir("convert_configs");
  for (const char* dir : {"mistral-7b-v0.1", "mistral-7b-instruct-v0.3"}) {
    try {
      brise::convert_checkpoint(data / "configs" / dir, scratch / "x.gguf", {});
      ADD_FAILURE() << "converted a checkpoint without weights";
    } catch (const brise::Error& e) {
      EXPECT_NE(std::string(e.what()).find("no weights"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs::is_empty(scratch));
  }
}

namespace {

// Builds a broken copy of the hf checkpoint with `edit` applied to its tensors, converts it and
// returns the error message (empty if it converted).
template <typename Edit>
std::string convert_edited(const fs::path& data, const std::string& name, Edit edit) {
  const auto scratch = scratch_dir("convert_bad_" + name);
  const auto ck = scratch / "ck";
  copy_folder(data / "models/stories260k/hf", ck);
  auto tensors = read_safetensors(ck / "model.safetensors");
  edit(tensors);
  write_safetensors(ck / "model.safetensors", tensors);
  const auto out = scratch / "out.gguf";
  std::string message;
  try {
    brise::convert_checkpoint(ck, out, {});
  } catch (const brise::Error& e) {
    message = e.what();
  }
  EXPECT_FALSE(fs::exists(out)) << name;
  for (const auto& e : fs::directory_iterator(scratch))
    EXPECT_TRUE(e.path().filename() == "ck") << "left behind: " << e.path();
  return message;
}

}  // namespace

TEST(Convert, BadCheckpointsAreClearErrorsAndLeaveNothing) {
  BRISE_REQUIRE_TESTDATA(data);
  auto erase = [](const std::string& n) {
    return
        [n](std::vector<StTensor>& ts) { std::erase_if(ts, [&](auto& t) { return t.name == n; }); };
  };
  EXPECT_NE(convert_edited(data, "missing", erase("model.layers.3.mlp.up_proj.weight"))
                .find("missing tensor 'model.layers.3.mlp.up_proj.weight'"),
            std::string::npos);
  EXPECT_NE(
      convert_edited(
          data, "unexpected",
          [](auto& ts) {
            ts.push_back({"model.layers.9.extra.weight", "F32", {2}, std::vector<std::byte>(8)});
          })
          .find("unexpected tensor 'model.layers.9.extra.weight'"),
      std::string::npos);
  EXPECT_NE(convert_edited(data, "shape",
                           [](auto& ts) {
                             for (auto& t : ts)
                               if (t.name == "model.layers.0.self_attn.v_proj.weight")
                                 t.shape = {64, 32};
                           })
                .find("has shape [64, 32] but the config needs [32, 64]"),
            std::string::npos);
  EXPECT_NE(convert_edited(data, "dtype",
                           [](auto& ts) {
                             for (auto& t : ts)
                               if (t.name == "model.norm.weight") t.dtype = "I32";
                           })
                .find("dtype I32 is not supported"),
            std::string::npos);
}

TEST(Convert, InconsistentConfigMissingFilesAndOwnInput) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto scratch = scratch_dir("convert_misc");
  auto expect_error = [&](const fs::path& dir, const fs::path& out, const std::string& phrase) {
    try {
      brise::convert_checkpoint(dir, out, {});
      ADD_FAILURE() << "no error for " << dir;
    } catch (const brise::Error& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
  };
  expect_error(scratch / "nope", scratch / "o.gguf", "not a checkpoint folder");
  // Heads that do not divide.
  copy_folder(data / "models/stories260k/hf", scratch / "heads");
  {
    auto text = read_file_text(scratch / "heads/config.json");
    text.replace(text.find("\"num_key_value_heads\": 4"), 24, "\"num_key_value_heads\": 3");
    std::ofstream(scratch / "heads/config.json") << text;
  }
  expect_error(scratch / "heads", scratch / "o.gguf", "not a multiple of n_kv_heads");
  // No tokenizer.
  copy_folder(data / "models/stories260k/hf", scratch / "notok");
  fs::remove(scratch / "notok/tokenizer.model");
  expect_error(scratch / "notok", scratch / "o.gguf", "no tokenizer.model");
  // The output may not be one of the inputs; the input stays intact.
  copy_folder(data / "models/stories260k/native", scratch / "own");
  const auto before = read_file_bytes(scratch / "own/consolidated.safetensors");
  expect_error(scratch / "own", scratch / "own/consolidated.safetensors", "refusing to overwrite");
  EXPECT_EQ(read_file_bytes(scratch / "own/consolidated.safetensors"), before);
  // A failed conversion leaves an existing output file intact.
  std::ofstream(scratch / "existing.gguf") << "keep me";
  expect_error(scratch / "notok", scratch / "existing.gguf", "no tokenizer.model");
  EXPECT_EQ(read_file_text(scratch / "existing.gguf"), "keep me");
}

TEST(Convert, F16CheckpointStaysF16AndLlamaStyleConfigWorks) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto scratch = scratch_dir("convert_f16_source");
  const auto ck = scratch / "ck";
  copy_folder(data / "models/stories260k/hf", ck);
  // An f16 copy of the checkpoint (exactly representable values: f32 -> f16 -> stored bits),
  // with a Llama-style config: no head_dim, LlamaForCausalLM.
  auto tensors = read_safetensors(ck / "model.safetensors");
  for (auto& t : tensors) {
    std::vector<std::byte> half(t.data.size() / 2);
    for (size_t i = 0; i < half.size() / 2; ++i) {
      float f;
      std::memcpy(&f, t.data.data() + 4 * i, 4);
      const uint16_t h = brise::kernels::f32_to_f16(f);
      std::memcpy(half.data() + 2 * i, &h, 2);
    }
    t.data = std::move(half);
    t.dtype = "F16";
  }
  write_safetensors(ck / "model.safetensors", tensors);
  auto config = read_file_text(ck / "config.json");
  config.replace(config.find("\"head_dim\": 8,"), 14, "");
  config.replace(config.find("MistralForCausalLM"), 18, "LlamaForCausalLM");
  std::ofstream(ck / "config.json") << config;

  auto file = brise::gguf::File::open(convert(ck, scratch / "f16.gguf"));
  EXPECT_EQ(file->get_uint("general.file_type"), 1u);
  std::map<std::string, const StTensor*> source;
  for (const auto& t : tensors) source[t.name] = &t;
  // Matrices keep their f16 bits; the ones not un-permuted are the checkpoint's bytes.
  const auto& gate = file->tensor("blk.1.ffn_gate.weight");
  ASSERT_EQ(gate.type, TensorType::F16);
  const auto* src = source.at("model.layers.1.mlp.gate_proj.weight");
  ASSERT_EQ(gate.n_bytes, src->data.size());
  EXPECT_EQ(std::memcmp(gate.data, src->data.data(), gate.n_bytes), 0);
  // Norms are widened to f32 exactly.
  const auto& norm = file->tensor("output_norm.weight");
  ASSERT_EQ(norm.type, TensorType::F32);
  uint16_t h;
  std::memcpy(&h, source.at("model.norm.weight")->data.data(), 2);
  float f;
  std::memcpy(&f, norm.data, 4);
  EXPECT_EQ(f, brise::kernels::f16_to_f32(h));
  EXPECT_EQ(brise::read_model_config(*file).head_dim, 8u);
}
