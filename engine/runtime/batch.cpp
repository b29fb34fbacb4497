#include "brise/batch.hpp"

#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "brise/error.hpp"
#include "engine/runtime/forward_pass.hpp"
#include "engine/runtime/session_state.hpp"

namespace brise {

struct Batch::State {
  int threads = 1;
  PassScratch scratch;
  std::vector<SequenceRows> sequences;
  std::vector<float> logits;  // [item][vocab]
};

Batch::Batch(int threads) : state_(std::make_unique<State>()) {
  state_->threads = threads > 0 ? threads : omp_get_max_threads();
}
Batch::~Batch() = default;
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;

void Batch::forward(std::span<const BatchItem> items) {
  if (items.empty()) return;
  State& b = *state_;
  const auto item_error = [](size_t i, const std::string& what) {
    return Error("batch item " + std::to_string(i) + ": " + what);
  };
  Session::State* first = nullptr;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].session) throw item_error(i, "no session");
    Session::State& s = *items[i].session->state_;
    if (!first) first = &s;
    if (s.model != first->model) throw item_error(i, "the sessions of a batch must share a model");
    if (s.options.exact != first->options.exact || s.options.kv_type != first->options.kv_type)
      throw item_error(i, "the sessions of a batch must agree on exact and kv_type");
    for (size_t j = 0; j < i; ++j)
      if (items[j].session == items[i].session) throw item_error(i, "a session appears twice");
    try {
      s.check_tokens(items[i].tokens);
    } catch (const Error& e) {
      throw item_error(i, e.what());
    }
  }

  const size_t vocab = first->model->config().vocab_size;
  b.sequences.clear();
  for (const BatchItem& item : items)
    b.sequences.push_back(item.session->state_->rows(item.tokens));
  b.logits.resize(items.size() * vocab);
  try {
    forward_pass(*first->model, first->pass_options(b.threads), b.sequences, LogitRows::Last,
                 b.scratch, b.logits.data());
  } catch (...) {
    for (const BatchItem& item : items) item.session->reset();  // caches may hold part of it
    throw;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    Session::State& s = *items[i].session->state_;
    s.tokens.insert(s.tokens.end(), items[i].tokens.begin(), items[i].tokens.end());
    s.logits.assign(b.logits.begin() + i * vocab, b.logits.begin() + (i + 1) * vocab);
  }
}

}  // namespace brise
