#include "support/logits_compare.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace brise::test {

std::vector<float> all_row_logits(const std::shared_ptr<const Model>& model,
                                  std::span<const int32_t> tokens, const SessionOptions& options) {
  Session session(model, options);
  std::vector<float> out;
  session.prefill_all_logits(tokens, [&](size_t, std::span<const float> row) {
    out.insert(out.end(), row.begin(), row.end());
  });
  return out;
}

float max_abs_diff(std::span<const float> rows, const Eigen::MatrixXf& expected) {
  const auto T = static_cast<size_t>(expected.rows()), V = static_cast<size_t>(expected.cols());
  if (rows.size() != T * V) throw std::invalid_argument("max_abs_diff: sizes differ");
  float worst = 0;
  for (size_t t = 0; t < T; ++t)
    for (size_t v = 0; v < V; ++v)
      worst = std::max(worst, std::fabs(rows[t * V + v] - expected(static_cast<Eigen::Index>(t),
                                                                   static_cast<Eigen::Index>(v))));
  return worst;
}

}  // namespace brise::test
