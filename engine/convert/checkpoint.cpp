#include "engine/convert/checkpoint.hpp"

#include <algorithm>
#include <set>

#include "brise/error.hpp"
#include "engine/gguf/json_util.hpp"

namespace brise {
namespace fs = std::filesystem;
namespace {

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// Context length when a native params.json does not state one (Mistral 7B's).
constexpr uint32_t kDefaultNativeContext = 32768;

uint32_t as_size(uint64_t v, const std::string& where, const char* key) {
  if (v > (1u << 24))
    throw Error(where + ": '" + key + "' = " + std::to_string(v) + " is out of range");
  return static_cast<uint32_t>(v);
}

ModelConfig parse_hf_config(const fs::path& path, bool* tied) {
  const std::string where = path.string();
  const auto j = json_util::parse_file(where);
  if (!j.is_object()) throw Error(where + ": must be a JSON object");
  using namespace json_util;
  if (auto archs = j.find("architectures"); archs != j.end() && archs->is_array()) {
    bool known = false;
    for (const auto& a : *archs)
      if (a.is_string() && (a == "MistralForCausalLM" || a == "LlamaForCausalLM")) known = true;
    if (!known)
      throw Error(where + ": architectures " + archs->dump() +
                  " are not supported (brise converts MistralForCausalLM and LlamaForCausalLM)");
  }
  if (auto act = get_string(j, "hidden_act", where); act && *act != "silu")
    throw Error(where + ": hidden_act '" + *act + "' is not supported (Mistral uses silu)");
  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null())
    throw Error(where + ": rope_scaling is not supported");
  if (get_bool(j, "attention_bias", where).value_or(false) ||
      get_bool(j, "mlp_bias", where).value_or(false))
    throw Error(where + ": attention/MLP biases are not part of the Mistral architecture");

  ModelConfig c;
  c.dim = as_size(require_uint(j, "hidden_size", where), where, "hidden_size");
  c.n_layers = as_size(require_uint(j, "num_hidden_layers", where), where, "num_hidden_layers");
  c.n_heads = as_size(require_uint(j, "num_attention_heads", where), where, "num_attention_heads");
  c.n_kv_heads = as_size(get_uint(j, "num_key_value_heads", where).value_or(c.n_heads), where,
                         "num_key_value_heads");
  c.hidden_dim = as_size(require_uint(j, "intermediate_size", where), where, "intermediate_size");
  c.vocab_size = as_size(require_uint(j, "vocab_size", where), where, "vocab_size");
  c.context_length =
      as_size(require_uint(j, "max_position_embeddings", where), where, "max_position_embeddings");
  if (c.n_heads == 0) throw Error(where + ": num_attention_heads must be positive");
  c.head_dim =
      as_size(get_uint(j, "head_dim", where).value_or(c.dim / c.n_heads), where, "head_dim");
  c.norm_eps = static_cast<float>(get_number(j, "rms_norm_eps", where).value_or(1e-5));
  c.rope_theta = get_number(j, "rope_theta", where).value_or(10000.0);
  if (auto sw = get_uint(j, "sliding_window", where))
    c.sliding_window = as_size(*sw, where, "sliding_window");
  if (get_bool(j, "use_sliding_window", where) == false) c.sliding_window.reset();
  *tied = get_bool(j, "tie_word_embeddings", where).value_or(false);
  c.validate(where);
  return c;
}

ModelConfig parse_native_params(const fs::path& path) {
  const std::string where = path.string();
  const auto j = json_util::parse_file(where);
  if (!j.is_object()) throw Error(where + ": must be a JSON object");
  using namespace json_util;
  for (const char* unsupported : {"moe", "vision_encoder", "rope_scaling"})
    if (auto it = j.find(unsupported); it != j.end() && !it->is_null())
      throw Error(where + ": '" + unsupported + "' models are not supported");
  ModelConfig c;
  c.dim = as_size(require_uint(j, "dim", where), where, "dim");
  c.n_layers = as_size(require_uint(j, "n_layers", where), where, "n_layers");
  c.n_heads = as_size(require_uint(j, "n_heads", where), where, "n_heads");
  c.n_kv_heads = as_size(get_uint(j, "n_kv_heads", where).value_or(c.n_heads), where, "n_kv_heads");
  c.hidden_dim = as_size(require_uint(j, "hidden_dim", where), where, "hidden_dim");
  c.vocab_size = as_size(require_uint(j, "vocab_size", where), where, "vocab_size");
  if (c.n_heads == 0) throw Error(where + ": n_heads must be positive");
  c.head_dim =
      as_size(get_uint(j, "head_dim", where).value_or(c.dim / c.n_heads), where, "head_dim");
  c.norm_eps = static_cast<float>(require_number(j, "norm_eps", where));
  c.rope_theta = get_number(j, "rope_theta", where).value_or(10000.0);
  if (auto sw = get_uint(j, "sliding_window", where))
    c.sliding_window = as_size(*sw, where, "sliding_window");
  auto ctx = get_uint(j, "max_seq_len", where);
  if (!ctx) ctx = get_uint(j, "max_position_embeddings", where);
  c.context_length = as_size(ctx.value_or(kDefaultNativeContext), where, "max_seq_len");
  c.validate(where);
  return c;
}

// Names of the weights of layer i in each layout, in GGUF order.
struct LayerNames {
  const char* gguf;
  const char* hf;
  const char* native;
};
constexpr LayerNames kLayerWeights[] = {
    {"attn_norm", "input_layernorm", "attention_norm"},
    {"attn_q", "self_attn.q_proj", "attention.wq"},
    {"attn_k", "self_attn.k_proj", "attention.wk"},
    {"attn_v", "self_attn.v_proj", "attention.wv"},
    {"attn_output", "self_attn.o_proj", "attention.wo"},
    {"ffn_norm", "post_attention_layernorm", "ffn_norm"},
    {"ffn_gate", "mlp.gate_proj", "feed_forward.w1"},
    {"ffn_up", "mlp.up_proj", "feed_forward.w3"},
    {"ffn_down", "mlp.down_proj", "feed_forward.w2"},
};

std::vector<uint64_t> expected_shape(std::string_view gguf, const ModelConfig& c) {
  const uint64_t dim = c.dim, q = c.q_dim(), kv = c.kv_dim(), ffn = c.hidden_dim;
  if (gguf == "attn_norm" || gguf == "ffn_norm") return {dim};
  if (gguf == "attn_q") return {q, dim};
  if (gguf == "attn_k" || gguf == "attn_v") return {kv, dim};
  if (gguf == "attn_output") return {dim, q};
  if (gguf == "ffn_gate" || gguf == "ffn_up") return {ffn, dim};
  return {dim, ffn};  // ffn_down
}

std::string shape_str(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Tensors some Hugging Face exports carry that are not weights (recomputed buffers).
bool ignorable(const std::string& name) {
  return name.find("rotary_emb.inv_freq") != std::string::npos;
}

}  // namespace

ModelConfig read_checkpoint_config(const fs::path& dir, CheckpointLayout* layout, bool* tied) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": not a checkpoint folder");
  bool tied_local = false;
  const bool has_native_weights = is_file(dir / "consolidated.safetensors");
  const bool has_hf = is_file(dir / "config.json");
  if (is_file(dir / "params.json") && (has_native_weights || !has_hf)) {
    if (layout) *layout = CheckpointLayout::MistralNative;
    if (tied) *tied = false;
    return parse_native_params(dir / "params.json");
  }
  if (has_hf) {
    if (layout) *layout = CheckpointLayout::HuggingFace;
    auto c = parse_hf_config(dir / "config.json", &tied_local);
    if (tied) *tied = tied_local;
    return c;
  }
  throw Error(dir.string() +
              ": no config.json (Hugging Face) or params.json (Mistral) in the folder");
}

Checkpoint open_checkpoint(const fs::path& dir) {
  Checkpoint ck;
  ck.dir = dir;
  ck.config = read_checkpoint_config(dir, &ck.layout, &ck.tied_embeddings);
  const bool hf = ck.layout == CheckpointLayout::HuggingFace;
  if (ck.config.name.empty())
    ck.config.name = fs::absolute(dir).lexically_normal().filename().string();
  if (ck.config.name.empty())
    ck.config.name = fs::absolute(dir).lexically_normal().parent_path().filename().string();

  // Which files hold the weights.
  std::map<std::string, std::string> shard_of;  // tensor -> file, when sharded
  if (hf) {
    if (is_file(dir / "model.safetensors.index.json")) {
      shard_of = read_shard_index(dir / "model.safetensors.index.json");
      std::set<std::string> names;
      for (const auto& [t, f] : shard_of) names.insert(f);
      for (const auto& f : names) ck.weight_files.push_back(dir / f);
    } else if (is_file(dir / "model.safetensors")) {
      ck.weight_files.push_back(dir / "model.safetensors");
    }
  } else if (is_file(dir / "consolidated.safetensors")) {
    ck.weight_files.push_back(dir / "consolidated.safetensors");
  }
  if (ck.weight_files.empty())
    throw Error(
        dir.string() + ": the checkpoint has a config but no weights (" +
        (hf ? "model.safetensors or model.safetensors.index.json" : "consolidated.safetensors") +
        " is missing)");

  const auto missing = std::count_if(ck.weight_files.begin(), ck.weight_files.end(),
                                     [](const fs::path& p) { return !is_file(p); });
  if (missing == static_cast<std::ptrdiff_t>(ck.weight_files.size()))
    throw Error(dir.string() + ": the checkpoint has no weights (none of the " +
                std::to_string(missing) + " files listed in model.safetensors.index.json exist)");
  std::map<std::string, const SafetensorsTensor*> by_name;
  for (const auto& path : ck.weight_files) {
    if (!is_file(path))
      throw Error(path.string() +
                  ": weight file listed in model.safetensors.index.json is missing");
    ck.files.push_back(SafetensorsFile::open(path));
    for (const auto& t : ck.files.back()->tensors()) {
      if (!by_name.emplace(t.name, &t).second)
        throw Error(path.string() + ": tensor '" + t.name + "' also appears in another shard");
      if (!shard_of.empty()) {
        const auto it = shard_of.find(t.name);
        if (it == shard_of.end() || it->second != path.filename().string())
          throw Error(path.string() + ": tensor '" + t.name +
                      "' is not listed for this file in model.safetensors.index.json");
      }
    }
  }
  for (const auto& [t, f] : shard_of)
    if (!by_name.count(t))
      throw Error((dir / f).string() + ": tensor '" + t + "' listed in the index is missing");

  const ModelConfig& c = ck.config;
  std::set<std::string> used;
  auto take = [&](const std::string& src, const std::string& gguf, std::vector<uint64_t> shape,
                  uint32_t unpermute, bool norm, bool optional = false) {
    const auto it = by_name.find(src);
    if (it == by_name.end()) {
      if (optional) return false;
      throw Error(dir.string() + ": missing tensor '" + src + "'");
    }
    const SafetensorsTensor& t = *it->second;
    if (t.shape != shape)
      throw Error(dir.string() + ": tensor '" + src + "' has shape " + shape_str(t.shape) +
                  " but the config needs " + shape_str(shape));
    used.insert(src);
    ck.weights.push_back({gguf, &t, std::move(shape), unpermute, norm});
    return true;
  };

  const uint64_t vocab = c.vocab_size, dim = c.dim;
  take(hf ? "model.embed_tokens.weight" : "tok_embeddings.weight", "token_embd.weight",
       {vocab, dim}, 0, false);
  for (uint32_t i = 0; i < c.n_layers; ++i) {
    for (const auto& names : kLayerWeights) {
      const std::string src = hf ? "model.layers." + std::to_string(i) + "." + names.hf + ".weight"
                                 : "layers." + std::to_string(i) + "." + names.native + ".weight";
      const std::string gguf = "blk." + std::to_string(i) + "." + names.gguf + ".weight";
      const std::string_view n = names.gguf;
      uint32_t unpermute = 0;
      if (hf && n == "attn_q") unpermute = c.n_heads;
      if (hf && n == "attn_k") unpermute = c.n_kv_heads;
      take(src, gguf, expected_shape(n, c), unpermute, n == "attn_norm" || n == "ffn_norm");
    }
  }
  take(hf ? "model.norm.weight" : "norm.weight", "output_norm.weight", {dim}, 0, true);
  const std::string head = hf ? "lm_head.weight" : "output.weight";
  if (!take(head, "output.weight", {vocab, dim}, 0, false, /*optional=*/true)) {
    if (hf && !ck.tied_embeddings)
      throw Error(dir.string() +
                  ": missing tensor 'lm_head.weight' (and tie_word_embeddings is false)");
    // Tied classifier: the output matrix is the embedding (written under llama.cpp's name so that
    // every GGUF reader finds it).
    ck.tied_embeddings = true;
    ck.weights.push_back({"output.weight", ck.weights.front().source, {vocab, dim}, 0, false});
  }

  for (const auto& [name, t] : by_name)
    if (!used.count(name) && !ignorable(name))
      throw Error(dir.string() + ": unexpected tensor '" + name + "' (not part of the " +
                  (hf ? "Hugging Face Mistral" : "Mistral native") + " layout)");

  // The checkpoint's dtype is that of its matrices (norms are sometimes kept in f32).
  std::map<TensorType, size_t> counts;
  for (const auto& w : ck.weights)
    if (!w.is_norm) ++counts[w.source->dtype];
  ck.dtype = std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) {
               return a.second < b.second;
             })->first;

  for (const char* tok :
       {"tokenizer.model", "tokenizer.model.v3", "tokenizer.model.v2", "tokenizer.model.v1"})
    if (is_file(dir / tok)) {
      ck.tokenizer = dir / tok;
      break;
    }
  return ck;
}

}  // namespace brise
