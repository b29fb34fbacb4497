// Batch invariance: a session's logits are bit-identical whether it is fed alone or in a
// brise::Batch with other sessions at other positions, prefilling or decoding, with any chunking
// and thread count. For every tensor type, both modes, and an f16 KV cache.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "brise/batch.hpp"
#include "brise/error.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"
#include "kernels/type_traits.hpp"
#include "support/testdata.hpp"
#include "support/wide_model.hpp"

namespace brise {
namespace {

struct Script {
  std::vector<int32_t> prompt;
  std::vector<int32_t> decoded;  // fed one at a time after the prompt
};

// Logits after the prompt, then after each decoded token, of a session fed alone.
std::vector<std::vector<float>> alone(const std::shared_ptr<const Model>& model,
                                      const SessionOptions& options, const Script& s) {
  Session session(model, options);
  std::vector<std::vector<float>> out;
  const auto l = session.prefill(s.prompt);
  out.emplace_back(l.begin(), l.end());
  for (int32_t id : s.decoded) {
    const auto d = session.decode(id);
    out.emplace_back(d.begin(), d.end());
  }
  return out;
}

std::vector<Script> scripts() {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int32_t> id(3, 511);
  std::vector<Script> out;
  // 340: past the 300-token window and the first split of 256 keys; 600: past two splits (the
  // decode of its last tokens folds three), the window wrapped twice.
  for (size_t len : {1, 5, 97, 340, 600}) {
    Script s;
    s.prompt.push_back(1);
    while (s.prompt.size() < len) s.prompt.push_back(id(rng));
    for (size_t i = 0; i < 6 + len % 5; ++i) s.decoded.push_back(id(rng));
    out.push_back(s);
  }
  return out;
}

// Runs the scripts together: sequences start at staggered steps, prompts are fed in chunks of
// `chunk` tokens interleaved with the other sequences' decode tokens; after every step each
// sequence that finished its prompt or fed a decode token is compared with its alone run.
void expect_batch_invariant(const std::shared_ptr<const Model>& model,
                            const SessionOptions& options, int threads, size_t chunk,
                            const std::string& what) {
  const auto all = scripts();
  std::vector<std::vector<std::vector<float>>> expected;
  for (const auto& s : all) expected.push_back(alone(model, options, s));

  std::vector<Session> sessions;
  for (size_t i = 0; i < all.size(); ++i) sessions.emplace_back(model, options);
  std::vector<size_t> fed(all.size(), 0);  // prompt tokens fed
  std::vector<size_t> decoded(all.size(), 0);
  Batch batch(threads);
  for (size_t step = 0;; ++step) {
    std::vector<BatchItem> items;
    std::vector<size_t> which;
    for (size_t i = 0; i < all.size(); ++i) {
      if (step < 2 * i) continue;  // staggered starts
      const Script& s = all[i];
      if (fed[i] < s.prompt.size()) {
        const size_t n = std::min(chunk, s.prompt.size() - fed[i]);
        items.push_back({&sessions[i], std::span(s.prompt).subspan(fed[i], n)});
      } else if (decoded[i] < s.decoded.size()) {
        items.push_back({&sessions[i], std::span(s.decoded).subspan(decoded[i], 1)});
      } else {
        continue;
      }
      which.push_back(i);
    }
    if (items.empty()) break;
    batch.forward(items);
    for (size_t k = 0; k < which.size(); ++k) {
      const size_t i = which[k];
      size_t point = 0;  // index into expected[i]
      if (fed[i] < all[i].prompt.size()) {
        fed[i] += items[k].tokens.size();
        if (fed[i] < all[i].prompt.size()) continue;  // mid-prompt: no logits to compare
      } else {
        point = ++decoded[i];
      }
      const auto got = sessions[i].logits();
      const auto& want = expected[i][point];
      ASSERT_EQ(got.size(), want.size());
      ASSERT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
          << what << ": sequence " << i << " at point " << point << " (step " << step
          << ", batch of " << items.size() << ")";
    }
  }
  for (size_t i = 0; i < all.size(); ++i)
    EXPECT_EQ(sessions[i].position(), all[i].prompt.size() + all[i].decoded.size());
}

TEST(Batch, LogitsBitIdenticalToSessionsAloneForEveryTypeAndMode) {
  const auto scratch = test::scratch_dir("batch_invariance");
  test::for_each_wide_model(scratch, [&](const kernels::TypeTraits& t,
                                         const std::shared_ptr<const Model>& model, bool exact) {
    SessionOptions options;
    options.threads = 1;
    options.exact = exact;
    const std::string what = std::string(t.name) + (exact ? " exact" : "");
    expect_batch_invariant(model, options, 3, 64, what + ", 3 threads, chunk 64");
    if (t.ggml_id == kernels::all_types().front().ggml_id) {
      expect_batch_invariant(model, options, 2, 7, what + ", 2 threads, chunk 7");
      options.kv_type = TensorType::F16;
      expect_batch_invariant(model, options, 2, 512, what + ", f16 cache, chunk 512");
    }
  });
}

// Per-layer windows (a ring of 300 on layer 0, full attention on layer 1; the 340-token script
// wraps the ring) and heads wider than dim / n_heads, with one each of the float, block and
// K-quant kernels.
TEST(Batch, PerLayerWindowsBitIdenticalToSessionsAlone) {
  const auto scratch = test::scratch_dir("batch_interleaved");
  for (const TensorType type : {TensorType::F32, TensorType::Q8_0, TensorType::Q4_K}) {
    const auto model = Model::load(test::write_wide_interleaved_model(scratch, type));
    SessionOptions options;
    options.threads = 1;
    const std::string what(tensor_type_name(type));
    expect_batch_invariant(model, options, 3, 64, what + ", 3 threads, chunk 64");
    expect_batch_invariant(model, options, 2, 7, what + ", 2 threads, chunk 7");
    if (type != TensorType::F32) continue;  // the cache's type does not depend on the matrices'
    for (const TensorType kv_type : {TensorType::F16, TensorType::Q8_0}) {
      options.kv_type = kv_type;
      expect_batch_invariant(model, options, 2, 64,
                             what + ", " + std::string(tensor_type_name(kv_type)) + " cache");
    }
  }
}

TEST(Batch, RejectsBadItemsBeforeChangingAnything) {
  const auto scratch = test::scratch_dir("batch_errors");
  const auto model = Model::load(test::write_wide_model(scratch, TensorType::F32));
  const auto other = Model::load(test::write_wide_model(scratch / "..", TensorType::F32));
  Session a(model), b(model), c(other);
  SessionOptions exact_options;
  exact_options.exact = true;
  Session d(model, exact_options);
  const std::vector<int32_t> good{1, 5, 9}, bad{1, 512};
  Batch batch(2);
  const auto rejects = [&](std::vector<BatchItem> items, const std::string& needle) {
    try {
      batch.forward(items);
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_EQ(a.position(), 0u);
    EXPECT_EQ(b.position(), 0u);
  };
  rejects({{&a, good}, {&b, bad}}, "batch item 1: token id 512");
  rejects({{&a, good}, {&a, good}}, "appears twice");
  rejects({{&a, good}, {&c, good}}, "share a model");
  rejects({{&a, good}, {&d, good}}, "agree on exact");
  rejects({{&a, good}, {nullptr, good}}, "no session");
  rejects({{&a, {}}}, "no tokens");
  batch.forward({});  // nothing to do
  batch.forward(std::vector<BatchItem>{{&a, good}, {&b, good}});
  EXPECT_EQ(a.position(), 3u);
  EXPECT_EQ(b.position(), 3u);
}

}  // namespace
}  // namespace brise
