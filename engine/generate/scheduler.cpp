// The Scheduler's submitting side: its construction, submit (every check a job gets, once),
// shutdown and stats. Its thread is scheduler_loop.cpp.
#include "brise/scheduler.hpp"

#include <string>

#include "engine/generate/option_checks.hpp"
#include "engine/generate/scheduler_state.hpp"

namespace brise {
namespace {

// Why a job cannot run on `model` in a slot holding `context` positions (`unbounded`: every
// layer has a rolling window, which a prompt of any length fits).
void check_job(const std::vector<int32_t>& prompt, const GenerateOptions& options,
               const Model& model, uint32_t context, bool unbounded) {
  if (prompt.empty())
    throw SubmitError(JobError::InvalidRequest, "the prompt is empty (it needs at least BOS)");
  const uint32_t vocab = model.config().vocab_size;
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || static_cast<uint32_t>(prompt[i]) >= vocab)
      throw SubmitError(JobError::InvalidRequest,
                        "token id " + std::to_string(prompt[i]) + " at index " + std::to_string(i) +
                            " is outside the vocabulary (0.." + std::to_string(vocab - 1) + ")");
  if (!unbounded && prompt.size() > context)
    throw SubmitError(JobError::ContextExceeded, "the prompt is " + std::to_string(prompt.size()) +
                                                     " tokens, more than the context of " +
                                                     std::to_string(context) + " tokens");
  try {
    check_generate_options(options, model);
  } catch (const Error& e) {
    throw SubmitError(JobError::InvalidRequest, e.what());
  }
}

}  // namespace

Scheduler::Scheduler(std::shared_ptr<const Model> model, SchedulerOptions options) {
  if (!model) throw Error("scheduler: no model");
  if (options.parallel < 1)
    throw Error("scheduler: parallel must be at least 1, got " + std::to_string(options.parallel));
  if (options.prefill_chunk < 1 || options.prefill_chunk_alone < 1)
    throw Error("scheduler: the prefill chunks must be at least 1 token");
  state_ = std::make_unique<State>(std::move(model), options);
  State& s = *state_;
  for (int i = 0; i < options.parallel; ++i)
    s.slots.push_back(std::make_unique<Slot>(Session(s.model, options.session)));
  s.next_tokens.resize(s.slots.size());
  s.unbounded = !s.slots.front()->session.position_limit().has_value();
  s.context_length = options.session.context_length.value_or(s.model->config().context_length);
  s.stats.slots = s.slots.size();
  for (const auto& slot : s.slots) {
    s.stats.kv_cache_bytes += slot->session.kv_cache_bytes();
    s.stats.kv_cache_max_bytes += slot->session.kv_cache_max_bytes();
  }
  s.thread = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  shutdown(std::chrono::milliseconds(0));
}

std::shared_ptr<Job> Scheduler::submit(std::vector<int32_t> prompt, GenerateOptions options) {
  std::vector<GenerateOptions> one;
  one.push_back(std::move(options));
  return submit_group(std::move(prompt), std::move(one)).front();
}

std::vector<std::shared_ptr<Job>> Scheduler::submit_group(std::vector<int32_t> prompt,
                                                          std::vector<GenerateOptions> options) {
  State& s = *state_;
  if (options.empty())
    throw SubmitError(JobError::InvalidRequest, "a group of jobs needs at least one");
  for (const GenerateOptions& o : options)
    check_job(prompt, o, *s.model, s.context_length, s.unbounded);
  std::vector<std::shared_ptr<Job>> jobs;
  for (size_t i = 0; i < options.size(); ++i)
    jobs.emplace_back(new Job(prompt, std::move(options[i]), i == 0 ? nullptr : jobs.front()));
  {
    std::lock_guard lock(s.mutex);
    if (s.stopping) throw SubmitError(JobError::ShuttingDown, kShuttingDown);
    // Room: slots that are idle (and not yet promised to queued jobs), or places in the queue.
    const size_t idle = s.slots.size() - s.stats.busy;
    if (s.queue.size() + jobs.size() > s.options.queue_limit + idle)
      throw SubmitError(JobError::QueueFull, "the queue is full (" +
                                                 std::to_string(s.options.queue_limit) +
                                                 " jobs wait for a slot): try again shortly");
    s.queue.insert(s.queue.end(), jobs.begin(), jobs.end());
  }
  s.wake.notify_all();
  return jobs;
}

void Scheduler::shutdown(std::chrono::milliseconds grace) {
  State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    if (!s.stopping) {
      s.stopping = true;
      s.cancel_at = State::Clock::now() + grace;
      for (auto& job : s.queue) job->push(error_event(JobError::ShuttingDown, kShuttingDown));
      s.queue.clear();
    }
  }
  s.wake.notify_all();
  if (s.thread.joinable()) s.thread.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(state_->mutex);
  SchedulerStats stats = state_->stats;
  stats.queued = state_->queue.size();
  return stats;
}

const SchedulerOptions& Scheduler::options() const {
  return state_->options;
}
uint32_t Scheduler::context_length() const {
  return state_->context_length;
}

}  // namespace brise
