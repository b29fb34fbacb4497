#include "brise/model_config.hpp"

#include <cmath>
#include <limits>

#include "brise/error.hpp"
#include "brise/gguf.hpp"

namespace brise {
namespace {

// Far beyond any real model, small enough that products of two sizes fit in 64 bits.
constexpr uint64_t kMaxSize = 1u << 24;

uint32_t checked_u32(const gguf::File& file, std::string_view key) {
  const uint64_t v = file.get_uint(key);
  if (v > kMaxSize)
    throw Error(file.name() + ": metadata " + std::string(key) + " = " + std::to_string(v) +
                " is out of range");
  return static_cast<uint32_t>(v);
}

}  // namespace

void ModelConfig::validate(const std::string& where) const {
  auto fail = [&](const std::string& problem) { throw Error(where + ": " + problem); };
  const std::pair<const char*, uint32_t> sizes[] = {{"dim", dim},
                                                    {"n_layers", n_layers},
                                                    {"n_heads", n_heads},
                                                    {"n_kv_heads", n_kv_heads},
                                                    {"head_dim", head_dim},
                                                    {"hidden_dim", hidden_dim},
                                                    {"vocab_size", vocab_size},
                                                    {"context_length", context_length}};
  for (const auto& [what, value] : sizes) {
    if (value == 0) fail(std::string(what) + " must be positive");
    if (value > kMaxSize)
      fail(std::string(what) + " = " + std::to_string(value) + " is out of range");
  }
  if (n_heads % n_kv_heads != 0)
    fail("n_heads (" + std::to_string(n_heads) + ") is not a multiple of n_kv_heads (" +
         std::to_string(n_kv_heads) + ")");
  if (head_dim % 2 != 0) fail("head_dim (" + std::to_string(head_dim) + ") must be even for RoPE");
  if (!std::isfinite(norm_eps) || norm_eps <= 0) fail("norm_eps must be a positive number");
  if (!std::isfinite(rope_theta) || rope_theta <= 1) fail("rope_theta must be a number > 1");
  if (sliding_window && *sliding_window == 0) fail("sliding_window must be positive");
}

ModelConfig read_model_config(const gguf::File& file) {
  const std::string arch = file.get_string("general.architecture");
  if (arch != "llama" && arch != "mistral")
    throw Error(file.name() + ": general.architecture is '" + arch +
                "'; brise runs llama/mistral models");
  const std::string p = arch + ".";
  ModelConfig c;
  if (const auto* v = file.find("general.name"); v && v->type() == gguf::ValueType::STRING)
    c.name = v->as_string("general.name");
  c.dim = checked_u32(file, p + "embedding_length");
  c.n_layers = checked_u32(file, p + "block_count");
  c.n_heads = checked_u32(file, p + "attention.head_count");
  c.n_kv_heads = file.find(p + "attention.head_count_kv")
                     ? checked_u32(file, p + "attention.head_count_kv")
                     : c.n_heads;
  c.hidden_dim = checked_u32(file, p + "feed_forward_length");
  c.context_length = checked_u32(file, p + "context_length");
  if (c.n_heads == 0) throw Error(file.name() + ": " + p + "attention.head_count must be positive");
  c.head_dim = file.find(p + "attention.key_length") ? checked_u32(file, p + "attention.key_length")
                                                     : c.dim / c.n_heads;
  if (file.find(p + "attention.value_length") &&
      checked_u32(file, p + "attention.value_length") != c.head_dim)
    throw Error(file.name() + ": attention.value_length differs from key_length (unsupported)");
  if (file.find(p + "vocab_size")) {
    c.vocab_size = checked_u32(file, p + "vocab_size");
  } else if (const auto* tokens = file.find("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<uint32_t>(tokens->as_array("tokenizer.ggml.tokens").items.size());
  } else {
    c.vocab_size = static_cast<uint32_t>(file.tensor("token_embd.weight").n_rows());
  }
  c.norm_eps = static_cast<float>(file.get_float(p + "attention.layer_norm_rms_epsilon"));
  c.rope_theta = file.find(p + "rope.freq_base") ? file.get_float(p + "rope.freq_base") : 10000.0;
  if (file.find("brise.attention.sliding_window"))
    c.sliding_window = checked_u32(file, "brise.attention.sliding_window");
  c.validate(file.name());
  return c;
}

void write_model_config(gguf::Writer& w, const ModelConfig& c) {
  w.set("general.architecture", "llama");
  if (!c.name.empty()) w.set("general.name", c.name);
  w.set("llama.context_length", c.context_length);
  w.set("llama.embedding_length", c.dim);
  w.set("llama.block_count", c.n_layers);
  w.set("llama.feed_forward_length", c.hidden_dim);
  w.set("llama.rope.dimension_count", c.head_dim);
  w.set("llama.attention.head_count", c.n_heads);
  w.set("llama.attention.head_count_kv", c.n_kv_heads);
  if (c.head_dim * c.n_heads != c.dim) {
    w.set("llama.attention.key_length", c.head_dim);
    w.set("llama.attention.value_length", c.head_dim);
  }
  w.set("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
  w.set("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  w.set("llama.vocab_size", c.vocab_size);
  if (c.sliding_window) w.set("brise.attention.sliding_window", *c.sliding_window);
}

}  // namespace brise
