// The Nemo- and Ministral-shaped tiny models of ../shared/models/tekken-mini (head_dim 64 over
// dim 320 with 8 heads, a window of 16 on layers 0-2 and full attention on layer 3) against the
// f32 logits of an independent numpy forward pass (checked against llama.cpp, see
// README-tekken.md §5), and llama.cpp's greedy generation.
//
// These files carry a Tekken vocabulary ("gpt2" / "tekken"): Model::load needs brise's Tekken
// tokenizer for them. The reference model reads only the weights and hyperparameters.
#include <gtest/gtest.h>

#include <cmath>
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
