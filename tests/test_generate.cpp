// generate() on stories260k: every greedy generation of reference/stories260k reproduced token
// for token (run.c's rule: at most `steps` forward positions, stop without appending on BOS),
// plus stop strings, streaming, the callback, a full context and chat-style continuation.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"
#include "support/json_text.hpp"
#include "support/stories.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

constexpr int32_t kBos = 1;

struct GenerationCase {
  std::string name;
  std::string model_dir;  // the HF layout with the case's weights and window
  bool bf16 = false;
  Ids prompt_ids;
  Ids generated;  // token_ids after the prompt
  uint32_t steps = 0;
  bool stopped_on_bos = false;
  std::string text;  // the whole decoded sequence, prompt included
};

std::vector<GenerationCase> generation_cases(const fs::path& data) {
  const fs::path root = data / "reference/stories260k";
  const auto index = test::parse_json(test::read_file_text(root / "index.json"));
  std::vector<GenerationCase> out;
  for (const auto& entry : index.at("cases")) {
    const std::string kind = entry.at("kind").get<std::string>();
    if (kind.size() < 11 || kind.substr(kind.size() - 11) != "_generation") continue;
    const auto m = test::parse_json(
        test::read_file_text(root / entry.at("name").get<std::string>() / "manifest.json"));
    GenerationCase c;
    c.name = m.at("name").get<std::string>();
    // The HF layout among the equivalent folders (the brief of this test: convert hf*).
    std::vector<std::string> dirs = {m.at("model_dir").get<std::string>()};
    for (const auto& d : m.at("equivalent_model_dirs")) dirs.push_back(d.get<std::string>());
    for (const auto& d : dirs)
      if (c.model_dir.empty() && d.rfind("models/stories260k/hf", 0) == 0 &&
          d != "models/stories260k/hf-tied" && d != "models/stories260k/hf-sharded")
        c.model_dir = d;
    c.bf16 = c.model_dir == "models/stories260k/hf-bf16";
    c.prompt_ids = m.at("prompt_ids").get<Ids>();
    const Ids all = m.at("token_ids").get<Ids>();
    c.generated.assign(all.begin() + static_cast<ptrdiff_t>(c.prompt_ids.size()), all.end());
    c.steps = m.at("generation").at("steps").get<uint32_t>();
    c.stopped_on_bos = m.at("generation").at("stopped_on_bos").get<bool>();
    c.text = m.at("text").get<std::string>();
    out.push_back(std::move(c));
  }
  return out;
}

std::shared_ptr<const Model> load_model(const fs::path& data, const std::string& dir,
                                        bool bf16 = false) {
  return Model::load(test::converted_model(data, dir, bf16 ? TensorType::BF16 : TensorType::F32));
}

// The model is tiny: one thread is fastest, and immune to OpenMP spinning on a busy machine.
SessionOptions one_thread() {
  SessionOptions o;
  o.threads = 1;
  return o;
}

// run.c's rule: stop on BOS without appending it; otherwise `steps` forward positions make a
// sequence of steps + 1 tokens, so at most steps + 1 - prompt tokens are generated.
GenerateOptions runc_options(uint32_t steps, size_t n_prompt) {
  GenerateOptions o;
  o.max_tokens = steps + 1 - static_cast<uint32_t>(n_prompt);
  o.stop_at_eos = false;  // run.c does not stop on EOS
  o.stop_ids = {kBos};
  return o;  // sampling: temperature 0 (greedy) by default
}

TEST(Generate, ReproducesEveryReferenceGreedyGeneration) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto cases = generation_cases(data);
  // 10 run.c generations, 2 sliding-window generations, 1 with bf16 weights.
  ASSERT_EQ(cases.size(), 13u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + " (" + c.model_dir + ")");
    ASSERT_FALSE(c.model_dir.empty());
    const auto model = load_model(data, c.model_dir, c.bf16);
    Session session(model, one_thread());
    std::string streamed;
    const auto r = generate(session, c.prompt_ids, runc_options(c.steps, c.prompt_ids.size()),
                            [&](std::string_view text) {
                              streamed += text;
                              return true;
                            });
    Ids expected = c.generated;
    if (c.stopped_on_bos) {
      expected.push_back(kBos);  // generated_ids includes the token that stopped generation
      EXPECT_EQ(r.stop_reason, StopReason::StopId);
    } else {
      EXPECT_EQ(c.prompt_ids.size() + c.generated.size(), c.steps + 1u);  // the rule as read
      EXPECT_EQ(r.stop_reason, StopReason::MaxTokens);
    }
    EXPECT_EQ(r.prompt_ids, c.prompt_ids);
    EXPECT_EQ(r.generated_ids, expected);
    // Text: the prompt's text followed by the streamed text is the reference text; the first
    // generated piece keeps its leading space only when it continues a prompt.
    EXPECT_EQ(model->tokenizer().decode(c.prompt_ids) + r.text, c.text);
    EXPECT_EQ(streamed, r.text);
    // The last generated token is never fed: one forward pass per generated token but the last.
    EXPECT_EQ(r.decoded_tokens, r.generated_ids.size() - 1);
    EXPECT_EQ(session.position(), c.prompt_ids.size() + r.generated_ids.size() - 1);
  }
}

class GenerateStories : public ::testing::Test {
 protected:
  void SetUp() override {
    BRISE_REQUIRE_TESTDATA(data);
    for (const auto& c : generation_cases(data))
      if (c.name == "full_gen02_once_upon_a_time") reference_ = c;
    ASSERT_FALSE(reference_.generated.empty());
    model_ = load_model(data, "models/stories260k/hf");
    // Text generated after the prompt "Once upon a time".
    continuation_ =
        reference_.text.substr(model_->tokenizer().decode(reference_.prompt_ids).size());
  }
  GenerationCase reference_;
  std::shared_ptr<const Model> model_;
  std::string continuation_;
};

TEST_F(GenerateStories, StopStringCutsTheTextAndHoldsBackPossibleStarts) {
  // The reference continues ", there was a little girl named Lily. She loved ...".
  GenerateOptions o;
  o.max_tokens = 100;
  o.stop_strings = {"Lily.", "girl named Tom"};  // the second one shares a prefix, never completes
  Session session(model_, one_thread());
  std::vector<std::string> chunks;
  const auto r = generate(session, reference_.prompt_ids, o, [&](std::string_view text) {
    chunks.emplace_back(text);
    return true;
  });
  EXPECT_EQ(r.stop_reason, StopReason::StopString);
  const size_t cut = continuation_.find("Lily.");
  ASSERT_NE(cut, std::string::npos);
  EXPECT_EQ(r.text, continuation_.substr(0, cut));
  std::string streamed;
  for (const auto& ch : chunks) streamed += ch;
  EXPECT_EQ(streamed, r.text);
  // The ids are the reference's up to the token that completed the stop string.
  ASSERT_LE(r.generated_ids.size(), reference_.generated.size());
  EXPECT_EQ(r.generated_ids,
            Ids(reference_.generated.begin(),
                reference_.generated.begin() + static_cast<ptrdiff_t>(r.generated_ids.size())));
  EXPECT_GE(model_->tokenizer().decode(r.generated_ids).size(), cut + 5);
  // "girl named " could have been the start of "girl named Tom": it was held back, so no chunk
  // before the last ends inside it; it came out in one piece once " Lily" ruled that stop out.
  ASSERT_FALSE(chunks.empty());
  for (size_t i = 0, end = 0; i + 1 < chunks.size(); ++i) {
    end += chunks[i].size();
    const std::string_view before = std::string_view(streamed).substr(0, end);
    EXPECT_FALSE(before.ends_with("girl")) << "chunk " << i;
    EXPECT_FALSE(before.ends_with("girl named")) << "chunk " << i;
  }
  EXPECT_TRUE(chunks.back().starts_with("girl named ")) << chunks.back();
}

TEST_F(GenerateStories, StopStringAcrossTokensAtTheVeryStart) {
  GenerateOptions o;
  o.max_tokens = 100;
  o.stop_strings = {", there"};
  Session session(model_, one_thread());
  const auto r = generate(session, reference_.prompt_ids, o);
  EXPECT_EQ(r.stop_reason, StopReason::StopString);
  EXPECT_EQ(r.text, "");
}

TEST_F(GenerateStories, MaxTokensAndCallbackStop) {
  {
    GenerateOptions o;
    o.max_tokens = 7;
    Session session(model_, one_thread());
    const auto r = generate(session, reference_.prompt_ids, o);
    EXPECT_EQ(r.stop_reason, StopReason::MaxTokens);
    EXPECT_EQ(r.generated_ids, Ids(reference_.generated.begin(), reference_.generated.begin() + 7));
    EXPECT_EQ(r.text, model_->tokenizer()
                          .decode([&] {
                            Ids all = reference_.prompt_ids;
                            all.insert(all.end(), r.generated_ids.begin(), r.generated_ids.end());
                            return all;
                          }())
                          .substr(std::string("Once upon a time").size()));
  }
  {
    GenerateOptions o;
    o.max_tokens = 100;
    Session session(model_, one_thread());
    int calls = 0;
    const auto r = generate(session, reference_.prompt_ids, o, [&](std::string_view) {
      ++calls;
      return calls < 3;
    });
    EXPECT_EQ(r.stop_reason, StopReason::Callback);
    EXPECT_EQ(calls, 3);
    EXPECT_LT(r.generated_ids.size(), 10u);
  }
  {
    GenerateOptions o;
    o.max_tokens = 0;
    Session session(model_, one_thread());
    const auto r = generate(session, reference_.prompt_ids, o);
    EXPECT_TRUE(r.generated_ids.empty());
    EXPECT_EQ(session.position(), reference_.prompt_ids.size());
  }
}

TEST_F(GenerateStories, FullContextStopsWithoutThrowing) {
  SessionOptions so = one_thread();
  so.context_length = 10;
  Session session(model_, so);
  GenerateOptions o;
  o.max_tokens = 100;
  const auto r = generate(session, reference_.prompt_ids, o);
  // 5 prompt tokens + 5 decoded fill the 10 positions; the 6th generated token cannot be fed.
  EXPECT_EQ(r.stop_reason, StopReason::ContextFull);
  EXPECT_EQ(r.generated_ids, Ids(reference_.generated.begin(), reference_.generated.begin() + 6));
  EXPECT_EQ(session.position(), 10u);
  // A prompt that does not fit at all is an error.
  Session small(model_, so);
  const Ids long_prompt(11, 400);
  EXPECT_THROW(generate(small, long_prompt, o), Error);
}

TEST_F(GenerateStories, ContinuingASessionAccumulates) {
  // Two calls on one session, the second fed with the last token of the first, give the same
  // tokens and text as one call (this is how chat turns accumulate).
  Session session(model_, one_thread());
  GenerateOptions o;
  o.max_tokens = 12;
  const auto first = generate(session, reference_.prompt_ids, o);
  ASSERT_EQ(first.generated_ids.size(), 12u);
  o.max_tokens = 20;
  const Ids next = {first.generated_ids.back()};
  const auto second = generate(session, next, o);
  Ids both = first.generated_ids;
  both.insert(both.end(), second.generated_ids.begin(), second.generated_ids.end());
  EXPECT_EQ(both, Ids(reference_.generated.begin(), reference_.generated.begin() + 32));
  EXPECT_EQ(first.text + second.text, model_->tokenizer()
                                          .decode([&] {
                                            Ids all = reference_.prompt_ids;
                                            all.insert(all.end(), both.begin(), both.end());
                                            return all;
                                          }())
                                          .substr(std::string("Once upon a time").size()));
}

TEST_F(GenerateStories, SeededSamplingIsRepeatable) {
  GenerateOptions o;
  o.max_tokens = 40;
  o.sampling.temperature = 0.9f;
  o.sampling.top_k = 40;
  o.sampling.top_p = 0.95f;
  o.sampling.seed = 42;
  Session a(model_, one_thread()), b(model_, one_thread());
  const auto ra = generate(a, reference_.prompt_ids, o);
  const auto rb = generate(b, reference_.prompt_ids, o);
  EXPECT_EQ(ra.generated_ids, rb.generated_ids);
  EXPECT_EQ(ra.text, rb.text);
}

// The log-softmax of one logits row, restated in long double, and its ids by logit (then id).
struct RowLogprobs {
  std::vector<long double> logprob;
  std::vector<int32_t> by_rank;
};
RowLogprobs reference_logprobs(std::span<const float> row) {
  RowLogprobs r;
  long double max = row[0];
  for (const float x : row) max = std::max<long double>(max, x);
  long double sum = 0;
  for (const float x : row) sum += std::exp(static_cast<long double>(x) - max);
  for (const float x : row) r.logprob.push_back(static_cast<long double>(x) - max - std::log(sum));
  for (size_t i = 0; i < row.size(); ++i) r.by_rank.push_back(static_cast<int32_t>(i));
  std::stable_sort(r.by_rank.begin(), r.by_rank.end(),
                   [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  return r;
}

TEST_F(GenerateStories, LogprobsAreTheLogSoftmaxOfTheModelsLogits) {
  for (const float temperature : {0.0f, 1.3f}) {
    GenerateOptions o;
    o.max_tokens = 60;
    o.sampling.temperature = temperature;
    o.sampling.seed = 11;
    if (temperature > 0) o.sampling.frequency_penalty = 0.5f;  // changes the draw, not logprobs
    Session plain_session(model_, one_thread());
    const auto plain = generate(plain_session, reference_.prompt_ids, o);
    EXPECT_TRUE(plain.logprobs.empty());
    o.logprobs = 5;
    Session session(model_, one_thread());
    const auto r = generate(session, reference_.prompt_ids, o);
    EXPECT_EQ(r.generated_ids, plain.generated_ids) << "logprobs changed the output";
    if (temperature == 0) {  // greedy: the reference's 10th token, first met there, as stop id
      const auto& g = reference_.generated;
      ASSERT_GE(g.size(), 10u);
      ASSERT_EQ(std::find(g.begin(), g.begin() + 9, g[9]), g.begin() + 9);
      ASSERT_EQ(Ids(r.generated_ids.begin(), r.generated_ids.begin() + 10),
                Ids(g.begin(), g.begin() + 10));
      o.stop_ids = {g[9]};
      Session stopped_session(model_, one_thread());
      const auto stopped = generate(stopped_session, reference_.prompt_ids, o);
      ASSERT_EQ(stopped.stop_reason, StopReason::StopId);
      ASSERT_EQ(stopped.generated_ids.size(), 10u);
      ASSERT_EQ(stopped.logprobs.size(), 9u) << "the stop id has no entry";
      EXPECT_EQ(stopped.logprobs.back().chosen.logprob, r.logprobs[8].chosen.logprob);
    }
    const bool stop_token = r.stop_reason == StopReason::StopId || r.stop_reason == StopReason::Eos;
    ASSERT_EQ(r.logprobs.size(), r.generated_ids.size() - (stop_token ? 1 : 0))
        << "a stop token has no entry";

    // Every row's logits from a fresh session fed the prompt and the answer at once.
    Ids all = reference_.prompt_ids;
    all.insert(all.end(), r.generated_ids.begin(), r.generated_ids.begin() + r.logprobs.size());
    const size_t first = reference_.prompt_ids.size() - 1;
    Session check(model_, one_thread());
    size_t checked = 0;
    check.prefill_all_logits(all, [&](size_t t, std::span<const float> row) {
      if (t < first) return;
      const size_t i = t - first;
      if (i >= r.logprobs.size()) return;
      const RowLogprobs ref = reference_logprobs(row);
      const TokenLogprobs& got = r.logprobs[i];
      EXPECT_EQ(got.chosen.id, r.generated_ids[i]);
      EXPECT_NEAR(got.chosen.logprob, static_cast<double>(ref.logprob[got.chosen.id]), 1e-12)
          << "token " << i;
      ASSERT_EQ(got.top.size(), 5u);
      for (size_t k = 0; k < 5; ++k) {
        EXPECT_EQ(got.top[k].id, ref.by_rank[k]) << "token " << i << " rank " << k;
        EXPECT_NEAR(got.top[k].logprob, static_cast<double>(ref.logprob[ref.by_rank[k]]), 1e-12);
      }
      ++checked;
    });
    EXPECT_EQ(checked, r.logprobs.size());
    if (temperature == 0) {  // greedy: the chosen token is always the most likely
      for (const auto& lp : r.logprobs) EXPECT_EQ(lp.chosen.id, lp.top[0].id);
    }
  }
}

TEST_F(GenerateStories, BadInputsAreErrors) {
  Session session(model_, one_thread());
  GenerateOptions o;
  EXPECT_THROW(generate(session, Ids{}, o), Error);  // empty prompt on an empty session
  const Ids bad_id = {kBos, 512};
  EXPECT_THROW(generate(session, bad_id, o), Error);
  o.stop_strings = {""};
  EXPECT_THROW(generate(session, reference_.prompt_ids, o), Error);
  o.stop_strings.clear();
  o.sampling.top_p = 0;
  EXPECT_THROW(generate(session, reference_.prompt_ids, o), Error);
  EXPECT_EQ(session.position(), 0u);  // nothing was fed
}

TEST_F(GenerateStories, ChatTurnsFeedOnlyTheNewTokens) {
  // Two chat turns on one session, as `brise chat` runs them, against the second turn generated
  // from a fresh session prefilled with the whole conversation.
  const Tokenizer& tok = model_->tokenizer();
  const ChatTemplate tmpl = detect_chat_template(tok);
  GenerateOptions o;
  o.max_tokens = 10;
  std::vector<ChatMessage> messages = {{ChatMessage::Role::System, "Tell a story."},
                                       {ChatMessage::Role::User, "Hi"}};
  Session session(model_, one_thread());
  const Ids first = format_chat(tok, tmpl, messages);
  ASSERT_EQ(session.reusable_prefix(first), 0u);  // an empty session keeps nothing
  const auto r1 = generate(session, first, o);
  std::string answer = r1.text;
  if (!answer.empty() && answer.front() == ' ') answer.erase(0, 1);
  messages.push_back({ChatMessage::Role::Assistant, answer});
  messages.push_back({ChatMessage::Role::User, "And then?"});
  const Ids second = format_chat(tok, tmpl, messages);
  const uint32_t held = session.position();
  const uint32_t kept = session.reusable_prefix(second);
  EXPECT_EQ(session.position(), held);  // asking changes nothing
  session.keep_prefix(kept);
  // What the session keeps is a prefix of the new conversation, and only the rest is fed.
  ASSERT_EQ(session.position(), kept);
  EXPECT_TRUE(std::equal(session.tokens().begin(), session.tokens().end(), second.begin()));
  // The first turn's prompt at least is kept. The answer is re-encoded from its text, as
  // mistral-common does, which need not give the sampled ids back (this tiny model's answer
  // starts with a piece without "▁", which the dummy prefix then adds), so the rest may go.
  EXPECT_GE(session.position(), first.size());
  EXPECT_LE(session.position(), held);
  const auto r2 = generate(session, std::span(second).subspan(kept), o);
  Session fresh(model_, one_thread());
  const auto r2_fresh = generate(fresh, second, o);
  EXPECT_EQ(r2.generated_ids, r2_fresh.generated_ids);
  EXPECT_EQ(r2.text, r2_fresh.text);
}

TEST_F(GenerateStories, KeepingASessionPrefixRewindsOrResets) {
  BRISE_REQUIRE_TESTDATA(data);
  const Ids fed(reference_.generated.begin(), reference_.generated.begin() + 30);
  {
    Session session(model_, one_thread());
    session.prefill(fed);
    // The same tokens again: step back one so that there are logits to sample from.
    EXPECT_EQ(session.reusable_prefix(fed), 29u);
    session.keep_prefix(29);
    EXPECT_EQ(session.position(), 29u);
    // A conversation that differs after 5 tokens: full attention rewinds to 5.
    session.prefill(std::span(fed).subspan(29));
    Ids other(fed.begin(), fed.begin() + 5);
    other.push_back(400);
    EXPECT_EQ(session.reusable_prefix(other), 5u);
    session.keep_prefix(5);
    EXPECT_EQ(session.position(), 5u);
    EXPECT_EQ(session.reusable_prefix(Ids{}), 0u);
    EXPECT_THROW(session.keep_prefix(6), Error);  // past what the session holds
  }
  {
    // A rolling cache of 8 positions holds 22..29: going back to 29 works, to 5 does not, and the
    // session starts over.
    Session session(load_model(data, "models/stories260k/hf-sw8"), one_thread());
    session.prefill(fed);
    Ids same_but_last(fed.begin(), fed.begin() + 29);
    same_but_last.push_back(400);
    EXPECT_EQ(session.reusable_prefix(same_but_last), 29u);
    session.keep_prefix(29);
    EXPECT_EQ(session.position(), 29u);
    session.prefill(std::span(fed).subspan(29));
    Ids early(fed.begin(), fed.begin() + 5);
    early.push_back(400);
    EXPECT_EQ(session.reusable_prefix(early), 0u);
    EXPECT_THROW(session.rewind(5), Error);
    session.keep_prefix(0);  // a reset, which a rolled ring allows where rewind(0) does not
    EXPECT_EQ(session.position(), 0u);
    // A prompt that continues everything held keeps it all, however far the ring has rolled.
    session.prefill(fed);
    Ids longer = fed;
    longer.push_back(400);
    EXPECT_EQ(session.reusable_prefix(longer), 30u);
  }
}

}  // namespace
}  // namespace brise
