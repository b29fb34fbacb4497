#include "brise/synth.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "engine/convert/tensor_writer.hpp"
#include "engine/gguf/tensor_encoding.hpp"

namespace brise {
namespace {

// --- counter-based random numbers -------------------------------------------------------------

// SplitMix64's output function: a bijective mix of all 64 bits.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;

// Fills `out` with uniform values in [-amplitude, amplitude), from a SplitMix64 stream keyed by
// (seed, tensor, row) alone, so that rows can be generated in any order on any thread.
void random_row(uint64_t seed, uint64_t tensor, uint64_t row, float amplitude, float* out,
                uint64_t n) {
  uint64_t state = mix64(mix64(mix64(seed + kGamma) + tensor * kGamma) + row * kGamma);
  constexpr float kUnit = 1.0f / (1u << 23);  // 24-bit integers -> [0, 2)
  auto uniform = [&](uint32_t bits24) { return (static_cast<float>(bits24) * kUnit - 1.0f); };
  uint64_t i = 0;
  for (; i + 1 < n; i += 2) {  // two 24-bit draws per 64-bit number
    const uint64_t z = mix64(state += kGamma);
    out[i] = amplitude * uniform(static_cast<uint32_t>(z >> 40));
    out[i + 1] = amplitude * uniform(static_cast<uint32_t>(z >> 8) & 0xFFFFFF);
  }
  if (i < n) out[i] = amplitude * uniform(static_cast<uint32_t>(mix64(state += kGamma) >> 40));
}

// --- the tensors ------------------------------------------------------------------------------

enum class Kind { Embedding, Matrix, Classifier, Norm };

struct Planned {
  std::string name;
  uint64_t cols, rows;  // GGUF dims [cols, rows]; rows == 1 for norms
  Kind kind;
  TensorType type;
};

// Uniform(-a, a) has variance a^2 / 3. A matrix with amplitude sqrt(3 / cols) maps a unit-RMS
// input to a unit-RMS output, so every projection keeps activations O(1); embeddings have unit
// RMS; logits get an RMS of about kLogitRms so that the distribution is not flat.
constexpr float kLogitRms = 4.0f;
constexpr float kNormNoise = 0.1f;  // norm weights are 1 +- this: a wrong norm index shows

float amplitude(const Planned& t) {
  switch (t.kind) {
    case Kind::Embedding:
      return std::sqrt(3.0f);
    case Kind::Matrix:
      return std::sqrt(3.0f / static_cast<float>(t.cols));
    case Kind::Classifier:
      return kLogitRms * std::sqrt(3.0f / static_cast<float>(t.cols));
    case Kind::Norm:
      return kNormNoise;
  }
  return 0;
}

// Tensor names, shapes and order exactly as convert_checkpoint writes them.
std::vector<Planned> plan_tensors(const SynthSpec& spec) {
  const ModelConfig& c = spec.config;
  const uint64_t dim = c.dim, q = c.q_dim(), kv = c.kv_dim(), ffn = c.hidden_dim;
  const TensorType m = spec.type;
  std::vector<Planned> p;
  p.push_back({"token_embd.weight", dim, c.vocab_size, Kind::Embedding, m});
  for (uint32_t i = 0; i < c.n_layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    p.push_back({b + "attn_norm.weight", dim, 1, Kind::Norm, TensorType::F32});
    p.push_back({b + "attn_q.weight", dim, q, Kind::Matrix, m});
    p.push_back({b + "attn_k.weight", dim, kv, Kind::Matrix, m});
    p.push_back({b + "attn_v.weight", dim, kv, Kind::Matrix, m});
    p.push_back({b + "attn_output.weight", q, dim, Kind::Matrix, m});
    p.push_back({b + "ffn_norm.weight", dim, 1, Kind::Norm, TensorType::F32});
    p.push_back({b + "ffn_gate.weight", dim, ffn, Kind::Matrix, m});
    p.push_back({b + "ffn_up.weight", dim, ffn, Kind::Matrix, m});
    p.push_back({b + "ffn_down.weight", ffn, dim, Kind::Matrix, m});
  }
  p.push_back({"output_norm.weight", dim, 1, Kind::Norm, TensorType::F32});
  // Last, so that tying changes no other tensor's index (and so no other tensor's values).
  if (!spec.tied_embeddings) p.push_back({"output.weight", dim, c.vocab_size, Kind::Classifier, m});
  return p;
}

// Letter strings in order of length, then alphabetically: "a".."z", "aa".."zz", "aaa"...
std::string letters(uint64_t k) {
  uint64_t len = 1, count = 26;
  while (k >= count) {
    k -= count;
    ++len;
    count *= 26;
  }
  std::string s(len, 'a');
  for (uint64_t i = len; i-- > 0; k /= 26) s[i] = static_cast<char>('a' + k % 26);
  return s;
}

}  // namespace

std::vector<std::string_view> synth_preset_names() {
  return {"mistral-7b",   "mistral-nemo-12b", "mistral-small-24b",
          "ministral-8b", "mistral-1b",       "tiny"};
}

SynthSpec synth_preset(std::string_view name) {
  SynthSpec s;
  ModelConfig& c = s.config;
  c.norm_eps = 1e-5f;
  if (name == "mistral-7b") {
    c.dim = 4096, c.n_layers = 32, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 128;
    c.hidden_dim = 14336, c.vocab_size = 32000, c.context_length = 32768, c.rope_theta = 1e6;
  } else if (name == "mistral-nemo-12b") {
    c.dim = 5120, c.n_layers = 40, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 128;
    c.hidden_dim = 14336, c.vocab_size = 131072, c.context_length = 131072, c.rope_theta = 1e6;
    s.vocabulary = TokenizerModel::Tekken;
  } else if (name == "mistral-small-24b") {
    c.dim = 5120, c.n_layers = 40, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 128;
    c.hidden_dim = 32768, c.vocab_size = 131072, c.context_length = 131072, c.rope_theta = 1e9;
    s.vocabulary = TokenizerModel::Tekken;
  } else if (name == "ministral-8b") {
    c.dim = 4096, c.n_layers = 36, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 128;
    c.hidden_dim = 12288, c.vocab_size = 131072, c.context_length = 131072, c.rope_theta = 1e8;
    s.vocabulary = TokenizerModel::Tekken;
    c.sliding_window = 32768;
    for (uint32_t l = 0; l < c.n_layers; ++l) c.sliding_window_pattern.push_back(l % 4 != 0);
  } else if (name == "mistral-1b") {
    c.dim = 2048, c.n_layers = 16, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 64;
    c.hidden_dim = 5632, c.vocab_size = 32000, c.context_length = 32768, c.rope_theta = 1e6;
  } else if (name == "tiny") {
    c.dim = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16;
    c.hidden_dim = 128, c.vocab_size = 300, c.context_length = 256, c.rope_theta = 10000;
  } else {
    std::string known;
    for (const auto n : synth_preset_names()) known += (known.empty() ? "" : ", ") + std::string(n);
    throw Error("unknown synthetic model preset '" + std::string(name) + "' (known: " + known +
                ")");
  }
  c.name = "synthetic-" + std::string(name);
  return s;
}

Vocabulary synthetic_vocabulary(uint32_t size) {
  constexpr uint32_t kFixed = 3 + 256;
  if (size < kFixed + 1)
    throw Error("synthetic vocabulary: size " + std::to_string(size) + " is below " +
                std::to_string(kFixed + 1) + " (3 special pieces, 256 byte pieces and '\u2581')");
  Vocabulary v;
  auto add = [&](std::string piece, float score, TokenKind kind) {
    v.pieces.push_back(std::move(piece));
    v.scores.push_back(score);
    v.kinds.push_back(kind);
  };
  add("<unk>", 0, TokenKind::Unknown);
  add("<s>", 0, TokenKind::Control);
  add("</s>", 0, TokenKind::Control);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    add(name, 0, TokenKind::Byte);
  }
  // Normal pieces, best first: "▁", then "▁a", "a", "▁b", "b", ... "▁aa", "aa", ...
  const std::string space = "\u2581";
  add(space, -1, TokenKind::Normal);
  for (uint64_t k = 0; v.size() < size; ++k) {
    const std::string s = letters(k / 2);
    add(k % 2 == 0 ? space + s : s, -2.0f - static_cast<float>(k), TokenKind::Normal);
  }
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  v.add_eos = false;
  v.add_dummy_prefix = true;
  v.remove_extra_whitespaces = false;
  v.byte_fallback = true;
  return v;
}

namespace {

// The checked plan of a model's tensors and the file's header (metadata and tensor infos).
std::vector<Planned> plan_file(const SynthSpec& spec, const std::string& where,
                               gguf::Writer& writer) {
  spec.config.validate(where);
  std::vector<Planned> plan = plan_tensors(spec);
  const uint32_t block = tensor_type_info(spec.type).block_elems;
  for (const Planned& t : plan)
    if (t.type == spec.type && t.cols % block != 0)
      throw Error(where + ": rows of " + t.name + " have " + std::to_string(t.cols) +
                  " elements, not a multiple of " + std::to_string(block) + " as " +
                  std::string(tensor_type_name(spec.type)) + " needs");
  write_model_config(writer, spec.config);
  write_file_type(writer, spec.type);
  writer.set("brise.synthetic.seed", spec.seed);
  write_vocabulary(writer, spec.vocabulary == TokenizerModel::Tekken
                               ? synthetic_tekken_vocabulary(spec.config.vocab_size)
                               : synthetic_vocabulary(spec.config.vocab_size));
  for (const Planned& t : plan) {
    std::vector<uint64_t> dims{t.cols};
    if (t.kind != Kind::Norm) dims.push_back(t.rows);
    writer.add_tensor(t.name, std::move(dims), t.type);
  }
  return plan;
}

}  // namespace

SynthLayout synthetic_model_layout(const SynthSpec& spec) {
  gguf::Writer writer;
  plan_file(spec, "synthetic model", writer);
  SynthLayout layout{writer.tensors(), writer.file_size(), 0};
  for (const auto& t : layout.tensors) layout.parameters += t.n_elements;
  return layout;
}

Vocabulary synthetic_tekken_vocabulary(uint32_t size) {
  constexpr uint32_t kSpecial = 1000, kFixed = kSpecial + 256;
  if (size < kFixed)
    throw Error("synthetic Tekken vocabulary: size " + std::to_string(size) + " is below " +
                std::to_string(kFixed) + " (1000 special tokens and the 256 bytes)");
  Vocabulary v;
  v.model = TokenizerModel::Tekken;
  v.pieces = tekken_default_special_tokens(kSpecial);
  v.kinds.assign(kSpecial, TokenKind::Control);
  for (int b = 0; b < 256; ++b) v.pieces.push_back(std::string(1, static_cast<char>(b)));
  // In order of length, so that each string's parts (its first letter or the space, and the
  // rest) are earlier ranks.
  for (uint64_t k = 0; v.pieces.size() < size; ++k) {
    const std::string s = letters(k);
    if (s.size() >= 2) v.pieces.push_back(s);
    if (v.pieces.size() < size) v.pieces.push_back(" " + s);
  }
  v.kinds.resize(v.pieces.size(), TokenKind::Normal);
  v.scores.assign(v.pieces.size(), 0.0f);
  v.num_special_tokens = kSpecial;
  v.pattern = std::string(kTekkenPattern);
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.pad_id = 11;
  v.add_bos = true;
  v.add_eos = false;
  v.add_dummy_prefix = false;
  v.byte_fallback = false;
  return v;
}

void write_synthetic_model(const std::filesystem::path& out, const SynthSpec& spec,
                           const WriteProgressCallback& progress) {
  const auto start = std::chrono::steady_clock::now();
  const std::string where = "synthetic model " + out.string();
  gguf::Writer writer;
  const std::vector<Planned> plan = plan_file(spec, where, writer);
  write_gguf(
      out, writer, where,
      [&](size_t ti) {
        const Planned& t = plan[ti];
        const float a = amplitude(t);
        const float offset = t.kind == Kind::Norm ? 1.0f : 0.0f;
        TensorData data;
        data.make_row = [&spec, &t, ti, a, offset](uint64_t r, float* row, std::byte* bytes) {
          random_row(spec.seed, ti, r, a, row, t.cols);
          if (offset != 0)
            for (uint64_t j = 0; j < t.cols; ++j) row[j] += offset;
          encode_row(row, t.type, bytes, t.cols);
        };
        return data;
      },
      progress, start);
}

}  // namespace brise
