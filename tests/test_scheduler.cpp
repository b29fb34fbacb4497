// brise::Scheduler driven directly, without HTTP, on stories260k (full attention and a sliding
// window of 8). The reference for every job's output is brise::generate() alone on a fresh Session:
// batching, slot reuse and prefix reuse must change no token. Also: cached-token counts against
// the prefix rule restated here, cancel, a full queue, shutdown, and refusals at submit.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/scheduler.hpp"
#include "brise/session.hpp"
#include "engine/generate/prefix_cache.hpp"
#include "support/stories.hpp"
#include "support/testdata.hpp"
#include "support/wide_model.hpp"

namespace brise {
namespace {

using namespace std::chrono_literals;
using Ids = std::vector<int32_t>;

// What a job produced: every Text piece joined, and its last event.
struct Outcome {
  std::string text;
  size_t pieces = 0;
  std::vector<int32_t> ids;             // of the Text events
  std::vector<TokenLogprobs> logprobs;  // of the Text events
  JobEvent last;
};

Outcome run_to_end(Job& job) {
  Outcome out;
  for (;;) {
    JobEvent e;
    if (!job.next(e, 60s)) {
      ADD_FAILURE() << "no event for 60 s";
      return out;
    }
    if (e.kind != JobEvent::Kind::Text) {
      out.last = std::move(e);
      return out;
    }
    out.text += e.text;
    ++out.pieces;
    out.ids.insert(out.ids.end(), e.ids.begin(), e.ids.end());
    out.logprobs.insert(out.logprobs.end(), e.logprobs.begin(), e.logprobs.end());
  }
}

// The first event of a running job (a piece of text: the job holds a slot and generates).
JobEvent first_event(Job& job) {
  JobEvent e;
  EXPECT_TRUE(job.next(e, 60s)) << "no event for 60 s";
  return e;
}

// Submit's refusal, or none.
std::optional<SubmitError> refusal(Scheduler& s, Ids prompt, const GenerateOptions& o) {
  try {
    s.submit(std::move(prompt), o);
  } catch (const SubmitError& e) {
    return e;
  }
  return std::nullopt;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BRISE_REQUIRE_TESTDATA(dir);
    data_ = dir;
    model_ = Model::load(test::converted_model(data_, "models/stories260k/hf"));
    window_model_ = Model::load(test::converted_model(data_, "models/stories260k/hf-sw8"));
  }
  static SchedulerOptions options(int parallel, size_t queue_limit = 64) {
    SchedulerOptions o;
    o.parallel = parallel;
    o.queue_limit = queue_limit;
    o.prefill_chunk = 5;  // prompts take several steps beside decoding jobs
    o.prefill_chunk_alone = 7;
    o.threads = 2;
    return o;
  }
  Ids encode(const std::string& text) const { return model_->tokenizer().encode(text, true); }
  Ids chat(const std::string& system, const std::string& user) const {
    const Tokenizer& t = model_->tokenizer();
    return format_chat(t, detect_chat_template(t),
                       {{ChatMessage::Role::System, system}, {ChatMessage::Role::User, user}});
  }
  // What the scheduler must reproduce: generate() alone on a fresh session.
  static GenerateResult alone(const std::shared_ptr<const Model>& model, const Ids& prompt,
                              const GenerateOptions& o) {
    Session session(model);
    return generate(session, prompt, o);
  }
  static GenerateOptions greedy(uint32_t max_tokens) {
    GenerateOptions o;
    o.max_tokens = max_tokens;
    return o;
  }
  static GenerateOptions seeded(uint32_t max_tokens, uint64_t seed) {
    GenerateOptions o;
    o.max_tokens = max_tokens;
    o.sampling.temperature = 0.9f;
    o.sampling.top_p = 0.9f;
    o.sampling.top_k = 40;
    o.sampling.seed = seed;
    return o;
  }
  // Expects `out` to be a finished job with exactly `ref`'s output.
  static void expect_same(const Outcome& out, const GenerateResult& ref, size_t prompt_tokens,
                          const std::string& what) {
    ASSERT_EQ(out.last.kind, JobEvent::Kind::Done) << what << ": " << out.last.text;
    EXPECT_EQ(out.last.generated_ids, ref.generated_ids) << what;
    EXPECT_EQ(out.text, ref.text) << what;
    EXPECT_EQ(out.last.stop_reason, ref.stop_reason) << what;
    EXPECT_EQ(out.last.usage.prompt_tokens, prompt_tokens) << what;
    EXPECT_EQ(out.last.usage.completion_tokens, ref.generated_ids.size()) << what;
    // The Text events carry every generated token but a final stop token, with its logprobs.
    Ids reported = ref.generated_ids;
    if (ref.stop_reason == StopReason::Eos || ref.stop_reason == StopReason::StopId)
      reported.pop_back();
    EXPECT_EQ(out.ids, reported) << what;
    ASSERT_EQ(out.logprobs.size(), ref.logprobs.size()) << what;
    for (size_t i = 0; i < ref.logprobs.size(); ++i) {
      EXPECT_EQ(out.logprobs[i].chosen.id, ref.logprobs[i].chosen.id) << what;
      EXPECT_EQ(out.logprobs[i].chosen.logprob, ref.logprobs[i].chosen.logprob) << what;
      ASSERT_EQ(out.logprobs[i].top.size(), ref.logprobs[i].top.size()) << what;
      for (size_t k = 0; k < ref.logprobs[i].top.size(); ++k)
        EXPECT_EQ(out.logprobs[i].top[k].id, ref.logprobs[i].top[k].id) << what;
    }
  }

  std::filesystem::path data_;
  std::shared_ptr<const Model> model_, window_model_;
};

// Bytes of an f32 KV cache for one slot, restated: each layer holds its window (or the whole
// context) rounded up to blocks of 32 positions, a key and a value of head_dim floats per KV head.
uint64_t f32_kv_bytes(const ModelConfig& c, std::optional<uint32_t> window) {
  const uint64_t positions =
      (std::min(window.value_or(c.context_length), c.context_length) + 31) / 32 * 32;
  return uint64_t{c.n_layers} * positions * c.n_kv_heads * c.head_dim * 2 * sizeof(float);
}

TEST_F(SchedulerTest, JobsRunTogetherGiveWhatGenerateGivesAlone) {
  for (const bool reserve : {false, true})
    for (const auto& model : {model_, window_model_}) {
      SCOPED_TRACE(reserve ? "KV cache reserved at start" : "KV cache grown on demand");
      SchedulerOptions o = options(3);
      o.session.reserve_kv_cache = reserve;
      Scheduler scheduler(model, o);
      const std::optional<uint32_t> window =
          model == window_model_ ? std::optional<uint32_t>(8) : std::nullopt;
      const uint64_t kv_most = 3 * f32_kv_bytes(model->config(), window);
      EXPECT_EQ(scheduler.stats().kv_cache_max_bytes, kv_most);
      EXPECT_EQ(scheduler.stats().kv_cache_bytes, reserve ? kv_most : 0);
      struct Case {
        Ids prompt;
        GenerateOptions options;
      };
      std::vector<Case> cases = {
          {encode("Once upon a time"), greedy(40)},
          {encode("The dog"), seeded(33, 7)},
          {encode("Lily and Tom went to the park. They saw a big"), greedy(25)},
          {encode("One day, a little bird"), seeded(47, 123)},
          {encode("The sun was"), greedy(30)},
          {chat("Be nice.", "Tell me a story."), seeded(20, 99)},
      };
      // A stop string cuts one job short; a stop id (the BOS this model writes between stories)
      // may end another.
      const GenerateResult plain = alone(model, cases[0].prompt, cases[0].options);
      cases.push_back({cases[0].prompt, greedy(40)});
      cases.back().options.stop_strings = {plain.text.substr(12, 4)};
      cases[4].options.stop_ids = {1};
      // Seven jobs over three slots: some wait in the queue and get a slot another job held.
      std::vector<std::shared_ptr<Job>> jobs;
      for (const Case& c : cases) jobs.push_back(scheduler.submit(c.prompt, c.options));
      uint64_t prompt_tokens = 0, completion_tokens = 0;
      for (size_t i = 0; i < jobs.size(); ++i) {
        const Outcome out = run_to_end(*jobs[i]);
        const GenerateResult ref = alone(model, cases[i].prompt, cases[i].options);
        expect_same(out, ref, cases[i].prompt.size(), "job " + std::to_string(i));
        prompt_tokens += cases[i].prompt.size();
        completion_tokens += ref.generated_ids.size();
      }
      EXPECT_EQ(alone(model, cases.back().prompt, cases.back().options).stop_reason,
                StopReason::StopString);
      const SchedulerStats stats = scheduler.stats();
      EXPECT_EQ(stats.slots, 3u);
      EXPECT_EQ(stats.busy, 0u);
      EXPECT_EQ(stats.queued, 0u);
      EXPECT_EQ(stats.prompt_tokens, prompt_tokens);
      EXPECT_EQ(stats.completion_tokens, completion_tokens);
      // Every prompt token was fed or kept; every generated token but each job's last was fed.
      EXPECT_EQ(stats.prefill_tokens + stats.cached_tokens, prompt_tokens);
      EXPECT_EQ(stats.decode_tokens, completion_tokens - jobs.size());
      EXPECT_GT(stats.passes, 0u);
      // Reserved, the KV memory never moved; grown, it stayed within what a reservation takes.
      if (reserve) {
        EXPECT_EQ(stats.kv_cache_bytes, kv_most);
      }
      EXPECT_GT(stats.kv_cache_bytes, 0u);
      EXPECT_LE(stats.kv_cache_bytes, kv_most);
    }
}

// n samples of one prompt: one prefill, each sample exactly what it gives alone.
TEST_F(SchedulerTest, AGroupSharesItsPrefill) {
  for (const auto& model : {model_, window_model_}) {
    const std::string what = model == window_model_ ? "window 8" : "full attention";
    const Ids prompt = encode("Lily and Tom went to the park. They saw a big dog and a small cat.");
    std::vector<GenerateOptions> group;
    for (uint64_t i = 0; i < 3; ++i) {
      group.push_back(seeded(20 + static_cast<uint32_t>(i) * 5, 100 + i));
      group.back().logprobs = static_cast<uint32_t>(i);
      group.back().sampling.presence_penalty = 0.3f;
    }
    {  // Three slots: the two followers copy the leader's prompt and feed its last token only.
      Scheduler scheduler(model, options(3));
      const auto jobs = scheduler.submit_group(prompt, group);
      ASSERT_EQ(jobs.size(), 3u);
      for (size_t i = 0; i < 3; ++i) {
        const Outcome out = run_to_end(*jobs[i]);
        expect_same(out, alone(model, prompt, group[i]), prompt.size(),
                    what + ", sample " + std::to_string(i));
        EXPECT_EQ(out.last.usage.cached_tokens, i == 0 ? 0 : prompt.size() - 1) << what;
      }
      const SchedulerStats stats = scheduler.stats();
      EXPECT_EQ(stats.prefill_tokens, prompt.size() + 2) << what;
      EXPECT_EQ(stats.cached_tokens, 2 * (prompt.size() - 1)) << what;
    }
    {  // One slot: the samples run one after the other, each reusing what the slot holds.
      Scheduler scheduler(model, options(1));
      const auto jobs = scheduler.submit_group(prompt, group);
      for (size_t i = 0; i < 3; ++i)
        expect_same(run_to_end(*jobs[i]), alone(model, prompt, group[i]), prompt.size(),
                    what + ", one slot, sample " + std::to_string(i));
    }
    {  // A group is refused as a whole when the queue has no room for all of it.
      Scheduler scheduler(model, options(2, 0));
      const auto refused = [&] {
        try {
          scheduler.submit_group(prompt, group);
        } catch (const SubmitError& e) {
          return e.kind() == JobError::QueueFull;
        }
        return false;
      };
      EXPECT_TRUE(refused()) << what;
      EXPECT_EQ(scheduler.stats().queued, 0u);
      EXPECT_THROW(scheduler.submit_group(prompt, {}), SubmitError);
    }
  }
}

// The prefix-reuse rule, restated for one source (a slot or a snapshot) that has fed `held`: the
// common prefix c of `held` and the prompt, short of the whole prompt; with a window W (0: full
// attention), only when c == held or its ring of W still holds the keys position c needs (c-W+1
// .. c-1 against held-W .. held-1), else nothing.
uint32_t keepable(const Ids& held, const Ids& prompt, int64_t window) {
  size_t c = 0;
  while (c < held.size() && c < prompt.size() && held[c] == prompt[c]) ++c;
  c = std::min(c, prompt.size() - 1);
  if (window == 0 || c == held.size()) return static_cast<uint32_t>(c);
  const int64_t oldest_needed = std::max<int64_t>(static_cast<int64_t>(c) - (window - 1), 0);
  const int64_t oldest_held = std::max<int64_t>(static_cast<int64_t>(held.size()) - window, 0);
  return oldest_needed >= oldest_held ? static_cast<uint32_t>(c) : 0;
}

// The prefix-reuse rule, restated: a slot that has fed `held` can keep the common prefix c of
// `held` and the prompt, short of the whole prompt; with a window of 8 only when c == held or
// the ring still holds the keys position c needs (c-7 .. c-1 against held-8 .. held-1), else
// nothing. A job goes to the idle slot that can keep the most, ties to the least recently used.
class SlotsModel {
 public:
  SlotsModel(size_t slots, bool window) : held_(slots), last_use_(slots, 0), window_(window) {}
  // The cached tokens the next job gets; its slot then holds `prompt` and what was generated
  // but the last token (sampled, never fed).
  uint32_t admit(const Ids& prompt, const Ids& generated) {
    size_t best = 0;
    uint32_t best_kept = 0;
    for (size_t i = 0; i < held_.size(); ++i) {
      const uint32_t kept = keepable(held_[i], prompt);
      if (i == 0 || kept > best_kept || (kept == best_kept && last_use_[i] < last_use_[best])) {
        best = i;
        best_kept = kept;
      }
    }
    held_[best] = prompt;
    held_[best].insert(held_[best].end(), generated.begin(), generated.end() - 1);
    last_use_[best] = ++uses_;
    return best_kept;
  }
  const Ids& held_by_last() const {
    return held_[std::max_element(last_use_.begin(), last_use_.end()) - last_use_.begin()];
  }

 private:
  uint32_t keepable(const Ids& held, const Ids& prompt) const {
    return brise::keepable(held, prompt, window_ ? 8 : 0);
  }
  std::vector<Ids> held_;
  std::vector<uint64_t> last_use_;
  uint64_t uses_ = 0;
  bool window_;
};

TEST_F(SchedulerTest, PrefixReuseReportsCachedTokensAndChangesNoOutput) {
  for (const auto& model : {model_, window_model_}) {
    const bool window = model == window_model_;
    const std::string what = window ? "window 8" : "full attention";
    Scheduler scheduler(model, options(2));
    SlotsModel slots(2, window);
    const GenerateOptions o = greedy(12);
    uint64_t cached_total = 0;
    const auto run = [&](const Ids& prompt, const std::string& name) {
      const Outcome out = run_to_end(*scheduler.submit(prompt, o));
      expect_same(out, alone(model, prompt, o), prompt.size(), what + ", " + name);
      const uint32_t expected = slots.admit(prompt, out.last.generated_ids);
      EXPECT_EQ(out.last.usage.cached_tokens, expected) << what << ", " << name;
      cached_total += out.last.usage.cached_tokens;
      return expected;
    };
    const std::string system = "You are a storyteller who tells short and happy stories.";
    EXPECT_EQ(run(chat(system, "A cat?"), "first job"), 0u);
    // Text without BOS shares no token with the chat: it goes to the other, empty slot.
    const Ids b = model->tokenizer().encode("Tom had a red ball. He liked to play with it.", false);
    EXPECT_EQ(run(b, "unrelated job"), 0u);
    const Ids held_b = slots.held_by_last();

    // The same system prompt, another question: the first slot keeps the shared part (with a
    // window, its ring has rolled past it: nothing).
    const Ids a2 = chat(system, "A dog?");
    const uint32_t shared = run(a2, "same system prompt");
    if (window) {
      EXPECT_EQ(shared, 0u);
    } else {
      EXPECT_GT(shared, 10u);
    }

    // A prompt that continues everything the second slot holds (its answer, then more text)
    // keeps it all, window or not; and again, now that this slot was used last: it is chosen for
    // what it holds over the least recently used one.
    const Ids more = model->tokenizer().encode(" The end.", false);
    const auto continued = [&](Ids held) {
      held.insert(held.end(), more.begin(), more.end());
      return held;
    };
    EXPECT_EQ(run(continued(held_b), "continuation"), held_b.size());
    const Ids held_b2 = slots.held_by_last();
    EXPECT_EQ(run(continued(held_b2), "continuation again"), held_b2.size());

    // The very same prompt again: all but its last token are kept with full attention (that
    // token is fed again for fresh logits).
    const uint32_t repeated = run(a2, "repeated prompt");
    if (!window) {
      EXPECT_EQ(repeated, a2.size() - 1);
    }

    EXPECT_EQ(scheduler.stats().cached_tokens, cached_total) << what;
  }
}

TEST_F(SchedulerTest, CancelFreesTheSlotAndAFullQueueIsRefused) {
  // One slot, no queue: while a job runs, another is refused; once it is cancelled, one fits.
  // The window model never runs out of context, so the first job runs until it is cancelled.
  Scheduler scheduler(window_model_, options(1, 0));
  const auto endless = scheduler.submit(encode("Once"), greedy(1000000));
  EXPECT_EQ(first_event(*endless).kind, JobEvent::Kind::Text);
  EXPECT_EQ(scheduler.stats().busy, 1u);
  const auto full = refusal(scheduler, encode("The dog"), greedy(4));
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->kind(), JobError::QueueFull);
  EXPECT_NE(std::string(full->what()).find("queue"), std::string::npos) << full->what();

  endless->cancel();
  const Outcome ended = run_to_end(*endless);
  ASSERT_EQ(ended.last.kind, JobEvent::Kind::Error);
  EXPECT_EQ(ended.last.error, JobError::Cancelled);
  EXPECT_EQ(scheduler.stats().busy, 0u);  // freed before the job's last event was sent

  const Ids prompt = encode("The dog");
  const Outcome next = run_to_end(*scheduler.submit(prompt, greedy(10)));
  expect_same(next, alone(window_model_, prompt, greedy(10)), prompt.size(), "after cancel");

  // A queue of one beside one busy slot: the third job is refused, the second waits.
  Scheduler queued(window_model_, options(1, 1));
  const auto running = queued.submit(encode("Once upon a time"), greedy(1000000));
  EXPECT_EQ(first_event(*running).kind, JobEvent::Kind::Text);
  const auto waiting = queued.submit(prompt, greedy(10));
  const auto refused = refusal(queued, encode("The sun"), greedy(4));
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->kind(), JobError::QueueFull);
  EXPECT_EQ(queued.stats().queued, 1u);
  // A queued job that is cancelled ends when it reaches a slot, without running.
  waiting->cancel();
  running->cancel();
  EXPECT_EQ(run_to_end(*running).last.error, JobError::Cancelled);
  const Outcome never_ran = run_to_end(*waiting);
  EXPECT_EQ(never_ran.pieces, 0u);
  EXPECT_EQ(never_ran.last.error, JobError::Cancelled);
}

TEST_F(SchedulerTest, ShutdownEndsQueuedAndRunningJobs) {
  {
    // Past the grace: the running job ends with ShuttingDown after its text so far, the queued
    // ones at once without any text; nothing is taken afterwards.
    Scheduler scheduler(window_model_, options(1, 4));
    const auto running = scheduler.submit(encode("Once"), greedy(1000000));
    EXPECT_EQ(first_event(*running).kind, JobEvent::Kind::Text);
    const auto queued1 = scheduler.submit(encode("The dog"), greedy(5));
    const auto queued2 = scheduler.submit(encode("The sun"), greedy(5));
    scheduler.shutdown(0ms);
    const Outcome r = run_to_end(*running);
    ASSERT_EQ(r.last.kind, JobEvent::Kind::Error);
    EXPECT_EQ(r.last.error, JobError::ShuttingDown);
    for (const auto& q : {queued1, queued2}) {
      const Outcome out = run_to_end(*q);
      EXPECT_EQ(out.pieces, 0u);
      ASSERT_EQ(out.last.kind, JobEvent::Kind::Error);
      EXPECT_EQ(out.last.error, JobError::ShuttingDown);
    }
    const auto late = refusal(scheduler, encode("The cat"), greedy(5));
    ASSERT_TRUE(late.has_value());
    EXPECT_EQ(late->kind(), JobError::ShuttingDown);
  }
  {
    // Within the grace a running job finishes, with generate()'s output.
    Scheduler scheduler(model_, options(2));
    const Ids prompt = encode("Once upon a time");
    const auto running = scheduler.submit(prompt, greedy(30));
    JobEvent first = first_event(*running);
    ASSERT_EQ(first.kind, JobEvent::Kind::Text);
    scheduler.shutdown(600s);  // returns once the job is done
    Outcome rest = run_to_end(*running);
    rest.text = first.text + rest.text;
    rest.ids.insert(rest.ids.begin(), first.ids.begin(), first.ids.end());
    expect_same(rest, alone(model_, prompt, greedy(30)), prompt.size(), "within the grace");
  }
}

TEST_F(SchedulerTest, InvalidJobsAreRefusedAtSubmit) {
  SchedulerOptions o = options(1);
  o.session.context_length = 16;
  Scheduler scheduler(model_, o);
  const Ids prompt = encode("Once upon a time");
  ASSERT_LE(prompt.size(), 16u);
  const auto expect_refused = [&](const Ids& p, const GenerateOptions& g, JobError kind,
                                  const std::string& phrase) {
    const auto r = refusal(scheduler, p, g);
    ASSERT_TRUE(r.has_value()) << "accepted, expected: " << phrase;
    EXPECT_EQ(r->kind(), kind) << r->what();
    EXPECT_NE(std::string(r->what()).find(phrase), std::string::npos) << r->what();
  };
  GenerateOptions g = greedy(4);
  g.sampling.top_p = 0;
  expect_refused(prompt, g, JobError::InvalidRequest, "top_p");
  g = greedy(4);
  g.sampling.temperature = -1;
  expect_refused(prompt, g, JobError::InvalidRequest, "temperature");
  g = greedy(4);
  g.sampling.repeat_penalty = 0;
  expect_refused(prompt, g, JobError::InvalidRequest, "repeat_penalty");
  g = greedy(4);
  g.stop_strings = {""};
  expect_refused(prompt, g, JobError::InvalidRequest, "stop string");
  expect_refused({}, greedy(4), JobError::InvalidRequest, "empty");
  expect_refused({1, 512}, greedy(4), JobError::InvalidRequest, "token id 512 at index 1");
  expect_refused({1, -3}, greedy(4), JobError::InvalidRequest, "token id -3");
  const Ids long_prompt =
      encode("Once upon a time there was a little girl who liked to play in the big green park.");
  ASSERT_GT(long_prompt.size(), 16u);
  expect_refused(long_prompt, greedy(4), JobError::ContextExceeded,
                 std::to_string(long_prompt.size()) + " tokens, more than the context of 16");
  const SchedulerStats stats = scheduler.stats();  // nothing was queued or admitted
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_EQ(stats.prompt_tokens, 0u);
  EXPECT_EQ(stats.passes, 0u);
  // A prompt that fills the context exactly runs (and ends when it is full).
  Ids full(prompt);
  while (full.size() < 16) full.push_back(prompt.back());
  const Outcome out = run_to_end(*scheduler.submit(full, greedy(100)));
  Session session(model_, o.session);
  const GenerateResult ref = generate(session, full, greedy(100));
  expect_same(out, ref, full.size(), "a full context");
  EXPECT_EQ(out.last.stop_reason, StopReason::ContextFull);

  // With a sliding window, a prompt longer than the context length is a prompt like any other.
  Scheduler windowed(window_model_, o);
  const Outcome long_out = run_to_end(*windowed.submit(long_prompt, greedy(10)));
  Session window_session(window_model_, o.session);
  expect_same(long_out, generate(window_session, long_prompt, greedy(10)), long_prompt.size(),
              "window, long prompt");

  // And a scheduler with impossible options is not built.
  EXPECT_THROW({ Scheduler none(model_, options(0)); }, Error);
  SchedulerOptions no_chunk = options(1);
  no_chunk.prefill_chunk = 0;
  EXPECT_THROW({ Scheduler none(model_, no_chunk); }, Error);
}

// --- Shared prefix cache: copies from busy slots and from the host-RAM cache. ---

// A snapshot holds a session's rings as they were (a wrapped window ring: only its last
// positions), counts its bytes, and gives a later session the logits of a fresh prefill, bit for
// bit, for the f32, f16 and q8_0 caches, full attention, a window of 16 that 40 tokens wrap, and
// per-layer windows.
TEST_F(SchedulerTest, SnapshotGivesTheLogitsOfAFreshPrefill) {
  const auto scratch = test::scratch_dir("scheduler_snapshot");
  const auto wide = Model::load(test::write_wide_model(scratch, TensorType::F32));
  const auto interleaved =
      Model::load(test::write_wide_interleaved_model(scratch, TensorType::F32));
  Ids ids;
  for (int i = 0; i < 40; ++i) ids.push_back(1 + (i * 37) % 500);
  const Ids tail = {42, 43, 44};
  struct Case {
    std::shared_ptr<const Model> model;
    TensorType kv;
    std::optional<uint32_t> window;  // of the windowed layers (nullopt: full attention)
  };
  std::vector<Case> cases;
  for (const TensorType kv : {TensorType::F32, TensorType::F16, TensorType::Q8_0})
    for (const std::optional<uint32_t> w : {std::optional<uint32_t>(), std::optional<uint32_t>(16)})
      cases.push_back({wide, kv, w});
  cases.push_back({interleaved, TensorType::Q8_0, 16});
  for (const Case& c : cases) {
    SessionOptions o;
    o.kv_type = c.kv;
    o.sliding_window = c.window;
    o.prefill_chunk = 7;
    const uint32_t head_dim = c.model->config().head_dim;
    const std::string what = std::string(tensor_type_name(c.kv)) + ", head_dim " +
                             std::to_string(head_dim) +
                             (c.window ? ", window " + std::to_string(*c.window) : ", full");
    Session source(c.model, o);
    source.prefill(ids);
    const KVSnapshot snap = source.snapshot();
    EXPECT_EQ(snap.tokens(), ids) << what;
    // Bytes: the KV blocks of 32 positions it holds (K and V of every KV head, f32 4 bytes a
    // value, f16 2, q8_0 34 per 32), at most 4 KiB more; a wrapped ring of 16 holds one block.
    const uint64_t per_value_x32 = c.kv == TensorType::F32   ? 128
                                   : c.kv == TensorType::F16 ? 64
                                                             : 34;
    const auto& windows = source.layer_windows();
    uint64_t kv_bytes = 0;
    for (const auto& w : windows)
      kv_bytes +=
          (w ? 1 : 2) * uint64_t{c.model->config().n_kv_heads} * 2 * head_dim * per_value_x32;
    EXPECT_GE(snap.bytes(), kv_bytes) << what;
    EXPECT_LE(snap.bytes(), kv_bytes + 4096) << what;

    // The whole snapshot, then a tail: exactly a fresh prefill of everything.
    Ids all = ids;
    all.insert(all.end(), tail.begin(), tail.end());
    Session fresh(c.model, o), restored(c.model, o);
    const auto want = fresh.prefill(all);
    restored.prefill(Ids{5, 6, 7});  // something to forget
    ASSERT_EQ(snap.reusable_prefix(all), ids.size()) << what;
    restored.copy_prefix(snap, static_cast<uint32_t>(ids.size()));
    const auto got = restored.prefill(tail);
    ASSERT_EQ(std::vector<float>(got.begin(), got.end()),
              std::vector<float>(want.begin(), want.end()))
        << what;

    // A shorter prefix: with full attention, as a fresh prefill; a wrapped ring cannot give it.
    Ids part(ids.begin(), ids.begin() + 25);
    part.insert(part.end(), tail.begin(), tail.end());
    if (!c.window) {
      ASSERT_EQ(snap.reusable_prefix(part), 25u) << what;
      Session fresh_part(c.model, o), from_part(c.model, o);
      const auto w2 = fresh_part.prefill(part);
      from_part.copy_prefix(snap, 25);
      const auto g2 = from_part.prefill(tail);
      EXPECT_EQ(std::vector<float>(g2.begin(), g2.end()), std::vector<float>(w2.begin(), w2.end()))
          << what;
    } else {
      EXPECT_EQ(snap.reusable_prefix(part), 0u) << what;
      EXPECT_FALSE(snap.can_give(25)) << what;
      EXPECT_TRUE(snap.can_give(39)) << what;  // 39 - 15 = 24: the oldest position the ring holds
      Session other(c.model, o);
      EXPECT_THROW(other.copy_prefix(snap, 25), Error) << what;
    }
  }
  // A snapshot goes only to a session of the same layout.
  SessionOptions f16;
  f16.kv_type = TensorType::F16;
  Session a(wide), b(wide, f16);
  a.prefill(ids);
  EXPECT_THROW(b.copy_prefix(a.snapshot(), 10), Error);
}

// The RAM cache's bound and order: its snapshots' bytes never exceed the limit, the least
// recently used (stored or found) goes first, a snapshot that extends another replaces it, and
// one larger than the limit is not kept.
TEST_F(SchedulerTest, RamCacheKeepsItsByteBoundInLruOrder) {
  const auto snapshot_of = [&](const Ids& ids) {
    Session s(model_);
    s.prefill(ids);
    return s.snapshot();
  };
  const Ids a = encode("Once upon a time there was a cat"), b = encode("The dog ran to the park"),
            c = encode("Lily and Tom went to the big park");
  const uint64_t size_a = snapshot_of(a).bytes(), size_b = snapshot_of(b).bytes(),
                 size_c = snapshot_of(c).bytes();
  PrefixCache cache(size_a + size_b + size_c / 2);  // room for two of them
  cache.store(snapshot_of(a));
  cache.store(snapshot_of(b));
  EXPECT_EQ(cache.keys(), (std::vector<Ids>{b, a}));
  EXPECT_EQ(cache.bytes(), size_a + size_b);
  // Found: a is the most recently used, so storing c drops b.
  Ids a_more = a;
  a_more.push_back(42);
  const PrefixCache::Match m = cache.find(a_more);
  ASSERT_NE(m.snapshot, nullptr);
  EXPECT_EQ(m.tokens, a.size());
  EXPECT_EQ(cache.keys(), (std::vector<Ids>{a, b}));
  cache.store(snapshot_of(c));
  EXPECT_EQ(cache.keys(), (std::vector<Ids>{c, a}));
  EXPECT_EQ(cache.bytes(), size_c + size_a);
  EXPECT_LE(cache.bytes(), cache.limit());
  // A prompt that shares no token (no BOS) finds nothing and changes no order.
  EXPECT_EQ(cache.find(model_->tokenizer().encode("Zebras", false)).snapshot, nullptr);
  EXPECT_EQ(cache.keys(), (std::vector<Ids>{c, a}));
  // A snapshot that extends a replaces it; one that a holds already only refreshes a.
  Ids a_long = a_more;
  a_long.push_back(43);
  cache.store(snapshot_of(a_long));
  EXPECT_EQ(cache.keys(), (std::vector<Ids>{a_long, c}));
  cache.store(snapshot_of(a));
  EXPECT_EQ(cache.keys(), (std::vector<Ids>{a_long, c}));
  EXPECT_EQ(cache.bytes(), size_c + snapshot_of(a_long).bytes());
  // Too large for the limit: not kept, nothing dropped for it.
  PrefixCache small(size_a - 1);
  small.store(snapshot_of(a));
  EXPECT_EQ(small.size(), 0u);
  EXPECT_EQ(small.bytes(), 0u);
}

// A job copies the longest prefix of its prompt from a busy slot (the rows it has computed): with
// full attention, all the prompt shares with the running job's; with a window of 8, whose ring the
// running job has rolled past, nothing (keepable). Each job's output is generate()'s alone.
TEST_F(SchedulerTest, AJobCopiesItsPrefixFromABusySlot) {
  const std::string system = "You are a storyteller who tells short and happy stories.";
  const Ids pa = chat(system, "A cat?"), pb = chat(system, "A dog?");
  for (const auto& model : {model_, window_model_}) {
    const bool window = model == window_model_;
    const std::string what = window ? "window 8" : "full attention";
    const GenerateResult b_alone = alone(model, pb, greedy(12));
    // a decodes beside b's whole run, unless this thread is kept off the CPU for longer than a's
    // 400 tokens take (a loaded machine): then that attempt proves nothing and runs again.
    bool checked = false;
    for (int attempt = 0; attempt < 10 && !checked; ++attempt) {
      Scheduler scheduler(model, options(2));
      GenerateOptions long_run = greedy(400);
      long_run.stop_at_eos = false;
      const auto a = scheduler.submit(pa, long_run);
      ASSERT_EQ(first_event(*a).kind, JobEvent::Kind::Text);  // a's prompt is in
      const Outcome b = run_to_end(*scheduler.submit(pb, greedy(12)));
      JobEvent e;  // a's events so far, at once: did a run during all of b?
      bool a_runs = true;
      while (a_runs && a->next(e, 0ms)) a_runs = e.kind == JobEvent::Kind::Text;
      expect_same(b, b_alone, pb.size(), what);
      if (!a_runs) continue;
      // a still runs: b's prefix came from a busy slot (the other one was empty).
      checked = true;
      const uint32_t shared = keepable(pa, pb, 0);
      EXPECT_GT(shared, 10u);
      EXPECT_EQ(b.last.usage.cached_tokens, window ? 0 : shared) << what;
      a->cancel();
      EXPECT_EQ(run_to_end(*a).last.error, JobError::Cancelled);
    }
    EXPECT_TRUE(checked) << what << ": a ended before b in every attempt";
  }
}

// Jobs that arrive together with one long system prompt: the first prefills it, the others wait
// for its rows (more than a prefill chunk) and copy them, so the prompt is prefilled once.
TEST_F(SchedulerTest, JobsArrivingTogetherPrefillASharedPromptOnce) {
  std::string system = "You are a storyteller.";
  for (int i = 0; i < 4; ++i) system += " You tell short and happy stories about animals.";
  const std::vector<std::string> questions = {"A cat?", "A dog?", "A bird?", "A fish?"};
  Scheduler scheduler(model_, options(4));
  std::vector<Ids> prompts;
  std::vector<std::shared_ptr<Job>> jobs;
  for (const std::string& q : questions) {
    prompts.push_back(chat(system, q));
    jobs.push_back(scheduler.submit(prompts.back(), greedy(8)));
  }
  uint64_t fed = prompts[0].size();
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Outcome out = run_to_end(*jobs[i]);
    expect_same(out, alone(model_, prompts[i], greedy(8)), prompts[i].size(),
                "job " + std::to_string(i));
    const uint32_t expected = i == 0 ? 0 : keepable(prompts[0], prompts[i], 0);
    EXPECT_EQ(out.last.usage.cached_tokens, expected) << "job " << i;
    if (i > 0) fed += prompts[i].size() - expected;
  }
  EXPECT_GT(keepable(prompts[0], prompts[1], 0), 40u);
  EXPECT_EQ(scheduler.stats().prefill_tokens, fed);
}

// The RAM cache: a slot's entries are saved before another job overwrites them and give a later
// prompt that continues them its prefix (with a window of 8 too: all that the slot held is a
// prefix its ring can give); without prefix reuse nothing is kept, copied or cached.
TEST_F(SchedulerTest, RamCacheGivesAnOverwrittenSlotsPrefixBack) {
  for (const auto& model : {model_, window_model_}) {
    const bool window = model == window_model_;
    const std::string what = window ? "window 8" : "full attention";
    SchedulerOptions o = options(1);
    o.cache_ram_bytes = 64 << 20;
    Scheduler scheduler(model, o);
    const auto run = [&](const Ids& prompt, const std::string& name) {
      const Outcome out = run_to_end(*scheduler.submit(prompt, greedy(12)));
      expect_same(out, alone(model, prompt, greedy(12)), prompt.size(), what + ", " + name);
      return out;
    };
    const Ids p1 = chat("You are a storyteller who tells short and happy stories.", "A cat?");
    const Outcome first = run(p1, "first");
    Ids held = p1;  // what the slot holds: the prompt and what was generated but the last token
    held.insert(held.end(), first.last.generated_ids.begin(), first.last.generated_ids.end() - 1);
    // Another conversation (no BOS: nothing shared) overwrites the slot: p1's entries are saved.
    const Ids other = model->tokenizer().encode("Tom had a red ball.", false);
    EXPECT_EQ(run(other, "other").last.usage.cached_tokens, 0u) << what;
    EXPECT_EQ(scheduler.stats().cache_ram_entries, 1u) << what;
    EXPECT_GT(scheduler.stats().cache_ram_bytes, 0u) << what;
    EXPECT_LE(scheduler.stats().cache_ram_bytes, o.cache_ram_bytes) << what;
    // The next turn of the first conversation continues everything it held.
    Ids next = held;
    const Ids more = model->tokenizer().encode(" The end.", false);
    next.insert(next.end(), more.begin(), more.end());
    EXPECT_EQ(run(next, "next turn").last.usage.cached_tokens, keepable(held, next, window ? 8 : 0))
        << what;
    EXPECT_EQ(keepable(held, next, window ? 8 : 0), held.size());
    // Only what is valid: a prompt sharing part of it gets that part with full attention, nothing
    // from the wrapped ring of 8 (the slot now holds `next`'s run, the RAM cache `other`'s).
    const Ids p2 = chat("You are a storyteller who tells short and happy stories.", "A dog?");
    EXPECT_EQ(run(p2, "same system prompt").last.usage.cached_tokens,
              keepable(held, p2, window ? 8 : 0))
        << what;
  }
  // Prefix reuse off: every prompt is prefilled whole.
  SchedulerOptions off = options(1);
  off.prefix_reuse = false;
  off.cache_ram_bytes = 64 << 20;
  Scheduler scheduler(model_, off);
  const Ids p = encode("Once upon a time");
  for (int i = 0; i < 2; ++i) {
    const Outcome out = run_to_end(*scheduler.submit(p, greedy(5)));
    expect_same(out, alone(model_, p, greedy(5)), p.size(), "no reuse");
    EXPECT_EQ(out.last.usage.cached_tokens, 0u);
  }
  EXPECT_EQ(scheduler.stats().prefill_tokens, 2 * p.size());
  EXPECT_EQ(scheduler.stats().cache_ram_entries, 0u);
}

}  // namespace
}  // namespace brise
