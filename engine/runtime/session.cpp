#include "brise/session.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

#include "brise/error.hpp"
#include "engine/gguf/tensor_encoding.hpp"
#include "engine/runtime/session_state.hpp"
#include "kernels/attention.hpp"

namespace brise {
namespace {

constexpr uint32_t kMaxContext = 1u << 24;

// Each layer's window: the model's, or as SessionOptions::sliding_window overrides it
// (ModelConfig::override_sliding_window).
std::vector<std::optional<uint32_t>> effective_windows(const Model& m, const SessionOptions& o) {
  ModelConfig c = m.config();
  if (o.sliding_window) {
    if (*o.sliding_window && **o.sliding_window == 0)
      throw Error("sliding window must be at least 1");
    c.override_sliding_window(*o.sliding_window);
  }
  return c.layer_windows();
}

uint32_t effective_context(const Model& m, const SessionOptions& o) {
  const uint32_t ctx = o.context_length.value_or(m.config().context_length);
  if (ctx == 0 || ctx > kMaxContext)
    throw Error("context length must be between 1 and " + std::to_string(kMaxContext) + ", got " +
                std::to_string(ctx));
  return ctx;
}

}  // namespace

Session::State::State(std::shared_ptr<const Model> m, SessionOptions o,
                      std::vector<std::optional<uint32_t>> layer_windows,
                      std::vector<uint32_t> slots)
    : model(std::move(m)),
      options(o),
      windows(std::move(layer_windows)),
      cache(std::move(slots), model->config().n_kv_heads, model->config().head_dim, o.kv_type) {}

Session::Session(std::shared_ptr<const Model> model, SessionOptions options) {
  if (!model) throw Error("Session needs a model");
  if (options.prefill_chunk == 0) throw Error("prefill chunk size must be at least 1");
  if (const char* why = nullptr;
      !kernels::kv_block_supports(type_traits(options.kv_type), model->config().head_dim, &why))
    throw Error("KV cache type " + std::string(tensor_type_name(options.kv_type)) + ": " + why);
  auto windows = effective_windows(*model, options);
  const uint32_t context = effective_context(*model, options);
  // A rolling cache needs exactly W slots (fewer when the context bounds the session); a
  // full-attention layer one per position of context.
  std::vector<uint32_t> slots = kv_cache_slots(windows, context);
  for (uint32_t& s : slots) s = std::min(s, kMaxContext);
  const bool bounded = has_full_attention_layer(windows);
  state_ = std::make_unique<State>(std::move(model), options, std::move(windows), std::move(slots));
  state_->position_limit = bounded ? context : std::numeric_limits<uint32_t>::max();
  state_->threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  if (options.reserve_kv_cache) {
    try {
      state_->cache.reserve_all();
    } catch (const std::bad_alloc&) {
      throw Error(
          "cannot allocate the KV cache: " + std::to_string(state_->cache.full_bytes() >> 20) +
          " MiB (a smaller context length, or a q8_0/f16 KV cache, needs less)");
    }
  }
}

SequenceRows Session::State::rows(std::span<const int32_t> ids) {
  const uint64_t pos0 = tokens.size();
  cache.reserve(pos0 + ids.size());
  return {&cache, windows, ids, pos0, 0};
}

void Session::State::forward(std::span<const int32_t> ids, LogitRows which) {
  SequenceRows seq = rows(ids);
  float* out = which == LogitRows::All ? all_logits.data() : logits.data();
  forward_pass(*model, pass_options(threads), {&seq, 1}, which, scratch, out);
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::State::check_tokens(std::span<const int32_t> ids) const {
  if (ids.empty()) throw Error("no tokens to process (an empty prompt needs at least BOS)");
  const uint32_t vocab = model->config().vocab_size;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || static_cast<uint32_t>(ids[i]) >= vocab)
      throw Error("token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                  " is outside the vocabulary (0.." + std::to_string(vocab - 1) + ")");
  if (tokens.size() + ids.size() > position_limit)
    throw Error("the prompt (" + std::to_string(ids.size()) + " tokens at position " +
                std::to_string(tokens.size()) + ") exceeds the context length of " +
                std::to_string(position_limit) + " tokens");
}

std::span<const float> Session::prefill(std::span<const int32_t> ids) {
  State& s = *state_;
  s.check_tokens(ids);
  s.logits.resize(s.model->config().vocab_size);
  const size_t chunk = s.options.prefill_chunk;
  try {
    for (size_t i = 0; i < ids.size(); i += chunk) {
      const auto part = ids.subspan(i, std::min(chunk, ids.size() - i));
      s.forward(part, LogitRows::Last);
      s.tokens.insert(s.tokens.end(), part.begin(), part.end());
    }
  } catch (...) {
    reset();  // the cache may hold part of a failed chunk
    throw;
  }
  return s.logits;
}

void Session::prefill_all_logits(std::span<const int32_t> ids,
                                 const std::function<void(size_t, std::span<const float>)>& row) {
  State& s = *state_;
  s.check_tokens(ids);
  const size_t vocab = s.model->config().vocab_size;
  const size_t chunk = s.options.prefill_chunk;
  s.logits.resize(vocab);
  try {
    for (size_t i = 0; i < ids.size(); i += chunk) {
      const auto part = ids.subspan(i, std::min(chunk, ids.size() - i));
      s.all_logits.resize(part.size() * vocab);
      s.forward(part, LogitRows::All);
      s.tokens.insert(s.tokens.end(), part.begin(), part.end());
      for (size_t t = 0; t < part.size(); ++t) row(i + t, {&s.all_logits[t * vocab], vocab});
      std::copy_n(&s.all_logits[(part.size() - 1) * vocab], vocab, s.logits.begin());
    }
  } catch (...) {
    reset();
    throw;
  }
}

std::span<const float> Session::decode(int32_t token) {
  return prefill({&token, 1});
}

std::span<const float> Session::logits() const {
  return state_->tokens.empty() ? std::span<const float>() : std::span<const float>(state_->logits);
}

uint32_t Session::position() const {
  return static_cast<uint32_t>(state_->tokens.size());
}
const std::vector<int32_t>& Session::tokens() const {
  return state_->tokens;
}

void Session::reset() {
  state_->tokens.clear();
  state_->logits.clear();
}

std::optional<uint32_t> layer_lacking_keys(const KVCache& cache, const LayerWindows& windows,
                                           uint64_t held, uint64_t position) {
  if (position == held) return std::nullopt;
  // Layer by layer: a ring holds positions [held - slots, held); the next query at `position`
  // needs keys from position - W + 1 on (from 0 on a full-attention layer, whose ring never
  // wraps).
  for (uint32_t l = 0; l < cache.n_layers(); ++l) {
    const auto& w = windows[l];
    const uint64_t oldest_needed = w && position + 1 > *w ? position + 1 - *w : 0;
    if (oldest_needed < cache.oldest_held(l, held)) return l;
  }
  return std::nullopt;
}

uint32_t reusable_prefix_of(const KVCache& cache, const LayerWindows& windows,
                            const std::vector<int32_t>& held, std::span<const int32_t> prompt) {
  if (prompt.empty()) return 0;
  const auto common_end =
      std::mismatch(held.begin(), held.end(), prompt.begin(), prompt.end()).first;
  const size_t keep = std::min(static_cast<size_t>(common_end - held.begin()), prompt.size() - 1);
  return layer_lacking_keys(cache, windows, held.size(), keep) ? 0 : static_cast<uint32_t>(keep);
}

void Session::rewind(uint32_t position) {
  State& s = *state_;
  const uint64_t now = s.tokens.size();
  if (position > now)
    throw Error("cannot rewind to position " + std::to_string(position) + ": only " +
                std::to_string(now) + " tokens were fed");
  if (position == now) return;
  if (const auto layer = s.layer_unable_to_rewind(position))
    throw Error("cannot rewind a sliding-window session by " + std::to_string(now - position) +
                " tokens: the rolling cache of layer " + std::to_string(*layer) +
                " no longer holds the keys; reset and prefill again");
  s.tokens.resize(position);
  s.logits.clear();
}

uint32_t Session::reusable_prefix(std::span<const int32_t> prompt) const {
  return reusable_prefix_of(state_->cache, state_->windows, state_->tokens, prompt);
}

void Session::keep_prefix(uint32_t count) {
  if (count == 0)
    reset();  // always possible, where a rolling cache may refuse rewind(0)
  else
    rewind(count);
}

void Session::State::take_prefix(const std::shared_ptr<const Model>& from_model,
                                 const LayerWindows& held_windows, const KVCache& from,
                                 const std::vector<int32_t>& held, uint32_t count) {
  if (model != from_model) throw Error("copy_prefix: the sessions run different models");
  if (windows != held_windows || !cache.same_layout(from))
    throw Error("copy_prefix: the sessions' KV caches differ (windows, context or type)");
  if (count > held.size())
    throw Error("copy_prefix: " + std::to_string(count) + " tokens asked, the session holds " +
                std::to_string(held.size()));
  if (const auto layer = layer_lacking_keys(from, held_windows, held.size(), count))
    throw Error("copy_prefix: the rolling cache of layer " + std::to_string(*layer) +
                " no longer holds the keys of position " + std::to_string(count));
  tokens.clear();
  logits.clear();
  cache.copy_positions(from, count);
  tokens.assign(held.begin(), held.begin() + count);
}

void Session::copy_prefix(const Session& from, uint32_t count) {
  if (&from == this) return keep_prefix(count);
  const State& f = *from.state_;
  state_->take_prefix(f.model, f.windows, f.cache, f.tokens, count);
}

void Session::copy_prefix(const KVSnapshot& from, uint32_t count) {
  const KVSnapshot::State& f = *from.state_;
  state_->take_prefix(f.model, f.windows, f.cache, f.tokens, count);
}

KVSnapshot Session::snapshot() const {
  const State& s = *state_;
  auto snap = std::make_unique<KVSnapshot::State>(
      KVSnapshot::State{s.model, s.windows, s.cache.empty_like(), s.tokens});
  // A fresh cache reserves exactly the blocks the positions need (kv_cache.cpp): its rings are
  // no larger than the positions held.
  snap->cache.copy_positions(s.cache, s.tokens.size());
  return KVSnapshot(std::move(snap));
}

KVSnapshot::KVSnapshot(std::unique_ptr<State> state) : state_(std::move(state)) {}
KVSnapshot::~KVSnapshot() = default;
KVSnapshot::KVSnapshot(KVSnapshot&&) noexcept = default;
KVSnapshot& KVSnapshot::operator=(KVSnapshot&&) noexcept = default;

const std::vector<int32_t>& KVSnapshot::tokens() const {
  return state_->tokens;
}
uint32_t KVSnapshot::reusable_prefix(std::span<const int32_t> prompt) const {
  return reusable_prefix_of(state_->cache, state_->windows, state_->tokens, prompt);
}
bool KVSnapshot::can_give(uint32_t count) const {
  return count <= state_->tokens.size() &&
         !layer_lacking_keys(state_->cache, state_->windows, state_->tokens.size(), count);
}
uint64_t KVSnapshot::bytes() const {
  const State& s = *state_;
  // Each layer's ring is one allocation, rounded up to 64 bytes (BlockBuffer).
  return s.cache.allocated_bytes() + 64 * uint64_t{s.cache.n_layers()} +
         s.tokens.capacity() * sizeof(int32_t) +
         s.windows.capacity() * sizeof(std::optional<uint32_t>) + sizeof(State);
}

std::optional<uint32_t> Session::sliding_window() const {
  for (const auto& w : state_->windows)
    if (w) return w;
  return std::nullopt;
}
const std::vector<std::optional<uint32_t>>& Session::layer_windows() const {
  return state_->windows;
}
std::optional<uint32_t> Session::position_limit() const {
  if (!has_full_attention_layer(state_->windows)) return std::nullopt;
  return static_cast<uint32_t>(state_->position_limit);
}
uint32_t Session::kv_capacity() const {
  return state_->cache.largest_max_slots();
}
uint64_t Session::kv_cache_bytes() const {
  return state_->cache.allocated_bytes();
}
uint64_t Session::kv_cache_max_bytes() const {
  return state_->cache.full_bytes();
}
const Model& Session::model() const {
  return *state_->model;
}
const SessionOptions& Session::options() const {
  return state_->options;
}

}  // namespace brise
