// The Nemo- and Ministral-shaped tiny models of ../shared/models/tekken-mini (head_dim 64 over
// dim 320 with 8 heads, a window of 16 on layers 0-2 and full attention on layer 3) against the
// f32 logits of an independent numpy forward pass (checked against llama.cpp, see
// README-tekken.md §5), and llama.cpp's greedy generation.
//
// These files carry a Tekken vocabulary ("gpt2" / "tekken"): Model::load needs brise's Tekken
// tokenizer for them. The reference model reads only the weights and hyperparameters.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "brise/gguf.hpp"
#include "brise/model.hpp"
#include "brise/model_config.hpp"
#include "brise/session.hpp"
#include "support/logits_compare.hpp"
#include "support/reference_model.hpp"
#include "support/stories.hpp"
#include "support/tekken_logits.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Our numpy reference and llama.cpp differ by <= 1.4e-5 on these logits (std ~2.2).
constexpr float kTolerance = 1e-4f;

}  // namespace

// The shapes and windows as brise reads them from llama.cpp's keys.
TEST(TekkenMini, HyperparametersAndWindowsFromTheFiles) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const auto& c : brise::test::tekken_logits_cases(data)) {
    SCOPED_TRACE(c.name);
    const auto config = brise::read_model_config(*brise::gguf::File::open(c.model));
    EXPECT_EQ(config.dim, 320u);
    EXPECT_EQ(config.n_heads, 8u);
    EXPECT_EQ(config.n_kv_heads, 2u);
    EXPECT_EQ(config.head_dim, 64u);
    EXPECT_EQ(config.q_dim(), 512u);
    EXPECT_EQ(config.vocab_size, 7256u);
    EXPECT_EQ(config.rope_theta, 1e6);
    EXPECT_EQ(config.layer_windows(), c.windows);
  }
}

// The reference forward pass (the oracle of the fast path on synthetic models) reproduces them.
TEST(TekkenMini, ReferenceForwardMatchesTheLogits) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const auto& c : brise::test::tekken_logits_cases(data)) {
    SCOPED_TRACE(c.name);
    const auto file = brise::gguf::File::open(c.model);
    EXPECT_LE(brise::test::max_abs_diff(
                  c.logits, brise::reference::forward_layer_windows(brise::reference::load(*file),
                                                                    c.token_ids, c.windows)),
              kTolerance);
  }
}

// The fast path in exact mode, whole prompt, chunks of 5 and one token at a time.
TEST(TekkenMini, FastPathMatchesTheLogits) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const auto& c : brise::test::tekken_logits_cases(data)) {
    SCOPED_TRACE(c.name);
    const auto model = brise::Model::load(c.model);
    for (uint32_t chunk : {1u, 5u, 512u}) {
      brise::SessionOptions options;
      options.exact = true;
      options.prefill_chunk = chunk;
      EXPECT_EQ(brise::Session(model, options).layer_windows(), c.windows);
      const std::vector<float> got = brise::test::all_row_logits(model, c.token_ids, options);
      ASSERT_EQ(got.size(), c.logits.size());
      EXPECT_LE(brise::test::max_abs_diff(got.data(), c.logits.data(), got.size()), kTolerance)
          << "chunk " << chunk;
    }
  }
}

// Mean over rows of KL(p || q), p and q the softmax of two [rows][vocab] logits, in double.
double mean_kl_divergence(const std::vector<float>& p_logits, const std::vector<float>& q_logits,
                          size_t vocab) {
  const size_t rows = p_logits.size() / vocab;
  double total = 0.0;
  for (size_t r = 0; r < rows; ++r) {
    const float* p = &p_logits[r * vocab];
    const float* q = &q_logits[r * vocab];
    const double pm = *std::max_element(p, p + vocab), qm = *std::max_element(q, q + vocab);
    double ps = 0.0, qs = 0.0;
    for (size_t v = 0; v < vocab; ++v) {
      ps += std::exp(p[v] - pm);
      qs += std::exp(q[v] - qm);
    }
    double kl = 0.0;
    for (size_t v = 0; v < vocab; ++v) {
      const double lp = p[v] - pm - std::log(ps), lq = q[v] - qm - std::log(qs);
      kl += std::exp(lp) * (lp - lq);
    }
    total += kl;
  }
  return total / static_cast<double>(rows);
}

// A q8_0 KV cache (int8 blocks of 32 with an fp16 scale; keys dotted with int8 queries), exact
// matrices so that only the cache rounds: the logits stay within 0.15 of the numpy reference's
// (std ~2.2; 0.07-0.08 measured when this test was written) and their mean KL divergence from it
// below 1e-3 (1.0-1.2e-4 measured), bit-identical for chunks of 1, 5 and 512 (the windows of 16
// wrap).
TEST(TekkenMini, Q8CacheStaysCloseToTheLogitsAndChunkInvariant) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const auto& c : brise::test::tekken_logits_cases(data)) {
    SCOPED_TRACE(c.name);
    const auto model = brise::Model::load(c.model);
    std::vector<float> first;
    for (uint32_t chunk : {1u, 5u, 512u}) {
      brise::SessionOptions options;
      options.exact = true;
      options.prefill_chunk = chunk;
      options.kv_type = brise::TensorType::Q8_0;
      const std::vector<float> got = brise::test::all_row_logits(model, c.token_ids, options);
      ASSERT_EQ(got.size(), c.logits.size());
      const float diff = brise::test::max_abs_diff(got.data(), c.logits.data(), got.size());
      const double kl = mean_kl_divergence(c.logits, got, c.vocab);
      EXPECT_LE(diff, 0.15f) << "chunk " << chunk;
      EXPECT_LE(kl, 1e-3) << "chunk " << chunk;
      RecordProperty(c.name + "_q8_0_max_abs_diff", std::to_string(diff));
      RecordProperty(c.name + "_q8_0_mean_kl", std::to_string(kl));
      if (first.empty())
        first = got;
      else
        EXPECT_EQ(std::memcmp(first.data(), got.data(), got.size() * sizeof(float)), 0)
            << "chunk " << chunk;
    }
  }
}

// llama.cpp's (and the numpy reference's) 16 greedy tokens after "Hello" on nemo-mini.
TEST(TekkenMini, GreedyGenerationMatches) {
  BRISE_REQUIRE_TESTDATA(data);
  const json g = brise::test::tekken_logits_index(data).at("greedy")[0];
  const auto model = brise::Model::load(data / g.at("model").get<std::string>());
  const auto want = g.at("greedy_ids").get<std::vector<int32_t>>();
  const auto got =
      brise::test::greedy_ids(model, g.at("prompt_ids").get<std::vector<int32_t>>(), want.size());
  EXPECT_EQ(got, want);
}
