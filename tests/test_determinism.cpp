// The determinism contract end to end: for every tensor type, in both modes (int8 activations and
// exact), the logits of a prompt are bit-identical whatever the thread count (1-4) and the prefill
// chunk size (1, 7, 512), on a model wide enough that the matmuls and attention really split
// across threads, with a prompt longer than one 512-token chunk.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "brise/model.hpp"
#include "brise/session.hpp"
#include "engine/tensor_encoding.hpp"
#include "kernels/type_traits.hpp"
#include "support/end_to_end_types.hpp"
#include "support/testdata.hpp"
#include "support/wide_model.hpp"

namespace brise {
namespace {

TEST(Determinism, LogitsBitIdenticalForEveryTypeModeThreadCountAndChunk) {
  const auto scratch = test::scratch_dir("determinism");
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> id(3, 511);
  std::vector<int32_t> prompt{1};
  while (prompt.size() < 530) prompt.push_back(id(rng));

  for (const kernels::TypeTraits& t : kernels::all_types()) {
    if (!test::end_to_end_type(t)) continue;
    const auto type = static_cast<TensorType>(t.ggml_id);
    const auto model = Model::load(test::write_wide_model(scratch, type));
    for (bool exact : {false, true}) {
      if (exact && !t.quantized) continue;
      std::vector<float> first;
      for (int threads : {1, 2, 3, 4}) {
        for (uint32_t chunk : {1u, 7u, 512u}) {
          if (chunk == 1 && threads != 2) continue;  // token by token is slow: 2 threads suffice
          // Row-major types decode every block per pass: 1, 2 (one token at a time) and 3 threads.
          if (t.row_major && (threads == 4 || (threads == 2 && chunk != 1))) continue;
          SessionOptions options;
          options.threads = threads;
          options.prefill_chunk = chunk;
          options.exact = exact;
          Session session(model, options);
          std::vector<float> logits;
          session.prefill_all_logits(prompt, [&](size_t, std::span<const float> row) {
            logits.insert(logits.end(), row.begin(), row.end());
          });
          // Then a few decoded tokens, the one-token path.
          for (int32_t next : {5, 77, 300}) {
            const auto row = session.decode(next);
            logits.insert(logits.end(), row.begin(), row.end());
          }
          if (first.empty()) {
            first = std::move(logits);
            continue;
          }
          ASSERT_EQ(logits.size(), first.size());
          EXPECT_EQ(std::memcmp(first.data(), logits.data(), logits.size() * sizeof(float)), 0)
              << t.name << (exact ? " exact" : "") << ", threads " << threads << ", chunk "
              << chunk;
        }
      }
    }
  }
}

}  // namespace
}  // namespace brise
