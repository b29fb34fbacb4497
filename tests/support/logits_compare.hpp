// The fast path's logits of every row of a prompt, and their distance to the reference forward
// pass's: what the tests comparing Model/Session with support/reference_model share.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "brise/model.hpp"
#include "brise/session.hpp"
#include "support/reference_model.hpp"

namespace brise::test {

// One session fed `tokens` by prefill_all_logits: [T][vocab], row t after token t.
std::vector<float> all_row_logits(const std::shared_ptr<const Model>& model,
                                  std::span<const int32_t> tokens, const SessionOptions& options);

// Largest |rows[t * V + v] - expected(t, v)| over expected's T x V (rows must hold T x V).
float max_abs_diff(std::span<const float> rows, const Eigen::MatrixXf& expected);

}  // namespace brise::test
