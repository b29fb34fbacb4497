// POST /v1/chat/completions and /v1/completions: a parsed request becomes jobs (a group of n per
// prompt, sharing its prefill), whose events become one whole response or a stream of chunks.
#include <httplib.h>

#include <random>

#include "api.hpp"
#include "brise/chat.hpp"
#include "brise/constraint.hpp"
#include "brise/error.hpp"
#include "choice.hpp"
#include "constraints.hpp"
#include "server.hpp"
#include "socket_stream.hpp"

namespace brise::serve {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kJson = "application/json";

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char digits[] = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += digits[rng() % 16];
  return id;
}

std::string sse(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

// A choice's job and what its events built so far.
struct Run {
  std::shared_ptr<Job> job;
  ChoiceState state;
  bool leader;  // the first choice of its prompt (its usage counts the prompt)
};

// Every choice of a request, and the events that arrive for them.
struct Runs {
  std::vector<Run> runs;
  size_t next = 0;  // where the next poll starts (round robin)

  bool done() const {
    return std::all_of(runs.begin(), runs.end(), [](const Run& r) { return r.state.done(); });
  }
  void cancel() {
    for (Run& r : runs) r.job->cancel();
  }
  // The next event of any choice still running, waiting up to `timeout`: the run it is for, or
  // nullptr when none came.
  Run* poll(JobEvent& e, milliseconds timeout) {
    const size_t n = runs.size();
    for (size_t k = 0; k < n; ++k) {
      Run& r = runs[(next + k) % n];
      if (!r.state.done() && r.job->next(e, milliseconds(0))) {
        next = (next + k + 1) % n;
        return &r;
      }
    }
    for (Run& r : runs)  // nothing ready: wait on the first one still running
      if (!r.state.done()) return r.job->next(e, timeout) ? &r : nullptr;
    return nullptr;
  }
  Usage usage() const {
    Usage u;
    for (const Run& r : runs) {
      u.completion_tokens += r.state.usage().completion_tokens;
      if (!r.leader) continue;
      u.prompt_tokens += r.state.usage().prompt_tokens;
      u.cached_tokens += r.state.usage().cached_tokens;
    }
    return u;
  }
};

}  // namespace

void Server::check_model(const std::string& requested) const {
  if (requested.empty() || requested == model_id_) return;
  for (const std::string& alias : options_.aliases)
    if (requested == alias) return;
  throw ApiError(
      404, "The model '" + requested + "' does not exist (this server serves '" + model_id_ + "')",
      "model", "model_not_found");
}

void Server::serve_completion(int endpoint_id, const httplib::Request& req,
                              httplib::Response& res) {
  const auto endpoint = static_cast<Endpoint>(endpoint_id);
  const bool chat = endpoint == Endpoint::ChatCompletions;
  ApiRequest r = parse_request(endpoint, req.body);
  check_model(r.model);
  const Tokenizer& tokenizer = model_->tokenizer();
  const std::string prompt_param = chat ? "messages" : "prompt";
  const uint32_t vocab = model_->config().vocab_size;

  // The prompts' ids, and the text an echo shows.
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> echoes;
  try {
    if (chat) {
      prompts.push_back(format_chat(tokenizer, chat_template_, r.chat));
    } else {
      for (const PromptInput& p : r.prompts) {
        if (!p.is_ids) {
          prompts.push_back(tokenizer.encode(p.text, /*add_bos=*/true));
          echoes.push_back(p.text);
          continue;
        }
        for (const int32_t id : p.ids)
          if (static_cast<uint32_t>(id) >= vocab)
            throw ApiError(400,
                           "token id " + std::to_string(id) +
                               " in 'prompt' is outside the "
                               "vocabulary (0.." +
                               std::to_string(vocab - 1) + ")",
                           "prompt");
        prompts.push_back(p.ids);
        echoes.push_back(tokenizer.decode(p.ids));
      }
    }
  } catch (const Error& e) {
    throw chat_error(e, prompt_param);
  }
  const size_t choices = prompts.size() * r.n;
  const SchedulerOptions& so = scheduler_->options();
  if (choices > static_cast<size_t>(so.parallel) + so.queue_limit)
    throw ApiError(400,
                   std::to_string(choices) +
                       " choices (prompts x n) are more than this server "
                       "runs and queues at once (" +
                       std::to_string(so.parallel + so.queue_limit) + ")",
                   "n");
  for (const auto& [id, bias] : r.sampling.logit_bias)
    if (static_cast<uint32_t>(id) >= vocab)
      throw ApiError(400,
                     "'logit_bias' names token " + std::to_string(id) +
                         ", outside the vocabulary (0.." + std::to_string(vocab - 1) + ")",
                     "logit_bias");

  GenerateOptions g;
  g.sampling = r.sampling;
  if (!r.seeded)
    g.sampling.seed =
        std::random_device{}() * uint64_t{0x9E3779B97F4A7C15} ^ std::random_device{}();
  // OpenAI's default for completions: 16 tokens; chat: --max-tokens-default (the context, at most).
  g.max_tokens = r.max_tokens.value_or(
      chat ? std::min(options_.max_tokens_default, scheduler_->context_length()) : 16u);
  g.stop_strings = r.stop;
  g.logprobs = r.logprobs;
  // Tools the model may call: its [TOOL_CALLS] answers become tool_calls (none: it may not).
  const int32_t tool_calls_id =
      chat && !r.chat.tools.empty() ? tokenizer.find_special("[TOOL_CALLS]") : -1;
  if (tool_calls_id >= 0 && r.tool_choice == ToolChoice::None)
    g.sampling.logit_bias.emplace_back(tool_calls_id, kLogitBiasBan);
  apply_constraint(r, tokenizer, chat_template_, g);

  Runs runs;
  for (size_t p = 0; p < prompts.size(); ++p) {
    std::vector<GenerateOptions> group(r.n, g);
    // Choice j of a prompt samples with seed + j: choice 0 is what n = 1 gives.
    for (uint32_t j = 0; j < r.n; ++j) group[j].sampling.seed = g.sampling.seed + j;
    std::vector<std::shared_ptr<Job>> jobs;
    try {
      jobs = scheduler_->submit_group(prompts[p], std::move(group));  // every check of the jobs
    } catch (const SubmitError& e) {
      runs.cancel();
      throw job_api_error(e.kind(), e.what(), prompt_param);
    }
    for (uint32_t j = 0; j < r.n; ++j) {
      ChoiceSetup setup;
      setup.chat = chat;
      setup.index = p * r.n + j;
      if (r.echo) setup.echo = echoes[p];
      setup.logprobs = r.logprobs;
      setup.tool_calls_id = r.tool_choice == ToolChoice::None ? -1 : tool_calls_id;
      setup.tmpl = chat_template_;
      // Under "auto" (free text first) an end at max_tokens may be a cut; a call the grammar
      // held is whole all the same.
      const bool text_first =
          r.response_format == ResponseFormat::Text && r.tool_choice == ToolChoice::Auto;
      const bool forced = g.constraint && !text_first;
      setup.length_is_complete = forced && g.max_tokens > g.constraint->min_length();
      setup.calls_are_whole = g.constraint != nullptr;
      runs.runs.push_back({jobs[j], ChoiceState(tokenizer, std::move(setup)), j == 0});
    }
  }
  Shapes shapes;
  shapes.chat = chat;
  shapes.id = random_id(chat ? "chatcmpl-" : "cmpl-");
  shapes.model = r.model.empty() ? model_id_ : r.model;
  shapes.usage_field = r.include_usage;

  if (!r.stream) {
    JobEvent e;
    std::vector<json> unused;
    auto next_check = Clock::now();
    while (!runs.done()) {
      // Every 100 ms, a client that has gone frees its slots (the answer would wait for nobody).
      if (const auto now = Clock::now(); now >= next_check) {
        next_check = now + milliseconds(100);
        const SocketStream* connection = SocketStream::current();
        if (connection && connection->peer_closed()) {
          runs.cancel();
          throw ApiError(499, "the client closed the connection");
        }
      }
      Run* run = runs.poll(e, milliseconds(100));
      if (!run) continue;
      unused.clear();
      if (e.kind == JobEvent::Kind::Text) {
        run->state.on_text(e, unused);
      } else if (e.kind == JobEvent::Kind::Error) {
        runs.cancel();
        throw job_api_error(e.error, e.text);
      } else {
        run->state.on_done(e, unused);
      }
    }
    json list = json::array();
    for (const Run& run : runs.runs) list.push_back(run.state.whole());
    res.set_content(shapes.whole(std::move(list), runs.usage())
                        .dump(-1, ' ', false, json::error_handler_t::replace),
                    kJson);
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  struct StreamState {
    Runs runs;
    Shapes shapes;
    bool include_usage = false;
    bool started = false;
    bool completed = false;  // [DONE] was written
    Clock::time_point next_check = Clock::now();
  };
  auto state = std::make_shared<StreamState>();
  state->runs = std::move(runs);
  state->shapes = std::move(shapes);
  state->include_usage = r.include_usage;
  ++open_streams_;
  res.set_chunked_content_provider(
      "text/event-stream",
      [state](size_t, httplib::DataSink& sink) {
        StreamState& s = *state;
        const auto write = [&](const std::string& text) {
          return sink.write(text.data(), text.size());
        };
        const auto drop = [&] {
          s.runs.cancel();
          return false;
        };
        if (!s.started) {
          s.started = true;
          for (const Run& run : s.runs.runs)
            if (const auto first = run.state.opening();
                first && !write(sse(s.shapes.chunk(*first))))
              return drop();
        }
        JobEvent e;
        Run* run = s.runs.poll(e, milliseconds(100));
        if (!run) {
          // Nothing new: check that the client is still there.
          return sink.is_writable() ? true : drop();
        }
        std::vector<json> chunks;
        if (e.kind == JobEvent::Kind::Error) {
          s.runs.cancel();
          bool ok = write(sse(error_body(job_api_error(e.error, e.text))));
          ok = ok && write("data: [DONE]\n\n");
          sink.done();
          s.completed = ok;
          return ok;
        }
        if (e.kind == JobEvent::Kind::Text)
          run->state.on_text(e, chunks);
        else
          run->state.on_done(e, chunks);
        for (json& c : chunks)
          if (!write(sse(s.shapes.chunk(std::move(c))))) return drop();
        if (!s.runs.done()) {
          // A write into a closed connection may still succeed (the kernel buffers it): look
          // for the peer's close every 100 ms as well.
          if (const auto now = Clock::now(); now >= s.next_check) {
            s.next_check = now + milliseconds(100);
            if (!sink.is_writable()) return drop();
          }
          return true;
        }
        bool ok = !s.include_usage || write(sse(s.shapes.usage_chunk(s.runs.usage())));
        ok = ok && write("data: [DONE]\n\n");
        sink.done();
        s.completed = ok;
        return ok;
      },
      [this, state](bool) {
        // A stream the client dropped counts as 499, like a dropped whole answer.
        if (!state->completed) state->runs.cancel();
        count_status(state->completed ? 200 : 499);
        --open_streams_;
      });
}

}  // namespace brise::serve
