// The scheduler's thread: admits queued jobs into idle slots, ends abandoned ones, and runs one
// batched forward pass per step over every running job, then advances each job's generation.
#include <algorithm>

#include "brise/scheduler.hpp"
#include "engine/generate/scheduler_state.hpp"

namespace brise {

bool Scheduler::State::any_running() const {
  return std::any_of(slots.begin(), slots.end(), [](auto& s) { return s->job != nullptr; });
}
bool Scheduler::State::any_idle() const {
  return std::any_of(slots.begin(), slots.end(), [](auto& s) { return !s->job; });
}

// Puts queued jobs into idle slots: the slot that can keep the longest prefix of the prompt,
// else the least recently used. Under the mutex.
void Scheduler::admit() {
  State& s = *state_;
  while (!s.queue.empty()) {
    Slot* best = nullptr;
    uint32_t best_kept = 0;
    const auto& prompt = s.queue.front()->prompt();
    for (auto& slot : s.slots) {
      if (slot->job) continue;
      const uint32_t kept = slot->session.reusable_prefix(prompt);
      if (!best || kept > best_kept || (kept == best_kept && slot->last_use < best->last_use)) {
        best = slot.get();
        best_kept = kept;
      }
    }
    if (!best) return;
    best->job = std::move(s.queue.front());
    s.queue.pop_front();
    best->generation.reset();
    best->last_use = ++s.use_counter;
    best->session.keep_prefix(best_kept);  // rewinds (or resets)
    best->fed = best_kept;
    const size_t prompt_tokens = best->job->prompt().size();
    best->usage = {static_cast<uint32_t>(prompt_tokens), 0, best_kept};
    ++s.stats.busy;
    s.stats.prompt_tokens += prompt_tokens;
    s.stats.cached_tokens += best_kept;
  }
}

// The slot is free before the consumer hears that its job ended: a consumer that submits its
// next job at once finds the room.
void Scheduler::finish(Slot& slot, JobEvent last) {
  const std::shared_ptr<Job> job = std::move(slot.job);  // leaves the slot without a job
  slot.generation.reset();
  {
    std::lock_guard lock(state_->mutex);
    --state_->stats.busy;
  }
  job->push(std::move(last));
}

// Jobs whose consumer left (or every one, past the shutdown grace) end here.
void Scheduler::end_abandoned(bool shutting_down) {
  for (auto& slot : state_->slots) {
    if (!slot->job) continue;
    if (shutting_down)
      finish(*slot, error_event(JobError::ShuttingDown, kShuttingDown));
    else if (slot->job->cancelled())
      finish(*slot, error_event(JobError::Cancelled, kCancelled));
  }
}

void Scheduler::run() {
  State& s = *state_;
  for (;;) {
    bool past_grace = false;
    {
      std::unique_lock lock(s.mutex);
      s.wake.wait(lock, [&] {
        return (!s.queue.empty() && s.any_idle()) || s.any_running() || s.stopping;
      });
      admit();
      if (s.stopping && !s.any_running()) return;
      past_grace = s.stopping && State::Clock::now() >= s.cancel_at;
    }
    end_abandoned(past_grace);
    step();
  }
}

// One forward pass: one token of each decoding slot, then prompt chunks from a shared budget;
// then each job whose prompt is in samples its next token.
void Scheduler::step() {
  State& s = *state_;
  s.items.clear();
  s.item_slots.clear();
  for (size_t i = 0; i < s.slots.size(); ++i) {
    Slot& slot = *s.slots[i];
    if (!slot.job || !slot.generation) continue;
    s.next_tokens[i] = slot.generation->last_token();
    s.items.push_back({&slot.session, {&s.next_tokens[i], 1}});
    s.item_slots.push_back(&slot);
  }
  const size_t decode_rows = s.items.size();
  size_t budget = decode_rows > 0 ? s.options.prefill_chunk : s.options.prefill_chunk_alone;
  for (auto& sp : s.slots) {
    Slot& slot = *sp;
    if (!slot.prefilling() || budget == 0) continue;
    const auto& prompt = slot.job->prompt();
    const size_t n = std::min(budget, prompt.size() - slot.fed);
    s.items.push_back({&slot.session, std::span(prompt).subspan(slot.fed, n)});
    s.item_slots.push_back(&slot);
    budget -= n;
  }
  if (s.items.empty()) return;

  const auto start = State::Clock::now();
  try {
    s.batch.forward(s.items);
  } catch (const std::exception& e) {
    for (Slot* slot : s.item_slots) finish(*slot, error_event(JobError::Internal, e.what()));
    return;
  }
  const double seconds = std::chrono::duration<double>(State::Clock::now() - start).count();
  size_t rows = 0;
  for (const auto& it : s.items) rows += it.tokens.size();
  {
    std::lock_guard lock(s.mutex);
    s.stats.passes++;
    s.stats.decode_tokens += decode_rows;
    s.stats.prefill_tokens += rows - decode_rows;
    s.stats.decode_seconds +=
        seconds * static_cast<double>(decode_rows) / static_cast<double>(rows);
    s.stats.prefill_seconds +=
        seconds * static_cast<double>(rows - decode_rows) / static_cast<double>(rows);
  }

  for (size_t k = 0; k < s.items.size(); ++k) {
    Slot& slot = *s.item_slots[k];
    Job& job = *slot.job;
    const auto on_text = [&job](std::string_view piece) {
      JobEvent e;
      e.text = piece;
      job.push(std::move(e));
      return !job.cancelled();
    };
    bool more = false;
    try {
      if (!slot.generation) {
        slot.fed += s.items[k].tokens.size();
        if (slot.fed < job.prompt().size()) continue;
        // The options were checked at submit: nothing here can refuse them.
        slot.generation.emplace(slot.session, job.options());
      }
      more = slot.generation->advance(slot.session.logits(), on_text);
    } catch (const std::exception& e) {
      finish(slot, error_event(JobError::Internal, e.what()));
      continue;
    }
    if (more) continue;
    slot.usage.completion_tokens = static_cast<uint32_t>(slot.generation->generated_ids().size());
    {
      std::lock_guard lock(s.mutex);
      s.stats.completion_tokens += slot.usage.completion_tokens;
    }
    const StopReason reason = slot.generation->stop_reason();
    if (reason == StopReason::Callback) {  // on_text saw the job cancelled
      finish(slot, error_event(JobError::Cancelled, kCancelled));
      continue;
    }
    JobEvent done;
    done.kind = JobEvent::Kind::Done;
    done.stop_reason = reason;
    done.usage = slot.usage;
    done.generated_ids = slot.generation->generated_ids();
    finish(slot, std::move(done));
  }
}

}  // namespace brise
