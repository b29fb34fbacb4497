// llama.cpp's per-tensor type rules (src/llama-quant.cpp, the version of llama.cpp commit 34af94c)
// for dense llama-architecture models. What is left out, because it cannot apply to them: other
// architectures (Falcon's branches), MoE (n_expert conditions, 3-D expert tensors), fused
// attn_qkv/attn_kv_b, the IQ1/IQ2/IQ3/TQ/MXFP4 file types, importance matrices (every
// `has_imatrix` branch is taken as false), --tensor-type patterns and --leave-output-tensor.
#include "engine/convert/quantize_rules.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "brise/error.hpp"

namespace brise {
namespace {

using M = QuantMix;
using T = TensorType;

// llama.cpp's tensor_get_category, for the names a llama model has.
enum class Category {
  TokenEmbd,
  Output,
  AttnV,
  AttnK,
  AttnQ,
  AttnOutput,
  FfnUp,
  FfnGate,
  FfnDown,
  Other
};

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

Category category_of(std::string_view name) {
  if (name == "output.weight") return Category::Output;
  if (name == "token_embd.weight") return Category::TokenEmbd;
  if (contains(name, "attn_v.weight")) return Category::AttnV;
  if (contains(name, "attn_k.weight")) return Category::AttnK;
  if (contains(name, "attn_q.weight")) return Category::AttnQ;
  if (contains(name, "attn_output.weight")) return Category::AttnOutput;
  if (contains(name, "ffn_up")) return Category::FfnUp;
  if (contains(name, "ffn_gate")) return Category::FfnGate;
  if (contains(name, "ffn_down")) return Category::FfnDown;
  return Category::Other;
}

uint64_t block_elems(TensorType t) {
  return tensor_type_info(t).block_elems;
}

bool fits(TensorType t, uint64_t cols) {
  return cols % block_elems(t) == 0;
}

std::string type_name(TensorType t) {
  return std::string(tensor_type_name(t));
}

// ggml_is_quantized: everything but the float types.
bool is_quantized_type(TensorType t) {
  return t != T::F32 && t != T::F16 && t != T::BF16;
}

// use_more_bits in llama_tensor_get_type_impl: the first and last eighth of the layers and every
// third one in between.
bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

// llama_tensor_get_type_impl: the mix's choice, before the fallback for incompatible rows.
TensorType mix_rule(const QuantRuleOptions& o, const QuantRuleModel& m, const QuantRuleTensor& t,
                    Category cat, TensorType new_type) {
  const M ftype = o.mix;
  // hparams.n_gqa(): n_head / n_head_kv (0 without kv heads).
  const uint32_t n_gqa = m.n_head_kv == 0 ? 0 : m.n_head / m.n_head_kv;
  // llama-model.cpp names an 80-layer llama with grouped-query attention LLM_TYPE_70B.
  const bool is_70b = m.n_layers == 80 && m.n_head != m.n_head_kv;
  const int n_layers = static_cast<int>(m.n_layers);

  if (cat == Category::Output || (m.tied_embeddings && cat == Category::TokenEmbd)) {
    // The classifier (or the embedding that doubles as it): Q6_K unless the mix is Q8_0, Q8_0
    // when its rows are not whole blocks of the mix's type.
    if (o.output_type) return *o.output_type;
    if (!fits(new_type, t.dims[0])) return T::Q8_0;
    if (new_type != T::Q8_0) return T::Q6_K;
    return new_type;
  }
  if (cat == Category::TokenEmbd) return new_type;  // only the IQ1/IQ2/IQ3/TQ mixes change it
  if (cat == Category::AttnV) {
    if (ftype == M::Q2_K) {
      new_type = n_gqa >= 4 ? T::Q4_K : T::Q3_K;
    } else if (ftype == M::Q3_K_M) {
      new_type = t.i_attn_v < 2 ? T::Q5_K : T::Q4_K;
    } else if (ftype == M::Q3_K_L) {
      new_type = T::Q5_K;
    } else if ((ftype == M::IQ4_NL || ftype == M::IQ4_XS) && n_gqa >= 4) {
      new_type = T::Q5_K;
    } else if ((ftype == M::Q4_K_M || ftype == M::Q5_K_M) &&
               use_more_bits(static_cast<int>(t.i_attn_v), static_cast<int>(m.n_attn_v))) {
      new_type = T::Q6_K;
    } else if (ftype == M::Q4_K_S && t.i_attn_v < 4) {
      new_type = T::Q5_K;
    }
    // 70B: attn_v is 8x smaller than attn_q, so more bits cost little.
    if (is_70b && (new_type == T::Q3_K || new_type == T::Q4_K)) new_type = T::Q5_K;
    return new_type;
  }
  if (cat == Category::FfnDown) {
    const int i_layer = static_cast<int>(t.i_ffn_down);
    if (ftype == M::Q2_K) {
      new_type = T::Q3_K;
    } else if (ftype == M::Q3_K_M) {
      // (Falcon would keep Q3_K where use_more_bits is false.)
      new_type = i_layer < n_layers / 16 ? T::Q5_K : T::Q4_K;
    } else if (ftype == M::Q3_K_L) {
      new_type = T::Q5_K;
    } else if (ftype == M::Q4_K_M) {
      if (use_more_bits(i_layer, n_layers)) new_type = T::Q6_K;
    } else if (i_layer < n_layers / 8 && (ftype == M::IQ4_NL || ftype == M::IQ4_XS)) {
      new_type = T::Q5_K;  // without an importance matrix
    } else if (ftype == M::Q5_K_M && use_more_bits(i_layer, n_layers)) {
      new_type = T::Q6_K;
    } else if (ftype == M::Q4_K_S && i_layer < n_layers / 8) {
      new_type = T::Q5_K;
    }
    return new_type;
  }
  if (cat == Category::AttnOutput) {
    if (ftype == M::Q2_K) return T::Q3_K;
    if (ftype == M::Q3_K_M) return T::Q4_K;
    if (ftype == M::Q3_K_L) return T::Q5_K;
    return new_type;
  }
  // attn_k, attn_q, ffn_gate, ffn_up: only the IQ2/IQ3 mixes change them.
  return new_type;
}

// tensor_type_fallback: a type whose blocks divide the rows.
TensorType fallback(TensorType target, std::string_view name, uint64_t cols, std::string* note) {
  if (fits(target, cols)) return target;
  TensorType to;
  switch (target) {
    case T::IQ4_XS:
      to = T::IQ4_NL;
      break;
    case T::Q2_K:
    case T::Q3_K:
      to = T::Q4_0;
      break;
    case T::Q4_K:
      to = T::Q5_0;
      break;
    case T::Q5_K:
      to = T::Q5_1;
      break;
    case T::Q6_K:
      to = T::Q8_0;
      break;
    default:
      throw Error("tensor '" + std::string(name) + "': rows of " + std::to_string(cols) +
                  " elements are not whole blocks of " + type_name(target) + " (" +
                  std::to_string(block_elems(target)) +
                  " elements), and llama.cpp defines no fallback type for " + type_name(target));
  }
  if (!fits(to, cols)) to = T::F16;
  *note = "tensor '" + std::string(name) + "': rows of " + std::to_string(cols) +
          " elements are not whole blocks of " + type_name(target) + ": " + type_name(to) +
          " instead";
  return to;
}

void require_fits(TensorType type, std::string_view name, uint64_t cols, const char* why) {
  if (fits(type, cols)) return;
  throw Error("tensor '" + std::string(name) + "': rows of " + std::to_string(cols) +
              " elements are not whole blocks of " + type_name(type) + " (" +
              std::to_string(block_elems(type)) + " elements), the type " + why);
}

// llama_model_loader's order of tensors: by layer ("blk.N."; others first), then by name.
int layer_of(std::string_view name) {
  int layer = -1;
  const std::string s(name);
  if (std::sscanf(s.c_str(), "blk.%d.", &layer) != 1) layer = -1;
  return layer;
}

}  // namespace

bool tensor_is_quantizable(std::string_view name, std::span<const uint64_t> dims) {
  // ggml_n_dims: trailing dimensions of 1 do not count.
  size_t n_dims = dims.size();
  while (n_dims > 1 && dims[n_dims - 1] == 1) --n_dims;
  if (n_dims < 2) return false;
  if (!name.ends_with("weight")) return false;
  if (contains(name, "_norm.weight")) return false;
  if (contains(name, "ffn_gate_inp.weight")) return false;
  return true;
}

QuantRuleChoice choose_tensor_type(const QuantRuleOptions& o, const QuantRuleModel& m,
                                   const QuantRuleTensor& t) {
  QuantRuleChoice c;
  c.type = t.type;
  if (!tensor_is_quantizable(t.name, t.dims)) return c;
  c.quantizable = true;
  const Category cat = category_of(t.name);
  const uint64_t cols = t.dims[0];
  // llama_tensor_get_type: the user's types for these two win over everything.
  if (o.embedding_type && cat == Category::TokenEmbd) {
    require_fits(*o.embedding_type, t.name, cols, "given with --embedding-type");
    c.type = *o.embedding_type;
    return c;
  }
  if (o.output_type && cat == Category::Output) {
    require_fits(*o.output_type, t.name, cols, "given with --output-type");
    c.type = *o.output_type;
    return c;
  }
  c.type = quant_mix_base_type(o.mix);
  if (!is_quantized_type(c.type)) return c;  // F32/F16/BF16 mixes: every matrix in that type
  if (o.pure) {
    require_fits(c.type, t.name, cols, "of --pure (without --pure, llama.cpp's fallbacks apply)");
    return c;
  }
  c.type = fallback(mix_rule(o, m, t, cat, c.type), t.name, cols, &c.note);
  return c;
}

std::vector<QuantRuleChoice> choose_tensor_types(const QuantRuleOptions& options, uint32_t n_layers,
                                                 uint32_t n_head, uint32_t n_head_kv,
                                                 std::span<const QuantRuleTensor> tensors) {
  QuantRuleModel model;
  model.n_layers = n_layers;
  model.n_head = n_head;
  model.n_head_kv = n_head_kv;
  model.tied_embeddings = true;
  for (const auto& t : tensors) {
    if (category_of(t.name) == Category::AttnV) ++model.n_attn_v;
    if (category_of(t.name) == Category::Output) model.tied_embeddings = false;
  }
  // The counters advance over the quantizable tensors in llama.cpp's order.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
    if (la != lb) return la < lb;
    return tensors[a].name < tensors[b].name;
  });
  std::vector<QuantRuleChoice> out(tensors.size());
  uint32_t i_attn_v = 0, i_ffn_down = 0;
  for (size_t i : order) {
    QuantRuleTensor t = tensors[i];
    t.i_attn_v = i_attn_v;
    t.i_ffn_down = i_ffn_down;
    out[i] = choose_tensor_type(options, model, t);
    if (!out[i].quantizable) continue;
    const Category cat = category_of(t.name);
    if (cat == Category::AttnV) ++i_attn_v;
    if (cat == Category::FfnDown) ++i_ffn_down;
  }
  return out;
}

}  // namespace brise
