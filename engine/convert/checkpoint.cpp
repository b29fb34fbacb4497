#include "engine/convert/checkpoint.hpp"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <set>
#include <string_view>

#include "brise/error.hpp"
#include "engine/gguf/json_util.hpp"

namespace brise {
namespace fs = std::filesystem;

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

namespace {

// Context length when a native params.json does not state one (Mistral 7B's).
constexpr uint32_t kDefaultNativeContext = 32768;

uint32_t as_size(uint64_t v, const std::string& where, const char* key) {
  if (v > (1u << 24))
    throw Error(where + ": '" + key + "' = " + std::to_string(v) + " is out of range");
  return static_cast<uint32_t>(v);
}

// A window per layer (nullopt = full attention) as ModelConfig holds it: one window W and which
// layers use it. Every layer windowed is a window without pattern, none a config without
// window. Windows of different sizes are refused, except that where they differ a window >= the
// context is full attention (it hides nothing from a position within the context; Ministral
// 8B's params.json may say 131072 for its full layers).
void set_layer_windows(ModelConfig& c, std::vector<std::optional<uint32_t>> windows,
                       const std::string& where) {
  std::set<uint32_t> sizes;
  for (const auto& lw : windows) {
    if (lw && *lw == 0) throw Error(where + ": sliding_window must be positive");
    if (lw) sizes.insert(*lw);
  }
  if (sizes.size() > 1)
    for (auto& lw : windows)
      if (lw && *lw >= c.context_length) lw.reset();
  std::optional<uint32_t> w;
  for (const auto& lw : windows) {
    if (lw && w && *w != *lw)
      throw Error(where + ": layers with windows of different sizes (" + std::to_string(*w) +
                  " and " + std::to_string(*lw) + ") are not supported");
    if (lw) w = lw;
  }
  c.sliding_window = w;
  c.sliding_window_pattern.clear();
  if (!w) return;
  for (const auto& lw : windows) c.sliding_window_pattern.push_back(lw.has_value());
  if (std::find(c.sliding_window_pattern.begin(), c.sliding_window_pattern.end(), false) ==
      c.sliding_window_pattern.end())
    c.sliding_window_pattern.clear();  // every layer windowed
}

// Hugging Face's per-layer form (MinistralConfig, transformers >= 4.57): layer_types, one
// "sliding_attention" or "full_attention" per layer, with one sliding_window for the former.
void read_hf_layer_types(const nlohmann::json& j, ModelConfig& c, const std::string& where) {
  const auto it = j.find("layer_types");
  if (it == j.end() || it->is_null()) return;
  if (!it->is_array() || it->size() != c.n_layers)
    throw Error(where + ": layer_types must be a list of one entry per layer (" +
                std::to_string(c.n_layers) + "), got " + it->dump().substr(0, 200));
  std::vector<std::optional<uint32_t>> windows;
  for (size_t l = 0; l < it->size(); ++l) {
    const auto& t = (*it)[l];
    const bool sliding = t == "sliding_attention";
    if (!sliding && t != "full_attention")
      throw Error(where + ": layer_types[" + std::to_string(l) + "] is " + t.dump() +
                  " (brise knows sliding_attention and full_attention)");
    if (sliding && !c.sliding_window)
      throw Error(where + ": layer_types has sliding_attention layers but no sliding_window");
    windows.push_back(sliding ? c.sliding_window : std::nullopt);
  }
  set_layer_windows(c, std::move(windows), where);
}

// Mistral's params.json: sliding_window is an int (every layer) or a list repeated over the
// layers, null entries meaning full attention (mistral-inference's cache.get_cache_sizes).
void read_native_window(const nlohmann::json& j, ModelConfig& c, const std::string& where) {
  const auto it = j.find("sliding_window");
  if (it == j.end() || it->is_null()) return;
  if (!it->is_array()) {
    c.sliding_window =
        as_size(*json_util::get_uint(j, "sliding_window", where), where, "sliding_window");
    return;
  }
  if (it->empty() || c.n_layers % it->size() != 0)
    throw Error(where + ": the sliding_window list has " + std::to_string(it->size()) +
                " entries, which do not divide the " + std::to_string(c.n_layers) + " layers");
  std::vector<std::optional<uint32_t>> windows;
  for (uint32_t l = 0; l < c.n_layers; ++l) {
    const auto& w = (*it)[l % it->size()];
    if (w.is_null()) {
      windows.push_back(std::nullopt);
    } else if (w.is_number_unsigned() || (w.is_number_integer() && w.get<int64_t>() >= 0)) {
      windows.push_back(as_size(w.get<uint64_t>(), where, "sliding_window"));
    } else {
      throw Error(where + ": sliding_window entries must be non-negative integers or null, got " +
                  w.dump());
    }
  }
  set_layer_windows(c, std::move(windows), where);
}

// What a config says beyond the ModelConfig.
struct ConfigFacts {
  bool tied_embeddings = false;     // Hugging Face's tie_word_embeddings
  bool text_of_multimodal = false;  // the text model of a model with a vision encoder
};

bool names_one_of(const nlohmann::json& archs, std::initializer_list<std::string_view> names) {
  for (const auto& a : archs)
    if (a.is_string() && std::find(names.begin(), names.end(), a.get<std::string>()) != names.end())
      return true;
  return false;
}

// A Hugging Face text model's config: config.json itself, or the text_config inside a
// multimodal one.
ModelConfig parse_hf_text_config(const nlohmann::json& j, const std::string& where, bool* tied) {
  using namespace json_util;
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
  read_hf_layer_types(j, c, where);
  if (auto t = get_bool(j, "tie_word_embeddings", where)) *tied = *t;
  c.validate(where);
  return c;
}

ModelConfig parse_hf_config(const fs::path& path, ConfigFacts& facts) {
  const std::string where = path.string();
  const auto j = json_util::parse_file(where);
  if (!j.is_object()) throw Error(where + ": must be a JSON object");
  if (auto archs = j.find("architectures"); archs != j.end() && archs->is_array()) {
    // Mistral Small 3.1/3.2: a Pixtral vision encoder and a Mistral text model, whose config is
    // text_config; brise converts the text model.
    facts.text_of_multimodal = names_one_of(*archs, {"Mistral3ForConditionalGeneration"});
    if (!facts.text_of_multimodal &&
        !names_one_of(*archs, {"MistralForCausalLM", "LlamaForCausalLM", "MinistralForCausalLM"}))
      throw Error(where + ": architectures " + archs->dump() +
                  " are not supported (brise converts MistralForCausalLM, MinistralForCausalLM, "
                  "LlamaForCausalLM and the text model of Mistral3ForConditionalGeneration)");
  }
  facts.tied_embeddings = json_util::get_bool(j, "tie_word_embeddings", where).value_or(false);
  if (!facts.text_of_multimodal) return parse_hf_text_config(j, where, &facts.tied_embeddings);
  const auto text = j.find("text_config");
  if (text == j.end() || !text->is_object())
    throw Error(where + ": Mistral3ForConditionalGeneration needs a text_config object");
  return parse_hf_text_config(*text, where + " text_config", &facts.tied_embeddings);
}

ModelConfig parse_native_params(const fs::path& path, ConfigFacts& facts) {
  const std::string where = path.string();
  const auto j = json_util::parse_file(where);
  if (!j.is_object()) throw Error(where + ": must be a JSON object");
  using namespace json_util;
  // Pixtral and Mistral Small 3.1/3.2: brise converts the text model beside the vision encoder.
  if (auto it = j.find("vision_encoder"); it != j.end() && !it->is_null())
    facts.text_of_multimodal = true;
  for (const char* unsupported : {"moe", "rope_scaling"})
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
  auto ctx = get_uint(j, "max_seq_len", where);
  if (!ctx) ctx = get_uint(j, "max_position_embeddings", where);
  c.context_length = as_size(ctx.value_or(kDefaultNativeContext), where, "max_seq_len");
  read_native_window(j, c, where);
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

// The name of a multimodal checkpoint's tensor in a text-only checkpoint of its layout, or
// nullopt for the vision encoder and its projector. Hugging Face (Mistral3ForConditionalGeneration,
// as llama.cpp's converter reads it): language_model.model.layers.0... (transformers < 4.52) and
// model.language_model.layers.0... (later) are model.layers.0..., language_model.lm_head is
// lm_head; vision_tower and multi_modal_projector are vision. Mistral's native layout: the text
// model has its usual names; vision_encoder, vision_language_adapter, patch_merger and
// pre_mm_projector_norm are vision (transformers' convert_mistral3_weights_to_hf.py).
std::optional<std::string> text_model_name(const std::string& name, CheckpointLayout layout) {
  if (layout == CheckpointLayout::MistralNative) {
    for (const char* vision :
         {"vision_encoder.", "vision_language_adapter.", "patch_merger.", "pre_mm_projector_norm."})
      if (name.starts_with(vision)) return std::nullopt;
    return name;
  }
  if (name.find("vision_tower.") != std::string::npos ||
      name.find("multi_modal_projector.") != std::string::npos)
    return std::nullopt;
  std::string text = name;
  constexpr std::string_view kPrefix = "language_model.";
  if (const size_t at = text.find(kPrefix); at != std::string::npos) text.erase(at, kPrefix.size());
  return text;
}

ModelConfig read_config(const fs::path& dir, CheckpointLayout& layout, ConfigFacts& facts) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": not a checkpoint folder");
  const bool has_native_weights = is_file(dir / "consolidated.safetensors");
  const bool has_hf = is_file(dir / "config.json");
  // Mistral's Hugging Face repositories often hold both layouts: the native one is read then.
  if (is_file(dir / "params.json") && (has_native_weights || !has_hf)) {
    layout = CheckpointLayout::MistralNative;
    return parse_native_params(dir / "params.json", facts);
  }
  if (has_hf) {
    layout = CheckpointLayout::HuggingFace;
    return parse_hf_config(dir / "config.json", facts);
  }
  throw Error(dir.string() +
              ": no config.json (Hugging Face) or params.json (Mistral) in the folder");
}

}  // namespace

ModelConfig read_checkpoint_config(const fs::path& dir, CheckpointLayout* layout, bool* tied) {
  CheckpointLayout read_layout{};
  ConfigFacts facts;
  ModelConfig c = read_config(dir, read_layout, facts);
  if (layout) *layout = read_layout;
  if (tied) *tied = facts.tied_embeddings;
  return c;
}

Checkpoint open_checkpoint(const fs::path& dir) {
  Checkpoint ck;
  ck.dir = dir;
  ConfigFacts facts;
  ck.config = read_config(dir, ck.layout, facts);
  ck.tied_embeddings = facts.tied_embeddings;
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
  // Tensors by their name in a text-only checkpoint of the layout.
  std::map<std::string, const SafetensorsTensor*> by_name;
  std::set<std::string> stored;  // the names in the files
  size_t vision_tensors = 0;
  for (const auto& path : ck.weight_files) {
    if (!is_file(path))
      throw Error(path.string() +
                  ": weight file listed in model.safetensors.index.json is missing");
    ck.files.push_back(SafetensorsFile::open(path));
    for (const auto& t : ck.files.back()->tensors()) {
      stored.insert(t.name);
      const auto name =
          facts.text_of_multimodal ? text_model_name(t.name, ck.layout) : std::optional(t.name);
      if (!name) {
        ++vision_tensors;
      } else if (!by_name.emplace(*name, &t).second) {
        throw Error(path.string() + ": tensor '" + t.name + "' is also " +
                    (*name == t.name ? "in another shard" : "'" + *name + "'"));
      }
      if (!shard_of.empty()) {
        const auto it = shard_of.find(t.name);
        if (it == shard_of.end() || it->second != path.filename().string())
          throw Error(path.string() + ": tensor '" + t.name +
                      "' is not listed for this file in model.safetensors.index.json");
      }
    }
  }
  for (const auto& [t, f] : shard_of)
    if (!stored.count(t))
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
      throw Error(dir.string() + ": unexpected tensor '" + t->name + "' (not part of the " +
                  (hf ? "Hugging Face Mistral" : "Mistral native") + " layout)");
  if (vision_tensors > 0)
    ck.notes.push_back("the text model only: the vision encoder's " +
                       std::to_string(vision_tensors) + " tensors are not converted");

  // The checkpoint's dtype is that of its matrices (norms are sometimes kept in f32).
  std::map<TensorType, size_t> counts;
  for (const auto& w : ck.weights)
    if (!w.is_norm) ++counts[w.source->dtype];
  ck.dtype = std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) {
               return a.second < b.second;
             })->first;
  return ck;
}

}  // namespace brise
