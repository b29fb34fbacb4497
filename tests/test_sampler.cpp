// Sampler: every filter against small distributions whose outcome is worked out by hand, seeded
// determinism, and empirical frequencies against the softmax probabilities.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "brise/error.hpp"
#include "brise/sampler.hpp"

namespace brise {
namespace {

// logits = log(p): the softmax at temperature 1 gives back p exactly (up to rounding).
std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> out;
  for (double x : p) out.push_back(static_cast<float>(std::log(x)));
  return out;
}

SamplingParams random_params(uint64_t seed) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = seed;
  return p;
}

// Frequencies of each id over `draws` samples.
std::vector<double> frequencies(Sampler& sampler, const std::vector<float>& logits, int draws,
                                std::span<const int32_t> history = {}, size_t generated = 0) {
  std::vector<double> counts(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i)
    counts[static_cast<size_t>(sampler.sample(logits, history, generated))] += 1;
  for (double& c : counts) c /= draws;
  return counts;
}

const std::vector<double> kP = {0.5, 0.3, 0.15, 0.05};

TEST(Sampler, GreedyIsArgmaxFirstOnTies) {
  Sampler s(SamplingParams{});  // temperature 0
  const std::vector<float> a = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(a, {}), 1);
  const std::vector<float> b = {-3.0f, -2.0f, -1.0f};
  EXPECT_EQ(s.sample(b, {}), 2);
  const std::vector<float> c = {7.0f};
  EXPECT_EQ(s.sample(c, {}), 0);
}

TEST(Sampler, TopKOneAlwaysReturnsArgmax) {
  const std::vector<float> logits = {0.1f, 0.3f, 0.29f, -5.0f, 0.3f};
  for (uint64_t seed = 0; seed < 50; ++seed) {
    SamplingParams p = random_params(seed);
    p.temperature = 5.0f;  // very flat: without top-k every id would show up
    p.top_k = 1;
    Sampler s(p);
    for (int i = 0; i < 20; ++i) ASSERT_EQ(s.sample(logits, {}), 1);  // first of the tied 0.3
  }
}

TEST(Sampler, TopKKeepsTheKMostLikely) {
  SamplingParams p = random_params(7);
  p.top_k = 2;
  Sampler s(p);
  const auto f = frequencies(s, log_probs(kP), 20000);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_EQ(f[3], 0.0);
  // Renormalised over {0.5, 0.3}: 0.625 / 0.375 (binomial sigma ~0.0034).
  EXPECT_NEAR(f[0], 0.625, 0.02);
  EXPECT_NEAR(f[1], 0.375, 0.02);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  const auto logits = log_probs(kP);
  {
    // 0.5 < 0.75 <= 0.5 + 0.3: ids 0 and 1 remain.
    SamplingParams p = random_params(1);
    p.top_p = 0.75f;
    Sampler s(p);
    const auto f = frequencies(s, logits, 20000);
    EXPECT_EQ(f[2], 0.0);
    EXPECT_EQ(f[3], 0.0);
    EXPECT_NEAR(f[0], 0.625, 0.02);
  }
  {
    // 0.45 <= 0.5: the most likely id alone.
    SamplingParams p = random_params(2);
    p.top_p = 0.45f;
    Sampler s(p);
    for (int i = 0; i < 200; ++i) ASSERT_EQ(s.sample(logits, {}), 0);
  }
  {
    // 0.8 < 0.9 <= 0.95: ids 0..2 remain, 3 never appears.
    SamplingParams p = random_params(3);
    p.top_p = 0.9f;
    Sampler s(p);
    const auto f = frequencies(s, logits, 20000);
    EXPECT_EQ(f[3], 0.0);
    EXPECT_GT(f[2], 0.1);  // 0.15 / 0.95 = 0.158
  }
}

TEST(Sampler, MinPDropsTokensBelowTheThreshold) {
  const auto logits = log_probs(kP);
  {
    // threshold 0.25 * 0.5 = 0.125: 0.15 stays, 0.05 goes.
    SamplingParams p = random_params(4);
    p.min_p = 0.25f;
    Sampler s(p);
    const auto f = frequencies(s, logits, 20000);
    EXPECT_EQ(f[3], 0.0);
    EXPECT_NEAR(f[2], 0.15 / 0.95, 0.02);
  }
  {
    // threshold 0.5 * 0.5 = 0.25: 0.3 stays, 0.15 and 0.05 go.
    SamplingParams p = random_params(5);
    p.min_p = 0.5f;
    Sampler s(p);
    const auto f = frequencies(s, logits, 20000);
    EXPECT_EQ(f[2], 0.0);
    EXPECT_EQ(f[3], 0.0);
    EXPECT_NEAR(f[1], 0.375, 0.02);
  }
}

TEST(Sampler, RepetitionPenaltyChangesTheRankingAsComputedByHand) {
  SamplingParams p;
  p.repeat_penalty = 1.5f;
  {
    // 3.0 / 1.5 = 2.0 < 2.5: id 1 wins.
    Sampler s(p);
    const std::vector<float> logits = {3.0f, 2.5f, -1.0f, -1.2f};
    const std::vector<int32_t> history = {0, 3};
    EXPECT_EQ(s.sample(logits, history), 1);
    EXPECT_EQ(s.sample(logits, {}), 0);  // no history, no penalty
  }
  {
    // Negative logits are multiplied: -0.5 * 1.5 = -0.75 < -0.6.
    Sampler s(p);
    const std::vector<float> logits = {-0.5f, -0.6f};
    const std::vector<int32_t> history = {0};
    EXPECT_EQ(s.sample(logits, history), 1);
  }
  {
    // A repeated token is penalised once: 2.0 / 1.5 = 1.33 > 1.2 (twice would give 0.89).
    Sampler s(p);
    const std::vector<float> logits = {2.0f, 1.2f};
    const std::vector<int32_t> history = {0, 0, 0};
    EXPECT_EQ(s.sample(logits, history), 0);
  }
  {
    // Only the last repeat_last_n tokens count: with n = 1 only id 2 is penalised and id 0
    // keeps 2.0 > 1.5; with n = 2 id 0 drops to 1.33 < 1.5.
    const std::vector<float> logits = {2.0f, 1.5f, 0.0f};
    const std::vector<int32_t> history = {0, 2};
    p.repeat_last_n = 1;
    EXPECT_EQ(Sampler(p).sample(logits, history), 0);
    p.repeat_last_n = 2;
    EXPECT_EQ(Sampler(p).sample(logits, history), 1);
    p.repeat_last_n = 0;  // off
    EXPECT_EQ(Sampler(p).sample(logits, history), 0);
  }
}

TEST(Sampler, RepetitionPenaltyAppliesBeforeRandomSampling) {
  // Penalising id 0 (log 0.5 < 0) multiplies its logit by 2: p0 becomes 0.25 relative weight
  // 0.5^2 = 0.25 against 0.3, 0.15, 0.05 -> 0.25 / 0.75 = 1/3.
  SamplingParams p = random_params(11);
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  const std::vector<int32_t> history = {0};
  const auto f = frequencies(s, log_probs(kP), 40000, history);
  EXPECT_NEAR(f[0], 0.25 / 0.75, 0.015);
  EXPECT_NEAR(f[1], 0.3 / 0.75, 0.015);
}

TEST(Sampler, SameSeedSameTokens) {
  const std::vector<float> logits = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f};
  SamplingParams p = random_params(1234);
  p.top_k = 6;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  Sampler a(p), b(p);
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 200; ++i) {
    ta.push_back(a.sample(logits, ta));
    tb.push_back(b.sample(logits, tb));
  }
  EXPECT_EQ(ta, tb);
  p.seed = 1235;
  Sampler c(p);
  std::vector<int32_t> tc;
  for (int i = 0; i < 200; ++i) tc.push_back(c.sample(logits, tc));
  EXPECT_NE(ta, tc);  // 200 draws over 6 ids: equal sequences are out of the question
}

TEST(Sampler, DrawIsTheDocumentedInverseCdfOfMt19937_64) {
  // The draw is u = (first mt19937_64 output >> 11) * 2^-53 and the first sorted candidate
  // whose cumulative probability exceeds u. std::mt19937_64 is fully specified by the
  // standard, so this pins the outcome on every platform.
  const auto logits = log_probs(kP);
  for (uint64_t seed = 0; seed < 64; ++seed) {
    std::mt19937_64 rng(seed);
    const double u = static_cast<double>(rng() >> 11) / 9007199254740992.0;
    int32_t expected = -1;
    bool near_boundary = false;
    double cumulative = 0;
    for (int32_t i = 0; i < 4; ++i) {
      cumulative += kP[static_cast<size_t>(i)];
      // Too close to a boundary to judge with the rounded probabilities: skip this seed.
      if (i < 3 && std::abs(u - cumulative) <= 1e-6) near_boundary = true;
      if (expected < 0 && (u < cumulative || i == 3)) expected = i;
    }
    if (near_boundary) continue;
    Sampler s(random_params(seed));
    EXPECT_EQ(s.sample(logits, {}), expected) << "seed " << seed << " u " << u;
  }
}

TEST(Sampler, EmpiricalFrequenciesMatchSoftmax) {
  // 100000 draws: the binomial standard deviation is at most 0.0016; 0.008 is 5 sigma.
  constexpr int kDraws = 100000;
  {
    Sampler s(random_params(99));
    const auto f = frequencies(s, log_probs(kP), kDraws);
    for (size_t i = 0; i < kP.size(); ++i) EXPECT_NEAR(f[i], kP[i], 0.008) << "id " << i;
  }
  {
    // Temperature 2 takes the square root of the probabilities before renormalising.
    SamplingParams p = random_params(100);
    p.temperature = 2.0f;
    Sampler s(p);
    const auto f = frequencies(s, log_probs(kP), kDraws);
    double z = 0;
    for (double x : kP) z += std::sqrt(x);
    for (size_t i = 0; i < kP.size(); ++i)
      EXPECT_NEAR(f[i], std::sqrt(kP[i]) / z, 0.008) << "id " << i;
  }
  {
    // Arbitrary logits: softmax by hand.
    const std::vector<float> logits = {1.0f, -0.5f, 2.0f, 0.25f, 0.0f};
    double z = 0;
    for (float x : logits) z += std::exp(static_cast<double>(x));
    Sampler s(random_params(101));
    const auto f = frequencies(s, logits, kDraws);
    for (size_t i = 0; i < logits.size(); ++i)
      EXPECT_NEAR(f[i], std::exp(static_cast<double>(logits[i])) / z, 0.008) << "id " << i;
  }
}

TEST(Sampler, NonFiniteLogitsAreAnError) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const SamplingParams& p : {SamplingParams{}, random_params(1)}) {
    Sampler s(p);
    for (const std::vector<float>& bad :
         {std::vector<float>{0.0f, nan}, std::vector<float>{inf, 0.0f},
          std::vector<float>{0.0f, -inf}}) {
      try {
        s.sample(bad, {});
        FAIL() << "expected brise::Error";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("logits contain NaN/Inf"), std::string::npos)
            << e.what();
      }
    }
  }
}

TEST(Sampler, LogitBiasIsAddedAndMinus100Bans) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 0.5f};
  SamplingParams p;  // greedy
  p.logit_bias = {{0, 2.5f}};
  EXPECT_EQ(Sampler(p).sample(logits, {}), 0);  // 3.5 beats 3
  p.logit_bias = {{0, 1.5f}, {0, 1.0f}};        // both are added
  EXPECT_EQ(Sampler(p).sample(logits, {}), 0);
  p.logit_bias = {{2, -1.5f}};
  EXPECT_EQ(Sampler(p).sample(logits, {}), 1);  // 2 beats 1.5
  p.logit_bias = {{2, -100.0f}, {1, -100.0f}};  // banned, however large the logit
  EXPECT_EQ(Sampler(p).sample(logits, {}), 0);
  // Sampling never draws a banned token, and the others keep their softmax proportions:
  // banning id 2 of kP leaves 0.5 : 0.3 : 0.05 of 0.85.
  SamplingParams r = random_params(7);
  r.logit_bias = {{2, -100.0f}};
  Sampler sampler(r);
  const auto f = frequencies(sampler, log_probs(kP), 40000);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_NEAR(f[0], 0.5 / 0.85, 0.01);
  EXPECT_NEAR(f[1], 0.3 / 0.85, 0.01);
  EXPECT_NEAR(f[3], 0.05 / 0.85, 0.01);
  // With top-p and min-p too, and with top-k reaching past the unbanned tokens.
  r.top_p = 0.999f;
  r.top_k = 4;
  r.logit_bias = {{0, -100.0f}, {1, -100.0f}, {2, -100.0f}};
  Sampler only3(r);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(only3.sample(log_probs(kP), {}), 3);
  // Every token banned, or an id outside the logits: an error.
  r.logit_bias = {{0, -100.0f}, {1, -100.0f}, {2, -100.0f}, {3, -1000.0f}};
  EXPECT_THROW(Sampler(r).sample(log_probs(kP), {}), Error);
  r.logit_bias = {{4, 1.0f}};
  EXPECT_THROW(Sampler(r).sample(log_probs(kP), {}), Error);
}

TEST(Sampler, FrequencyAndPresencePenaltiesCountGeneratedTokensOnly) {
  const std::vector<float> logits = {2.0f, 1.9f, 0.0f};
  const std::vector<int32_t> history = {1, 1, 0, 0};  // a prompt of two 1s, then two 0s generated
  SamplingParams p;
  p.frequency_penalty = 0.1f;  // 0: 2 - 2 x 0.1 = 1.8 < 1.9
  EXPECT_EQ(Sampler(p).sample(logits, history, 2), 1);
  EXPECT_EQ(Sampler(p).sample(logits, history, 0), 0);  // nothing generated: no penalty
  p.frequency_penalty = 0.04f;                          // 2 - 0.08 = 1.92 > 1.9
  EXPECT_EQ(Sampler(p).sample(logits, history, 2), 0);
  p.frequency_penalty = 0;
  p.presence_penalty = 0.05f;  // once: 1.95 > 1.9
  EXPECT_EQ(Sampler(p).sample(logits, history, 2), 0);
  p.presence_penalty = 0.2f;  // 1.8 < 1.9
  EXPECT_EQ(Sampler(p).sample(logits, history, 2), 1);
  // 1 was generated 1 time among the last 3 (1, 0, 0), 0 twice: 2 - 0.3 = 1.7, 1.9 - 0.25 = 1.65.
  p.frequency_penalty = 0.05f;
  p.presence_penalty = 0.2f;
  EXPECT_EQ(Sampler(p).sample(logits, history, 3), 0);
  // A negative penalty favours repeats: 1.9 + 0.2 = 2.1 > 2.
  p.frequency_penalty = -0.2f;
  p.presence_penalty = 0;
  EXPECT_EQ(Sampler(p).sample(logits, std::vector<int32_t>{1}, 1), 1);
  // Under sampling: after generating id 0 once, presence 1 takes ln(e) off its logit, so its
  // weight 0.5 becomes 0.5 / e against 0.3, 0.15, 0.05.
  SamplingParams r = random_params(3);
  r.presence_penalty = 1.0f;
  Sampler sampler(r);
  const std::vector<int32_t> generated = {0};
  const auto f = frequencies(sampler, log_probs(kP), 40000, generated, 1);
  EXPECT_NEAR(f[0], (0.5 / std::exp(1.0)) / (0.5 / std::exp(1.0) + 0.5), 0.01);
  EXPECT_THROW(Sampler(p).sample(logits, history, 5), Error);  // more generated than history
}

TEST(Sampler, BadInputsAreErrors) {
  Sampler s(random_params(1));
  EXPECT_THROW(s.sample(std::vector<float>{}, {}), Error);
  const std::vector<float> logits = {0.0f, 1.0f};
  const std::vector<int32_t> bad_history = {2};
  SamplingParams p;
  p.repeat_penalty = 1.1f;
  EXPECT_THROW(Sampler(p).sample(logits, bad_history), Error);
}

TEST(Sampler, InvalidParamsAreErrors) {
  auto with = [](auto change) {
    SamplingParams p;
    change(p);
    return p;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(Sampler(with([](SamplingParams& p) { p.temperature = -0.1f; })), Error);
  EXPECT_THROW(Sampler(with([&](SamplingParams& p) { p.temperature = nan; })), Error);
  EXPECT_THROW(Sampler(with([](SamplingParams& p) { p.top_k = -1; })), Error);
  EXPECT_THROW(Sampler(with([](SamplingParams& p) { p.top_p = 0.0f; })), Error);
  EXPECT_THROW(Sampler(with([](SamplingParams& p) { p.top_p = 1.5f; })), Error);
  EXPECT_THROW(Sampler(with([&](SamplingParams& p) { p.top_p = nan; })), Error);
  EXPECT_THROW(Sampler(with([](SamplingParams& p) { p.min_p = -0.1f; })), Error);
  EXPECT_THROW(Sampler(with([](SamplingParams& p) { p.min_p = 1.1f; })), Error);
  EXPECT_THROW(Sampler(with([](SamplingParams& p) { p.repeat_penalty = 0.0f; })), Error);
  EXPECT_THROW(Sampler(with([](SamplingParams& p) { p.repeat_last_n = -1; })), Error);
  EXPECT_THROW(Sampler(with([&](SamplingParams& p) { p.frequency_penalty = nan; })), Error);
  EXPECT_THROW(Sampler(with([](SamplingParams& p) {
                 p.presence_penalty = std::numeric_limits<float>::infinity();
               })),
               Error);
  EXPECT_THROW(Sampler(with([&](SamplingParams& p) { p.logit_bias = {{1, nan}}; })), Error);
  EXPECT_THROW(Sampler(with([](SamplingParams& p) {
                 p.logit_bias = {{1, std::numeric_limits<float>::infinity()}};
               })),
               Error);
  EXPECT_THROW(Sampler(with([](SamplingParams& p) { p.logit_bias = {{-1, 1.0f}}; })), Error);
  EXPECT_NO_THROW(Sampler(with([](SamplingParams& p) {
    p.temperature = 0.7f;
    p.top_k = 40;
    p.top_p = 1.0f;
    p.min_p = 1.0f;
    p.repeat_penalty = 0.9f;
  })));
}

}  // namespace
}  // namespace brise

namespace brise {
namespace {

// The sampler sorts candidates with a radix sort; the outcome must be exactly that of sorting
// with the documented order (higher logit first, then lower id): here with std::sort, on logits
// full of ties, signed zeros, negatives and extremes, over a 32k vocabulary.
// Mistral's SentencePiece vocabulary (32000) and Tekken's (131072: Nemo, Small 3, Ministral).
TEST(Sampler, RadixSortedDrawEqualsTheComparisonSortedDraw) {
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> pick(0, 9);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (uint64_t seed = 0; seed < 60; ++seed) {
    std::vector<float> logits(seed < 40 ? 32000 : 131072);
    for (float& x : logits) {
      if (seed % 4 == 0) {  // only signed zeros: a uniform draw decided by id order alone
        x = pick(gen) % 2 ? 0.0f : -0.0f;
        continue;
      }
      switch (pick(gen)) {
        case 0:
          x = 0.0f;
          break;
        case 1:
          x = -0.0f;
          break;
        case 2:
          x = 1.5f;
          break;  // many exact ties
        case 3:
          x = -3.0e38f;
          break;
        default:
          x = normal(gen);
      }
    }
    SamplingParams params;
    params.temperature = 0.5f + 0.1f * static_cast<float>(seed % 7);
    params.seed = seed;
    params.top_p = seed % 2 ? 1.0f : 0.9f;
    params.min_p = seed % 3 ? 0.0f : 0.01f;
    Sampler sampler(params);
    const int32_t got = sampler.sample(logits, {});

    // The reference: the documented steps with std::sort.
    std::vector<std::pair<float, int32_t>> c(logits.size());
    for (size_t i = 0; i < c.size(); ++i)
      c[i] = {logits[i] / params.temperature, static_cast<int32_t>(i)};
    std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    std::vector<double> p(c.size());
    double sum = 0;
    for (size_t i = 0; i < c.size(); ++i) sum += p[i] = std::exp(double(c[i].first) - c[0].first);
    for (double& x : p) x /= sum;
    size_t kept = c.size();
    if (params.top_p < 1) {
      double cum = 0;
      size_t i = 0;
      while (i < kept) {
        cum += p[i++];
        if (cum >= params.top_p) break;
      }
      kept = i;
    }
    if (params.min_p > 0) {
      size_t i = 1;
      while (i < kept && p[i] >= double(params.min_p) * p[0]) ++i;
      kept = i;
    }
    double total = 0;
    for (size_t i = 0; i < kept; ++i) total += p[i];
    std::mt19937_64 rng(seed);
    const double target = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
    int32_t expected = c[kept - 1].second;
    double cum = 0;
    for (size_t i = 0; i < kept; ++i) {
      cum += p[i];
      if (target < cum) {
        expected = c[i].second;
        break;
      }
    }
    EXPECT_EQ(got, expected) << "seed " << seed << ", vocabulary " << logits.size();
  }
}

}  // namespace
}  // namespace brise

namespace brise {
namespace {

std::vector<uint64_t> mask_of(const std::vector<int32_t>& ids, size_t n) {
  std::vector<uint64_t> mask((n + 63) / 64, 0);
  for (const int32_t id : ids) mask[static_cast<size_t>(id) / 64] |= uint64_t{1} << (id % 64);
  return mask;
}

// Masked sampling is defined as sampling the allowed tokens alone: the same draws as a sampler
// given only the allowed tokens' logits (in id order), with the same parameters and seed.
TEST(Sampler, MaskedSamplingIsSamplingTheAllowedTokensAlone) {
  std::mt19937 gen(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const size_t n = 300;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    std::vector<float> logits(n);
    for (float& x : logits) x = normal(gen);
    std::vector<int32_t> allowed;
    const int density = 1 + static_cast<int>(seed % 5);  // 1 in `density` ids allowed
    for (size_t i = 0; i < n; ++i)
      if (gen() % density == 0) allowed.push_back(static_cast<int32_t>(i));
    if (allowed.empty()) allowed.push_back(7);
    std::vector<float> reduced;
    for (const int32_t id : allowed) reduced.push_back(logits[static_cast<size_t>(id)]);
    // History among the allowed tokens (penalised in both), as ids and as reduced indices.
    std::vector<int32_t> history, reduced_history;
    for (int k = 0; k < 5; ++k) {
      const size_t r = gen() % allowed.size();
      history.push_back(allowed[r]);
      reduced_history.push_back(static_cast<int32_t>(r));
    }
    SamplingParams p;
    p.seed = seed;
    p.temperature = seed % 6 == 0 ? 0.0f : 0.8f;
    p.top_k = seed % 3 == 0 ? 5 : 0;
    p.top_p = seed % 4 == 1 ? 0.7f : 1.0f;
    p.min_p = seed % 5 == 2 ? 0.05f : 0.0f;
    p.repeat_penalty = seed % 2 ? 1.3f : 1.0f;
    p.frequency_penalty = seed % 7 == 3 ? 0.5f : 0.0f;
    p.presence_penalty = seed % 7 == 4 ? 0.8f : 0.0f;
    // Biases (a ban among them) on allowed ids: by id in one, by reduced index in the other.
    SamplingParams reduced_params = p;
    if (seed % 3 == 1 && allowed.size() > 2) {
      p.logit_bias = {{allowed[0], -100.0f}, {allowed[1], 2.5f}};
      reduced_params.logit_bias = {{0, -100.0f}, {1, 2.5f}};
    }
    Sampler masked(p), alone(reduced_params);
    const auto mask = mask_of(allowed, n);
    for (int draw = 0; draw < 20; ++draw) {
      const int32_t got = masked.sample(logits, history, history.size(), mask);
      const int32_t want = allowed[static_cast<size_t>(
          alone.sample(reduced, reduced_history, reduced_history.size()))];
      ASSERT_EQ(got, want) << "seed " << seed << " draw " << draw;
    }
  }
}

TEST(Sampler, MaskedGreedyIsTheFirstLargestAllowedLogit) {
  Sampler s(SamplingParams{});
  const std::vector<float> logits = {9.0f, 2.0f, 5.0f, 5.0f, 1.0f};
  EXPECT_EQ(s.sample(logits, {}, 0, mask_of({1, 2, 3, 4}, 5)), 2);
  EXPECT_EQ(s.sample(logits, {}, 0, mask_of({4}, 5)), 4);
  EXPECT_EQ(s.sample(logits, {}, 0, mask_of({0, 4}, 5)), 0);
}

TEST(Sampler, ABiasThatBansEveryAllowedTokenIsAnError) {
  SamplingParams p;
  p.logit_bias = {{1, -100.0f}, {2, -100.0f}};
  const std::vector<float> logits(5, 0.0f);
  EXPECT_THROW(Sampler(p).sample(logits, {}, 0, mask_of({1, 2}, 5)), Error);
  EXPECT_EQ(Sampler(p).sample(logits, {}, 0, mask_of({1, 2, 4}, 5)), 4);
}

TEST(Sampler, AMaskThatAllowsNothingIsAnError) {
  const std::vector<float> logits(100, 0.0f);
  for (const SamplingParams& p : {SamplingParams{}, random_params(3)}) {
    Sampler s(p);
    EXPECT_THROW(s.sample(logits, {}, 0, mask_of({}, 100)), Error);
    // Ids past the mask's words are not allowed: a mask of one word covers ids 0-63 only.
    const std::vector<uint64_t> short_mask = {0};
    EXPECT_THROW(s.sample(logits, {}, 0, short_mask), Error);
    const std::vector<uint64_t> first = {uint64_t{1} << 63};
    EXPECT_EQ(s.sample(logits, {}, 0, first), 63);
  }
}

}  // namespace
}  // namespace brise
