// The determinism contract end to end: for every tensor type, in both modes (int8 activations and
// exact), the logits of a prompt are bit-identical whatever the thread count (1-4) and the prefill
// chunk size (1, 7, 512), on a model wide enough that the matmuls and attention really split
// across threads, with a prompt longer than one 512-token chunk.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "brise/model.hpp"
#include "brise/session.hpp"
#include "engine/gguf/tensor_encoding.hpp"
#include "kernels/type_traits.hpp"
#include "support/testdata.hpp"
#include "support/wide_model.hpp"

namespace brise {
namespace {

// The full grid runs once, in the normal build with the best kernel set. The copies under the
// other kernel sets (BRISE_ISA) and under AddressSanitizer run two of its corners: 1 thread with
// whole 512-token chunks against 3 threads with 7-token chunks (uneven row splits, a chunk that
// does not divide the prompt). Each set's one-token path against its chunked path, and every row
// split, are checked bit for bit per kernel by test_kernels_matmul; the grid here would spend
// most of CI's minutes repeating that.
bool reduced_grid() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#else
  return std::getenv("BRISE_ISA") != nullptr;
#endif
}

bool in_grid(const kernels::TypeTraits& t, int threads, uint32_t chunk) {
  if (reduced_grid()) return (threads == 1 && chunk == 512) || (threads == 3 && chunk == 7);
  if (chunk == 1 && threads != 2) return false;  // token by token is slow: 2 threads suffice
  // Row-major types decode every block per pass: 1, 2 (one token at a time) and 3 threads.
  return !(t.row_major && (threads == 4 || (threads == 2 && chunk != 1)));
}

std::vector<int32_t> long_prompt() {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> id(3, 511);
  std::vector<int32_t> prompt{1};
  while (prompt.size() < 530) prompt.push_back(id(rng));
  return prompt;
}

// The logits of every prompt row, then of a few decoded tokens (the one-token path).
std::vector<float> run(const std::shared_ptr<const Model>& model, const SessionOptions& options,
                       const std::vector<int32_t>& prompt) {
  Session session(model, options);
  std::vector<float> logits;
  session.prefill_all_logits(prompt, [&](size_t, std::span<const float> row) {
    logits.insert(logits.end(), row.begin(), row.end());
  });
  for (int32_t next : {5, 77, 300}) {
    const auto row = session.decode(next);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  return logits;
}

// Keeps the first run's logits; every later run must equal them bit for bit.
void expect_same_as_first(std::vector<float>& first, std::vector<float> logits,
                          const std::string& what) {
  if (first.empty()) {
    first = std::move(logits);
    return;
  }
  ASSERT_EQ(logits.size(), first.size()) << what;
  EXPECT_EQ(std::memcmp(first.data(), logits.data(), logits.size() * sizeof(float)), 0) << what;
}

TEST(Determinism, LogitsBitIdenticalForEveryTypeModeThreadCountAndChunk) {
  const auto scratch = test::scratch_dir("determinism");
  const std::vector<int32_t> prompt = long_prompt();

  test::for_each_wide_model(scratch, [&](const kernels::TypeTraits& t,
                                         const std::shared_ptr<const Model>& model, bool exact) {
    std::vector<float> first;
    for (int threads : {1, 2, 3, 4}) {
      for (uint32_t chunk : {1u, 7u, 512u}) {
        if (!in_grid(t, threads, chunk)) continue;
        SessionOptions options;
        options.threads = threads;
        options.prefill_chunk = chunk;
        options.exact = exact;
        expect_same_as_first(first, run(model, options, prompt),
                             std::string(t.name) + (exact ? " exact" : "") + ", threads " +
                                 std::to_string(threads) + ", chunk " + std::to_string(chunk));
      }
    }
  });
}

// Per-layer windows (layer 0 a ring of 300 that the 530-token prompt wraps, layer 1 full
// attention) and heads wider than dim / n_heads hold the same contract, with an f32, an f16 and
// a q8_0 cache: the prompt crosses blocks of 32 and splits of 256 keys (kernels/attention.hpp), its
// queries are computed in tiles (chunks of 7, 300, 512) or one at a time with their splits in
// parallel (chunk 1), and the window starts inside a block. The window code does not depend on the
// matrices' type: a float, a block and a K-quant type suffice.
TEST(Determinism, PerLayerWindowsBitIdenticalForThreadCountsAndChunks) {
  const auto scratch = test::scratch_dir("determinism_interleaved");
  const std::vector<int32_t> prompt = long_prompt();
  for (const TensorType type : {TensorType::F32, TensorType::Q8_0, TensorType::Q4_K}) {
    const auto model = Model::load(test::write_wide_interleaved_model(scratch, type));
    ASSERT_EQ(model->config().sliding_window_pattern, (std::vector<bool>{true, false}));
    for (const TensorType kv_type : {TensorType::F32, TensorType::F16, TensorType::Q8_0}) {
      if (kv_type != TensorType::F32 && type != TensorType::F32) continue;
      std::vector<float> first;
      for (const auto& [threads, chunk] :
           std::vector<std::pair<int, uint32_t>>{{1, 512}, {3, 7}, {2, 1}, {4, 300}}) {
        if (reduced_grid() && chunk == 1) continue;
        SessionOptions options;
        options.threads = threads;
        options.prefill_chunk = chunk;
        options.kv_type = kv_type;
        expect_same_as_first(first, run(model, options, prompt),
                             std::string(tensor_type_name(type)) + ", " +
                                 std::string(tensor_type_name(kv_type)) + " cache, threads " +
                                 std::to_string(threads) + ", chunk " + std::to_string(chunk));
      }
    }
  }
}

}  // namespace
}  // namespace brise
