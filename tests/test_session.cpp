// The fast forward pass against Mistral's reference logits (../shared/reference/stories260k),
// and the session's guarantees: determinism over chunk sizes and thread counts, a rolling cache
// bounded by the window, independent sessions on threads, clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <thread>

#include "brise/error.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"
#include "brise/synth.hpp"
#include "support/stories.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using namespace brise;
using namespace brise::test;

namespace {

// Logits after the reference case's first `rows` tokens, fed through one session.
// The case's window comes from the model file (converted from an -swN checkpoint) unless the
// file has another (bf16 window cases reuse hf-bf16): then it is set at run time.
SessionOptions with_case_window(const Model& model, const ReferenceCase& c,
                                SessionOptions options) {
  if (model.config().sliding_window != c.sliding_window) options.sliding_window = c.sliding_window;
  return options;
}

std::vector<float> run_logits(const fs::path& model_path, const ReferenceCase& c,
                              SessionOptions options) {
  auto model = Model::load(model_path);
  Session session(model, with_case_window(*model, c, options));
  std::vector<float> out(c.rows * c.vocab);
  session.prefill_all_logits(std::span(c.token_ids).first(c.rows),
                             [&](size_t t, std::span<const float> row) {
                               std::memcpy(&out[t * c.vocab], row.data(), row.size_bytes());
                             });
  return out;
}

// The same rows, fed one decode() call per token.
std::vector<float> run_decode(const fs::path& model_path, const ReferenceCase& c,
                              SessionOptions options) {
  auto model = Model::load(model_path);
  Session session(model, with_case_window(*model, c, options));
  std::vector<float> out(c.rows * c.vocab);
  for (size_t t = 0; t < c.rows; ++t) {
    auto row = session.decode(c.token_ids[t]);
    std::memcpy(&out[t * c.vocab], row.data(), row.size_bytes());
  }
  return out;
}

constexpr float kTolerance = 1e-4f;  // max abs logit difference to the PyTorch reference

}  // namespace

TEST(Session, EveryReferenceCaseWithinToleranceForEveryLayout) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const auto& c : load_reference_cases(data)) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> dirs{c.model_dir};
    for (const auto& d : c.equivalent_dirs) dirs.push_back(d);
    if (!c.bf16 && !c.sliding_window)
      for (const char* d :
           {"models/stories260k/hf", "models/stories260k/hf-sharded", "models/stories260k/hf-tied"})
        if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
    for (const auto& dir : dirs) {
      SCOPED_TRACE(dir);
      const auto path = converted_model(data, dir, c.bf16 ? TensorType::BF16 : TensorType::F32);
      const auto logits = run_logits(path, c, {});
      EXPECT_LE(max_abs_diff(logits.data(), c.logits.data(), logits.size()), kTolerance);
    }
  }
}

TEST(Session, SlidingWindowChunkSizesAgreeWithReferenceAndEachOtherBitForBit) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const auto& c : load_reference_cases(data)) {
    if (!c.sliding_window) continue;
    SCOPED_TRACE(c.name);
    const auto path =
        converted_model(data, c.model_dir, c.bf16 ? TensorType::BF16 : TensorType::F32);
    std::vector<float> first;
    for (uint32_t chunk : {1u, 7u, 64u, static_cast<uint32_t>(c.rows)}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk));
      SessionOptions options;
      options.prefill_chunk = chunk;
      const auto logits = run_logits(path, c, options);
      EXPECT_LE(max_abs_diff(logits.data(), c.logits.data(), logits.size()), kTolerance);
      if (first.empty())
        first = logits;
      else
        EXPECT_EQ(std::memcmp(first.data(), logits.data(), logits.size() * 4), 0);
    }
    const auto decoded = run_decode(path, c, {});
    EXPECT_EQ(std::memcmp(first.data(), decoded.data(), decoded.size() * 4), 0);
    if (fs::exists(c.dir / "logits_incremental.f32")) {
      const auto incremental = read_f32_file(c.dir / "logits_incremental.f32");
      EXPECT_LE(max_abs_diff(decoded.data(), incremental.data(), decoded.size()), kTolerance);
    }
  }
}

TEST(Session, LogitsAreBitIdenticalForOneTwoAndThreeThreads) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const auto& c : load_reference_cases(data)) {
    if (c.name != "full_gen10_tim_and_sue_300" && c.name != "sw32_gen10_tim_and_sue_300") continue;
    const auto path = converted_model(data, c.model_dir);
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      for (uint32_t chunk : {1u, 64u}) {
        SessionOptions options;
        options.threads = threads;
        options.prefill_chunk = chunk;
        const auto logits = run_logits(path, c, options);
        if (first.empty())
          first = logits;
        else
          EXPECT_EQ(std::memcmp(first.data(), logits.data(), logits.size() * 4), 0)
              << c.name << " threads " << threads << " chunk " << chunk;
      }
    }
  }
}

TEST(Session, RollingCacheHoldsWindowPositionsOnly) {
  BRISE_REQUIRE_TESTDATA(data);
  auto model = Model::load(converted_model(data, "models/stories260k/native-sw8"));
  Session session(model);
  ASSERT_EQ(session.sliding_window(), std::optional<uint32_t>(8));
  const auto& c = model->config();
  const uint64_t per_position = uint64_t{c.n_layers} * c.kv_dim() * 2 * sizeof(float);
  for (int i = 0; i < 80; ++i) session.decode(1 + i % 100);
  EXPECT_EQ(session.position(), 80u);
  EXPECT_EQ(session.kv_capacity(), 8u);
  // Stored in whole blocks of 32 positions (kernels::kKVBlock): the window rounded up.
  EXPECT_EQ(session.kv_cache_bytes(), 32 * per_position);
  // Positions never run out with a rolling cache: 10x the model's context still works.
  SessionOptions f16;
  f16.kv_type = TensorType::F16;
  Session half(model, f16);
  for (int i = 0; i < 80; ++i) half.decode(1 + i % 100);
  EXPECT_EQ(half.kv_cache_bytes(), 32 * per_position / 2);
}

TEST(Session, F16CacheStaysCloseToReferenceAndChunkInvariant) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const auto& c : load_reference_cases(data)) {
    if (c.name != "sw8_gen10_tim_and_sue_300" && c.name != "full_gen02_once_upon_a_time") continue;
    const auto path = converted_model(data, c.model_dir);
    std::vector<float> first;
    for (uint32_t chunk : {1u, 13u, 512u}) {
      SessionOptions options;
      options.kv_type = TensorType::F16;
      options.prefill_chunk = chunk;
      const auto logits = run_logits(path, c, options);
      // f16 keys/values: a looser, stated tolerance.
      EXPECT_LE(max_abs_diff(logits.data(), c.logits.data(), logits.size()), 5e-2f) << c.name;
      if (first.empty())
        first = logits;
      else
        EXPECT_EQ(std::memcmp(first.data(), logits.data(), logits.size() * 4), 0) << c.name;
    }
  }
}

TEST(Session, ConcurrentSessionsOnOneModelMatchSequentialRuns) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto cases = load_reference_cases(data);
  auto model = Model::load(converted_model(data, "models/stories260k/native"));
  std::vector<const ReferenceCase*> picked;
  for (const auto& c : cases)
    if (!c.sliding_window && !c.bf16 && picked.size() < 4) picked.push_back(&c);
  auto run = [&](const ReferenceCase& c) {
    SessionOptions options;
    options.threads = 1;
    options.prefill_chunk = 5;
    Session s(model, options);
    std::vector<float> out;
    s.prefill_all_logits(
        std::span(c.token_ids).first(c.rows),
        [&](size_t, std::span<const float> row) { out.insert(out.end(), row.begin(), row.end()); });
    return out;
  };
  std::vector<std::vector<float>> sequential, concurrent(picked.size());
  for (const auto* c : picked) sequential.push_back(run(*c));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < picked.size(); ++i)
    threads.emplace_back([&, i] { concurrent[i] = run(*picked[i]); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < picked.size(); ++i)
    EXPECT_EQ(sequential[i], concurrent[i]) << picked[i]->name;
}

TEST(Session, RewindAndResetReproduceTheSameLogits) {
  BRISE_REQUIRE_TESTDATA(data);
  auto model = Model::load(converted_model(data, "models/stories260k/native"));
  Session s(model);
  const std::vector<int32_t> a{1, 403, 407, 261, 378}, b{1, 403, 407, 300, 301};
  s.prefill(a);
  s.rewind(3);
  const auto after_rewind = s.prefill(std::span(b).subspan(3));
  const std::vector<float> rewound(after_rewind.begin(), after_rewind.end());
  s.reset();
  const auto after_reset = s.prefill(b);
  const std::vector<float> fresh(after_reset.begin(), after_reset.end());
  EXPECT_EQ(rewound, fresh);
  // A rolling cache cannot go back past what it still holds.
  auto windowed = Model::load(converted_model(data, "models/stories260k/native-sw8"));
  Session w(windowed);
  for (int i = 0; i < 20; ++i) w.decode(1 + i);
  EXPECT_NO_THROW(w.rewind(19));
  EXPECT_THROW(w.rewind(10), Error);
}

// A session that copies another's prefix continues exactly as one that fed those tokens itself.
TEST(Session, CopiedPrefixGivesTheLogitsOfAFedOne) {
  BRISE_REQUIRE_TESTDATA(data);
  for (const char* dir : {"models/stories260k/native", "models/stories260k/native-sw8"}) {
    auto model = Model::load(converted_model(data, dir));
    std::vector<int32_t> ids;
    for (int i = 0; i < 30; ++i) ids.push_back(1 + (i * 37) % 500);
    Session source(model), copy(model), fed(model);
    source.prefill(ids);                          // 30 tokens: the window of 8 has wrapped
    copy.prefill(std::vector<int32_t>{5, 6, 7});  // something to forget
    copy.copy_prefix(source, 29);
    EXPECT_EQ(copy.position(), 29u) << dir;
    EXPECT_TRUE(copy.logits().empty()) << dir;
    EXPECT_EQ(copy.tokens(), std::vector<int32_t>(ids.begin(), ids.begin() + 29)) << dir;
    std::vector<int32_t> tail = {ids[29], 42, 43, 44};
    fed.prefill(std::span(ids).first(29));
    for (const int32_t t : tail) {
      const auto a = copy.decode(t);
      const auto b = fed.decode(t);
      ASSERT_EQ(std::vector<float>(a.begin(), a.end()), std::vector<float>(b.begin(), b.end()))
          << dir << " token " << t;
    }
    EXPECT_THROW(copy.copy_prefix(source, 31), Error) << dir;  // more than it holds
  }
  // A rolling cache cannot give positions it no longer holds; another model is refused.
  auto windowed = Model::load(converted_model(data, "models/stories260k/native-sw8"));
  auto full = Model::load(converted_model(data, "models/stories260k/native"));
  Session w(windowed), other(windowed), f(full);
  for (int i = 0; i < 20; ++i) w.decode(1 + i);
  EXPECT_THROW(other.copy_prefix(w, 10), Error);
  EXPECT_THROW(f.copy_prefix(w, 19), Error);
  SessionOptions f16;
  f16.kv_type = TensorType::F16;
  Session half(windowed, f16);
  EXPECT_THROW(half.copy_prefix(w, 19), Error);
}

// Per-layer windows (Ministral): each layer's ring holds its own window, full-attention layers
// hold the context and bound the session to it, and rewind checks every ring.
TEST(Session, PerLayerWindowsSizeEachRingAndBoundTheSession) {
  const auto scratch = scratch_dir("session_per_layer_windows");
  SynthSpec spec;
  ModelConfig& c = spec.config;
  c.dim = 32, c.n_layers = 3, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16;
  c.hidden_dim = 64, c.vocab_size = 300, c.context_length = 64;
  c.sliding_window = 8;
  c.sliding_window_pattern = {true, false, true};
  spec.type = TensorType::F32;
  write_synthetic_model(scratch / "m.gguf", spec);
  auto model = Model::load(scratch / "m.gguf");
  using W = std::vector<std::optional<uint32_t>>;
  const uint64_t row = 2 * 2 * 16 * sizeof(float);  // K and V of one position of one layer

  Session s(model);
  EXPECT_EQ(s.layer_windows(), (W{8u, std::nullopt, 8u}));
  EXPECT_EQ(s.sliding_window(), std::optional<uint32_t>(8));
  EXPECT_EQ(s.position_limit(), std::optional<uint32_t>(64));
  EXPECT_EQ(s.kv_capacity(), 64u);
  for (int i = 0; i < 64; ++i) s.decode(1 + i);
  EXPECT_EQ(s.kv_cache_bytes(), (32 + 64 + 32) * row);  // windows rounded up to a block of 32
  EXPECT_THROW(s.decode(5), Error);  // the full-attention layer holds the context, no more

  // --sliding-window N sets the windowed layers' window; none makes every layer full.
  SessionOptions five;
  five.sliding_window = std::optional<uint32_t>(5);
  EXPECT_EQ(Session(model, five).layer_windows(), (W{5u, std::nullopt, 5u}));
  SessionOptions none;
  none.sliding_window = std::optional<uint32_t>();
  Session full(model, none);
  EXPECT_EQ(full.layer_windows(), (W{std::nullopt, std::nullopt, std::nullopt}));
  EXPECT_EQ(full.sliding_window(), std::nullopt);

  // A context shorter than the window: the windowed rings never need more than the context.
  SessionOptions short_context;
  short_context.context_length = 6;
  Session small(model, short_context);
  small.prefill(std::vector<int32_t>{1, 2, 3, 4, 5, 6});
  EXPECT_EQ(small.kv_cache_bytes(), 3 * 32 * row);  // 6 positions, one block of 32 per layer

  // Rewind: the windowed rings hold positions [22, 30) after 30 tokens.
  std::vector<int32_t> a, b;
  for (int i = 0; i < 30; ++i) a.push_back(1 + (i * 7) % 299);
  b = a;
  b[29] = 250;
  Session r(model);
  r.prefill(a);
  try {
    r.rewind(27);  // position 27 needs keys from 20 on
    ADD_FAILURE() << "rewind past the ring succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 0"), std::string::npos) << e.what();
  }
  r.rewind(29);  // needs keys from 22 on: still there
  const auto rewound = r.prefill(std::span(b).subspan(29));
  const std::vector<float> got(rewound.begin(), rewound.end());
  Session fresh(model);
  const auto want = fresh.prefill(b);
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size_bytes()), 0);
}

TEST(Session, BadInputIsAClearError) {
  BRISE_REQUIRE_TESTDATA(data);
  auto model = Model::load(converted_model(data, "models/stories260k/native"));
  auto expect_error = [](auto&& f, const std::string& phrase) {
    try {
      f();
      ADD_FAILURE() << "no error, expected: " << phrase;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
  };
  Session s(model);
  expect_error([&] { s.decode(512); }, "outside the vocabulary");
  expect_error([&] { s.decode(-1); }, "outside the vocabulary");
  expect_error([&] { s.prefill({}); }, "no tokens");
  EXPECT_EQ(s.position(), 0u);
  EXPECT_NO_THROW(s.decode(1));  // BOS alone is fine
  SessionOptions small;
  small.context_length = 16;
  Session limited(model, small);
  std::vector<int32_t> long_prompt(17, 300);
  expect_error([&] { limited.prefill(long_prompt); }, "exceeds the context length of 16");
  EXPECT_EQ(limited.position(), 0u);
  limited.prefill(std::span(long_prompt).first(16));
  expect_error([&] { limited.decode(5); }, "exceeds the context length");
  SessionOptions zero;
  zero.prefill_chunk = 0;
  expect_error([&] { Session bad(model, zero); }, "chunk");
  // The cache holds f32, f16 or q8_0; q8_0 blocks of 32 need heads of a multiple of 32 (this
  // model's are 8 wide).
  SessionOptions q4;
  q4.kv_type = TensorType::Q4_0;
  expect_error([&] { Session bad(model, q4); }, "the KV cache holds f32, f16 or q8_0");
  SessionOptions q8;
  q8.kv_type = TensorType::Q8_0;
  expect_error([&] { Session bad(model, q8); }, "q8_0 KV cache needs head_dim a multiple of 32");
  expect_error([&] { Model::load("/nonexistent/model.gguf"); }, "/nonexistent/model.gguf");
  // A file that is not a model at all.
  const auto scratch = scratch_dir("session_bad_input");
  std::ofstream(scratch / "junk.gguf") << "this is not a gguf file";
  expect_error([&] { Model::load(scratch / "junk.gguf"); }, "junk.gguf");
}
