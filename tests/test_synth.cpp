// Synthetic models: presets, determinism, every tensor type, shapes and metadata as the converter
// writes them, the synthetic vocabulary, awkward shapes, and that the reference forward pass of a
// synthetic model gives usable (finite, varied) logits.
// GCC 12 reports false -Wmaybe-uninitialized warnings inside Eigen's AVX-512 reductions.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model.hpp"
#include "brise/model_config.hpp"
#include "brise/session.hpp"
#include "brise/synth.hpp"
#include "brise/tokenizer.hpp"
#include "support/logits_compare.hpp"
#include "support/reference_model.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using brise::SynthSpec;
using brise::TensorType;
using namespace brise::test;

namespace {

SynthSpec tiny(TensorType type = TensorType::F16, uint64_t seed = 1) {
  SynthSpec s = brise::synth_preset("tiny");
  s.type = type;
  s.seed = seed;
  return s;
}

fs::path write(const fs::path& path, const SynthSpec& spec) {
  brise::write_synthetic_model(path, spec);
  return path;
}

// The tensors the converter writes for `c`, in its order: name and GGUF dims.
std::vector<std::pair<std::string, std::vector<uint64_t>>> expected_tensors(
    const brise::ModelConfig& c, bool tied) {
  const uint64_t dim = c.dim, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim,
                 ffn = c.hidden_dim, vocab = c.vocab_size;
  std::vector<std::pair<std::string, std::vector<uint64_t>>> t;
  t.push_back({"token_embd.weight", {dim, vocab}});
  for (uint32_t i = 0; i < c.n_layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    t.push_back({b + "attn_norm.weight", {dim}});
    t.push_back({b + "attn_q.weight", {dim, q}});
    t.push_back({b + "attn_k.weight", {dim, kv}});
    t.push_back({b + "attn_v.weight", {dim, kv}});
    t.push_back({b + "attn_output.weight", {q, dim}});
    t.push_back({b + "ffn_norm.weight", {dim}});
    t.push_back({b + "ffn_gate.weight", {dim, ffn}});
    t.push_back({b + "ffn_up.weight", {dim, ffn}});
    t.push_back({b + "ffn_down.weight", {ffn, dim}});
  }
  t.push_back({"output_norm.weight", {dim}});
  if (!tied) t.push_back({"output.weight", {dim, vocab}});
  return t;
}

void expect_same_config(const brise::ModelConfig& got, const brise::ModelConfig& want) {
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.dim, want.dim);
  EXPECT_EQ(got.n_layers, want.n_layers);
  EXPECT_EQ(got.n_heads, want.n_heads);
  EXPECT_EQ(got.n_kv_heads, want.n_kv_heads);
  EXPECT_EQ(got.head_dim, want.head_dim);
  EXPECT_EQ(got.hidden_dim, want.hidden_dim);
  EXPECT_EQ(got.vocab_size, want.vocab_size);
  EXPECT_EQ(got.context_length, want.context_length);
  EXPECT_EQ(got.norm_eps, want.norm_eps);
  EXPECT_EQ(got.rope_theta, want.rope_theta);
  EXPECT_EQ(got.sliding_window, want.sliding_window);
  EXPECT_EQ(got.sliding_window_pattern, want.sliding_window_pattern);
}

// Checks names, dims, types and order of the tensors and the metadata of a written model.
void expect_layout(const brise::gguf::File& file, const SynthSpec& spec) {
  expect_same_config(brise::read_model_config(file), spec.config);
  const auto want = expected_tensors(spec.config, spec.tied_embeddings);
  ASSERT_EQ(file.tensors().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& t = file.tensors()[i];
    EXPECT_EQ(t.name, want[i].first);
    EXPECT_EQ(t.dims, want[i].second) << t.name;
    EXPECT_EQ(t.type, t.dims.size() == 1 ? TensorType::F32 : spec.type) << t.name;
  }
}

// Rows of the logits differ from each other and within themselves, and are finite.
void expect_usable_logits(const Eigen::MatrixXf& logits) {
  ASSERT_GT(logits.rows(), 1);
  EXPECT_TRUE(logits.allFinite());
  for (Eigen::Index t = 0; t < logits.rows(); ++t) {
    const Eigen::ArrayXf row = logits.row(t).transpose().array();
    const float mean = row.mean();
    const float sd = std::sqrt((row - mean).square().mean());
    EXPECT_GT(sd, 0.5f) << "row " << t;  // the classifier is scaled for an RMS of about 4
    EXPECT_LT(sd, 50.0f) << "row " << t;
  }
  EXPECT_GT((logits.row(0) - logits.row(1)).cwiseAbs().maxCoeff(), 0.1f);
}

}  // namespace

TEST(Synth, Presets) {
  const auto b7 = brise::synth_preset("mistral-7b").config;
  EXPECT_EQ(b7.dim, 4096u);
  EXPECT_EQ(b7.n_layers, 32u);
  EXPECT_EQ(b7.n_heads, 32u);
  EXPECT_EQ(b7.n_kv_heads, 8u);
  EXPECT_EQ(b7.head_dim, 128u);
  EXPECT_EQ(b7.hidden_dim, 14336u);
  EXPECT_EQ(b7.vocab_size, 32000u);
  EXPECT_EQ(b7.context_length, 32768u);
  EXPECT_EQ(b7.rope_theta, 1e6);
  EXPECT_EQ(b7.norm_eps, 1e-5f);
  EXPECT_FALSE(b7.sliding_window);
  const auto b1 = brise::synth_preset("mistral-1b").config;
  EXPECT_EQ(b1.dim, 2048u);
  EXPECT_EQ(b1.n_layers, 16u);
  EXPECT_EQ(b1.n_heads, 32u);
  EXPECT_EQ(b1.n_kv_heads, 8u);
  EXPECT_EQ(b1.head_dim, 64u);
  EXPECT_EQ(b1.hidden_dim, 5632u);
  EXPECT_EQ(b1.vocab_size, 32000u);
  const auto t = brise::synth_preset("tiny").config;
  EXPECT_EQ(t.dim, 64u);
  EXPECT_EQ(t.n_layers, 2u);
  EXPECT_EQ(t.n_heads, 4u);
  EXPECT_EQ(t.n_kv_heads, 2u);
  EXPECT_EQ(t.head_dim, 16u);
  EXPECT_EQ(t.hidden_dim, 128u);
  EXPECT_EQ(t.vocab_size, 300u);
  EXPECT_EQ(t.context_length, 256u);
  EXPECT_EQ(t.rope_theta, 10000.0);
  for (auto name : brise::synth_preset_names())
    EXPECT_NO_THROW(brise::synth_preset(name).config.validate(std::string(name)));
  EXPECT_THROW(brise::synth_preset("mistral-70b"), brise::Error);
}

// The 2024-26 presets against their published configs (params.json / config.json of
// Mistral-Nemo-Instruct-2407, Mistral-Small-3.1-24B-Instruct-2503, Ministral-8B-Instruct-2410),
// checked on the file's layout without writing the 16-47 GB of weights.
TEST(Synth, ModernPresetsHaveThePublishedShapes) {
  struct Published {
    const char* preset;
    uint32_t dim, layers, ffn, context;
    double theta;
  };
  for (const Published& m : {Published{"mistral-nemo-12b", 5120, 40, 14336, 131072, 1e6},
                             Published{"mistral-small-24b", 5120, 40, 32768, 131072, 1e9},
                             Published{"ministral-8b", 4096, 36, 12288, 131072, 1e8}}) {
    SCOPED_TRACE(m.preset);
    const SynthSpec spec = brise::synth_preset(m.preset);
    const brise::ModelConfig& c = spec.config;
    EXPECT_EQ(c.dim, m.dim);
    EXPECT_EQ(c.n_layers, m.layers);
    EXPECT_EQ(c.n_heads, 32u);
    EXPECT_EQ(c.n_kv_heads, 8u);
    EXPECT_EQ(c.head_dim, 128u);  // 32 x 128 = 4096 query rows, whatever dim is
    EXPECT_EQ(c.hidden_dim, m.ffn);
    EXPECT_EQ(c.vocab_size, 131072u);
    EXPECT_EQ(c.context_length, m.context);
    EXPECT_EQ(c.rope_theta, m.theta);
    EXPECT_EQ(c.norm_eps, 1e-5f);
    const brise::SynthLayout layout = brise::synthetic_model_layout(spec);
    const auto want = expected_tensors(c, false);
    ASSERT_EQ(layout.tensors.size(), want.size());
    uint64_t bytes = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(layout.tensors[i].name, want[i].first);
      EXPECT_EQ(layout.tensors[i].dims, want[i].second) << want[i].first;
      bytes += layout.tensors[i].n_bytes;
    }
    EXPECT_GT(layout.file_bytes, bytes);  // and the header
    EXPECT_LT(layout.file_bytes, bytes + (16u << 20));
  }
  // Ministral 8B: "Attention Pattern: Ragged (128k, 32k, 32k, 32k)" and 8,019,808,256
  // parameters (its model card); one full-attention layer then three windowed, repeated.
  const SynthSpec ministral = brise::synth_preset("ministral-8b");
  EXPECT_EQ(ministral.config.sliding_window, std::optional<uint32_t>(32768));
  ASSERT_EQ(ministral.config.sliding_window_pattern.size(), 36u);
  for (uint32_t l = 0; l < 36; ++l)
    EXPECT_EQ(ministral.config.sliding_window_pattern[l], l % 4 != 0) << "layer " << l;
  EXPECT_EQ(brise::synthetic_model_layout(ministral).parameters, 8019808256u);
  // Mistral Nemo: "12.2B params" on its model page.
  EXPECT_NEAR(
      static_cast<double>(
          brise::synthetic_model_layout(brise::synth_preset("mistral-nemo-12b")).parameters),
      12.2e9, 0.05e9);
  EXPECT_FALSE(brise::synth_preset("mistral-nemo-12b").config.sliding_window);
  EXPECT_FALSE(brise::synth_preset("mistral-small-24b").config.sliding_window);
}

// The presets in small (their heads, windows and RoPE bases, narrow layers): written, loaded,
// and the fast path against the reference forward pass with the windows written out here.
TEST(Synth, ModernPresetsInSmallRunLikeTheReference) {
  const fs::path dir = scratch_dir("synth_modern_small");
  for (const char* preset : {"mistral-nemo-12b", "mistral-small-24b", "ministral-8b"}) {
    SCOPED_TRACE(preset);
    SynthSpec spec = brise::synth_preset(preset);
    brise::ModelConfig& c = spec.config;
    c.dim = 64, c.n_layers = 8, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 32;  // q_dim 128
    c.hidden_dim = 96, c.vocab_size = 1300, c.context_length = 64;  // Tekken: 1000 special ids
    std::vector<std::optional<uint32_t>> windows(8);
    if (c.sliding_window) {
      c.sliding_window = 6;
      c.sliding_window_pattern.resize(8);
      for (uint32_t l = 0; l < 8; ++l)
        windows[l] = l % 4 != 0 ? std::optional<uint32_t>(6) : std::nullopt;
    }
    spec.type = TensorType::F32;
    const fs::path path = write(dir / (std::string(preset) + ".gguf"), spec);
    const auto model = brise::Model::load(path);
    EXPECT_EQ(model->tokenizer().model(), brise::TokenizerModel::Tekken);
    brise::SessionOptions options;
    options.prefill_chunk = 5;
    std::vector<int32_t> ids{1};
    for (int i = 0; i < 40; ++i) ids.push_back(3 + (i * 89) % 1297);
    const auto file = brise::gguf::File::open(path);
    EXPECT_LE(max_abs_diff(all_row_logits(model, ids, options),
                           brise::reference::forward_layer_windows(brise::reference::load(*file),
                                                                   ids, windows)),
              2e-4f);
  }
}

TEST(Synth, SameSeedSameBytesWhateverTheThreadCount) {
  const fs::path dir = scratch_dir("synth_determinism");
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = read_file_bytes(write(dir / "a.gguf", tiny(TensorType::Q4_0, 7)));
  omp_set_num_threads(3);
  const auto three = read_file_bytes(write(dir / "b.gguf", tiny(TensorType::Q4_0, 7)));
  omp_set_num_threads(threads);
  EXPECT_EQ(one, three);
  const auto other_seed = read_file_bytes(write(dir / "c.gguf", tiny(TensorType::Q4_0, 8)));
  ASSERT_EQ(one.size(), other_seed.size());
  EXPECT_NE(one, other_seed);
}

TEST(Synth, EveryTypeReadsBackWithTheConverterLayout) {
  const fs::path dir = scratch_dir("synth_types");
  const auto f32_file = brise::gguf::File::open(write(dir / "f32.gguf", tiny(TensorType::F32)));
  const auto f32 = brise::reference::load(*f32_file);
  // Max error of each encoding relative to the largest |value| of its 32-element block, from the
  // format definitions: f16 and bf16 keep 11 and 8 significant bits; q8_0 rounds to steps of
  // amax/127; q4_0 to steps of amax/8 (and clamps the side opposite the extreme to 7 steps);
  // both store the step as f16.
  const std::pair<TensorType, float> types[] = {{TensorType::F32, 0.0f},
                                                {TensorType::F16, 1.0f / 2048},
                                                {TensorType::BF16, 1.0f / 256},
                                                {TensorType::Q8_0, 0.5f / 127 + 1.0f / 1024},
                                                {TensorType::Q4_0, 1.0f / 8 + 1.0f / 256}};
  for (const auto& [type, rel] : types) {
    const SynthSpec spec = tiny(type);
    SCOPED_TRACE(std::string(brise::tensor_type_name(type)));
    const fs::path path = write(dir / (std::string(brise::tensor_type_name(type)) + ".gguf"), spec);
    const auto file = brise::gguf::File::open(path);
    EXPECT_EQ(file->file_size(), fs::file_size(path));
    expect_layout(*file, spec);
    EXPECT_EQ(file->get_uint("brise.synthetic.seed"), 1u);

    // The same random values, encoded: compare with the f32 file, block by block.
    const auto m = brise::reference::load(*file);
    auto close = [&, rel = rel](const Eigen::MatrixXf& got, const Eigen::MatrixXf& want,
                                const char* what) {
      ASSERT_EQ(got.rows(), want.rows()) << what;
      ASSERT_EQ(got.cols(), want.cols()) << what;
      ASSERT_EQ(want.cols() % 32, 0) << what;
      for (Eigen::Index r = 0; r < want.rows(); ++r)
        for (Eigen::Index b = 0; b < want.cols(); b += 32) {
          const auto w = want.row(r).segment(b, 32);
          const float amax = w.cwiseAbs().maxCoeff();
          ASSERT_LE((got.row(r).segment(b, 32) - w).cwiseAbs().maxCoeff(), rel * amax)
              << what << " row " << r << " block " << b / 32;
        }
    };
    close(m.tok_embeddings, f32.tok_embeddings, "token_embd");
    close(m.layers[1].wq, f32.layers[1].wq, "blk.1.attn_q");
    close(m.layers[0].w2, f32.layers[0].w2, "blk.0.ffn_down");
    close(m.output, f32.output, "output");
    EXPECT_EQ(m.layers[1].ffn_norm, f32.layers[1].ffn_norm);  // norms stay f32
  }
}

// Scales: matrices uniform in +-sqrt(3 / cols) (unit-RMS outputs), embeddings of unit RMS, norm
// weights 1 +- 0.1; and values are spread (not a constant or a short cycle).
TEST(Synth, WeightScales) {
  const fs::path dir = scratch_dir("synth_scales");
  const auto file = brise::gguf::File::open(write(dir / "m.gguf", tiny(TensorType::F32)));
  const auto m = brise::reference::load(*file);
  const float bound = std::sqrt(3.0f / 64);
  const Eigen::MatrixXf& wq = m.layers[0].wq;
  EXPECT_LE(wq.cwiseAbs().maxCoeff(), bound);
  EXPECT_GE(wq.cwiseAbs().maxCoeff(), 0.9f * bound);
  EXPECT_NEAR(std::sqrt(wq.squaredNorm() / wq.size()), bound / std::sqrt(3.0f), 0.1f * bound);
  EXPECT_NEAR(std::abs(wq.mean()), 0.0f, 0.05f * bound);
  EXPECT_NEAR(std::sqrt(m.tok_embeddings.squaredNorm() / m.tok_embeddings.size()), 1.0f, 0.05f);
  EXPECT_NE(m.layers[0].wq, m.layers[1].wq);
  EXPECT_NE(m.layers[0].wk.row(0), m.layers[0].wk.row(1));
  for (const auto& layer : m.layers) {
    EXPECT_GE(layer.attention_norm.minCoeff(), 0.9f);
    EXPECT_LE(layer.attention_norm.maxCoeff(), 1.1f);
    EXPECT_GT(layer.attention_norm.maxCoeff() - layer.attention_norm.minCoeff(), 0.05f);
  }
}

TEST(Synth, VocabularyRoundTripsThroughTheTokenizer) {
  const fs::path dir = scratch_dir("synth_vocab");
  const auto file = brise::gguf::File::open(write(dir / "m.gguf", tiny()));
  const brise::Tokenizer tok(brise::read_vocabulary(*file));
  ASSERT_EQ(tok.vocab_size(), 300u);
  EXPECT_EQ(tok.piece(0), "<unk>");
  EXPECT_EQ(tok.kind(0), brise::TokenKind::Unknown);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.piece(1), "<s>");
  EXPECT_EQ(tok.kind(1), brise::TokenKind::Control);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.piece(2), "</s>");
  EXPECT_EQ(tok.kind(2), brise::TokenKind::Control);
  EXPECT_EQ(tok.piece(3), "<0x00>");
  EXPECT_EQ(tok.piece(258), "<0xFF>");
  EXPECT_EQ(tok.kind(258), brise::TokenKind::Byte);
  EXPECT_EQ(tok.piece(259), "\u2581");
  EXPECT_EQ(tok.piece(260), "\u2581a");
  EXPECT_EQ(tok.piece(261), "a");
  EXPECT_TRUE(tok.vocabulary().add_bos);
  EXPECT_TRUE(tok.vocabulary().add_dummy_prefix);
  EXPECT_TRUE(tok.vocabulary().byte_fallback);
  EXPECT_FALSE(tok.vocabulary().remove_extra_whitespaces);

  // "▁a" is a piece: one token; a capital letter has no piece: byte fallback.
  EXPECT_EQ(tok.encode("a"), std::vector<int32_t>({260}));
  EXPECT_EQ(tok.encode("A"), std::vector<int32_t>({259, 3 + 'A'}));
  for (const std::string text :
       {"hello world", "  two  spaces ", "Caf\xC3\xA9 \xF0\x9F\x99\x82!", "line\nbreak\t", ""}) {
    EXPECT_EQ(tok.decode(tok.encode(text)), text) << text;
    EXPECT_EQ(tok.decode(tok.encode(text, true)), text) << text;
  }

  // All pieces are distinct, and the big vocabulary fills up too.
  EXPECT_EQ(brise::synth_preset("tiny").vocabulary, brise::TokenizerModel::SentencePiece);
  const brise::Vocabulary big = brise::synthetic_vocabulary(32000);
  ASSERT_EQ(big.size(), 32000u);
  EXPECT_NO_THROW(brise::Tokenizer{big});
  EXPECT_EQ(std::set<std::string>(big.pieces.begin(), big.pieces.end()).size(), 32000u);
  EXPECT_THROW(brise::synthetic_vocabulary(259), brise::Error);
}

// The Tekken vocabulary of the 131072-token presets: Mistral's special ids, the 256 bytes as ranks
// 0-255, every other rank made of two earlier ones; it survives llama.cpp's GGUF form (merges
// included) and tokenizes text both ways.
TEST(Synth, TekkenVocabularyRoundTripsThroughTheTokenizer) {
  for (const char* preset : {"mistral-nemo-12b", "mistral-small-24b", "ministral-8b"})
    EXPECT_EQ(brise::synth_preset(preset).vocabulary, brise::TokenizerModel::Tekken) << preset;
  const brise::Vocabulary v = brise::synthetic_tekken_vocabulary(131072);
  ASSERT_EQ(v.size(), 131072u);
  EXPECT_EQ(v.num_special_tokens, 1000);
  EXPECT_EQ(v.pieces[0], "<unk>");
  EXPECT_EQ(v.pieces[1], "<s>");
  EXPECT_EQ(v.pieces[2], "</s>");
  EXPECT_EQ(v.pieces[3], "[INST]");
  EXPECT_EQ(v.pieces[4], "[/INST]");
  EXPECT_EQ(v.pieces[11], "<pad>");
  EXPECT_EQ(v.pieces[999], "<SPECIAL_999>");
  for (int b = 0; b < 256; ++b) ASSERT_EQ(v.pieces[1000 + b], std::string(1, char(b)));
  EXPECT_EQ(v.pieces[1256], " a");
  EXPECT_EQ(v.pieces[1256 + 26], "aa");
  EXPECT_EQ(v.pieces[1256 + 27], " aa");
  EXPECT_EQ(std::set<std::string>(v.pieces.begin(), v.pieces.end()).size(), v.size());
  EXPECT_THROW(brise::synthetic_tekken_vocabulary(1255), brise::Error);

  const fs::path dir = scratch_dir("synth_tekken_vocab");
  SynthSpec spec = tiny(TensorType::F32);
  spec.config.vocab_size = 3000;
  spec.vocabulary = brise::TokenizerModel::Tekken;
  const auto file = brise::gguf::File::open(write(dir / "m.gguf", spec));
  EXPECT_EQ(file->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(file->get_string("tokenizer.ggml.pre"), "tekken");
  const brise::Vocabulary read = brise::read_vocabulary(*file);
  EXPECT_EQ(read.pieces, brise::synthetic_tekken_vocabulary(3000).pieces);
  const brise::Tokenizer tok(read);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  // " ab" is a rank; "Z" has no merge: its byte.
  const int32_t space_ab = static_cast<int32_t>(
      std::find(read.pieces.begin(), read.pieces.end(), " ab") - read.pieces.begin());
  EXPECT_EQ(tok.encode(" ab"), std::vector<int32_t>({space_ab}));
  EXPECT_EQ(tok.encode("Z"), std::vector<int32_t>({1000 + 'Z'}));
  for (const std::string text :
       {"hello world", "  two  spaces ", "Caf\xC3\xA9 \xF0\x9F\x99\x82!", "line\nbreak\t", ""})
    EXPECT_EQ(tok.decode(tok.encode(text)), text) << text;
}

// head_dim != dim / heads, one KV head, a vocabulary that is not a multiple of 8, a window.
TEST(Synth, AwkwardShapes) {
  const fs::path dir = scratch_dir("synth_awkward");
  SynthSpec spec = tiny(TensorType::BF16, 3);
  spec.config.dim = 48;
  spec.config.n_heads = 3;
  spec.config.n_kv_heads = 1;
  spec.config.head_dim = 24;
  spec.config.hidden_dim = 80;
  spec.config.vocab_size = 301;
  spec.config.sliding_window = 5;
  spec.tied_embeddings = true;
  const auto file = brise::gguf::File::open(write(dir / "m.gguf", spec));
  expect_layout(*file, spec);
  const auto m = brise::reference::load(*file);
  EXPECT_EQ(m.output, m.tok_embeddings);  // tied: the classifier is the embedding
  const std::vector<int32_t> ids = {1, 260, 300, 261, 7, 280, 299, 4};
  expect_usable_logits(brise::reference::forward(m, ids, m.config.sliding_window));

  // q8_0/q4_0 need rows of whole 32-element blocks (dim 48 is not): an error, and no file.
  spec.type = TensorType::Q8_0;
  EXPECT_THROW(write(dir / "q8.gguf", spec), brise::Error);
  EXPECT_FALSE(fs::exists(dir / "q8.gguf"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  spec = tiny();
  spec.config.n_kv_heads = 3;  // 4 heads are not a multiple of 3
  EXPECT_THROW(write(dir / "bad.gguf", spec), brise::Error);
  spec = tiny();
  spec.config.vocab_size = 100;
  EXPECT_THROW(write(dir / "bad.gguf", spec), brise::Error);
}

// The tiny model's activations stay O(1): its logits are finite, spread out and differ between
// positions, with every type.
TEST(Synth, ReferenceForwardOfTinyModelGivesUsableLogits) {
  const fs::path dir = scratch_dir("synth_forward");
  const std::vector<int32_t> ids = {1, 260, 262, 264, 5, 299, 270, 261, 1, 2};
  for (TensorType type : {TensorType::F32, TensorType::Q4_0}) {
    const auto file = brise::gguf::File::open(write(dir / "m.gguf", tiny(type)));
    expect_usable_logits(brise::reference::forward(brise::reference::load(*file), ids, {}));
  }
  // As deep as the 7B preset (32 layers, 32/8 heads) but narrow: activations stay bounded.
  SynthSpec deep = brise::synth_preset("mistral-7b");
  deep.config.dim = 64;
  deep.config.head_dim = 8;
  deep.config.hidden_dim = 128;
  deep.config.vocab_size = 300;
  const auto file = brise::gguf::File::open(write(dir / "deep.gguf", deep));
  expect_usable_logits(brise::reference::forward(brise::reference::load(*file), ids, {}));
}

TEST(Synth, CommandLine) {
  const fs::path dir = scratch_dir("synth_cli");
  const fs::path out = dir / "cli.gguf";
  const auto r = run_command("'" + cli_path().string() + "' synth --preset tiny -o '" +
                             out.string() + "' --type q8_0 --seed 5 --head-dim 32 --vocab 333");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("wrote"), std::string::npos) << r.out;
  SynthSpec spec = tiny(TensorType::Q8_0, 5);
  spec.config.head_dim = 32;
  spec.config.vocab_size = 333;
  EXPECT_EQ(read_file_bytes(out), read_file_bytes(write(dir / "api.gguf", spec)));

  EXPECT_EQ(run_command("'" + cli_path().string() + "' synth --preset huge -o '" +
                        (dir / "x.gguf").string() + "'")
                .status,
            2);
  EXPECT_EQ(run_command("'" + cli_path().string() + "' synth -o '" + (dir / "x.gguf").string() +
                        "' --preset tiny --type iq1_s")
                .status,
            2);
  const auto bad = run_command("'" + cli_path().string() + "' synth -o '" +
                               (dir / "x.gguf").string() + "' --preset tiny --dim 48 --type q4_0");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("multiple of 32"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(dir / "x.gguf"));
}

TEST(Synth, CommandLineDryRunAndWindowPattern) {
  const fs::path dir = scratch_dir("synth_cli_pattern");
  const std::string brise = "'" + cli_path().string() + "' synth ";
  const auto dry = run_command(brise + "--preset ministral-8b --dry-run");
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("dim 4096, 36 layers, 32/8 heads of 128, ffn 12288, vocab 131072"),
            std::string::npos)
      << dry.out;
  EXPECT_NE(dry.out.find("window 32768 on 27 of 36 layers (FWWWFWWW"), std::string::npos)
      << dry.out;
  EXPECT_NE(dry.out.find("8019808256 weights"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("blk.35.attn_q.weight"), std::string::npos) << dry.out;
  EXPECT_TRUE(fs::is_empty(dir));

  // --layers repeats the preset's pattern; --sliding-window N keeps it.
  const fs::path out = dir / "m.gguf";
  const auto r = run_command(brise + "--preset ministral-8b --dim 64 --layers 6 --heads 4 " +
                             "--kv-heads 2 --head-dim 32 --ffn 96 --vocab 1300 --context 64 " +
                             "--sliding-window 5 --type f32 -o '" + out.string() + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto config = brise::read_model_config(*brise::gguf::File::open(out));
  EXPECT_EQ(config.sliding_window, std::optional<uint32_t>(5));
  EXPECT_EQ(config.sliding_window_pattern,
            (std::vector<bool>{false, true, true, true, false, true}));
  EXPECT_EQ(config.rope_theta, 1e8);
  EXPECT_EQ(brise::read_vocabulary(*brise::gguf::File::open(out)).model,
            brise::TokenizerModel::Tekken);
  const fs::path spm = dir / "spm.gguf";
  ASSERT_EQ(run_command(brise + "--preset ministral-8b --dim 64 --layers 4 --heads 4 " +
                        "--kv-heads 2 --head-dim 32 --ffn 96 --vocab 300 --context 64 " +
                        "--tokenizer sentencepiece --type f32 -o '" + spm.string() + "'")
                .status,
            0);
  EXPECT_EQ(brise::read_vocabulary(*brise::gguf::File::open(spm)).model,
            brise::TokenizerModel::SentencePiece);

  const auto own = run_command(brise + "--preset tiny --window-pattern WF --sliding-window 3 " +
                               "-o '" + (dir / "p.gguf").string() + "'");
  ASSERT_EQ(own.status, 0) << own.err;
  EXPECT_EQ(
      brise::read_model_config(*brise::gguf::File::open(dir / "p.gguf")).sliding_window_pattern,
      (std::vector<bool>{true, false}));
  EXPECT_EQ(run_command(brise + "--preset tiny --window-pattern WX --sliding-window 3 -o '" +
                        (dir / "x.gguf").string() + "'")
                .status,
            2);
  EXPECT_EQ(run_command(brise + "--preset tiny --window-pattern WF -o '" +
                        (dir / "x.gguf").string() + "'")
                .status,
            2);
  const auto none = run_command(brise + "--preset ministral-8b --sliding-window none --dry-run");
  EXPECT_NE(none.out.find("36 layers, 32/8 heads of 128, ffn 12288, vocab 131072, context "
                          "131072, rope theta 1e+08, window none,"),
            std::string::npos)
      << none.out;
  EXPECT_FALSE(fs::exists(dir / "x.gguf"));
}
