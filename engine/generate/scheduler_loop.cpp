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

namespace {

// Where a job's first prompt tokens come from, when not from its own slot.
struct PrefixSource {
  uint32_t tokens = 0;
  const Session* session = nullptr;      // another slot, idle or busy
  const KVSnapshot* snapshot = nullptr;  // the host-RAM cache
};

uint32_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return static_cast<uint32_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first -
                               a.begin());
}

}  // namespace

// Puts queued jobs into idle slots: the slot that can keep the longest prefix of the prompt,
// else the least recently used; when another slot (busy ones hold the rows they have computed)
// or the RAM cache holds a longer prefix, the least recently used idle slot copies it (its own
// entries go to the RAM cache first). A job whose prompt shares at least a prefill chunk with a
// prompt that a slot is prefilling stays queued until those rows are in, if that gives it more
// (the ones behind it may go first); so does a job of a group (submit_group) while its first job
// prefills. Under the mutex.
void Scheduler::admit() {
  State& s = *state_;
  const bool reuse = s.options.prefix_reuse;
  for (auto it = s.queue.begin(); it != s.queue.end();) {
    const Job& job = **it;
    const auto& prompt = job.prompt();
    Slot* leader = nullptr;  // the running slot of the job's group leader
    if (const auto& l = job.state_->leader)
      for (auto& slot : s.slots)
        if (slot->job == l) leader = slot.get();
    if (leader && leader->prefilling()) {  // its prompt will be there to copy
      ++it;
      continue;
    }

    Slot* best = nullptr;  // the idle slot that keeps the most
    Slot* oldest = nullptr;
    uint32_t best_kept = 0;
    for (auto& slot : s.slots) {
      if (slot->job) continue;
      const uint32_t kept = reuse ? slot->session.reusable_prefix(prompt) : 0;
      if (!best || kept > best_kept || (kept == best_kept && slot->last_use < best->last_use)) {
        best = slot.get();
        best_kept = kept;
      }
      if (!oldest || slot->last_use < oldest->last_use) oldest = slot.get();
    }
    if (!best) return;

    PrefixSource source;
    for (auto& slot : s.slots) {
      if (!slot->job || (!reuse && slot.get() != leader)) continue;
      if (const uint32_t n = slot->session.reusable_prefix(prompt); n > source.tokens)
        source = {n, &slot->session, nullptr};
    }
    if (reuse && s.cache_ram.limit() > 0)
      if (const auto m = s.cache_ram.find(prompt); m.tokens > source.tokens)
        source = {m.tokens, nullptr, m.snapshot};
    if (reuse) {
      uint32_t pending = 0;  // prompt rows that a prefilling slot is about to compute
      for (auto& slot : s.slots)
        if (slot->prefilling()) {
          const uint32_t c = std::min(common_prefix(slot->job->prompt(), prompt),
                                      static_cast<uint32_t>(prompt.size() - 1));
          if (c > slot->fed) pending = std::max(pending, c);
        }
      if (pending >= s.options.prefill_chunk && pending > std::max(best_kept, source.tokens)) {
        ++it;
        continue;
      }
    }

    const bool copy = source.tokens > best_kept;
    Slot& slot = copy ? *oldest : *best;
    const uint32_t kept = copy ? source.tokens : best_kept;
    std::optional<KVSnapshot> overwritten;
    if (s.cache_ram.limit() > 0 && slot.session.position() > (copy ? 0 : kept))
      overwritten = slot.session.snapshot();
    if (source.session && copy)
      slot.session.copy_prefix(*source.session, kept);
    else if (source.snapshot && copy)
      slot.session.copy_prefix(*source.snapshot, kept);
    else
      slot.session.keep_prefix(kept);  // rewinds (or resets)
    if (overwritten) s.cache_ram.store(std::move(*overwritten));

    slot.job = std::move(*it);
    it = s.queue.erase(it);
    slot.generation.reset();
    slot.reported = 0;
    slot.last_use = ++s.use_counter;
    slot.fed = kept;
    const size_t prompt_tokens = prompt.size();
    slot.usage = {static_cast<uint32_t>(prompt_tokens), 0, kept};
    ++s.stats.busy;
    s.stats.prompt_tokens += prompt_tokens;
    s.stats.cached_tokens += kept;
    s.stats.cache_ram_bytes = s.cache_ram.bytes();
    s.stats.cache_ram_entries = s.cache_ram.size();
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

// Sends the text of this step and the tokens generated since the last event (a final stop token
// excepted), with their log-probabilities.
void Scheduler::report(Slot& slot, std::string text) {
  const Generation& g = *slot.generation;
  size_t end = g.generated_ids().size();
  const StopReason reason = g.stop_reason();
  if (g.done() && (reason == StopReason::Eos || reason == StopReason::StopId)) --end;
  if (text.empty() && end <= slot.reported) return;
  JobEvent e;
  e.text = std::move(text);
  if (end > slot.reported) {
    const auto& ids = g.generated_ids();
    e.ids.assign(ids.begin() + static_cast<ptrdiff_t>(slot.reported),
                 ids.begin() + static_cast<ptrdiff_t>(end));
    const auto& lp = g.logprobs();  // one entry per token, the stop token excepted
    if (!lp.empty())
      e.logprobs.assign(lp.begin() + static_cast<ptrdiff_t>(slot.reported),
                        lp.begin() + static_cast<ptrdiff_t>(std::min(end, lp.size())));
    slot.reported = end;
  }
  slot.job->push(std::move(e));
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
  uint64_t kv_bytes = 0;
  for (const auto& slot : s.slots) kv_bytes += slot->session.kv_cache_bytes();
  {
    std::lock_guard lock(s.mutex);
    s.stats.kv_cache_bytes = kv_bytes;
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
    std::string text;  // what this step completes, sent as one event with its token
    const auto on_text = [&](std::string_view piece) {
      text += piece;
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
    report(slot, std::move(text));
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
