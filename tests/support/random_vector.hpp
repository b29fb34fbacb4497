// Reproducible random inputs for the kernel tests and benchmarks (header-only, so that bench/
// uses it without the test support library).
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace brise::test {

// `n` values uniform in [lo, hi), the same for the same seed.
inline std::vector<float> random_vector(size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace brise::test
