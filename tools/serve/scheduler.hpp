// Continuous batching: up to `parallel` requests run at once, each in a slot holding its own
// Session over the one shared Model; every step feeds all of them in one brise::Batch pass (the
// next token of each decoding request and a chunk of each prompt being prefilled), so a long
// prompt never stalls the others for more than a chunk. Requests beyond the slots wait in a
// bounded queue. A finished request's slot keeps its KV cache: a later prompt that starts with
// the same tokens (a system prompt, the next turn of a chat) skips prefilling them. Because a
// Batch pass is bit-identical to each session alone, a request's output does not depend on its
// neighbours.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"

namespace brise::serve {

using Clock = std::chrono::steady_clock;

struct Usage {
  uint32_t prompt_tokens = 0;
  uint32_t completion_tokens = 0;
  uint32_t cached_tokens = 0;  // prompt tokens whose KV entries were reused
};

// What a request's consumer (an HTTP handler) receives, in order: Text pieces (UTF-8 complete),
// then one Done or one Error.
struct Event {
  enum class Kind { Text, Done, Error } kind = Kind::Text;
  std::string text;     // Text: the piece; Error: the message
  bool length = false;  // Done: ended by max_tokens / a full context (else a stop)
  Usage usage;          // Done
  int status = 500;     // Error: HTTP status

  static Event piece(std::string_view t) { return {Kind::Text, std::string(t), false, {}, 0}; }
  static Event done(bool length, Usage u) { return {Kind::Done, {}, length, u, 200}; }
  static Event error(int status, std::string message) {
    return {Kind::Error, std::move(message), false, {}, status};
  }
};

// One request in flight, shared by its HTTP handler and the scheduler's thread.
class Job {
 public:
  Job(std::vector<int32_t> prompt_ids, GenerateOptions generate_options)
      : prompt(std::move(prompt_ids)), options(std::move(generate_options)) {}

  const std::vector<int32_t> prompt;
  const GenerateOptions options;

  // The consumer's side: waits up to `timeout` for the next event.
  bool next(Event& out, std::chrono::milliseconds timeout);
  // The consumer is gone (client disconnected): the scheduler frees the slot at its next step.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // The scheduler's side.
  void push(Event e);
  Clock::time_point submitted = Clock::now();

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Event> events_;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int parallel = 1;                    // slots
  size_t queue_limit = 64;             // waiting requests beyond the slots
  uint32_t prefill_chunk = 64;         // prompt tokens per step while other slots decode
  uint32_t prefill_chunk_alone = 512;  // ... while nothing decodes
  SessionOptions session;              // of every slot (context length, kv type, exact)
  int threads = 0;                     // of each pass (0: OpenMP's default)
};

// Counters for /metrics.
struct SchedulerStats {
  size_t queued = 0, busy = 0, slots = 0;
  uint64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  uint64_t prefill_tokens = 0, decode_tokens = 0;  // fed through passes
  double prefill_seconds = 0, decode_seconds = 0;  // pass time, split by rows
  uint64_t passes = 0;
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<const Model> model, SchedulerOptions options);
  ~Scheduler();  // shutdown(0)
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job. False when the queue is full or the scheduler is shutting down.
  bool submit(const std::shared_ptr<Job>& job);
  // Stops taking jobs: queued ones get an Error (503), running ones may finish for `grace`, then
  // are ended with an Error; returns when the scheduler's thread has ended.
  void shutdown(std::chrono::milliseconds grace);
  bool accepting() const;

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }
  // Positions a slot's KV cache holds (the context length, unless unbounded()).
  uint32_t context_length() const { return context_length_; }
  // True when every layer has a rolling window: a slot then holds any number of positions.
  bool unbounded() const { return unbounded_; }

 private:
  struct Slot;
  void run();
  void admit(std::unique_lock<std::mutex>& lock);
  void step();
  void finish(Slot& slot, Event last);

  std::shared_ptr<const Model> model_;
  SchedulerOptions options_;
  uint32_t context_length_ = 0;
  bool unbounded_ = false;
  std::vector<std::unique_ptr<Slot>> slots_;
  uint64_t use_counter_ = 0;  // least recently used slot is reused first

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  Clock::time_point cancel_at_ = Clock::time_point::max();
  SchedulerStats stats_;
  std::thread thread_;
};

}  // namespace brise::serve
