#include "support/tekken_checkpoint.hpp"

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "brise/gguf.hpp"
#include "kernels/fp16.hpp"
#include "support/safetensors_writer.hpp"
#include "support/testdata.hpp"

namespace brise::test {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

bool is_hf(CheckpointForm form) {
  return form == CheckpointForm::HuggingFace || form == CheckpointForm::Mistral3 ||
         form == CheckpointForm::Mistral3NewNames;
}

// GGUF tensor -> native and Hugging Face name of a text-only checkpoint.
struct Names {
  std::string native, hf;
};
Names checkpoint_names(const std::string& gguf) {
  if (gguf == "token_embd.weight") return {"tok_embeddings.weight", "model.embed_tokens.weight"};
  if (gguf == "output_norm.weight") return {"norm.weight", "model.norm.weight"};
  if (gguf == "output.weight") return {"output.weight", "lm_head.weight"};
  static const std::map<std::string, Names> layer = {
      {"attn_norm", {"attention_norm", "input_layernorm"}},
      {"attn_q", {"attention.wq", "self_attn.q_proj"}},
      {"attn_k", {"attention.wk", "self_attn.k_proj"}},
      {"attn_v", {"attention.wv", "self_attn.v_proj"}},
      {"attn_output", {"attention.wo", "self_attn.o_proj"}},
      {"ffn_norm", {"ffn_norm", "post_attention_layernorm"}},
      {"ffn_gate", {"feed_forward.w1", "mlp.gate_proj"}},
      {"ffn_up", {"feed_forward.w3", "mlp.up_proj"}},
      {"ffn_down", {"feed_forward.w2", "mlp.down_proj"}}};
  const auto dot1 = gguf.find('.'), dot2 = gguf.find('.', dot1 + 1), dot3 = gguf.rfind('.');
  const std::string block = gguf.substr(dot1 + 1, dot2 - dot1 - 1);
  const Names& n = layer.at(gguf.substr(dot2 + 1, dot3 - dot2 - 1));
  return {"layers." + block + "." + n.native + ".weight",
          "model.layers." + block + "." + n.hf + ".weight"};
}

// The name under which the form stores a text-model tensor.
std::string stored_name(const std::string& gguf, CheckpointForm form) {
  const Names n = checkpoint_names(gguf);
  switch (form) {
    case CheckpointForm::Native:
    case CheckpointForm::NativeWithVision:
      return n.native;
    case CheckpointForm::HuggingFace:
      return n.hf;
    case CheckpointForm::Mistral3:  // language_model.model.layers..., language_model.lm_head
      return "language_model." + n.hf;
    case CheckpointForm::Mistral3NewNames:  // model.language_model.layers..., lm_head
      return n.hf == "lm_head.weight" ? n.hf : "model.language_model." + n.hf.substr(6);
  }
  return n.native;
}

// transformers' permute for rotate-half RoPE:
// w.view(heads, rows / heads / 2, 2, cols).transpose(1, 2).reshape(rows, cols).
std::vector<float> permute_for_rotate_half(const std::vector<float>& w, size_t rows, size_t cols,
                                           size_t heads) {
  const size_t half = rows / heads / 2;
  std::vector<float> out(w.size());
  for (size_t h = 0; h < heads; ++h)
    for (size_t i = 0; i < half; ++i)
      for (size_t j = 0; j < 2; ++j) {
        const size_t from = (h * half + i) * 2 + j;  // view index [h][i][j]
        const size_t to = (h * 2 + j) * half + i;    // after transpose(1, 2): [h][j][i]
        std::memcpy(&out[to * cols], &w[from * cols], cols * sizeof(float));
      }
  return out;
}

std::vector<std::byte> encode(const std::vector<float>& values, const std::string& dtype) {
  std::vector<std::byte> out;
  if (dtype == "F32") {
    out.resize(values.size() * 4);
    std::memcpy(out.data(), values.data(), out.size());
    return out;
  }
  out.resize(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t h = dtype == "BF16"  ? kernels::f32_to_bf16(values[i])
                       : dtype == "F16" ? kernels::f32_to_f16(values[i])
                                        : throw std::runtime_error("dtype " + dtype);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

StTensor small_tensor(const std::string& name, std::vector<uint64_t> shape,
                      const std::string& dtype) {
  size_t n = 1;
  for (uint64_t d : shape) n *= d;
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  return {name, dtype, std::move(shape), encode(values, dtype)};
}

// A few tensors of each form's vision encoder and projector (the converter leaves them out).
std::vector<StTensor> vision_tensors(CheckpointForm form, const std::string& dtype) {
  if (form == CheckpointForm::NativeWithVision)
    return {small_tensor("vision_encoder.patch_conv.weight", {8, 3, 2, 2}, dtype),
            small_tensor("vision_encoder.transformer.layers.0.attention.wq.weight", {8, 8}, dtype),
            small_tensor("vision_language_adapter.w_in.weight", {320, 8}, dtype),
            small_tensor("patch_merger.merging_layer.weight", {8, 32}, dtype),
            small_tensor("pre_mm_projector_norm.weight", {8}, dtype)};
  const std::string model = form == CheckpointForm::Mistral3NewNames ? "model." : "";
  if (form == CheckpointForm::Mistral3 || form == CheckpointForm::Mistral3NewNames)
    return {small_tensor(model + "vision_tower.patch_conv.weight", {8, 3, 2, 2}, dtype),
            small_tensor(model + "vision_tower.transformer.layers.0.attention.q_proj.weight",
                         {8, 8}, dtype),
            small_tensor(model + "multi_modal_projector.linear_1.weight", {320, 8}, dtype),
            small_tensor(model + "multi_modal_projector.norm.weight", {8}, dtype)};
  return {};
}

json model_facts(const fs::path& data, const std::string& model) {
  const json all = json::parse(read_file_text(data / "models/tekken-mini/models.json"));
  for (const auto& m : all.at("models"))
    if (m.at("file") == model + ".gguf") return m;
  throw std::runtime_error("models.json has no " + model);
}

// Mistral's params.json: Nemo's keys; Ministral's window as its list (the full layers' entry the
// context, as Ministral 8B's params.json says 131072).
ordered_json native_params(const json& m, bool vision) {
  ordered_json p = {{"dim", m.at("dim")},
                    {"n_layers", m.at("layers")},
                    {"head_dim", m.at("head_dim")},
                    {"hidden_dim", m.at("ffn")},
                    {"n_heads", m.at("heads")},
                    {"n_kv_heads", m.at("kv_heads")},
                    {"rope_theta", m.at("rope_theta")},
                    {"norm_eps", m.at("rms_eps")},
                    {"vocab_size", m.at("vocab_size")},
                    {"max_seq_len", m.at("context")}};
  if (!m.at("sliding_window").is_null()) {
    p["sliding_window"] = json::array();
    for (const auto& windowed : m.at("sliding_window_pattern"))
      p["sliding_window"].push_back(
          (windowed.get<bool>() ? m.at("sliding_window") : m.at("context")).get<uint32_t>());
  }
  if (vision)
    p["vision_encoder"] = {{"hidden_size", 8},       {"num_channels", 3},
                           {"image_size", 16},       {"patch_size", 2},
                           {"num_hidden_layers", 1}, {"num_attention_heads", 1},
                           {"image_token_id", 10}};
  return p;
}

// Hugging Face's MistralConfig (Nemo: head_dim 128 over hidden_size 5120) or MinistralConfig with
// layer_types.
ordered_json hf_text_config(const json& m) {
  const bool windows = !m.at("sliding_window").is_null();
  ordered_json c = {{"architectures", {windows ? "MinistralForCausalLM" : "MistralForCausalLM"}},
                    {"model_type", windows ? "ministral" : "mistral"},
                    {"hidden_act", "silu"},
                    {"hidden_size", m.at("dim")},
                    {"num_hidden_layers", m.at("layers")},
                    {"num_attention_heads", m.at("heads")},
                    {"num_key_value_heads", m.at("kv_heads")},
                    {"head_dim", m.at("head_dim")},
                    {"intermediate_size", m.at("ffn")},
                    {"vocab_size", m.at("vocab_size")},
                    {"max_position_embeddings", m.at("context")},
                    {"rms_norm_eps", m.at("rms_eps")},
                    {"rope_theta", m.at("rope_theta")},
                    {"sliding_window", m.at("sliding_window")},
                    {"tie_word_embeddings", false},
                    {"torch_dtype", "float32"}};
  if (windows) {
    c["layer_types"] = json::array();
    for (const auto& windowed : m.at("sliding_window_pattern"))
      c["layer_types"].push_back(windowed.get<bool>() ? "sliding_attention" : "full_attention");
  }
  return c;
}

// Mistral Small 3.1's config.json: the text model's config as text_config.
ordered_json mistral3_config(const json& m) {
  ordered_json text = hf_text_config(m);
  text.erase("architectures");
  text.erase("tie_word_embeddings");
  text["model_type"] = "mistral";
  return {{"architectures", {"Mistral3ForConditionalGeneration"}},
          {"model_type", "mistral3"},
          {"image_token_index", 10},
          {"spatial_merge_size", 2},
          {"text_config", text},
          {"vision_config", {{"model_type", "pixtral"}, {"hidden_size", 8}, {"patch_size", 2}}},
          {"tie_word_embeddings", false}};
}

}  // namespace

fs::path tekken_reference_model(const fs::path& data, const std::string& model) {
  return data / "models/tekken-mini" / (model + ".gguf");
}

fs::path write_tekken_checkpoint(const fs::path& data, const TekkenCheckpoint& spec,
                                 const fs::path& dir) {
  fs::create_directories(dir);
  const json m = model_facts(data, spec.model);
  const auto gguf = gguf::File::open(tekken_reference_model(data, spec.model));
  const bool hf = is_hf(spec.form);

  // Hugging Face's two shards: the second from layer 2 on (Mistral's native layout has one file).
  std::vector<StTensor> first = vision_tensors(spec.form, spec.dtype), second;
  for (const auto& t : gguf->tensors()) {
    if (t.type != TensorType::F32) throw std::runtime_error(t.name + " is not F32");
    std::vector<float> values(t.n_elements);
    std::memcpy(values.data(), t.data, t.n_bytes);
    const std::vector<uint64_t> shape(t.dims.rbegin(), t.dims.rend());  // PyTorch order
    const bool q = t.name.ends_with("attn_q.weight"), k = t.name.ends_with("attn_k.weight");
    if (hf && (q || k))
      values = permute_for_rotate_half(values, shape[0], shape[1],
                                       m.at(q ? "heads" : "kv_heads").get<size_t>());
    const bool later = t.name.starts_with("blk.2.") || t.name.starts_with("blk.3.") ||
                       t.name.starts_with("output");
    const std::string dtype = spec.dtype == "BF16" && shape.size() == 1 ? "F32" : spec.dtype;
    (hf && later ? second : first)
        .push_back({stored_name(t.name, spec.form), dtype, shape, encode(values, dtype)});
  }

  if (!hf) {
    write_safetensors(dir / "consolidated.safetensors", first);
    write_file_text(dir / "params.json",
                    native_params(m, spec.form == CheckpointForm::NativeWithVision).dump(2));
  } else {
    const char* names[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    ordered_json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
    uint64_t total = 0;
    for (int s = 0; s < 2; ++s) {
      const auto& shard = s == 0 ? first : second;
      write_safetensors(dir / names[s], shard);
      for (const auto& t : shard) {
        index["weight_map"][t.name] = names[s];
        total += t.data.size();
      }
    }
    index["metadata"]["total_size"] = total;
    write_file_text(dir / "model.safetensors.index.json", index.dump(2));
    const bool multimodal = spec.form != CheckpointForm::HuggingFace;
    write_file_text(dir / "config.json",
                    (multimodal ? mistral3_config(m) : hf_text_config(m)).dump(2));
  }
  if (!spec.tekken.empty())
    fs::copy_file(data / "models/tekken-mini" / spec.tekken, dir / "tekken.json");
  return dir;
}

}  // namespace brise::test
