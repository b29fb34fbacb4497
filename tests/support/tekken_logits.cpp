#include "support/tekken_logits.hpp"

#include <gtest/gtest.h>

#include "brise/session.hpp"
#include "support/testdata.hpp"

namespace brise::test {
namespace fs = std::filesystem;
using nlohmann::json;

json tekken_logits_index(const fs::path& data) {
  return json::parse(read_file_text(data / "reference/tekken-mini/logits/index.json"));
}

std::vector<TekkenLogitsCase> tekken_logits_cases(const fs::path& data) {
  std::vector<TekkenLogitsCase> cases;
  const json index = tekken_logits_index(data);
  for (const auto& c : index.at("cases")) {
    TekkenLogitsCase lc;
    lc.name = c.at("name").get<std::string>();
    lc.model = data / c.at("model").get<std::string>();
    lc.token_ids = c.at("token_ids").get<std::vector<int32_t>>();
    for (const auto& w : c.at("windows_per_layer"))
      lc.windows.push_back(w.is_null() ? std::nullopt : std::optional(w.get<uint32_t>()));
    lc.rows = c.at("shape")[0].get<size_t>();
    lc.vocab = c.at("shape")[1].get<size_t>();
    lc.logits =
        read_f32_file(data / "reference/tekken-mini/logits" / c.at("logits").get<std::string>());
    EXPECT_EQ(lc.logits.size(), lc.rows * lc.vocab) << lc.name;
    EXPECT_EQ(lc.token_ids.size(), lc.rows) << lc.name;
    cases.push_back(std::move(lc));
  }
  EXPECT_EQ(cases.size(), 4u);
  return cases;
}

std::vector<int32_t> greedy_ids(const std::shared_ptr<const Model>& model,
                                std::span<const int32_t> prompt, size_t n) {
  SessionOptions options;
  options.exact = true;
  Session session(model, options);
  std::vector<int32_t> got;
  auto logits = session.prefill(prompt);
  while (got.size() < n) {
    int32_t best = 0;  // the first of equal maxima
    for (size_t v = 1; v < logits.size(); ++v)
      if (logits[v] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(v);
    got.push_back(best);
    logits = session.decode(best);
  }
  return got;
}

}  // namespace brise::test
