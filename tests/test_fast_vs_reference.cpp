// The fast path (Model + Session: SIMD kernels, chunked prefill, rolling KV cache) against the
// plain Eigen reference forward pass, on synthetic models with shapes stories260k lacks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "brise/model.hpp"
#include "brise/session.hpp"
#include "brise/synth.hpp"
#include "engine/gguf/tensor_encoding.hpp"
#include "kernels/type_traits.hpp"
#include "support/end_to_end_types.hpp"
#include "support/logits_compare.hpp"
#include "support/reference_model.hpp"
#include "support/stories.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using namespace brise;

namespace {

struct Shape {
  const char* name;
  uint32_t dim, layers, heads, kv_heads, head_dim, ffn, vocab;
  std::optional<uint32_t> window;
  bool tied = false;
  std::vector<bool> pattern = {};  // per-layer windows: true = windowed, false = full attention

  // Each layer's window, written out here rather than asked of ModelConfig.
  std::vector<std::optional<uint32_t>> layer_windows() const {
    std::vector<std::optional<uint32_t>> w;
    for (uint32_t l = 0; l < layers; ++l)
      w.push_back(pattern.empty() || pattern[l] ? window : std::nullopt);
    return w;
  }
};

// Awkward on purpose: head_dim != dim / heads (narrower, and as in Nemo wider: q_dim twice dim),
// one KV head, odd FFN widths, vocabularies that are not a multiple of 8, windows shorter and
// longer than the prompt, and per-layer windows (full-attention layers first, between and last).
const Shape kShapes[] = {
    {"head_dim_not_dim_over_heads", 48, 2, 4, 2, 24, 100, 301, std::nullopt},
    {"one_kv_head", 64, 2, 8, 1, 8, 96, 263, std::nullopt},
    {"window_shorter_than_prompt", 64, 3, 4, 2, 16, 160, 300, 5},
    {"window_longer_than_prompt", 64, 2, 4, 4, 16, 64, 299, 64},
    {"tied_group_of_three", 96, 2, 6, 2, 16, 128, 261, 9, true},
    {"super_block_rows", 256, 2, 4, 2, 64, 512, 300, 7},  // the K-quants' 256-element rows
    {"ministral_like_full_then_windowed",
     64,
     4,
     4,
     2,
     32,
     96,
     300,
     5,
     false,
     {false, true, true, true}},
    {"windowed_full_windowed_tied", 96, 3, 6, 2, 16, 128, 261, 9, true, {true, false, true}},
};

// Quantized types need rows that are whole blocks (32 elements, 256 for the K-quants).
bool quantizable(const Shape& s, TensorType type) {
  const uint32_t block = tensor_type_info(type).block_elems;
  return s.dim % block == 0 && s.ffn % block == 0 && (s.heads * s.head_dim) % block == 0;
}

fs::path write_model(const fs::path& dir, const Shape& s, TensorType type) {
  SynthSpec spec;
  spec.config.name = s.name;
  spec.config.dim = s.dim;
  spec.config.n_layers = s.layers;
  spec.config.n_heads = s.heads;
  spec.config.n_kv_heads = s.kv_heads;
  spec.config.head_dim = s.head_dim;
  spec.config.hidden_dim = s.ffn;
  spec.config.vocab_size = s.vocab;
  spec.config.context_length = 256;
  spec.config.rope_theta = 10000.0;
  spec.config.sliding_window = s.window;
  spec.config.sliding_window_pattern = s.pattern;
  spec.type = type;
  spec.seed = 7;
  spec.tied_embeddings = s.tied;
  const fs::path path =
      dir / (std::string(s.name) + "-" + std::string(tensor_type_name(type)) + ".gguf");
  write_synthetic_model(path, spec);
  return path;
}

// Logits spread about +-4 on these models; the two paths sum in different orders.
constexpr float kTolerance = 2e-4f;
// int8 activations round each value by up to max|x| / 254 of its block of 32; through these
// random-weight models that measures 1.0-1.3 % relative RMS error in the logits (2026-11-30,
// every shape and both types). A wrong code, scale or block would be of the order of 100 %.
constexpr double kInt8RelativeRms = 0.03;

}  // namespace

TEST(FastVsReference, AwkwardShapesEveryTypeEveryChunking) {
  const auto scratch = test::scratch_dir("fast_vs_reference");
  std::mt19937 rng(42);
  for (const Shape& s : kShapes) {
    for (const kernels::TypeTraits& traits : kernels::all_types()) {
      if (!test::end_to_end_type(traits)) continue;
      const auto type = static_cast<TensorType>(traits.ggml_id);
      if (!quantizable(s, type)) continue;
      SCOPED_TRACE(std::string(s.name) + " " + std::string(tensor_type_name(type)));
      const auto path = write_model(scratch, s, type);
      auto model = Model::load(path);
      auto file = gguf::File::open(path);
      const auto reference = reference::load(*file);

      std::vector<int32_t> tokens{1};
      std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(s.vocab) - 1);
      while (tokens.size() < 40) tokens.push_back(id(rng));
      const auto windows = s.layer_windows();
      const Eigen::MatrixXf expected = reference::forward_layer_windows(reference, tokens, windows);

      // Quantized models run both ways: exact (f32 activations), held to the reference's
      // tolerance, and with int8 activations, whose rounding (up to d/2 = max|x| / 254 per
      // activation of a block) compounds over the layers of these random-weight models: held to
      // a relative RMS error against the reference (see kInt8RelativeRms).
      for (bool exact : {true, false}) {
        if (!exact && !is_quantized(type)) continue;
        std::vector<float> first;
        for (uint32_t chunk : {1u, 3u, 16u, 40u}) {
          SessionOptions options;
          options.prefill_chunk = chunk;
          options.exact = exact;
          const auto got = test::all_row_logits(model, tokens, options);
          ASSERT_EQ(got.size(), tokens.size() * s.vocab);
          float worst = 0;
          double err2 = 0, ref2 = 0;
          for (size_t t = 0; t < tokens.size(); ++t)
            for (size_t v = 0; v < s.vocab; ++v) {
              const float want =
                  expected(static_cast<Eigen::Index>(t), static_cast<Eigen::Index>(v));
              const float diff = std::fabs(got[t * s.vocab + v] - want);
              worst = std::max(worst, diff);
              err2 += double(diff) * diff;
              ref2 += double(want) * want;
            }
          if (exact)
            EXPECT_LE(worst, kTolerance) << "chunk " << chunk;
          else
            EXPECT_LE(std::sqrt(err2 / ref2), kInt8RelativeRms) << "int8, chunk " << chunk;
          if (first.empty())
            first = got;
          else
            EXPECT_EQ(std::memcmp(first.data(), got.data(), got.size() * 4), 0)
                << (exact ? "exact" : "int8") << ", chunk " << chunk;
        }
      }
    }
  }
}

TEST(FastVsReference, RuntimeWindowOverrideMatchesReference) {
  const auto scratch = test::scratch_dir("fast_vs_reference_override");
  const Shape full{"full", 64, 2, 4, 2, 16, 96, 300, std::nullopt};
  const auto path = write_model(scratch, full, TensorType::F32);
  auto model = Model::load(path);
  auto file = gguf::File::open(path);
  const auto reference = reference::load(*file);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 50; ++i) tokens.push_back(1 + (i * 53) % 299);
  for (uint32_t w : {1u, 4u, 17u, 50u, 80u}) {
    SessionOptions options;
    options.sliding_window = std::optional<uint32_t>(w);
    options.prefill_chunk = 6;
    const auto got = test::all_row_logits(model, tokens, options);
    EXPECT_LE(test::max_abs_diff(got, reference::forward(reference, tokens, w)), kTolerance)
        << "window " << w;
  }
}

// --sliding-window on a model with per-layer windows: N replaces the window of the windowed
// layers only, 'none' gives every layer full attention.
TEST(FastVsReference, WindowOverrideOnPerLayerWindowsMatchesReference) {
  const auto scratch = test::scratch_dir("fast_vs_reference_pattern_override");
  const Shape shape{"pattern", 64, 3, 4, 2, 32, 96, 300, 6, false, {false, true, true}};
  const auto path = write_model(scratch, shape, TensorType::F32);
  auto model = Model::load(path);
  auto file = gguf::File::open(path);
  const auto reference = reference::load(*file);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 45; ++i) tokens.push_back(1 + (i * 37) % 299);
  const std::vector<std::pair<std::optional<uint32_t>, std::vector<std::optional<uint32_t>>>>
      cases = {{3u, {std::nullopt, 3u, 3u}},
               {20u, {std::nullopt, 20u, 20u}},
               {std::nullopt, {std::nullopt, std::nullopt, std::nullopt}}};
  for (const auto& [override_window, windows] : cases) {
    SessionOptions options;
    options.sliding_window = override_window;
    options.prefill_chunk = 4;
    const auto got = test::all_row_logits(model, tokens, options);
    EXPECT_LE(test::max_abs_diff(got, reference::forward_layer_windows(reference, tokens, windows)),
              kTolerance)
        << "override " << (override_window ? std::to_string(*override_window) : "none");
  }
}
