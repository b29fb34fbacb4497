#include "brise/model_config.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "engine/gguf/tensor_encoding.hpp"
#include "kernels/attention.hpp"

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

// brise's own key means every layer; llama.cpp's window with its pattern, layer by layer.
void read_sliding_window(const gguf::File& file, const std::string& p, ModelConfig& c) {
  const std::string brise_key = "brise.attention.sliding_window";
  const std::string window_key = p + "attention.sliding_window";
  const std::string pattern_key = p + "attention.sliding_window_pattern";
  if (file.find(brise_key)) c.sliding_window = checked_u32(file, brise_key);
  if (file.find(window_key)) {
    const uint32_t w = checked_u32(file, window_key);
    if (c.sliding_window && *c.sliding_window != w)
      throw Error(file.name() + ": " + brise_key + " (" + std::to_string(*c.sliding_window) +
                  ") and " + window_key + " (" + std::to_string(w) + ") disagree");
    c.sliding_window = w;
  }
  const gguf::Value* pattern = file.find(pattern_key);
  if (!pattern) return;
  if (!file.find(window_key))
    throw Error(file.name() + ": " + pattern_key + " needs " + window_key);
  if (file.find(brise_key))
    throw Error(file.name() + ": " + brise_key + " (a window on every layer) contradicts " +
                pattern_key);
  const auto* array = std::get_if<gguf::Array>(&pattern->data);
  if (!array || array->elem_type != gguf::ValueType::BOOL)
    throw Error(file.name() + ": " + pattern_key +
                " must be an array of one bool per layer (true = sliding window)");
  for (const gguf::Value& v : array->items)
    c.sliding_window_pattern.push_back(v.as_bool(pattern_key));
  if (c.sliding_window_pattern.size() != c.n_layers)
    throw Error(file.name() + ": " + pattern_key + " has " +
                std::to_string(c.sliding_window_pattern.size()) + " entries but the model has " +
                std::to_string(c.n_layers) + " layers");
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
  if (!sliding_window_pattern.empty()) {
    if (!sliding_window) fail("a sliding window pattern needs a sliding window");
    if (sliding_window_pattern.size() != n_layers)
      fail("the sliding window pattern has " + std::to_string(sliding_window_pattern.size()) +
           " entries but the model has " + std::to_string(n_layers) + " layers");
  }
}

std::vector<std::optional<uint32_t>> ModelConfig::layer_windows() const {
  std::vector<std::optional<uint32_t>> windows(n_layers, sliding_window);
  for (size_t l = 0; l < sliding_window_pattern.size() && l < windows.size(); ++l)
    if (!sliding_window_pattern[l]) windows[l].reset();
  return windows;
}

void ModelConfig::override_sliding_window(std::optional<uint32_t> window) {
  sliding_window = window;
  if (!window) sliding_window_pattern.clear();
}

std::vector<uint32_t> kv_cache_slots(const std::vector<std::optional<uint32_t>>& windows,
                                     uint32_t context) {
  const bool bounded = has_full_attention_layer(windows);
  std::vector<uint32_t> slots;
  for (const auto& w : windows)
    slots.push_back(!w ? context : bounded ? std::min(*w, context) : *w);
  return slots;
}

bool has_full_attention_layer(const std::vector<std::optional<uint32_t>>& windows) {
  for (const auto& w : windows)
    if (!w) return true;
  return false;
}

uint64_t kv_cache_bytes(const ModelConfig& c, const std::vector<uint32_t>& slots, TensorType type) {
  const auto& traits = type_traits(type);
  const char* why = nullptr;
  if (!kernels::kv_block_supports(traits, c.head_dim, &why))
    throw Error("KV cache of " + std::string(tensor_type_name(type)) + ": " + why);
  const uint64_t block = kernels::kv_block_bytes(traits, c.head_dim) * c.n_kv_heads;
  uint64_t total = 0;
  for (const uint32_t s : slots)
    total += (uint64_t{s} + kernels::kKVBlock - 1) / kernels::kKVBlock * block;
  return total;
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
  if (file.find(p + "attention.value_length")) {
    const uint32_t value_length = checked_u32(file, p + "attention.value_length");
    if (value_length != c.head_dim)
      throw Error(file.name() + ": " + p + "attention.value_length (" +
                  std::to_string(value_length) + ") differs from the key length " +
                  std::to_string(c.head_dim) + " (unsupported)");
  }
  // brise rotates every dimension of a head; llama.cpp would rotate only the first n_rot.
  if (file.find(p + "rope.dimension_count")) {
    const uint32_t n_rot = checked_u32(file, p + "rope.dimension_count");
    if (n_rot != c.head_dim)
      throw Error(file.name() + ": " + p + "rope.dimension_count (" + std::to_string(n_rot) +
                  ") differs from head_dim " + std::to_string(c.head_dim) +
                  " (partial rotary embeddings are not supported)");
  }
  if (file.find(p + "vocab_size")) {
    c.vocab_size = checked_u32(file, p + "vocab_size");
  } else if (const auto* tokens = file.find("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<uint32_t>(tokens->as_array("tokenizer.ggml.tokens").items.size());
  } else {
    c.vocab_size = static_cast<uint32_t>(file.tensor("token_embd.weight").n_rows());
  }
  c.norm_eps = static_cast<float>(file.get_float(p + "attention.layer_norm_rms_epsilon"));
  c.rope_theta = file.find(p + "rope.freq_base") ? file.get_float(p + "rope.freq_base") : 10000.0;
  read_sliding_window(file, p, c);
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
  if (c.sliding_window && c.sliding_window_pattern.empty())
    w.set("brise.attention.sliding_window", *c.sliding_window);
  if (c.sliding_window && !c.sliding_window_pattern.empty()) {
    w.set("llama.attention.sliding_window", *c.sliding_window);
    w.set("llama.attention.sliding_window_pattern", gguf::make_array(c.sliding_window_pattern));
  }
}

}  // namespace brise
