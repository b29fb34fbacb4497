// What a Scheduler and a Job hold: shared by the submitting side (scheduler.cpp, job.cpp) and the
// scheduler's thread (scheduler_loop.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "brise/batch.hpp"
#include "brise/scheduler.hpp"
#include "engine/generate/prefix_cache.hpp"

namespace brise {

inline constexpr const char* kShuttingDown = "the scheduler is shutting down";
inline constexpr const char* kCancelled = "the job was cancelled";

inline JobEvent error_event(JobError error, std::string message) {
  JobEvent e;
  e.kind = JobEvent::Kind::Error;
  e.text = std::move(message);
  e.error = error;
  return e;
}

struct Job::State {
  std::vector<int32_t> prompt;
  GenerateOptions options;
  std::shared_ptr<Job> leader;  // submit_group: the job whose prefill this one shares
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<JobEvent> events;
  std::atomic<bool> cancelled{false};
};

struct Scheduler::Slot {
  Session session;
  std::shared_ptr<Job> job;  // null when idle
  size_t fed = 0;            // prompt tokens fed (or kept from the previous job)
  JobUsage usage;
  std::optional<Generation> generation;  // once the prompt is in
  size_t reported = 0;                   // generated tokens already sent in Text events
  uint64_t last_use = 0;
  explicit Slot(Session s) : session(std::move(s)) {}
  bool prefilling() const { return job && !generation; }
};

struct Scheduler::State {
  using Clock = std::chrono::steady_clock;

  std::shared_ptr<const Model> model;
  SchedulerOptions options;
  uint32_t context_length = 0;
  bool unbounded = false;  // every layer has a rolling window: no prompt is too long

  // The scheduler's thread only.
  std::vector<std::unique_ptr<Slot>> slots;
  uint64_t use_counter = 0;  // the least recently used slot is reused first
  Batch batch;
  std::vector<BatchItem> items;  // this step's rows
  std::vector<Slot*> item_slots;
  std::vector<int32_t> next_tokens;  // decode tokens, one per slot
  PrefixCache cache_ram;             // limit 0 when off

  // Shared, under `mutex`.
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::shared_ptr<Job>> queue;
  bool stopping = false;
  Clock::time_point cancel_at = Clock::time_point::max();
  SchedulerStats stats;

  std::thread thread;

  State(std::shared_ptr<const Model> m, const SchedulerOptions& o)
      : model(std::move(m)),
        options(o),
        batch(o.threads),
        cache_ram(o.prefix_reuse ? o.cache_ram_bytes : 0) {}
  bool any_running() const;
  bool any_idle() const;
};

}  // namespace brise
