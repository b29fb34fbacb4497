// Continuous batching: many generations at once over one model, for a server or any program that
// serves several users. Up to `parallel` jobs run at once, each in a slot holding its own Session
// over the one shared Model; every step is one forward pass (brise::Batch) over the next token of
// each decoding job and a chunk of each prompt being prefilled, so N jobs read the weights once
// per step and a long prompt never stalls the others for more than a chunk. Jobs beyond the
// slots wait in a bounded queue. A finished job's slot keeps its KV cache: a later prompt that
// starts with the same tokens (a system prompt, the next turn of a chat) goes to the slot that can
// keep the most of them (Session::reusable_prefix) and skips prefilling those, or copies them from
// a busy slot or a host-RAM cache of snapshots when those hold more (SchedulerOptions).
//
// Batch invariance: a job's tokens and text are exactly those of brise::generate() with the same
// prompt and options on a fresh Session, whatever else runs beside it and whatever its slot held.
//
//   brise::Scheduler scheduler(model, {.parallel = 4});
//   auto job = scheduler.submit(prompt_ids, options);  // brise::SubmitError when refused
//   brise::JobEvent e;
//   while ((e = job->next()).kind == brise::JobEvent::Kind::Text) std::cout << e.text;
//   // e: one Done (stop reason, usage, generated ids) or one Error (a JobError kind)
//
// Thread safety: submit, stats, shutdown and the Job's methods may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "brise/error.hpp"
#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"

namespace brise {

struct SchedulerOptions {
  int parallel = 1;                    // slots: jobs run at once (>= 1)
  size_t queue_limit = 64;             // jobs that may wait beyond the idle slots
  uint32_t prefill_chunk = 64;         // prompt tokens per step while other slots decode (>= 1)
  uint32_t prefill_chunk_alone = 512;  // ... while nothing decodes (>= 1)
  SessionOptions session;              // of every slot (context length, window, kv type, exact)
  int threads = 0;                     // of each forward pass (0: OpenMP's default)
  // Prefix reuse: a job starts from the longest prefix of its prompt whose KV entries a slot
  // (idle, or busy with the rows it has computed) or the host-RAM cache holds, copying them
  // instead of prefilling them; a job whose prompt shares at least a prefill chunk with a prompt
  // being prefilled waits for those rows when they give it more. false: every job prefills its
  // whole prompt (the jobs of a group still share the first one's prefill).
  bool prefix_reuse = true;
  // Host-RAM prefix cache, in bytes (0: none): before a job overwrites what a slot holds, the
  // slot's tokens and KV entries are saved there (brise::KVSnapshot), least recently used out
  // first, never more than this many bytes in all. Only with prefix_reuse.
  uint64_t cache_ram_bytes = 0;
};

// Why a job was refused at submit, or ended without finishing.
enum class JobError {
  QueueFull,        // refused: every slot is busy and queue_limit jobs wait; try again later
  ShuttingDown,     // refused after shutdown(), or ended by it (queued, or running past the grace)
  InvalidRequest,   // refused: an empty prompt, a token outside the vocabulary, invalid options
  ContextExceeded,  // refused: the prompt is longer than a slot's context (full attention)
  Cancelled,        // ended by Job::cancel()
  Internal,         // ended by a failure of the forward pass or the sampler (a numeric fault)
};
// "queue_full", "shutting_down", "invalid_request", "context_exceeded", "cancelled", "internal".
std::string_view job_error_name(JobError error);

// Scheduler::submit's refusal: a brise::Error whose message names the problem, with its kind.
class SubmitError : public Error {
 public:
  SubmitError(JobError kind, const std::string& message) : Error(message), kind_(kind) {}
  JobError kind() const { return kind_; }

 private:
  JobError kind_;
};

struct JobUsage {
  uint32_t prompt_tokens = 0;
  uint32_t completion_tokens = 0;  // generated, the stop token included
  uint32_t cached_tokens = 0;      // prompt tokens whose KV entries were kept or copied, not fed
};

// What a job's consumer receives, in order: Text events, then exactly one Done or one Error.
// A step that generates a token gives at most one Text event: the text that became complete, the
// token (a final stop token excepted: EOS or a stop id), and its log-probabilities.
struct JobEvent {
  enum class Kind { Text, Done, Error };
  Kind kind = Kind::Text;
  std::string
      text;  // Text: a UTF-8-complete piece (empty when the token completed none); Error: why
  std::vector<int32_t> ids;             // Text: the tokens generated since the previous event
  std::vector<TokenLogprobs> logprobs;  // Text, with options.logprobs: those tokens' entries
  StopReason stop_reason = StopReason::MaxTokens;  // Done
  JobUsage usage;                                  // Done
  std::vector<int32_t> generated_ids;   // Done: the tokens generated, a stop token included
  JobError error = JobError::Internal;  // Error
};

// One submitted generation, shared by its consumer and the scheduler's thread.
class Job {
 public:
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // Blocks until the next event. Not to be called after Done or Error (nothing follows them).
  JobEvent next();
  // Waits up to `timeout` for the next event: false when none came.
  bool next(JobEvent& out, std::chrono::milliseconds timeout);
  // The consumer is gone: a running job ends at the scheduler's next step, with an Error of kind
  // Cancelled (unless it had ended already), and its slot is free; a queued job keeps its place
  // until it reaches a slot, and ends there the same way without running.
  void cancel();
  bool cancelled() const;

  const std::vector<int32_t>& prompt() const;
  const GenerateOptions& options() const;

 private:
  friend class Scheduler;
  struct State;
  Job(std::vector<int32_t> prompt, GenerateOptions options, std::shared_ptr<Job> leader);
  void push(JobEvent event);
  std::unique_ptr<State> state_;
};

// Counters, e.g. for a server's metrics.
struct SchedulerStats {
  size_t queued = 0, busy = 0, slots = 0;  // now: jobs waiting, slots running a job, slots
  uint64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;  // of admitted jobs
  uint64_t prefill_tokens = 0, decode_tokens = 0;       // rows fed through forward passes
  double prefill_seconds = 0, decode_seconds = 0;       // forward-pass time, split by rows
  uint64_t passes = 0;                                  // forward passes
  uint64_t cache_ram_bytes = 0, cache_ram_entries = 0;  // now: the host-RAM prefix cache
  // KV cache of every slot: allocated now (after the last pass), and the most it may reach (the
  // amount allocated at start with SessionOptions::reserve_kv_cache).
  uint64_t kv_cache_bytes = 0, kv_cache_max_bytes = 0;
};

class Scheduler {
 public:
  // Builds the slots' sessions and starts the scheduler's thread. brise::Error on invalid options
  // (parallel or a prefill chunk below 1, invalid SessionOptions).
  Scheduler(std::shared_ptr<const Model> model, SchedulerOptions options);
  ~Scheduler();  // shutdown(0)
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a generation of `prompt` (token ids, BOS included) with `options`; its events come
  // from the returned Job. Everything is checked here, once, before anything is queued: a
  // SubmitError says why a job is refused (InvalidRequest: an empty prompt, a token id outside
  // the vocabulary, invalid sampling or stop options; ContextExceeded: a prompt longer than a
  // slot's context, full attention only; ShuttingDown; QueueFull).
  std::shared_ptr<Job> submit(std::vector<int32_t> prompt, GenerateOptions options);
  // Several generations of one prompt (n samples), one job for each options (each its own seed,
  // say): the prompt is prefilled once. The first job runs as submit's would; each other one waits
  // in the queue until the first one's prompt is in, then starts from a copy of its KV entries
  // (Session::copy_prefix) or from an idle slot that holds the prompt, feeding only the prompt's
  // last token. Every job's output is exactly what submit() would give it. Checked and refused as
  // a whole, as submit (QueueFull when the queue has no room for all of them).
  std::vector<std::shared_ptr<Job>> submit_group(std::vector<int32_t> prompt,
                                                 std::vector<GenerateOptions> options);

  // Stops taking jobs: queued ones end with ShuttingDown at once, running ones may finish for
  // `grace` and are then ended with ShuttingDown; returns when the scheduler's thread has ended.
  // Call it from one thread (the destructor calls it too).
  void shutdown(std::chrono::milliseconds grace);

  SchedulerStats stats() const;
  const SchedulerOptions& options() const;
  // Positions a slot's session may hold: SessionOptions::context_length or the model's (when
  // every layer has a sliding window, the length of a prompt is not limited by it).
  uint32_t context_length() const;

 private:
  // The scheduler's thread (engine/generate/scheduler_loop.cpp).
  struct State;
  struct Slot;
  void run();
  void admit();
  void end_abandoned(bool shutting_down);
  void step();
  void finish(Slot& slot, JobEvent last);
  void report(Slot& slot, std::string text);
  std::unique_ptr<State> state_;
};

}  // namespace brise
