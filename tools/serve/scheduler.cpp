#include "scheduler.hpp"

#include <algorithm>
#include <optional>

#include "brise/batch.hpp"
#include "brise/chat.hpp"
#include "brise/error.hpp"

namespace brise::serve {

bool Job::next(Event& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!ready_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  out = std::move(events_.front());
  events_.pop_front();
  return true;
}

void Job::push(Event e) {
  {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(e));
  }
  ready_.notify_all();
}

struct Scheduler::Slot {
  Session session;
  std::shared_ptr<Job> job;  // null when idle
  size_t fed = 0;            // prompt tokens fed (or reused)
  Usage usage;
  std::optional<Generation> generation;  // once the prompt is in
  uint64_t last_use = 0;
  explicit Slot(Session s) : session(std::move(s)) {}
  bool prefilling() const { return job && !generation; }
};

Scheduler::Scheduler(std::shared_ptr<const Model> model, SchedulerOptions options)
    : model_(std::move(model)), options_(options) {
  if (options_.parallel < 1) throw Error("--parallel must be at least 1");
  for (int i = 0; i < options_.parallel; ++i)
    slots_.push_back(std::make_unique<Slot>(Session(model_, options_.session)));
  unbounded_ = !slots_.front()->session.position_limit().has_value();
  context_length_ = options_.session.context_length.value_or(model_->config().context_length);
  stats_.slots = slots_.size();
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  shutdown(std::chrono::milliseconds(0));
}

bool Scheduler::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard lock(mutex_);
    // Room: a slot that is idle (and not yet promised to a queued job), or a place in the queue.
    const size_t idle = slots_.size() - stats_.busy;
    if (stopping_ || queue_.size() >= options_.queue_limit + idle) return false;
    queue_.push_back(job);
  }
  wake_.notify_all();
  return true;
}

bool Scheduler::accepting() const {
  std::lock_guard lock(mutex_);
  return !stopping_;
}

void Scheduler::shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      cancel_at_ = Clock::now() + grace;
      for (auto& job : queue_) job->push(Event::error(503, "the server is shutting down"));
      queue_.clear();
    }
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  SchedulerStats s = stats_;
  s.queued = queue_.size();
  return s;
}

// Puts queued jobs into idle slots: the slot whose cache shares the longest prefix with the
// prompt, else the least recently used.
void Scheduler::admit(std::unique_lock<std::mutex>&) {
  while (!queue_.empty()) {
    Slot* best = nullptr;
    size_t best_common = 0;
    const auto& prompt = queue_.front()->prompt;
    for (auto& s : slots_) {
      if (s->job) continue;
      const auto& held = s->session.tokens();
      const size_t common =
          std::mismatch(held.begin(), held.end(), prompt.begin(), prompt.end()).first -
          held.begin();
      if (!best || common > best_common ||
          (common == best_common && s->last_use < best->last_use)) {
        best = s.get();
        best_common = common;
      }
    }
    if (!best) return;
    best->job = std::move(queue_.front());
    queue_.pop_front();
    best->generation.reset();
    best->last_use = ++use_counter_;
    const auto& p = best->job->prompt;
    const size_t to_feed = reuse_session_prefix(best->session, p);  // rewinds (or resets)
    best->fed = p.size() - to_feed;
    best->usage = {static_cast<uint32_t>(p.size()), 0, static_cast<uint32_t>(best->fed)};
    ++stats_.busy;
    stats_.prompt_tokens += p.size();
    stats_.cached_tokens += best->fed;
  }
}

// The slot is free before the client hears that its request ended: a client that sends its next
// request at once finds the room.
void Scheduler::finish(Slot& slot, Event last) {
  const std::shared_ptr<Job> job = std::move(slot.job);  // leaves the slot without a job
  slot.generation.reset();
  {
    std::lock_guard lock(mutex_);
    --stats_.busy;
  }
  job->push(std::move(last));
}

void Scheduler::run() {
  Batch batch(options_.threads);
  std::vector<BatchItem> items;
  std::vector<Slot*> item_slots;
  std::vector<int32_t> next_tokens(slots_.size());
  for (;;) {
    bool cancel_running = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] {
        const bool queued = !queue_.empty() && std::any_of(slots_.begin(), slots_.end(),
                                                           [](auto& s) { return !s->job; });
        const bool running =
            std::any_of(slots_.begin(), slots_.end(), [](auto& s) { return s->job != nullptr; });
        return queued || running || stopping_;
      });
      admit(lock);
      const bool running =
          std::any_of(slots_.begin(), slots_.end(), [](auto& s) { return s->job != nullptr; });
      if (stopping_ && !running) return;
      cancel_running = stopping_ && Clock::now() >= cancel_at_;
    }

    // Requests whose client left (or every one, past the shutdown grace) end here.
    for (auto& s : slots_) {
      if (!s->job) continue;
      if (cancel_running)
        finish(*s, Event::error(503, "the server is shutting down"));
      else if (s->job->cancelled())
        finish(*s, Event::error(499, "cancelled"));
    }

    // This step's rows: one token of each decoding slot, then prompt chunks from a shared budget.
    items.clear();
    item_slots.clear();
    bool decoding = false;
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& s = *slots_[i];
      if (!s.job || !s.generation) continue;
      next_tokens[i] = s.generation->last_token();
      items.push_back({&s.session, {&next_tokens[i], 1}});
      item_slots.push_back(&s);
      decoding = true;
    }
    const size_t decode_rows = items.size();
    size_t budget = decoding ? options_.prefill_chunk : options_.prefill_chunk_alone;
    for (auto& sp : slots_) {
      Slot& s = *sp;
      if (!s.prefilling() || budget == 0) continue;
      const size_t n = std::min(budget, s.job->prompt.size() - s.fed);
      items.push_back({&s.session, std::span(s.job->prompt).subspan(s.fed, n)});
      item_slots.push_back(&s);
      budget -= n;
    }
    if (items.empty()) continue;

    const auto start = Clock::now();
    try {
      batch.forward(items);
    } catch (const std::exception& e) {
      for (Slot* s : item_slots) finish(*s, Event::error(500, e.what()));
      continue;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    size_t rows = 0;
    for (const auto& it : items) rows += it.tokens.size();
    {
      std::lock_guard lock(mutex_);
      stats_.passes++;
      stats_.decode_tokens += decode_rows;
      stats_.prefill_tokens += rows - decode_rows;
      stats_.decode_seconds +=
          seconds * static_cast<double>(decode_rows) / static_cast<double>(rows);
      stats_.prefill_seconds +=
          seconds * static_cast<double>(rows - decode_rows) / static_cast<double>(rows);
    }

    for (size_t k = 0; k < items.size(); ++k) {
      Slot& s = *item_slots[k];
      Job& job = *s.job;
      if (!s.generation) {
        s.fed += items[k].tokens.size();
        if (s.fed < job.prompt.size()) continue;
        try {
          s.generation.emplace(s.session, job.options);
        } catch (const std::exception& e) {
          finish(s, Event::error(400, e.what()));
          continue;
        }
      }
      const auto on_text = [&job](std::string_view piece) {
        job.push(Event::piece(piece));
        return !job.cancelled();
      };
      bool more = false;
      try {
        more = s.generation->advance(s.session.logits(), on_text);
      } catch (const std::exception& e) {
        finish(s, Event::error(500, e.what()));
        continue;
      }
      if (more) continue;
      s.usage.completion_tokens = static_cast<uint32_t>(s.generation->generated_ids().size());
      {
        std::lock_guard lock(mutex_);
        stats_.completion_tokens += s.usage.completion_tokens;
      }
      const StopReason r = s.generation->stop_reason();
      finish(s, Event::done(r == StopReason::MaxTokens || r == StopReason::ContextFull, s.usage));
    }
  }
}

}  // namespace brise::serve
