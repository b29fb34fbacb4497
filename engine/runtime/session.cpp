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

std::optional<uint32_t> Session::State::layer_unable_to_rewind(uint64_t position) const {
  const uint64_t now = tokens.size();
  if (position == now) return std::nullopt;
  // Layer by layer: a ring holds positions [now - slots, now); the next query at `position`
  // needs keys from position - W + 1 on (from 0 on a full-attention layer, whose ring never
  // wraps).
  for (uint32_t l = 0; l < cache.n_layers(); ++l) {
    const uint64_t slots = cache.max_slots(l);
    const auto& w = windows[l];
    const uint64_t oldest_kept = now > slots ? now - slots : 0;
    const uint64_t oldest_needed = w && position + 1 > *w ? position + 1 - *w : 0;
    if (oldest_needed < oldest_kept) return l;
  }
  return std::nullopt;
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
  if (prompt.empty()) return 0;
  const auto& fed = state_->tokens;
  const auto common_end = std::mismatch(fed.begin(), fed.end(), prompt.begin(), prompt.end()).first;
  const size_t keep = std::min(static_cast<size_t>(common_end - fed.begin()), prompt.size() - 1);
  return state_->can_rewind(keep) ? static_cast<uint32_t>(keep) : 0;
}

void Session::keep_prefix(uint32_t count) {
  if (count == 0)
    reset();  // always possible, where a rolling cache may refuse rewind(0)
  else
    rewind(count);
}

void Session::copy_prefix(const Session& from, uint32_t count) {
  if (&from == this) return keep_prefix(count);
  State& s = *state_;
  const State& f = *from.state_;
  if (s.model != f.model) throw Error("copy_prefix: the sessions run different models");
  bool same_layout = s.windows == f.windows && s.options.kv_type == f.options.kv_type &&
                     s.cache.n_layers() == f.cache.n_layers();
  for (uint32_t l = 0; same_layout && l < s.cache.n_layers(); ++l)
    same_layout = s.cache.max_slots(l) == f.cache.max_slots(l);
  if (!same_layout)
    throw Error("copy_prefix: the sessions' KV caches differ (windows, context or type)");
  if (count > f.tokens.size())
    throw Error("copy_prefix: " + std::to_string(count) + " tokens asked, the session holds " +
                std::to_string(f.tokens.size()));
  if (const auto layer = f.layer_unable_to_rewind(count))
    throw Error("copy_prefix: the rolling cache of layer " + std::to_string(*layer) +
                " no longer holds the keys of position " + std::to_string(count));
  reset();
  s.cache.reserve(count);
  for (uint32_t l = 0; l < s.cache.n_layers(); ++l) {
    // A ring holds the last ring_slots positions, in whole blocks: those are all a later query
    // can read. Copying the ring blocks of positions [first, count) whole gives the same bytes
    // as the other session's ring (slots past `count` are never read before they are written).
    const uint64_t ring = s.cache.ring_slots(l);
    const uint64_t first = count > ring ? count - ring : 0;
    for (uint64_t b = first / kernels::kKVBlock; b * kernels::kKVBlock < count; ++b)
      for (uint32_t h = 0; h < s.cache.n_kv_heads(); ++h)
        std::memcpy(s.cache.block(l, b, h), f.cache.block(l, b, h), s.cache.block_bytes());
  }
  s.tokens.assign(f.tokens.begin(), f.tokens.begin() + count);
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
