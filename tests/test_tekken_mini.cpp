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
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Our numpy reference and llama.cpp differ by <= 1.4e-5 on these logits (std ~2.2).
constexpr float kTolerance = 1e-4f;

struct LogitsCase {
  std::string name;
  fs::path model;
  std::vector<int32_t> token_ids;
  std::vector<std::optional<uint32_t>> windows;  // per layer, from the case (null = full)
  size_t rows = 0, vocab = 0;
  std::vector<float> logits;
};

json read_index(const fs::path& data) {
  return json::parse(brise::test::read_file_text(data / "reference/tekken-mini/logits/index.json"));
}

std::vector<LogitsCase> load_cases(const fs::path& data) {
  std::vector<LogitsCase> cases;
  const json index = read_index(data);
  for (const auto& c : index.at("cases")) {
    LogitsCase lc;
    lc.name = c.at("name").get<std::string>();
    lc.model = data / c.at("model").get<std::string>();
    lc.token_ids = c.at("token_ids").get<std::vector<int32_t>>();
    for (const auto& w : c.at("windows_per_layer"))
      lc.windows.push_back(w.is_null() ? std::nullopt : std::optional(w.get<uint32_t>()));
    lc.rows = c.at("shape")[0].get<size_t>();
    lc.vocab = c.at("shape")[1].get<size_t>();
    lc.logits = brise::test::read_f32_file(data / "reference/tekken-mini/logits" /
                                           c.at("logits").get<std::string>());
    EXPECT_EQ(lc.logits.size(), lc.rows * lc.vocab) << lc.name;
    EXPECT_EQ(lc.token_ids.size(), lc.rows) << lc.name;
    cases.push_back(std::move(lc));
  }
  EXPECT_EQ(cases.size(), 4u);
  return cases;
}

}  // namespace

// The shapes and windows as brise reads them from llama.cpp's keys.
TEST(TekkenMini, HyperparametersAndWindowsFromTheFiles) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const auto& c : load_cases(data)) {
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
  for (const auto& c : load_cases(data)) {
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
  for (const auto& c : load_cases(data)) {
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
  const json g = read_index(data).at("greedy")[0];
  const auto model = brise::Model::load(data / g.at("model").get<std::string>());
  brise::SessionOptions options;
  options.exact = true;
  brise::Session session(model, options);
  const auto want = g.at("greedy_ids").get<std::vector<int32_t>>();
  std::vector<int32_t> got;
  auto logits = session.prefill(g.at("prompt_ids").get<std::vector<int32_t>>());
  while (got.size() < want.size()) {
    int32_t best = 0;  // the first of equal maxima
    for (size_t v = 1; v < logits.size(); ++v)
      if (logits[v] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(v);
    got.push_back(best);
    logits = session.decode(best);
  }
  EXPECT_EQ(got, want);
}
