#include "engine/generate/logprobs.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace brise {

TokenLogprobs token_logprobs(std::span<const float> logits, int32_t chosen, uint32_t top) {
  // Logits are finite (the sampler has checked them). Summed in id order, so the value does not
  // depend on anything but the logits.
  double max = logits[0];
  for (const float x : logits) max = std::max(max, static_cast<double>(x));
  double sum = 0;
  for (const float x : logits) sum += std::exp(static_cast<double>(x) - max);
  const double log_total = max + std::log(sum);
  const auto entry = [&](int32_t id) {
    return TokenLogprob{id, static_cast<double>(logits[static_cast<size_t>(id)]) - log_total};
  };

  TokenLogprobs out;
  out.chosen = entry(chosen);
  const size_t k = std::min<size_t>(top, logits.size());
  if (k == 0) return out;
  // The k largest logits, higher first, lower id first on ties (log-softmax keeps the order).
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(k), ids.end(),
                    [&](int32_t a, int32_t b) {
                      const float la = logits[static_cast<size_t>(a)];
                      const float lb = logits[static_cast<size_t>(b)];
                      return la != lb ? la > lb : a < b;
                    });
  out.top.reserve(k);
  for (size_t i = 0; i < k; ++i) out.top.push_back(entry(ids[i]));
  return out;
}

}  // namespace brise
