// A job's event queue: the scheduler's thread pushes, the consumer waits.
#include "brise/scheduler.hpp"
#include "engine/generate/scheduler_state.hpp"

namespace brise {

std::string_view job_error_name(JobError error) {
  // In the enumerators' order.
  static constexpr std::string_view kNames[] = {"queue_full",      "shutting_down",
                                                "invalid_request", "context_exceeded",
                                                "cancelled",       "internal"};
  const auto i = static_cast<size_t>(error);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

Job::Job(std::vector<int32_t> prompt, GenerateOptions options, std::shared_ptr<Job> leader)
    : state_(std::make_unique<State>()) {
  state_->prompt = std::move(prompt);
  state_->options = std::move(options);
  state_->leader = std::move(leader);
}
Job::~Job() = default;

JobEvent Job::next() {
  JobEvent e;
  while (!next(e, std::chrono::hours(1))) {
  }
  return e;
}

bool Job::next(JobEvent& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mutex);
  if (!state_->ready.wait_for(lock, timeout, [&] { return !state_->events.empty(); })) return false;
  out = std::move(state_->events.front());
  state_->events.pop_front();
  return true;
}

void Job::push(JobEvent event) {
  {
    std::lock_guard lock(state_->mutex);
    state_->events.push_back(std::move(event));
  }
  state_->ready.notify_all();
}

void Job::cancel() {
  state_->cancelled.store(true);
}
bool Job::cancelled() const {
  return state_->cancelled.load();
}
const std::vector<int32_t>& Job::prompt() const {
  return state_->prompt;
}
const GenerateOptions& Job::options() const {
  return state_->options;
}

}  // namespace brise
