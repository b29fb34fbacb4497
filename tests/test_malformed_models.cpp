// Damaged and hostile model files through the whole stack: Model::load, Session and the CLI
// (brise info / tokenize / generate / logits). Every case starts from a valid synthetic model
// (write_synthetic_model), changes one thing, and states the error it must produce. The CLI must
// then exit with status 1 and that message on stderr, never die by a signal.
//
// Where errors appear: everything about the file's structure, metadata, tokenizer and tensor
// shapes is an error at load. Weights are not scanned at load (the file is memory-mapped and
// read lazily), so a NaN/Inf inside the weights, e.g. a NaN scale in a q8_0 block, is an error at
// the first forward pass that uses it: "numeric fault: NaN or Inf in the activations after
// layer N (blk.N)" (or "after the output layer" for the classifier).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"
#include "brise/synth.hpp"
#include "support/gguf_bytes.hpp"
#include "support/gguf_image.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;
using test::Bytes;
using test::find_string;
using test::put_u32;
using test::put_u64;

// --- an editable model ---------------------------------------------------------------------

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  TensorType type = TensorType::F32;
  Bytes data;
};

// A GGUF model as metadata + tensors, so that a case can change one thing and write it again.
struct ModelSpec {
  std::vector<std::pair<std::string, gguf::Value>> metadata;
  std::vector<TensorSpec> tensors;

  gguf::Value& at(const std::string& key) {
    for (auto& [k, v] : metadata)
      if (k == key) return v;
    throw std::runtime_error("no key " + key);
  }
  void set(const std::string& key, gguf::Value v) {
    for (auto& [k, old] : metadata)
      if (k == key) {
        old = std::move(v);
        return;
      }
    metadata.emplace_back(key, std::move(v));
  }
  void erase(const std::string& key) {
    std::erase_if(metadata, [&](const auto& kv) { return kv.first == key; });
  }
  TensorSpec& tensor(const std::string& name) {
    for (auto& t : tensors)
      if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
  }

  // Tensor data is cut or zero-extended to the size its dims and type need.
  Bytes serialize() const {
    gguf::Writer w;
    for (const auto& [k, v] : metadata) w.set(k, v);
    for (const auto& t : tensors) w.add_tensor(t.name, t.dims, t.type);
    return test::gguf_image(w, [&](size_t i) { return tensors[i].data; });
  }
};

ModelSpec read_spec(const fs::path& path) {
  const auto file = gguf::File::open(path);
  ModelSpec spec;
  spec.metadata = file->metadata();
  for (const auto& t : file->tensors())
    spec.tensors.push_back({t.name, t.dims, t.type, Bytes(t.data, t.data + t.n_bytes)});
  return spec;
}

// dim 32, 2 layers, 4 heads of 8 with 2 KV heads, ffn 64, vocab 260, context 64.
SynthSpec small_synth(TensorType type) {
  SynthSpec s;
  ModelConfig& c = s.config;
  c.name = "malformed-base";
  c.dim = 32, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
  c.hidden_dim = 64, c.vocab_size = 260, c.context_length = 64;
  s.type = type;
  return s;
}

const ModelSpec& base(TensorType type) {
  static std::map<TensorType, ModelSpec> specs;
  auto it = specs.find(type);
  if (it == specs.end()) {
    const fs::path dir = test::scratch_dir("malformed-base-" + std::to_string(::getpid()) + "-" +
                                           std::string(tensor_type_name(type)));
    write_synthetic_model(dir / "base.gguf", small_synth(type));
    it = specs.emplace(type, read_spec(dir / "base.gguf")).first;
    fs::remove_all(dir);
  }
  return it->second;
}

// Sets an f16 value (the scale of a q8_0 block) at byte `at` of a tensor's data.
void put_f16(TensorSpec& t, size_t at, uint16_t bits) {
  t.data.at(at) = static_cast<std::byte>(bits & 0xFF);
  t.data.at(at + 1) = static_cast<std::byte>(bits >> 8);
}
void put_f32(TensorSpec& t, size_t index, float v) {
  std::memcpy(t.data.data() + index * 4, &v, 4);
}

constexpr uint16_t kF16NaN = 0x7E00, kF16Inf = 0x7C00;
constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();

// --- the cases -----------------------------------------------------------------------------

// Which part of brise sees the problem, and so which CLI commands must fail:
//   File: the GGUF structure (every command, `brise info` included);
//   Vocab: the tokenizer metadata (tokenize, generate, logits; info still shows the file);
//   Model: hyperparameters/tensors (generate, logits);
//   Forward: the weights' values (generate, logits, at the first forward pass).
enum class Stage { File, Vocab, Model, Forward };

struct Case {
  std::string name;
  std::function<Bytes()> make;
  std::string message;  // substring of the error (after the file name)
  Stage stage;
  std::vector<int32_t> prompt = {1, 5, 9};  // token ids fed for Stage::Forward
};

Bytes edit(TensorType type, const std::function<void(ModelSpec&)>& change) {
  ModelSpec s = base(type);
  change(s);
  return s.serialize();
}
Bytes edit_bytes(const std::function<void(Bytes&)>& change) {
  Bytes b = base(TensorType::F32).serialize();
  change(b);
  return b;
}

std::vector<Case> cases() {
  const auto F32 = TensorType::F32, Q8 = TensorType::Q8_0;
  std::vector<Case> c;
  // Header.
  c.push_back({"wrong magic", [] { return edit_bytes([](Bytes& b) { b[3] = std::byte{'X'}; }); },
               "header: magic: wrong magic 'GGUX' (expected 'GGUF')", Stage::File});
  for (const uint32_t v : {1u, 2u, 4u})
    c.push_back({"version " + std::to_string(v),
                 [v] { return edit_bytes([v](Bytes& b) { put_u32(b, 4, v); }); },
                 "unsupported GGUF version " + std::to_string(v), Stage::File});
  c.push_back({"tensor count 2^64-1",
               [] { return edit_bytes([](Bytes& b) { put_u64(b, 8, kMax64); }); },
               "header: tensor_count: count 18446744073709551615 needs at least", Stage::File});
  c.push_back({"metadata count 2^63",
               [] { return edit_bytes([](Bytes& b) { put_u64(b, 16, uint64_t{1} << 63); }); },
               "header: metadata_kv_count: count 9223372036854775808", Stage::File});
  c.push_back({"tensor count 0", [] { return edit_bytes([](Bytes& b) { put_u64(b, 8, 0); }); },
               "missing tensor 'token_embd.weight'", Stage::Model});
  c.push_back(
      {"metadata string of 4 GB",
       [] {
         return edit_bytes(
             [](Bytes& b) { put_u64(b, find_string(b, "llama"), uint64_t{1} << 32); });
       },
       "metadata 0 'general.architecture': string of 4294967296 bytes at offset 64 runs past "
       "the end of the file",
       Stage::File});
  c.push_back({"tensor dims of 2^40 elements",
               [] {
                 return edit_bytes([](Bytes& b) {
                   const size_t at = find_string(b, "token_embd.weight") + 8 + 17;
                   put_u64(b, at + 4, uint64_t{1} << 20);  // dims [2^20, 2^20]
                   put_u64(b, at + 12, uint64_t{1} << 20);
                 });
               },
               "runs past the end of the file", Stage::File});
  c.push_back({"tensor type id 1000",
               [] {
                 return edit_bytes([](Bytes& b) {
                   put_u32(b, find_string(b, "token_embd.weight") + 8 + 17 + 4 + 16, 1000);
                 });
               },
               "unsupported tensor type id 1000", Stage::File});
  c.push_back({"tensor n_dims 5",
               [] {
                 return edit_bytes(
                     [](Bytes& b) { put_u32(b, find_string(b, "token_embd.weight") + 8 + 17, 5); });
               },
               "n_dims 5 is out of range", Stage::File});
  c.push_back({"tensor offset 2^40",
               [] {
                 return edit_bytes([](Bytes& b) {
                   put_u64(b, find_string(b, "token_embd.weight") + 8 + 17 + 4 + 16 + 4,
                           uint64_t{1} << 40);
                 });
               },
               "runs past the end of the file", Stage::File});
  c.push_back({"duplicate tensor name",
               [] {
                 return edit_bytes([](Bytes& b) {
                   const size_t at = find_string(b, "blk.0.attn_k.weight") + 8;
                   b[at + 11] = std::byte{'q'};  // blk.0.attn_q.weight twice
                 });
               },
               "duplicate tensor name", Stage::File});
  // Metadata.
  for (const char* key : {"general.architecture", "llama.embedding_length", "llama.block_count",
                          "llama.attention.head_count", "llama.feed_forward_length",
                          "llama.context_length", "llama.attention.layer_norm_rms_epsilon"})
    c.push_back({std::string("missing ") + key,
                 [key] { return edit(TensorType::F32, [key](ModelSpec& s) { s.erase(key); }); },
                 std::string("missing metadata key '") + key + "'", Stage::Model});
  c.push_back(
      {"missing llama.attention.head_count_kv (defaults to head_count)",
       [] {
         return edit(TensorType::F32,
                     [](ModelSpec& s) { s.erase("llama.attention.head_count_kv"); });
       },
       "tensor 'blk.0.attn_k.weight' has dims [32, 16] but the hyperparameters need [32, 32]",
       Stage::Model});
  c.push_back({"architecture gpt2",
               [] {
                 return edit(TensorType::F32,
                             [](ModelSpec& s) { s.set("general.architecture", "gpt2"); });
               },
               "general.architecture is 'gpt2'", Stage::Model});
  c.push_back(
      {"block_count as a string",
       [] { return edit(TensorType::F32, [](ModelSpec& s) { s.set("llama.block_count", "2"); }); },
       "llama.block_count", Stage::Model});
  c.push_back({"zero layers",
               [] {
                 return edit(TensorType::F32,
                             [](ModelSpec& s) { s.set("llama.block_count", uint32_t{0}); });
               },
               "n_layers must be positive", Stage::Model});
  c.push_back({"head count 4 with 3 kv heads",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.attention.head_count_kv", uint32_t{3});
                 });
               },
               "n_heads (4) is not a multiple of n_kv_heads (3)", Stage::Model});
  c.push_back({"head count 0",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.attention.head_count", uint32_t{0});
                 });
               },
               "head_count must be positive", Stage::Model});
  c.push_back({"embedding length 2^31",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.embedding_length", uint32_t{1} << 31);
                 });
               },
               "llama.embedding_length = 2147483648 is out of range", Stage::Model});
  c.push_back({"vocab_size 2^31",
               [] {
                 return edit(TensorType::F32,
                             [](ModelSpec& s) { s.set("llama.vocab_size", uint32_t{1} << 31); });
               },
               "llama.vocab_size = 2147483648 is out of range", Stage::Model});
  c.push_back({"rms epsilon NaN",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.attention.layer_norm_rms_epsilon", std::nanf(""));
                 });
               },
               "norm_eps must be a positive number", Stage::Model});
  c.push_back({"context length 0",
               [] {
                 return edit(TensorType::F32,
                             [](ModelSpec& s) { s.set("llama.context_length", uint32_t{0}); });
               },
               "context_length must be positive", Stage::Model});
  // Head sizes (head_dim from key_length need not be dim / heads, but must match the tensors).
  c.push_back({"key_length 16 with tensors of heads of 8",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.attention.key_length", uint32_t{16});
                   s.set("llama.attention.value_length", uint32_t{16});
                   s.set("llama.rope.dimension_count", uint32_t{16});
                 });
               },
               "tensor 'blk.0.attn_q.weight' has dims [32, 32] but the hyperparameters need "
               "[32, 64] (4 heads x head_dim 16, dim 32)",
               Stage::Model});
  c.push_back({"value_length 16, key_length 8",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.attention.key_length", uint32_t{8});
                   s.set("llama.attention.value_length", uint32_t{16});
                 });
               },
               "llama.attention.value_length (16) differs from the key length 8 (unsupported)",
               Stage::Model});
  c.push_back({"rope.dimension_count 4 of head_dim 8",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.rope.dimension_count", uint32_t{4});
                 });
               },
               "llama.rope.dimension_count (4) differs from head_dim 8 (partial rotary "
               "embeddings are not supported)",
               Stage::Model});
  // Per-layer windows.
  c.push_back({"window pattern of 3 entries for 2 layers",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.attention.sliding_window", uint32_t{4});
                   s.set("llama.attention.sliding_window_pattern",
                         gguf::make_array(std::vector<bool>{true, false, true}));
                 });
               },
               "llama.attention.sliding_window_pattern has 3 entries but the model has 2 layers",
               Stage::Model});
  c.push_back({"window pattern without a window",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.attention.sliding_window_pattern",
                         gguf::make_array(std::vector<bool>{true, false}));
                 });
               },
               "llama.attention.sliding_window_pattern needs llama.attention.sliding_window",
               Stage::Model});
  c.push_back({"window pattern as a number",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.attention.sliding_window", uint32_t{4});
                   s.set("llama.attention.sliding_window_pattern", uint32_t{2});
                 });
               },
               "llama.attention.sliding_window_pattern must be an array of one bool per layer",
               Stage::Model});
  c.push_back({"window pattern beside brise's window for every layer",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("brise.attention.sliding_window", uint32_t{4});
                   s.set("llama.attention.sliding_window", uint32_t{4});
                   s.set("llama.attention.sliding_window_pattern",
                         gguf::make_array(std::vector<bool>{true, false}));
                 });
               },
               "brise.attention.sliding_window (a window on every layer) contradicts "
               "llama.attention.sliding_window_pattern",
               Stage::Model});
  c.push_back({"two windows that disagree",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("brise.attention.sliding_window", uint32_t{4});
                   s.set("llama.attention.sliding_window", uint32_t{8});
                 });
               },
               "brise.attention.sliding_window (4) and llama.attention.sliding_window (8) disagree",
               Stage::Model});
  c.push_back({"window 0 on the windowed layers",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.set("llama.attention.sliding_window", uint32_t{0});
                   s.set("llama.attention.sliding_window_pattern",
                         gguf::make_array(std::vector<bool>{false, true}));
                 });
               },
               "sliding_window must be positive", Stage::Model});
  // Vocabulary.
  c.push_back(
      {"vocab smaller than the special ids (eos 300 of 260)",
       [] {
         return edit(TensorType::F32,
                     [](ModelSpec& s) { s.set("tokenizer.ggml.eos_token_id", uint32_t{300}); });
       },
       "tokenizer.ggml.eos_token_id': token id 300 is out of range (260 tokens)", Stage::Vocab});
  c.push_back({"tokenizer of 260 tokens, vocab_size 100",
               [] {
                 return edit(TensorType::F32,
                             [](ModelSpec& s) { s.set("llama.vocab_size", uint32_t{100}); });
               },
               "the tokenizer has 260 tokens but the model's vocab_size is 100", Stage::Model});
  c.push_back({"fewer scores than tokens",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   auto& a = std::get<gguf::Array>(s.at("tokenizer.ggml.scores").data);
                   a.items.pop_back();
                 });
               },
               "259 scores for 260 tokens", Stage::Vocab});
  c.push_back({"token type 9",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   auto& a = std::get<gguf::Array>(s.at("tokenizer.ggml.token_type").data);
                   a.items[10] = int32_t{9};
                 });
               },
               "token 10 has unknown type 9", Stage::Vocab});
  c.push_back({"duplicate piece",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   auto& a = std::get<gguf::Array>(s.at("tokenizer.ggml.tokens").data);
                   a.items[259] = a.items[2];
                 });
               },
               "duplicates token 2", Stage::Vocab});
  c.push_back({"NaN score",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   auto& a = std::get<gguf::Array>(s.at("tokenizer.ggml.scores").data);
                   a.items[259] = std::nanf("");
                 });
               },
               "token 259 has a NaN score", Stage::Vocab});
  // Tensor shapes.
  c.push_back(
      {"attn_q not q_dim x dim",
       [] {
         return edit(TensorType::F32, [](ModelSpec& s) {
           s.tensor("blk.1.attn_q.weight").dims = {32, 16};
         });
       },
       "tensor 'blk.1.attn_q.weight' has dims [32, 16] but the hyperparameters need [32, 32]",
       Stage::Model});
  c.push_back(
      {"ffn_down transposed",
       [] {
         return edit(TensorType::F32, [](ModelSpec& s) {
           s.tensor("blk.0.ffn_down.weight").dims = {32, 64};
         });
       },
       "tensor 'blk.0.ffn_down.weight' has dims [32, 64] but the hyperparameters need [64, 32]",
       Stage::Model});
  c.push_back({"3-d token embedding",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.tensor("token_embd.weight").dims = {32, 130, 2};
                 });
               },
               "tensor 'token_embd.weight' has dims [32, 130, 2]", Stage::Model});
  c.push_back({"norm of the wrong length",
               [] {
                 return edit(TensorType::F32,
                             [](ModelSpec& s) { s.tensor("blk.1.ffn_norm.weight").dims = {31}; });
               },
               "tensor 'blk.1.ffn_norm.weight' must be a vector of 32 values", Stage::Model});
  c.push_back({"norm in f16",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.tensor("output_norm.weight").type = TensorType::F16;
                 });
               },
               "tensor 'output_norm.weight' is f16; norm weights must be f32", Stage::Model});
  c.push_back({"missing layer tensor",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   std::erase_if(s.tensors, [](const TensorSpec& t) {
                     return t.name == "blk.1.attn_v.weight";
                   });
                 });
               },
               "missing tensor 'blk.1.attn_v.weight'", Stage::Model});
  c.push_back({"extra tensor",
               [] {
                 return edit(TensorType::F32, [](ModelSpec& s) {
                   s.tensors.push_back({"blk.2.attn_q.weight", {32, 32}, TensorType::F32, {}});
                 });
               },
               "unexpected tensor 'blk.2.attn_q.weight'", Stage::Model});
  c.push_back({"one layer too few declared",
               [] {
                 return edit(TensorType::F32,
                             [](ModelSpec& s) { s.set("llama.block_count", uint32_t{1}); });
               },
               "unexpected tensor 'blk.1.", Stage::Model});
  // Weights: NaN/Inf scales of q8_0 blocks, found by the first forward pass.
  c.push_back(
      {"q8_0 NaN scale in blk.1.attn_q",
       [Q8] {
         return edit(Q8,
                     [](ModelSpec& s) { put_f16(s.tensor("blk.1.attn_q.weight"), 0, kF16NaN); });
       },
       "numeric fault: NaN or Inf in the activations after layer 1 (blk.1)", Stage::Forward});
  c.push_back({"q8_0 Inf scale in blk.0.ffn_down row 3",
               [Q8] {
                 return edit(Q8, [](ModelSpec& s) {
                   put_f16(s.tensor("blk.0.ffn_down.weight"), 3 * (64 / 32 * 34), kF16Inf);
                 });
               },
               "numeric fault: NaN or Inf in the activations after layer 0 (blk.0)",
               Stage::Forward});
  c.push_back(
      {"q8_0 NaN scale in the embedding row of token 5",
       [Q8] {
         return edit(Q8,
                     [](ModelSpec& s) { put_f16(s.tensor("token_embd.weight"), 5 * 34, kF16NaN); });
       },
       "numeric fault: NaN or Inf in the activations after layer 0 (blk.0)", Stage::Forward});
  c.push_back(
      {"q8_0 NaN scale in output.weight",
       [Q8] {
         return edit(Q8, [](ModelSpec& s) { put_f16(s.tensor("output.weight"), 7 * 34, kF16NaN); });
       },
       "numeric fault: NaN or Inf in the activations after the output layer", Stage::Forward});
  c.push_back(
      {"f32 Inf in blk.1.attn_norm",
       [F32] {
         return edit(
             F32, [](ModelSpec& s) { put_f32(s.tensor("blk.1.attn_norm.weight"), 4, INFINITY); });
       },
       "numeric fault: NaN or Inf in the activations after layer 1 (blk.1)", Stage::Forward});
  return c;
}

// --- library ---------------------------------------------------------------------------------

struct Written {
  fs::path path;
  Case c;
};

std::vector<Written> write_cases(const std::string& test) {
  const fs::path dir = test::scratch_dir(test);
  std::vector<Written> out;
  int i = 0;
  for (auto& c : cases()) {
    const fs::path path = dir / ("case" + std::to_string(i++) + ".gguf");
    test::write_file_bytes(path, c.make());
    out.push_back({path, std::move(c)});
  }
  return out;
}

TEST(MalformedModels, BaseModelsLoadAndRun) {
  for (const auto type : {TensorType::F32, TensorType::Q8_0}) {
    const fs::path dir = test::scratch_dir("malformed-base-check");
    test::write_file_bytes(dir / "m.gguf", base(type).serialize());
    const auto model = Model::load(dir / "m.gguf");
    Session session(model);
    const auto logits = session.prefill(std::vector<int32_t>{1, 5, 9});
    for (const float x : logits) ASSERT_TRUE(std::isfinite(x));
  }
}

TEST(MalformedModels, EveryCaseGivesItsErrorThroughModelAndSession) {
  for (const auto& [path, c] : write_cases("malformed-library")) {
    SCOPED_TRACE(c.name);
    std::string message;
    try {
      const auto model = Model::load(path);
      ASSERT_EQ(c.stage, Stage::Forward) << "loaded; expected: " << c.message;
      Session session(model);
      try {
        session.prefill(c.prompt);
        ADD_FAILURE() << "prefill succeeded; expected: " << c.message;
      } catch (const Error& e) {
        message = e.what();
        EXPECT_EQ(session.position(), 0u) << "a failed prefill must leave the session unchanged";
      }
    } catch (const Error& e) {
      EXPECT_NE(c.stage, Stage::Forward) << "load failed: " << e.what();
      message = e.what();
      EXPECT_NE(message.find(path.string()), std::string::npos)
          << "the message must name the file: " << message;
    }
    EXPECT_NE(message.find(c.message), std::string::npos)
        << "message: " << message << "\nexpected: " << c.message;
    if (std::getenv("BRISE_SHOW_ERRORS"))
      std::printf("%-50s %s\n", c.name.c_str(), message.c_str());
  }
}

// Truncating the file anywhere in its header (magic, counts, metadata, tensor infos, padding)
// is an error that names the file: at every offset through the parser, and through Model::load
// (a file on disk) at every offset of the fixed header and every 7th offset after it.
TEST(MalformedModels, EveryHeaderTruncationIsAnError) {
  const Bytes full = base(TensorType::F32).serialize();
  const uint64_t data_offset = gguf::File::parse(full, "m")->data_offset();
  const fs::path path = test::scratch_dir("malformed-truncation") / "cut.gguf";
  for (size_t n = 0; n <= data_offset; ++n) {
    const Bytes cut(full.begin(), full.begin() + static_cast<long>(n));
    EXPECT_THROW(gguf::File::parse(cut, "m"), Error) << "parsed a file cut at " << n;
    if (n >= 64 && n % 7 != 0) continue;
    test::write_file_bytes(path, cut);
    try {
      Model::load(path);
      ADD_FAILURE() << "loaded a file cut at " << n << " of " << full.size() << " bytes";
    } catch (const Error& e) {
      ASSERT_EQ(std::string(e.what()).rfind(path.string() + ": ", 0), 0u) << e.what();
    }
  }
}

// Every header field of the file and of its first tensor info, set to extreme values: an error
// naming the file, or (for harmless values) a model that loads; never anything else.
TEST(MalformedModels, ExtremeHeaderFieldsNeverCrash) {
  const Bytes full = base(TensorType::F32).serialize();
  const size_t t0 = find_string(full, "token_embd.weight");
  const size_t k0 = find_string(full, "general.architecture");
  struct Field {
    const char* name;
    size_t at;
    int width;
  };
  const Field fields[] = {
      {"version", 4, 4},           {"tensor_count", 8, 8},         {"metadata_kv_count", 16, 8},
      {"key length", k0, 8},       {"value type", k0 + 8 + 20, 4}, {"tensor name length", t0, 8},
      {"n_dims", t0 + 25, 4},      {"dim 0", t0 + 29, 8},          {"dim 1", t0 + 37, 8},
      {"tensor type", t0 + 45, 4}, {"tensor offset", t0 + 49, 8},
  };
  const uint64_t extremes[] = {0,          1,          0x7F,       0xFF,       0x7FFFFFFF,
                               0x80000000, 0xFFFFFFFF, 1ull << 32, 1ull << 40, 1ull << 62,
                               1ull << 63, kMax64 - 1, kMax64};
  const fs::path path = test::scratch_dir("malformed-extremes") / "x.gguf";
  int loaded = 0, rejected = 0;
  for (const auto& f : fields) {
    for (const uint64_t v : extremes) {
      Bytes b = full;
      if (f.width == 4)
        put_u32(b, f.at, static_cast<uint32_t>(v));
      else
        put_u64(b, f.at, v);
      test::write_file_bytes(path, b);
      try {
        Model::load(path);
        ++loaded;
      } catch (const Error& e) {
        ++rejected;
        EXPECT_EQ(std::string(e.what()).rfind(path.string() + ": ", 0), 0u)
            << f.name << " = " << v << ": " << e.what();
      }
    }
  }
  EXPECT_GT(rejected, 100);
  (void)loaded;
}

// --- CLI -------------------------------------------------------------------------------------

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

void expect_cli_error(const std::string& args, const std::string& command,
                      const std::string& message, const std::string& what) {
  const auto r = test::run_command(quote(test::cli_path().string()) + " " + args);
  EXPECT_FALSE(r.signaled) << what << ": `brise " << command << "` died by a signal; stderr:\n"
                           << r.err;
  EXPECT_EQ(r.status, 1) << what << ": `brise " << command << "`; stderr:\n" << r.err;
  EXPECT_EQ(r.err.rfind("brise " + command + ": error: ", 0), 0u) << what << ": " << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos)
      << what << ": `brise " << command << "` stderr:\n"
      << r.err << "expected: " << message;
}

void expect_cli_ok(const std::string& args, const std::string& command, const std::string& what) {
  const auto r = test::run_command(quote(test::cli_path().string()) + " " + args + " >/dev/null");
  EXPECT_EQ(r.status, 0) << what << ": `brise " << command << "` failed:\n" << r.err;
}

// Every case through `brise logits` (exit 1, the message on stderr, no output file). The other
// commands, whose loading differs, on every case that must make them fail (`info` reads any valid
// GGUF, `tokenize` only the vocabulary, `generate` encodes a prompt and runs the forward pass), and
// on the first case of each other stage, where they must succeed. (Each CLI run costs a process
// start, ~0.4 s under ASan: running every command on every case would take minutes there.)
TEST(MalformedModels, CliCommandsExitWithTheError) {
  const fs::path dir = test::scratch_dir("malformed-cli");
  std::set<std::pair<Stage, std::string>> checked_ok;
  auto first_of_stage = [&](Stage stage, const std::string& command) {
    return checked_ok.insert({stage, command}).second;
  };
  for (const auto& [path, c] : write_cases("malformed-cli-cases")) {
    SCOPED_TRACE(c.name);
    const std::string m = quote(path.string());
    const fs::path out = dir / "logits.f32";
    std::string ids;
    for (const int32_t id : c.prompt) ids += (ids.empty() ? "" : " ") + std::to_string(id);

    expect_cli_error("logits -m " + m + " --ids " + quote(ids) + " -o " + quote(out.string()),
                     "logits", c.message, c.name);
    EXPECT_FALSE(fs::exists(out)) << c.name << ": logits left an output file";

    if (c.stage == Stage::File)
      expect_cli_error("info " + m, "info", c.message, c.name);
    else if (first_of_stage(c.stage, "info"))
      expect_cli_ok("info " + m, "info", c.name);

    if (c.stage == Stage::File || c.stage == Stage::Vocab)
      expect_cli_error("tokenize -m " + m + " -p hello", "tokenize",
                       c.name == "wrong magic" ? "" : c.message, c.name);
    else if (first_of_stage(c.stage, "tokenize"))
      expect_cli_ok("tokenize -m " + m + " -p hello", "tokenize", c.name);

    // The prompt "hello" does not use token 5, whose embedding row one forward case breaks.
    const bool run_generate = c.stage == Stage::Forward
                                  ? c.name.find("token 5") == std::string::npos
                                  : first_of_stage(c.stage, "generate");
    if (run_generate)
      expect_cli_error("generate -m " + m + " -p hello -n 4 --temp 0", "generate", c.message,
                       c.name);
  }
}

}  // namespace
}  // namespace brise
