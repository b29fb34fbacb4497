// Sampling: greedy argmax, or repetition penalty -> temperature -> top-k -> softmax -> top-p ->
// min-p -> one draw. Everything that decides the outcome is computed here, in a fixed order and
// with a total order on candidates, so that a seed gives the same tokens with any standard
// library (std::*_distribution is deliberately avoided: its algorithms are unspecified).
#include "brise/sampler.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_set>

#include "brise/error.hpp"
#include "engine/generate/option_checks.hpp"
#include "kernels/activation.hpp"

namespace brise {
namespace {

// Higher logit first; on equal logits the lower id first, so the order never depends on the
// sorting algorithm.
bool before(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first != b.first ? a.first > b.first : a.second < b.second;
}

// Sorts candidates into `before`'s order with an LSD radix sort (4 stable passes of 8 bits over
// a key that orders floats from the highest down): the same order std::sort gives, since
// `before` is a total order, in a fraction of the time for a 32k vocabulary. Candidates arrive in
// id order and every pass is stable, so equal logits keep the lower id first; -0 and +0 compare
// equal as floats, so both get +0's key.
void sort_candidates(std::vector<std::pair<float, int32_t>>& c,
                     std::vector<std::pair<float, int32_t>>& scratch, std::vector<uint32_t>& keys,
                     std::vector<uint32_t>& scratch_keys) {
  const size_t n = c.size();
  keys.resize(n);
  scratch_keys.resize(n);
  scratch.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float f = c[i].first == 0.0f ? 0.0f : c[i].first;
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    const uint32_t ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    keys[i] = ~ascending;  // descending logits
  }
  for (int shift = 0; shift < 32; shift += 8) {
    size_t count[257] = {};
    for (size_t i = 0; i < n; ++i) ++count[((keys[i] >> shift) & 0xFF) + 1];
    for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
    for (size_t i = 0; i < n; ++i) {
      const size_t at = count[(keys[i] >> shift) & 0xFF]++;
      scratch[at] = c[i];
      scratch_keys[at] = keys[i];
    }
    c.swap(scratch);
    keys.swap(scratch_keys);
  }
}

// A double in [0, 1) from the top 53 bits: the same value on every platform.
double unit_interval(uint64_t bits) {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace

Sampler::Sampler(SamplingParams params) : params_(params), rng_(params.seed) {
  check_sampling_params(params_);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history,
                        size_t generated) {
  return sample_among(logits, history, generated, nullptr);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history,
                        size_t generated, std::span<const uint64_t> allowed) {
  return sample_among(logits, history, generated, &allowed);
}

int32_t Sampler::sample_among(std::span<const float> logits, std::span<const int32_t> history,
                              size_t generated, const std::span<const uint64_t>* mask) {
  const size_t n = logits.size();
  if (n == 0) throw Error("sampling: no logits");
  for (float x : logits)
    if (!std::isfinite(x)) throw Error("sampling: logits contain NaN/Inf");
  for (int32_t id : history)
    if (id < 0 || static_cast<size_t>(id) >= n)
      throw Error("sampling: history token id " + std::to_string(id) +
                  " is outside the vocabulary of " + std::to_string(n));
  if (generated > history.size())
    throw Error("sampling: " + std::to_string(generated) + " generated tokens, but a history of " +
                std::to_string(history.size()));

  const bool penalize = params_.repeat_penalty != 1.0f && params_.repeat_last_n > 0;
  const bool penalize_generated =
      (params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f) && generated > 0;
  const bool bias = !params_.logit_bias.empty();
  const auto is_allowed = [&](size_t i) {
    const size_t w = i >> 6;
    return w < mask->size() && (((*mask)[w] >> (i & 63)) & 1) != 0;
  };
  if (params_.temperature == 0 && !penalize && !penalize_generated && !bias) {
    if (!mask) return static_cast<int32_t>(kernels::argmax(logits.data(), n));
    // The first index among the largest allowed logits.
    size_t best = n;
    for (size_t w = 0; w < mask->size() && w * 64 < n; ++w)
      for (uint64_t bits = (*mask)[w]; bits != 0; bits &= bits - 1) {
        const size_t i = w * 64 + static_cast<size_t>(std::countr_zero(bits));
        if (i < n && (best == n || logits[i] > logits[best])) best = i;
      }
    if (best == n) throw Error("sampling: the constraint allows no token");
    return static_cast<int32_t>(best);
  }

  candidates_.resize(n);
  for (size_t i = 0; i < n; ++i) candidates_[i] = {logits[i], static_cast<int32_t>(i)};

  // A banned token's logit becomes -inf: every step below keeps it there, the sorts put it last,
  // and `allowed` below keeps it out of the draw.
  size_t banned = 0;
  for (const auto& [id, b] : params_.logit_bias) {
    if (id < 0 || static_cast<size_t>(id) >= n)
      throw Error("sampling: logit_bias token id " + std::to_string(id) +
                  " is outside the vocabulary of " + std::to_string(n));
    float& l = candidates_[static_cast<size_t>(id)].first;
    if (std::isinf(l)) continue;
    if (b <= kLogitBiasBan) {
      l = -std::numeric_limits<float>::infinity();
      ++banned;
    } else {
      l += b;
    }
  }
  if (banned == n) throw Error("sampling: logit_bias bans every token");

  // CTRL-style penalty, once per distinct token of the recent history (as llama.cpp does).
  if (penalize) {
    const size_t last_n = std::min(history.size(), static_cast<size_t>(params_.repeat_last_n));
    std::unordered_set<int32_t> seen;
    for (int32_t id : history.subspan(history.size() - last_n)) {
      if (!seen.insert(id).second) continue;
      float& l = candidates_[static_cast<size_t>(id)].first;
      l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    }
  }

  // OpenAI's penalties: mu[j] -= c[j] * frequency_penalty + (c[j] > 0) * presence_penalty.
  if (penalize_generated) {
    counts_.clear();
    for (int32_t id : history.subspan(history.size() - generated)) ++counts_[id];
    for (const auto& [id, count] : counts_)
      candidates_[static_cast<size_t>(id)].first -=
          static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
  }

  // With a mask, only the allowed tokens stay candidates, still in id order: every step below
  // runs on them alone (the bias and penalties above were applied by id, before).
  size_t m = n;
  if (mask) {
    m = 0;
    banned = 0;
    for (size_t i = 0; i < n; ++i)
      if (is_allowed(i)) {
        candidates_[m++] = candidates_[i];
        if (std::isinf(candidates_[i].first)) ++banned;
      }
    candidates_.resize(m);
    if (m == 0) throw Error("sampling: the constraint allows no token");
    if (banned == m) throw Error("sampling: logit_bias bans every token the constraint allows");
  }
  const size_t allowed = m - banned;

  if (params_.temperature == 0) {
    // Greedy after the penalty: the first index among the largest.
    size_t best = 0;
    for (size_t i = 1; i < m; ++i)
      if (candidates_[i].first > candidates_[best].first) best = i;
    return candidates_[best].second;
  }

  for (auto& c : candidates_) c.first /= params_.temperature;

  size_t kept = m;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < m) {
    kept = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(kept),
                      candidates_.end(), before);
  } else {
    sort_candidates(candidates_, sort_scratch_, sort_keys_, sort_scratch_keys_);
  }
  kept = std::min(kept, allowed);  // the banned tokens are sorted last

  // Softmax over the kept candidates, in double so that the cut-offs below are stable.
  std::vector<double>& probs = probs_;
  probs.resize(kept);
  const double max_logit = candidates_[0].first;
  double sum = 0;
  for (size_t i = 0; i < kept; ++i) {
    probs[i] = std::exp(static_cast<double>(candidates_[i].first) - max_logit);
    sum += probs[i];
  }
  for (size_t i = 0; i < kept; ++i) probs[i] /= sum;

  // Top-p: the smallest prefix (most likely first) whose probability reaches top_p.
  if (params_.top_p < 1.0f) {
    double cumulative = 0;
    size_t i = 0;
    while (i < kept) {
      cumulative += probs[i++];
      if (cumulative >= params_.top_p) break;
    }
    kept = i;
  }

  // Min-p: drop what is less likely than min_p times the most likely (which always stays).
  if (params_.min_p > 0) {
    const double threshold = static_cast<double>(params_.min_p) * probs[0];
    size_t i = 1;
    while (i < kept && probs[i] >= threshold) ++i;
    kept = i;
  }

  // One draw from what is left, renormalised.
  double total = 0;
  for (size_t i = 0; i < kept; ++i) total += probs[i];
  const double target = unit_interval(rng_()) * total;
  double cumulative = 0;
  for (size_t i = 0; i < kept; ++i) {
    cumulative += probs[i];
    if (target < cumulative) return candidates_[i].second;
  }
  return candidates_[kept - 1].second;  // rounding left target at the very top
}

}  // namespace brise
