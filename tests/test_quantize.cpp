// brise quantize: the per-tensor types of llama.cpp's mixes (against the files llama-quantize wrote
// from tiny256, and against types derived by hand from src/llama-quant.cpp for shapes tiny256
// does not have), and whole quantizations through the CLI, byte for byte against llama-quantize.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "brise/convert.hpp"
#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/quantize.hpp"
#include "engine/convert/quantize_rules.hpp"
#include "kernels/type_traits.hpp"
#include "support/gguf_image.hpp"
#include "support/gguf_values.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;
using T = TensorType;
using M = QuantMix;

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

test::CommandResult run_cli(const std::string& args) {
  return test::run_command(quote(test::cli_path().string()) + " " + args);
}

// True when brise can encode `type` (the codecs of the newer types were written after this test).
bool codec_works(const char* type) {
  const kernels::TypeTraits* t = kernels::find_type(type);
  if (!t) return false;
  std::vector<float> x(t->block_elems, 0.25f);
  std::vector<uint8_t> out(t->block_bytes);
  try {
    t->encode_row_ref(x.data(), out.data(), x.size());
    t->decode_row_ref(out.data(), x.data(), x.size());
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// ---- synthetic models: the rules alone ------------------------------------------------------

struct Shape {
  uint32_t n_layers, dim, ffn, n_head, n_head_kv, vocab = 32000;
  bool output = true;
};

// A llama model's tensors in brise convert's order (embedding, layers, norm, output).
struct SyntheticModel {
  std::vector<std::string> names;
  std::vector<std::vector<uint64_t>> dims;
  std::map<std::string, T> types;  // the plan

  SyntheticModel(const Shape& s, const QuantRuleOptions& options) {
    const uint64_t kv = uint64_t{s.dim} / s.n_head * s.n_head_kv;
    add("token_embd.weight", {s.dim, s.vocab});
    for (uint32_t i = 0; i < s.n_layers; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      add(p + "attn_norm.weight", {s.dim});
      add(p + "attn_q.weight", {s.dim, s.dim});
      add(p + "attn_k.weight", {s.dim, kv});
      add(p + "attn_v.weight", {s.dim, kv});
      add(p + "attn_output.weight", {s.dim, s.dim});
      add(p + "ffn_norm.weight", {s.dim});
      add(p + "ffn_gate.weight", {s.dim, s.ffn});
      add(p + "ffn_up.weight", {s.dim, s.ffn});
      add(p + "ffn_down.weight", {s.ffn, s.dim});
    }
    add("output_norm.weight", {s.dim});
    if (s.output) add("output.weight", {s.dim, s.vocab});
    std::vector<QuantRuleTensor> tensors;
    for (size_t i = 0; i < names.size(); ++i) tensors.push_back({names[i], dims[i], T::F16});
    const auto choices = choose_tensor_types(options, s.n_layers, s.n_head, s.n_head_kv, tensors);
    for (size_t i = 0; i < names.size(); ++i) types[names[i]] = choices[i].type;
  }
  void add(std::string name, std::vector<uint64_t> d) {
    names.push_back(std::move(name));
    dims.push_back(std::move(d));
  }
  T layer(uint32_t i, const std::string& what) const {
    return types.at("blk." + std::to_string(i) + "." + what + ".weight");
  }
};

QuantRuleOptions mix(M m) {
  QuantRuleOptions o;
  o.mix = m;
  return o;
}

// Mistral 7B: 32 layers, dim 4096, ffn 14336, 32 heads, 8 kv heads (n_gqa 4).
const Shape k7B{32, 4096, 14336, 32, 8};

// llama-quant.cpp, use_more_bits (llama_tensor_get_type_impl, top):
//   i < n/8 || i >= 7*n/8 || (i - n/8) % 3 == 2
// for n = 32: i < 4, i >= 28, and i = 6, 9, ..., 27 — written out by hand.
const std::set<uint32_t> kMoreBits32 = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};

TEST(QuantizeRules, SevenBLikeModelFollowsLlamaCpp) {
  struct Expect {
    M mix;
    // per layer: attn_q/attn_k/ffn_gate/ffn_up, attn_v, attn_output, ffn_down
    std::function<T(uint32_t)> base, attn_v, attn_output, ffn_down;
    T output, embd;
  };
  const auto all = [](T t) { return [t](uint32_t) { return t; }; };
  const std::vector<Expect> cases = {
      // Q4_0: only output.weight changes ("new_type != GGML_TYPE_Q8_0 -> Q6_K" in the OUTPUT
      // branch); token_embd keeps the mix's type (TOKEN_EMBD branch changes only IQ1/IQ2/IQ3/TQ).
      {M::Q4_0, all(T::Q4_0), all(T::Q4_0), all(T::Q4_0), all(T::Q4_0), T::Q6_K, T::Q4_0},
      // Q8_0: the OUTPUT branch keeps Q8_0.
      {M::Q8_0, all(T::Q8_0), all(T::Q8_0), all(T::Q8_0), all(T::Q8_0), T::Q8_0, T::Q8_0},
      // Q2_K: attn_v "n_gqa() >= 4 ? Q4_K : Q3_K" (n_gqa = 32/8 = 4), ffn_down "Q2_K -> Q3_K",
      // attn_output "Q2_K -> Q3_K" (non-Falcon, n_expert != 8).
      {M::Q2_K, all(T::Q2_K), all(T::Q4_K), all(T::Q3_K), all(T::Q3_K), T::Q6_K, T::Q2_K},
      // Q3_K_S: no rule but the output's.
      {M::Q3_K_S, all(T::Q3_K), all(T::Q3_K), all(T::Q3_K), all(T::Q3_K), T::Q6_K, T::Q3_K},
      // Q3_K_M: attn_v "i_attention_wv < 2 ? Q5_K : Q4_K"; ffn_down "i_layer < n_layer/16 ? Q5_K
      // : arch != FALCON || ... ? Q4_K" (n/16 = 2); attn_output "Q3_K_M -> Q4_K".
      {M::Q3_K_M, all(T::Q3_K), [](uint32_t i) { return i < 2 ? T::Q5_K : T::Q4_K; }, all(T::Q4_K),
       [](uint32_t i) { return i < 2 ? T::Q5_K : T::Q4_K; }, T::Q6_K, T::Q3_K},
      // Q3_K_L: attn_v, ffn_down and attn_output all "-> Q5_K".
      {M::Q3_K_L, all(T::Q3_K), all(T::Q5_K), all(T::Q5_K), all(T::Q5_K), T::Q6_K, T::Q3_K},
      // Q4_K_S: attn_v "i_attention_wv < 4 -> Q5_K"; ffn_down "i_layer < n_layer/8 -> Q5_K".
      {M::Q4_K_S, all(T::Q4_K), [](uint32_t i) { return i < 4 ? T::Q5_K : T::Q4_K; }, all(T::Q4_K),
       [](uint32_t i) { return i < 4 ? T::Q5_K : T::Q4_K; }, T::Q6_K, T::Q4_K},
      // Q4_K_M: attn_v and ffn_down "use_more_bits -> Q6_K".
      {M::Q4_K_M, all(T::Q4_K), [](uint32_t i) { return kMoreBits32.count(i) ? T::Q6_K : T::Q4_K; },
       all(T::Q4_K), [](uint32_t i) { return kMoreBits32.count(i) ? T::Q6_K : T::Q4_K; }, T::Q6_K,
       T::Q4_K},
      {M::Q5_K_S, all(T::Q5_K), all(T::Q5_K), all(T::Q5_K), all(T::Q5_K), T::Q6_K, T::Q5_K},
      // Q5_K_M: as Q4_K_M over Q5_K.
      {M::Q5_K_M, all(T::Q5_K), [](uint32_t i) { return kMoreBits32.count(i) ? T::Q6_K : T::Q5_K; },
       all(T::Q5_K), [](uint32_t i) { return kMoreBits32.count(i) ? T::Q6_K : T::Q5_K; }, T::Q6_K,
       T::Q5_K},
      {M::Q6_K, all(T::Q6_K), all(T::Q6_K), all(T::Q6_K), all(T::Q6_K), T::Q6_K, T::Q6_K},
      // IQ4_XS / IQ4_NL: attn_v "n_gqa() >= 4 -> Q5_K"; ffn_down "i_layer < n_layer/8 && IQ4 &&
      // !has_imatrix -> Q5_K".
      {M::IQ4_XS, all(T::IQ4_XS), all(T::Q5_K), all(T::IQ4_XS),
       [](uint32_t i) { return i < 4 ? T::Q5_K : T::IQ4_XS; }, T::Q6_K, T::IQ4_XS},
      {M::IQ4_NL, all(T::IQ4_NL), all(T::Q5_K), all(T::IQ4_NL),
       [](uint32_t i) { return i < 4 ? T::Q5_K : T::IQ4_NL; }, T::Q6_K, T::IQ4_NL},
      // F16: not quantized, so no rule at all (llama_tensor_get_type: ggml_is_quantized).
      {M::F16, all(T::F16), all(T::F16), all(T::F16), all(T::F16), T::F16, T::F16},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(quant_mix_name(c.mix)));
    const SyntheticModel m(k7B, mix(c.mix));
    EXPECT_EQ(m.types.at("output.weight"), c.output);
    EXPECT_EQ(m.types.at("token_embd.weight"), c.embd);
    EXPECT_EQ(m.types.at("output_norm.weight"), T::F16);  // 1-D: kept as it is
    for (uint32_t i = 0; i < k7B.n_layers; ++i) {
      SCOPED_TRACE("layer " + std::to_string(i));
      EXPECT_EQ(m.layer(i, "attn_q"), c.base(i));
      EXPECT_EQ(m.layer(i, "attn_k"), c.base(i));
      EXPECT_EQ(m.layer(i, "ffn_gate"), c.base(i));
      EXPECT_EQ(m.layer(i, "ffn_up"), c.base(i));
      EXPECT_EQ(m.layer(i, "attn_v"), c.attn_v(i));
      EXPECT_EQ(m.layer(i, "attn_output"), c.attn_output(i));
      EXPECT_EQ(m.layer(i, "ffn_down"), c.ffn_down(i));
      EXPECT_EQ(m.layer(i, "attn_norm"), T::F16);
    }
  }
}

TEST(QuantizeRules, GqaFactorDecidesAttnV) {
  // Without grouped-query attention (n_gqa 1) the "n_gqa() >= 4" rules do not apply: Q2_K's
  // attn_v is Q3_K and IQ4_XS keeps attn_v in IQ4_XS.
  Shape mha = k7B;
  mha.n_head_kv = 32;
  EXPECT_EQ(SyntheticModel(mha, mix(M::Q2_K)).layer(5, "attn_v"), T::Q3_K);
  EXPECT_EQ(SyntheticModel(mha, mix(M::IQ4_XS)).layer(5, "attn_v"), T::IQ4_XS);
  // n_gqa = 32/16 = 2 < 4 as well.
  Shape gqa2 = k7B;
  gqa2.n_head_kv = 16;
  EXPECT_EQ(SyntheticModel(gqa2, mix(M::Q2_K)).layer(5, "attn_v"), T::Q3_K);
  // Mistral Nemo's 32/8 and Mistral Large's 96/8 are >= 4.
  Shape large = k7B;
  large.n_layers = 88;
  large.dim = 12288;
  large.n_head = 96;
  EXPECT_EQ(SyntheticModel(large, mix(M::Q2_K)).layer(40, "attn_v"), T::Q4_K);
  EXPECT_EQ(SyntheticModel(large, mix(M::IQ4_NL)).layer(40, "attn_v"), T::Q5_K);
}

TEST(QuantizeRules, SeventyBLayoutGetsMoreBitsInAttnV) {
  // llama-model.cpp: an 80-layer llama with n_head != n_head_kv is LLM_TYPE_70B, and then
  // llama-quant.cpp turns attn_v's Q3_K/Q4_K into Q5_K. use_more_bits(i, 80): i < 10, i >= 70,
  // (i - 10) % 3 == 2 (12, 15, ...).
  const Shape s70{80, 8192, 28672, 64, 8};
  const SyntheticModel q3s(s70, mix(M::Q3_K_S));
  const SyntheticModel q4m(s70, mix(M::Q4_K_M));
  const SyntheticModel q4s(s70, mix(M::Q4_K_S));
  for (uint32_t i : {0u, 11u, 12u, 13u, 40u, 79u}) {
    SCOPED_TRACE(i);
    EXPECT_EQ(q3s.layer(i, "attn_v"), T::Q5_K);
    EXPECT_EQ(q3s.layer(i, "ffn_down"), T::Q3_K);
    const bool more = i < 10 || i >= 70 || (i - 10) % 3 == 2;
    EXPECT_EQ(q4m.layer(i, "attn_v"), more ? T::Q6_K : T::Q5_K);
    EXPECT_EQ(q4s.layer(i, "attn_v"), T::Q5_K);
  }
  // The same shape with as many kv heads as heads is LLM_TYPE_65B: no bump.
  Shape s65 = s70;
  s65.n_head_kv = 64;
  EXPECT_EQ(SyntheticModel(s65, mix(M::Q3_K_S)).layer(40, "attn_v"), T::Q3_K);
  EXPECT_EQ(SyntheticModel(s65, mix(M::Q4_K_M)).layer(11, "attn_v"), T::Q4_K);
}

TEST(QuantizeRules, RowsThatAreNotWholeBlocksFallBack) {
  // tensor_type_fallback: q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0, q2_K/q3_K -> q4_0,
  // iq4_xs -> iq4_nl; f16 when the fallback does not fit either. ffn 14400 = 56.25 blocks of 256
  // (450 of 32): only ffn_down's rows (14400) are affected.
  Shape s = k7B;
  s.ffn = 14400;
  const SyntheticModel q4m(s, mix(M::Q4_K_M));
  EXPECT_EQ(q4m.layer(0, "ffn_down"), T::Q8_0);  // use_more_bits: q6_K -> q8_0
  EXPECT_EQ(q4m.layer(4, "ffn_down"), T::Q5_0);  // q4_K -> q5_0
  EXPECT_EQ(q4m.layer(4, "ffn_up"), T::Q4_K);    // rows of 4096
  EXPECT_EQ(SyntheticModel(s, mix(M::Q2_K)).layer(4, "ffn_down"), T::Q4_0);    // q3_K
  EXPECT_EQ(SyntheticModel(s, mix(M::Q3_K_S)).layer(4, "ffn_down"), T::Q4_0);  // q3_K
  EXPECT_EQ(SyntheticModel(s, mix(M::Q5_K_S)).layer(4, "ffn_down"), T::Q5_1);  // q5_K
  EXPECT_EQ(SyntheticModel(s, mix(M::Q6_K)).layer(4, "ffn_down"), T::Q8_0);    // q6_K
  const SyntheticModel iq4(s, mix(M::IQ4_XS));
  EXPECT_EQ(iq4.layer(4, "ffn_down"), T::IQ4_NL);
  EXPECT_EQ(iq4.layer(0, "ffn_down"), T::Q5_1);  // q5_K (first eighth) -> q5_1
  EXPECT_EQ(SyntheticModel(s, mix(M::Q4_0)).layer(4, "ffn_down"), T::Q4_0);  // 32 divides it

  // Rows of 11000 (not a multiple of 32): the K-quants end in f16, the 32-element types have no
  // fallback in llama.cpp and the tensor cannot be quantized (an error, as in llama-quantize).
  s.ffn = 11000;
  EXPECT_EQ(SyntheticModel(s, mix(M::Q4_K_M)).layer(4, "ffn_down"), T::F16);
  EXPECT_EQ(SyntheticModel(s, mix(M::Q4_K_M)).layer(0, "ffn_down"), T::F16);
  EXPECT_THROW(SyntheticModel(s, mix(M::Q4_0)), Error);
  EXPECT_THROW(SyntheticModel(s, mix(M::Q8_0)), Error);

  // Output with rows of 4000 (a multiple of 32, not of 256): "nx % qk_k != 0 -> Q8_0" for the
  // K mixes; Q4_0's block fits, so Q6_K, which tensor_type_fallback then makes Q8_0. The other
  // matrices with rows of 4000 fall back too (q4_K -> q5_0).
  Shape o = k7B;
  o.dim = 4000;
  o.n_head = 40;
  o.n_head_kv = 8;
  const SyntheticModel o4m(o, mix(M::Q4_K_M));
  EXPECT_EQ(o4m.types.at("output.weight"), T::Q8_0);
  EXPECT_EQ(o4m.types.at("token_embd.weight"), T::Q5_0);
  EXPECT_EQ(o4m.layer(4, "attn_q"), T::Q5_0);
  EXPECT_EQ(SyntheticModel(o, mix(M::Q4_0)).types.at("output.weight"), T::Q8_0);
}

TEST(QuantizeRules, TiedEmbeddingsAndOverrides) {
  // Without output.weight the embedding is quantized as the output is (has_tied_embeddings).
  Shape tied = k7B;
  tied.output = false;
  EXPECT_EQ(SyntheticModel(tied, mix(M::Q4_K_M)).types.at("token_embd.weight"), T::Q6_K);
  EXPECT_EQ(SyntheticModel(tied, mix(M::Q8_0)).types.at("token_embd.weight"), T::Q8_0);
  auto o = mix(M::Q4_K_M);
  o.output_type = T::Q8_0;  // applies to the tied embedding too
  EXPECT_EQ(SyntheticModel(tied, o).types.at("token_embd.weight"), T::Q8_0);
  o.embedding_type = T::Q4_0;  // and --embedding-type wins over it
  EXPECT_EQ(SyntheticModel(tied, o).types.at("token_embd.weight"), T::Q4_0);

  auto ov = mix(M::Q3_K_M);
  ov.output_type = T::Q4_0;
  ov.embedding_type = T::Q8_0;
  const SyntheticModel m(k7B, ov);
  EXPECT_EQ(m.types.at("output.weight"), T::Q4_0);
  EXPECT_EQ(m.types.at("token_embd.weight"), T::Q8_0);
  EXPECT_EQ(m.layer(0, "attn_v"), T::Q5_K);  // the rest is the mix
  // Overrides apply to f16 mixes too.
  auto f = mix(M::F16);
  f.output_type = T::Q6_K;
  EXPECT_EQ(SyntheticModel(k7B, f).types.at("output.weight"), T::Q6_K);
}

TEST(QuantizeRules, PureIsOneTypeAndRefusesRowsThatDoNotFit) {
  auto o = mix(M::Q4_K_M);
  o.pure = true;
  const SyntheticModel m(k7B, o);
  for (const auto& [name, type] : m.types)
    EXPECT_EQ(type, name.find("norm") != std::string::npos ? T::F16 : T::Q4_K) << name;
  o.output_type = T::Q8_0;
  EXPECT_EQ(SyntheticModel(k7B, o).types.at("output.weight"), T::Q8_0);

  Shape s = k7B;
  s.ffn = 14400;
  o.output_type.reset();
  try {
    SyntheticModel bad(s, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_down.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("q4_K"), std::string::npos) << e.what();
  }
  auto ov = mix(M::Q8_0);
  ov.output_type = T::Q4_K;
  Shape d = k7B;
  d.dim = 4000;
  d.n_head = 40;
  EXPECT_THROW(SyntheticModel(d, ov), Error);
}

TEST(QuantizeRules, NamesOfMixes) {
  EXPECT_EQ(quant_mix_from_name("q4_k_m"), M::Q4_K_M);
  EXPECT_EQ(quant_mix_from_name("Q4_K_M"), M::Q4_K_M);
  EXPECT_EQ(quant_mix_from_name("Q4_K"), M::Q4_K_M);  // llama-quantize's aliases
  EXPECT_EQ(quant_mix_from_name("q3_k"), M::Q3_K_M);
  EXPECT_EQ(quant_mix_from_name("Q5_K"), M::Q5_K_M);
  EXPECT_EQ(quant_mix_from_name("iq4_xs"), M::IQ4_XS);
  EXPECT_EQ(quant_mix_from_name("bf16"), M::BF16);
  EXPECT_EQ(quant_mix_from_name("15"), M::Q4_K_M);  // llama-quantize's numbers
  EXPECT_EQ(quant_mix_from_name("7"), M::Q8_0);
  EXPECT_EQ(quant_mix_from_name("q4_k_x"), std::nullopt);
  EXPECT_EQ(quant_mix_from_name("5"), std::nullopt);
  EXPECT_EQ(quant_mix_from_name(""), std::nullopt);
  EXPECT_EQ(quant_mix_base_type(M::Q3_K_L), T::Q3_K);
  EXPECT_EQ(quant_mix_base_type(M::Q8_0), T::Q8_0);
  EXPECT_EQ(quant_mix_name(M::IQ4_NL), "IQ4_NL");
}

// ---- tiny256: the plans against llama-quantize's files ----------------------------------------

class Tiny256 : public ::testing::Test {
 protected:
  void SetUp() override {
    BRISE_REQUIRE_TESTDATA(dir);
    dir_ = dir / "models/tiny256/gguf";
    f32_ = gguf::File::open(dir_ / "tiny256-f32.gguf");
  }
  fs::path file(const std::string& name) const { return dir_ / ("tiny256-" + name + ".gguf"); }

  // Types of `plan` equal those of llama-quantize's file, tensor by tensor, and the file type.
  void expect_plan_matches(const QuantizeOptions& options, const fs::path& reference) const {
    const auto ref = gguf::File::open(reference);
    const QuantizePlan plan = plan_quantization(*f32_, options);
    ASSERT_EQ(plan.tensors.size(), ref->tensors().size());
    for (const auto& t : plan.tensors) {
      const auto& r = ref->tensor(t.name);
      EXPECT_EQ(tensor_type_name(t.to), tensor_type_name(r.type)) << t.name;
      EXPECT_EQ(t.dims, r.dims) << t.name;
    }
    EXPECT_EQ(plan.file_type, ref->get_uint("general.file_type"));
    EXPECT_TRUE(plan.notes.empty());
  }

  fs::path dir_;
  std::shared_ptr<const gguf::File> f32_;
};

TEST_F(Tiny256, MixPlansEqualLlamaQuantizeFiles) {
  for (const char* name : {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_XS", "Q4_0"}) {
    SCOPED_TRACE(name);
    QuantizeOptions o;
    o.mix = *quant_mix_from_name(name);
    expect_plan_matches(o, file(name));
  }
}

TEST_F(Tiny256, PurePlansEqualLlamaQuantizeFiles) {
  for (const char* name : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q4_K_S",
                           "Q5_K_S", "Q6_K", "IQ4_NL", "IQ4_XS"}) {
    SCOPED_TRACE(name);
    QuantizeOptions o;
    o.mix = *quant_mix_from_name(name);
    o.pure = true;
    expect_plan_matches(o, file(std::string("pure-") + name));
  }
}

// ---- whole files through the CLI -------------------------------------------------------------

// Same metadata (every key and value) and the same tensors (shape, type and bytes). brise keeps
// the input's tensor order, llama-quantize sorts the tensors by layer and name, so the files
// differ only in that order.
void expect_same_model(const fs::path& ours, const fs::path& theirs) {
  SCOPED_TRACE(theirs.filename().string());
  const auto a = gguf::File::open(ours);
  const auto b = gguf::File::open(theirs);
  ASSERT_EQ(a->metadata().size(), b->metadata().size());
  for (const auto& [key, value] : a->metadata()) {
    const gguf::Value* other = b->find(key);
    ASSERT_NE(other, nullptr) << key;
    EXPECT_TRUE(test::same_value(value, *other, key));
  }
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  size_t differing = 0;
  for (const auto& t : a->tensors()) {
    const auto& u = b->tensor(t.name);
    EXPECT_EQ(t.dims, u.dims) << t.name;
    ASSERT_EQ(t.type, u.type) << t.name;
    ASSERT_EQ(t.n_bytes, u.n_bytes) << t.name;
    if (std::memcmp(t.data, u.data, t.n_bytes) != 0) {
      ++differing;
      ADD_FAILURE() << t.name << " (" << tensor_type_name(t.type) << ") differs";
    }
  }
  EXPECT_EQ(differing, 0u);
  EXPECT_EQ(a->file_size(), b->file_size());
}

class QuantizeCli : public Tiny256 {
 protected:
  void SetUp() override {
    Tiny256::SetUp();
    if (IsSkipped()) return;
    scratch_ = test::scratch_dir("quantize_cli");
  }
  test::CommandResult quantize(const std::string& in, const fs::path& out,
                               const std::string& args) const {
    return run_cli("quantize " + quote(in) + " " + quote(out.string()) + " " + args + " -t 2");
  }
  // Nothing but the files a test wrote on purpose: no temporary leftovers.
  std::vector<std::string> scratch_files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(scratch_)) names.push_back(e.path().filename());
    return names;
  }
  fs::path scratch_;
};

TEST_F(QuantizeCli, PureQ8_0AndQ4_0EqualLlamaQuantize) {
  for (const char* type : {"q8_0", "Q4_0"}) {
    const fs::path out = scratch_ / (std::string(type) + ".gguf");
    const auto r =
        quantize((dir_ / "tiny256-f32.gguf").string(), out, std::string(type) + " --pure");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("wrote"), std::string::npos) << r.out;
    std::string upper = type;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    expect_same_model(out, file("pure-" + upper));
  }
}

TEST_F(QuantizeCli, Q4_0MixEqualsLlamaQuantizeWhenQ6_KWorks) {
  if (!codec_works("q6_K")) GTEST_SKIP() << "brise's q6_K codec is not written yet";
  const fs::path out = scratch_ / "mix-q4_0.gguf";
  const auto r = quantize((dir_ / "tiny256-f32.gguf").string(), out, "q4_0");
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_model(out, file("Q4_0"));
}

TEST_F(QuantizeCli, EveryPureFileAndMixEqualsLlamaQuantize) {
  for (const char* t :
       {"q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl", "iq4_xs"})
    if (!codec_works(t)) GTEST_SKIP() << "brise's " << t << " codec is not written yet";
  const std::string in = (dir_ / "tiny256-f32.gguf").string();
  for (const char* name : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q4_K_S",
                           "Q5_K_S", "Q6_K", "IQ4_NL", "IQ4_XS"}) {
    const fs::path out = scratch_ / (std::string("pure-") + name + ".gguf");
    const auto r = quantize(in, out, std::string(name) + " --pure");
    ASSERT_EQ(r.status, 0) << r.err;
    expect_same_model(out, file(std::string("pure-") + name));
  }
  for (const char* name : {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_XS", "Q4_0"}) {
    const fs::path out = scratch_ / (std::string(name) + ".gguf");
    const auto r = quantize(in, out, name);
    ASSERT_EQ(r.status, 0) << r.err;
    expect_same_model(out, file(name));
  }
}

TEST_F(QuantizeCli, RequantizingNeedsTheFlag) {
  const std::string in = file("pure-Q4_0").string();
  const fs::path out = scratch_ / "re.gguf";
  const auto refused = quantize(in, out, "q8_0 --pure");
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.err.find("already quantized (q4_0)"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--allow-requantize"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(out));

  const auto done = quantize(in, out, "q8_0 --pure --allow-requantize");
  ASSERT_EQ(done.status, 0) << done.err;
  const auto q4 = gguf::File::open(in);
  const auto q8 = gguf::File::open(out);
  for (const auto& t : q8->tensors())
    EXPECT_EQ(t.type, t.dims.size() == 1 ? T::F32 : T::Q8_0) << t.name;
  EXPECT_EQ(q8->get_uint("general.file_type"), 7u);

  // Re-quantizing to the type the tensors already have copies them: nothing to refuse.
  const auto same = quantize(in, scratch_ / "same.gguf", "q4_0 --pure");
  ASSERT_EQ(same.status, 0) << same.err;
  expect_same_model(scratch_ / "same.gguf", file("pure-Q4_0"));
}

TEST_F(QuantizeCli, BadArgumentsFailClearlyAndWriteNothing) {
  const std::string f32 = (dir_ / "tiny256-f32.gguf").string();
  const fs::path out = scratch_ / "out.gguf";
  struct Case {
    std::string in, args;
    int status;
    std::string message;
  };
  // A file that is not GGUF.
  const fs::path text = scratch_ / "notes.txt";
  std::ofstream(text) << "not a model\n";
  const std::vector<Case> cases = {
      {f32, "q7_K", 2, "TYPE must be"},
      {f32, "q8_0 --output-type q9", 2, "--output-type must be"},
      {f32, "q8_0 --bogus", 2, "--bogus"},
      {f32, "q8_0 -t 0", 2, "-t"},
      {(scratch_ / "missing.gguf").string(), "q8_0", 1, "missing.gguf"},
      {text.string(), "q8_0", 1, "not a GGUF file"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args + " " + c.in);
    const auto r = quantize(c.in, out, c.args);
    EXPECT_EQ(r.status, c.status) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
  const auto missing = run_cli("quantize " + quote(f32) + " " + quote(out.string()));
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("TYPE"), std::string::npos) << missing.err;
  const auto self = quantize(f32, f32, "q8_0");  // never over its own input
  EXPECT_EQ(self.status, 1);
  EXPECT_NE(self.err.find("refusing to overwrite"), std::string::npos) << self.err;
  EXPECT_TRUE(gguf::File::open(f32)->tensor("output.weight").type == T::F32);

  // An existing output stays as it was when quantization fails.
  std::ofstream(out) << "keep me";
  const auto fails = quantize(text.string(), out, "q8_0");
  EXPECT_EQ(fails.status, 1);
  EXPECT_EQ(test::read_file_text(out), "keep me");
  fs::remove(out);

  std::vector<std::string> left = scratch_files();
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, std::vector<std::string>{"notes.txt"});
}

// A llama model whose matrices have rows of 96 (three q8_0 blocks, not a q4_K block).
fs::path write_small_model(const fs::path& path) {
  gguf::Writer w;
  w.set("general.architecture", "llama");
  w.set("llama.block_count", uint32_t{1});
  w.set("llama.embedding_length", uint32_t{96});
  w.set("llama.feed_forward_length", uint32_t{64});
  w.set("llama.attention.head_count", uint32_t{2});
  w.set("llama.attention.head_count_kv", uint32_t{1});
  w.set("general.file_type", uint32_t{0});
  const std::vector<std::pair<std::string, std::vector<uint64_t>>> tensors = {
      {"token_embd.weight", {96, 32}},   {"blk.0.attn_norm.weight", {96}},
      {"blk.0.attn_q.weight", {96, 96}}, {"blk.0.attn_k.weight", {96, 48}},
      {"blk.0.attn_v.weight", {96, 48}}, {"blk.0.attn_output.weight", {96, 96}},
      {"blk.0.ffn_norm.weight", {96}},   {"blk.0.ffn_gate.weight", {96, 64}},
      {"blk.0.ffn_up.weight", {96, 64}}, {"blk.0.ffn_down.weight", {64, 96}},
      {"output_norm.weight", {96}},      {"output.weight", {96, 32}},
  };
  for (const auto& [name, dims] : tensors) w.add_tensor(name, dims, T::F32);
  uint32_t seed = 1;  // values in [0, 2) from one LCG stream through the tensors in order
  const auto random_values = [&](size_t index) {
    std::vector<std::byte> data(w.tensors()[index].n_bytes);
    for (size_t i = 0; i < data.size(); i += sizeof(float)) {
      seed = seed * 1664525u + 1013904223u;
      const float v = static_cast<float>(static_cast<int32_t>(seed >> 8) % 2000) / 1000.0f;
      std::memcpy(data.data() + i, &v, sizeof v);
    }
    return data;
  };
  test::write_file_bytes(path, test::gguf_image(w, random_values));
  return path;
}

TEST_F(QuantizeCli, PureTypeWhoseBlocksDoNotFitTheRowsIsAnError) {
  const fs::path in = write_small_model(scratch_ / "small.gguf");
  const fs::path out = scratch_ / "small-q4k.gguf";
  const auto r = quantize(in.string(), out, "q4_k_m --pure");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("not whole blocks of q4_K"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  // --output-type whose blocks do not fit either.
  const auto o = quantize(in.string(), out, "q8_0 --output-type q6_K");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.err.find("output.weight"), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(out));

  // Pure q8_0 fits, as do the mixes' fallbacks (dry run: the plan only, no file).
  const auto q8 = quantize(in.string(), out, "q8_0 --pure");
  ASSERT_EQ(q8.status, 0) << q8.err;
  const auto q8_file = gguf::File::open(out);  // alive for the loop (not a temporary's member)
  for (const auto& t : q8_file->tensors())
    EXPECT_EQ(t.type, t.dims.size() == 1 ? T::F32 : T::Q8_0) << t.name;
  const auto dry = quantize(in.string(), scratch_ / "none.gguf", "q4_k_m --dry-run");
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("blk.0.attn_q.weight"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("q5_0"), std::string::npos) << dry.out;  // q4_K's fallback
  EXPECT_NE(dry.err.find("not whole blocks of q4_K"), std::string::npos) << dry.err;
  EXPECT_FALSE(fs::exists(scratch_ / "none.gguf"));
}

TEST_F(QuantizeCli, F16AndBf16FilesKeepNormsAndConvertMatrices) {
  const std::string f32 = (dir_ / "tiny256-f32.gguf").string();
  for (const char* type : {"f16", "BF16"}) {
    const fs::path out = scratch_ / (std::string(type) + ".gguf");
    const auto r = quantize(f32, out, type);
    ASSERT_EQ(r.status, 0) << r.err;
    const auto f = gguf::File::open(out);
    const T want = std::string(type) == "f16" ? T::F16 : T::BF16;
    for (const auto& t : f->tensors()) EXPECT_EQ(t.type, t.dims.size() == 1 ? T::F32 : want);
    EXPECT_EQ(f->get_uint("general.file_type"), want == T::F16 ? 1u : 32u);
    EXPECT_EQ(f->get_uint("general.quantization_version"), 2u);  // llama-quantize sets it always
  }
  // f16 -> q8_0: decoded from f16, then quantized.
  const auto r = quantize((scratch_ / "f16.gguf").string(), scratch_ / "q8.gguf", "q8_0 --pure");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(gguf::File::open(scratch_ / "q8.gguf")->tensor("output.weight").type, T::Q8_0);
}

// brise convert --type with a mix writes what converting to f32 and quantizing writes.
TEST(QuantizeConvert, ConvertWithAMixEqualsQuantizingTheF32Conversion) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const char* t : {"q5_0", "q8_0"})
    if (!codec_works(t)) GTEST_SKIP() << "brise's " << t << " codec is not written yet";
  const fs::path scratch = test::scratch_dir("quantize_convert");
  ConvertOptions f32;
  f32.type = T::F32;
  convert_checkpoint(data / "models/stories260k/hf", scratch / "f32.gguf", f32);
  ConvertOptions mixed;
  mixed.mix = M::Q4_K_M;
  const auto result =
      convert_checkpoint(data / "models/stories260k/hf", scratch / "mix.gguf", mixed);
  EXPECT_FALSE(result.notes.empty());  // dim 64: no q4_K blocks fit
  QuantizeOptions q;
  q.mix = M::Q4_K_M;
  quantize_model(scratch / "f32.gguf", scratch / "quantized.gguf", q);
  const auto a = gguf::File::open(scratch / "mix.gguf");
  const auto b = gguf::File::open(scratch / "quantized.gguf");
  EXPECT_EQ(a->get_uint("general.file_type"), 15u);
  EXPECT_EQ(b->get_uint("general.file_type"), 15u);
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (size_t i = 0; i < a->tensors().size(); ++i) {
    const auto& x = a->tensors()[i];
    const auto& y = b->tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.type, y.type) << x.name;
    ASSERT_EQ(x.n_bytes, y.n_bytes) << x.name;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.n_bytes), 0) << x.name;
  }
  // And through the CLI: the mix's name is accepted.
  const auto r = run_cli("convert " + quote((data / "models/stories260k/hf").string()) + " -o " +
                         quote((scratch / "cli.gguf").string()) + " --type q4_k_m -t 1");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Q4_K_M"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace brise
