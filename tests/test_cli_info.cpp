// `brise info`: run the built CLI on GGUF files written with the Writer and check what it shows.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "brise/gguf.hpp"
#include "support/gguf_image.hpp"
#include "support/json_text.hpp"
#include "support/regex_text.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;
using gguf::Writer;

void write_gguf(const fs::path& path, const Writer& w, uint32_t alignment = 32) {
  const auto image = test::gguf_image(
      w,
      [&](size_t index) {
        // Recognisable data: byte i of every tensor is i mod 251.
        std::vector<std::byte> data(w.tensors()[index].n_bytes);
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i % 251);
        return data;
      },
      alignment);
  test::write_file_bytes(path, image);
}

// A small model with distinct hyperparameters; vocab_size comes from the tokens array.
Writer tiny_model() {
  Writer w;
  w.set("general.architecture", "llama");
  w.set("general.name", "tiny-test");
  w.set("llama.context_length", uint32_t{2048});
  w.set("llama.embedding_length", uint32_t{96});
  w.set("llama.block_count", uint32_t{3});
  w.set("llama.feed_forward_length", uint32_t{256});
  w.set("llama.attention.head_count", uint32_t{6});
  w.set("llama.attention.head_count_kv", uint32_t{2});
  w.set("llama.rope.freq_base", 1000000.0f);
  w.set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set("brise.attention.sliding_window", uint32_t{4096});
  w.set("tokenizer.ggml.model", "llama");
  w.set("tokenizer.ggml.tokens",
        gguf::make_array(std::vector<std::string>{"<unk>", "<s>", "</s>", "a", "b", "c", "d"}));
  w.set("tokenizer.ggml.bos_token_id", uint32_t{1});
  w.set("tokenizer.ggml.eos_token_id", uint32_t{2});
  w.set("tokenizer.ggml.unknown_token_id", uint32_t{0});
  w.set("tokenizer.ggml.add_bos_token", true);
  w.set("tokenizer.ggml.add_space_prefix", false);
  w.set("brise.tokenizer.byte_fallback", true);
  std::vector<int32_t> long_array(1000);
  for (int i = 0; i < 1000; ++i) long_array[i] = i * 3;
  w.set("x.long_array", gguf::make_array(long_array));
  w.set("x.note", "hello");
  w.add_tensor("token_embd.weight", {96, 7}, TensorType::F32);     // 2688 bytes
  w.add_tensor("blk.0.attn_q.weight", {96, 4}, TensorType::Q8_0);  // 4 rows x 3 blocks x 34
  w.add_tensor("blk.0.attn_norm.weight", {96}, TensorType::F32);   // 384 bytes
  return w;
}

// Single-quoted for /bin/sh (the paths here contain no quotes). Built piecewise: GCC 12 warns
// (-Wrestrict, a false positive) on "'" + std::string.
std::string quoted(const std::string& s) {
  std::string q = "'";
  q += s;
  q += "'";
  return q;
}

std::string cli() {
  return quoted(test::cli_path().string());
}

std::string info_command(const fs::path& model, const std::string& extra = "") {
  return cli() + " info " + quoted(model.string()) + extra;
}

// True when `text` has a line "  <label><spaces><value>" (value exactly, to the end of the line).
bool has_row(const std::string& text, const std::string& label, const std::string& value) {
  return test::matches_regex(text, "(^|\n)  " + test::escape_for_regex(label) + " +" +
                                       test::escape_for_regex(value) + "\n");
}

TEST(CliInfo, ShowsHyperparametersTokenizerAndTensors) {
  const auto dir = test::scratch_dir("cli_info_text");
  const auto model = dir / "tiny.gguf";
  write_gguf(model, tiny_model());
  const auto r = test::run_command(info_command(model));
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string& out = r.out;
  EXPECT_NE(out.find(model.string()), std::string::npos) << out;
  EXPECT_NE(out.find("GGUF version  3"), std::string::npos) << out;
  EXPECT_NE(out.find("alignment     32"), std::string::npos) << out;
  EXPECT_NE(out.find("architecture  llama"), std::string::npos) << out;
  EXPECT_NE(out.find("name          tiny-test"), std::string::npos) << out;
  EXPECT_TRUE(has_row(out, "context_length", "2048")) << out;
  EXPECT_TRUE(has_row(out, "embedding_length (dim)", "96")) << out;
  EXPECT_TRUE(has_row(out, "block_count (layers)", "3")) << out;
  EXPECT_TRUE(has_row(out, "feed_forward_length", "256")) << out;
  EXPECT_TRUE(has_row(out, "attention.head_count", "6")) << out;
  EXPECT_TRUE(has_row(out, "attention.head_count_kv", "2")) << out;
  EXPECT_TRUE(has_row(out, "head_dim", "16 (embedding_length / head_count)")) << out;
  EXPECT_TRUE(has_row(out, "rope.freq_base", "1000000.0")) << out;
  EXPECT_TRUE(has_row(out, "attention.layer_norm_rms_epsilon", "1e-05")) << out;
  EXPECT_TRUE(has_row(out, "vocab_size", "7 (length of tokenizer.ggml.tokens)")) << out;
  EXPECT_TRUE(has_row(out, "sliding_window", "4096")) << out;
  // Every layer a ring of 4096 (a window on every layer needs no more, however long it runs):
  // 3 layers x 4096 x kv_dim 32 x K and V x 4 bytes = 3145728 bytes.
  EXPECT_TRUE(has_row(out, "kv_cache (whole context)",
                      "3.1 MB f32, 1.6 MB f16 (3 layers x 4096 positions)"))
      << out;
  EXPECT_TRUE(has_row(out, "model", "llama")) << out;
  EXPECT_TRUE(has_row(out, "tokens", "7")) << out;
  EXPECT_TRUE(has_row(out, "bos_token_id", "1")) << out;
  EXPECT_TRUE(has_row(out, "eos_token_id", "2")) << out;
  EXPECT_TRUE(has_row(out, "unknown_token_id", "0")) << out;
  EXPECT_TRUE(has_row(out, "add_bos_token", "true")) << out;
  EXPECT_TRUE(has_row(out, "add_space_prefix", "false")) << out;
  EXPECT_TRUE(has_row(out, "remove_extra_whitespaces", "-")) << out;
  EXPECT_TRUE(has_row(out, "byte_fallback", "true")) << out;
  // Other metadata, long arrays summarised.
  EXPECT_TRUE(has_row(out, "x.long_array", "[i32 x 1000] 0, 3, 6, 9, ...")) << out;
  EXPECT_TRUE(has_row(out, "x.note", "\"hello\"  (string)")) << out;
  EXPECT_EQ(out.find("2997"), std::string::npos) << "the long array must not be printed whole";
  // Tensor table and totals.
  EXPECT_TRUE(test::matches_regex(out, R"(\n  token_embd\.weight +f32 +96 x 7 +2688\n)")) << out;
  EXPECT_TRUE(test::matches_regex(out, R"(\n  blk\.0\.attn_q\.weight +q8_0 +96 x 4 +408\n)"))
      << out;
  EXPECT_NE(out.find("totals: 3 tensors, 3480 bytes"), std::string::npos) << out;
  EXPECT_TRUE(test::matches_regex(out, R"(\n  f32 +2 tensors, 3072 bytes\n)")) << out;
  EXPECT_TRUE(test::matches_regex(out, R"(\n  q8_0 +1 tensors, 408 bytes\n)")) << out;
}

TEST(CliInfo, JsonHasTheSameFacts) {
  const auto dir = test::scratch_dir("cli_info_json");
  const auto model = dir / "tiny.gguf";
  write_gguf(model, tiny_model());
  const auto r = test::run_command(info_command(model, " --json"));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = test::parse_json(r.out);
  EXPECT_EQ(j["file"], model.string());
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["alignment"], 32);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["name"], "tiny-test");
  const auto& hp = j["hyperparameters"];
  EXPECT_EQ(hp["context_length"], 2048);
  EXPECT_EQ(hp["embedding_length"], 96);
  EXPECT_EQ(hp["block_count"], 3);
  EXPECT_EQ(hp["feed_forward_length"], 256);
  EXPECT_EQ(hp["head_count"], 6);
  EXPECT_EQ(hp["head_count_kv"], 2);
  EXPECT_EQ(hp["head_dim"], 16);
  EXPECT_EQ(hp["rope_freq_base"], 1e6);
  EXPECT_EQ(hp["rms_norm_eps"], 1e-5);
  EXPECT_EQ(hp["vocab_size"], 7);
  EXPECT_EQ(j["sliding_window"], 4096);
  const auto& tok = j["tokenizer"];
  EXPECT_EQ(tok["model"], "llama");
  EXPECT_EQ(tok["tokens"], 7);
  EXPECT_EQ(tok["bos_token_id"], 1);
  EXPECT_EQ(tok["add_space_prefix"], false);
  EXPECT_TRUE(tok["remove_extra_whitespaces"].is_null());
  EXPECT_EQ(tok["byte_fallback"], true);
  const auto& arr = j["other_metadata"]["x.long_array"];
  EXPECT_EQ(arr["type"], "array");
  EXPECT_EQ(arr["value"]["count"], 1000);
  EXPECT_EQ(arr["value"]["array_of"], "i32");
  EXPECT_EQ(arr["value"]["first"], nlohmann::json({0, 3, 6, 9}));
  EXPECT_EQ(j["other_metadata"]["x.note"]["value"], "hello");
  EXPECT_FALSE(j["other_metadata"].contains("llama.context_length")) << "shown above already";
  ASSERT_EQ(j["tensors"].size(), 3u);
  EXPECT_EQ(j["tensors"][1]["name"], "blk.0.attn_q.weight");
  EXPECT_EQ(j["tensors"][1]["type"], "q8_0");
  EXPECT_EQ(j["tensors"][1]["dims"], nlohmann::json({96, 4}));
  EXPECT_EQ(j["tensors"][1]["bytes"], 408);
  EXPECT_EQ(j["totals"]["tensors"], 3);
  EXPECT_EQ(j["totals"]["bytes"], 3480);
  EXPECT_EQ(j["totals"]["by_type"]["f32"]["bytes"], 3072);
  EXPECT_EQ(j["totals"]["by_type"]["q8_0"]["tensors"], 1);
}

TEST(CliInfo, MissingKeysShowAsDashes) {
  const auto dir = test::scratch_dir("cli_info_missing");
  const auto model = dir / "bare.gguf";
  Writer w(64);
  w.add_tensor("w", {4}, TensorType::F16);
  write_gguf(model, w, 64);
  {
    const auto r = test::run_command(info_command(model));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("alignment     64"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("architecture  -"), std::string::npos) << r.out;
    EXPECT_TRUE(has_row(r.out, "context_length", "-")) << r.out;
    EXPECT_TRUE(has_row(r.out, "head_dim", "-")) << r.out;
    EXPECT_TRUE(has_row(r.out, "vocab_size", "-")) << r.out;
    EXPECT_TRUE(has_row(r.out, "sliding_window", "none (full attention)")) << r.out;
    EXPECT_TRUE(has_row(r.out, "tokens", "-")) << r.out;
  }
  {
    const auto r = test::run_command(info_command(model, " --json"));
    ASSERT_EQ(r.status, 0) << r.err;
    const auto j = test::parse_json(r.out);
    EXPECT_TRUE(j["architecture"].is_null());
    EXPECT_TRUE(j["hyperparameters"]["context_length"].is_null());
    EXPECT_TRUE(j["sliding_window"].is_null());
    EXPECT_TRUE(j["sliding_window_pattern"].is_null());
    EXPECT_TRUE(j["kv_cache"].is_null());  // no hyperparameters to size it from
    EXPECT_EQ(j["alignment"], 64);
  }
}

TEST(CliInfo, HeadDimPrefersKeyLength) {
  const auto dir = test::scratch_dir("cli_info_key_length");
  const auto model = dir / "kl.gguf";
  Writer w;
  w.set("general.architecture", "llama");
  w.set("llama.embedding_length", uint32_t{64});
  w.set("llama.attention.head_count", uint32_t{8});
  w.set("llama.attention.key_length", uint32_t{32});
  w.set("llama.vocab_size", uint32_t{99});
  write_gguf(model, w);
  const auto r = test::run_command(info_command(model));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(has_row(r.out, "head_dim", "32 (attention.key_length)")) << r.out;
  EXPECT_TRUE(has_row(r.out, "vocab_size", "99 (llama.vocab_size)")) << r.out;
}

// Ministral's interleaved windows in llama.cpp's keys: the pattern and the KV cache it implies.
TEST(CliInfo, ShowsTheWindowPatternAndItsKvCache) {
  const auto dir = test::scratch_dir("cli_info_pattern");
  const auto model = dir / "pattern.gguf";
  Writer w;
  w.set("general.architecture", "llama");
  w.set("llama.context_length", uint32_t{1000});
  w.set("llama.embedding_length", uint32_t{80});
  w.set("llama.block_count", uint32_t{4});
  w.set("llama.feed_forward_length", uint32_t{160});
  w.set("llama.attention.head_count", uint32_t{4});
  w.set("llama.attention.head_count_kv", uint32_t{2});
  w.set("llama.attention.key_length", uint32_t{32});  // kv_dim 64: 256 bytes per f32 row
  w.set("llama.attention.value_length", uint32_t{32});
  w.set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set("llama.vocab_size", uint32_t{300});
  w.set("llama.attention.sliding_window", uint32_t{10});
  w.set("llama.attention.sliding_window_pattern",
        gguf::make_array(std::vector<bool>{false, true, true, true}));
  w.add_tensor("token_embd.weight", {80, 300}, TensorType::F32);
  write_gguf(model, w);
  // K and V: 3 windowed layers x 10 positions + 1 full layer x 1000, each stored in whole blocks
  // of 32 positions (32 and 1024), x 64 values x 2. q8_0: per block of 32 positions of a head of
  // 32, 32 x 32 codes and 32 fp16 scales for K and again for V (2176 bytes), x 2 heads.
  constexpr uint64_t kF32 = (3 * 32 + 1024) * 64 * 2 * 4, kF16 = kF32 / 2;
  constexpr uint64_t kQ8 = (3 * 1 + 32) * 2 * 2176;
  {
    const auto r = test::run_command(info_command(model));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(has_row(r.out, "sliding_window", "10")) << r.out;
    EXPECT_TRUE(has_row(r.out, "sliding_window_pattern",
                        "FWWW (W: sliding window, F: full attention; 3 of 4 layers windowed)"))
        << r.out;
    EXPECT_TRUE(has_row(r.out, "kv_cache (whole context)",
                        "573.4 kB f32, 286.7 kB f16, 152.3 kB q8_0 (3 layers x 10 + 1 layer x 1000 "
                        "positions)"))
        << r.out;
    EXPECT_EQ(r.out.find("llama.attention.sliding_window"), std::string::npos)
        << "shown above, not among the other metadata: " << r.out;
  }
  const auto r = test::run_command(info_command(model, " --json"));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = test::parse_json(r.out);
  EXPECT_EQ(j["sliding_window"], 10);
  EXPECT_EQ(j["sliding_window_pattern"], nlohmann::json({false, true, true, true}));
  EXPECT_EQ(j["kv_cache"]["context_length"], 1000);
  EXPECT_EQ(j["kv_cache"]["positions_per_layer"], nlohmann::json({1000, 10, 10, 10}));
  EXPECT_EQ(j["kv_cache"]["bytes_f32"], kF32);
  EXPECT_EQ(j["kv_cache"]["bytes_f16"], kF16);
  EXPECT_EQ(j["kv_cache"]["bytes_q8_0"], kQ8);
}

TEST(CliInfo, ListsTensorsOfTypesBriseDoesNotCompute) {
  // llama.cpp files may hold k-quants: info lists them (the engine's loader rejects them).
  const auto dir = test::scratch_dir("cli_info_foreign");
  const auto model = dir / "k.gguf";
  Writer w;
  w.set("general.architecture", "llama");
  w.add_tensor("blk.0.ffn_down.weight", {256, 2}, TensorType::F32);
  auto header = w.header_bytes();
  // Patch the type id (after name, n_dims and two dims) to 12, ggml's q4_K.
  const std::string name = "blk.0.ffn_down.weight";
  const auto* begin = reinterpret_cast<const char*>(header.data());
  const size_t at = std::string_view(begin, header.size()).find(name);
  ASSERT_NE(at, std::string::npos);
  header[at + name.size() + 4 + 16] = std::byte{12};
  std::ofstream out(model, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header.data()),
            static_cast<std::streamsize>(header.size()));
  out << std::string(288, '\x11');  // 2 rows x 1 block x 144 bytes
  out.close();
  const auto r = test::run_command(info_command(model));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(test::matches_regex(r.out, R"(\n  blk\.0\.ffn_down\.weight +q4_K +256 x 2 +288\n)"))
      << r.out;
  EXPECT_TRUE(test::matches_regex(r.out, R"(\n  q4_K +1 tensors, 288 bytes\n)")) << r.out;
}

TEST(CliInfo, MalformedFileExitsOneNamingTheProblem) {
  const auto dir = test::scratch_dir("cli_info_malformed");
  const auto good = dir / "good.gguf";
  write_gguf(good, tiny_model());
  // Cut inside the last tensor's data.
  const auto cut = dir / "cut.gguf";
  fs::copy_file(good, cut);
  fs::resize_file(cut, fs::file_size(good) - 100);
  {
    const auto r = test::run_command(info_command(cut));
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_FALSE(r.signaled);
    EXPECT_NE(r.err.find(cut.string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("tensor 2 'blk.0.attn_norm.weight'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("runs past the end of the file"), std::string::npos) << r.err;
  }
  const auto text = dir / "text.gguf";
  std::ofstream(text) << "this is not a model\n";
  {
    const auto r = test::run_command(info_command(text));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("not a GGUF file"), std::string::npos) << r.err;
  }
  {
    const auto r = test::run_command(info_command(dir / "absent.gguf"));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
  }
}

TEST(CliInfo, UsageErrorsExitTwo) {
  const auto dir = test::scratch_dir("cli_info_usage");
  const auto model = dir / "tiny.gguf";
  write_gguf(model, tiny_model());
  {
    const auto r = test::run_command(info_command(model, " --bogus"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("unknown option '--bogus'"), std::string::npos) << r.err;
  }
  {
    const auto r = test::run_command(cli() + " info");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("missing argument MODEL.gguf"), std::string::npos) << r.err;
  }
  {
    const auto r = test::run_command(cli() + " info --help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("usage: brise info"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--json"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace brise
