// A session: one sequence's KV cache, scratch buffers and position, over a shared Model.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "brise/model.hpp"

namespace brise {

struct SessionOptions {
  // With a full-attention layer: most positions the session may hold (default: the model's
  // context length). Going past it is an error, never a silent wrap.
  std::optional<uint32_t> context_length;
  // Overrides the model's sliding window (ModelConfig::override_sliding_window): a value W is the
  // window of the model's windowed layers, or of every layer when the model has no per-layer
  // pattern; nullopt inside is full attention on every layer.
  std::optional<std::optional<uint32_t>> sliding_window;
  uint32_t prefill_chunk = 512;  // tokens per forward pass during prefill (>= 1)
  // Element type of the KV cache: f32, f16, or q8_0 (blocks of 32 values of a head with an fp16
  // scale, as ggml's q8_0; needs head_dim a multiple of 32; keys are multiplied with queries
  // quantized to int8 blocks). brise::Error otherwise.
  TensorType kv_type = TensorType::F32;
  // Quantized matrices (q8_0, q4_0, ...) are multiplied with int8-quantized activations (blocks of
  // 32 with an f32 scale, the inputs llama.cpp's kernels use), or, exact = true, with the f32
  // activations themselves: slower, and free of the activations' rounding (README, "Accuracy").
  bool exact = false;
  int threads = 0;  // 0: OpenMP's default
  // Allocates the whole KV cache (every layer's ring at its full size: the context, or the
  // window) when the session is built, instead of as positions arrive: its memory is then fixed
  // from the start and feeding tokens never allocates any, so a server can state its peak memory
  // and fail at start rather than run out of memory mid-request. brise::Error when the memory
  // cannot be had. Results are the same either way.
  bool reserve_kv_cache = false;
};

class KVSnapshot;

class Session {
 public:
  // Throws brise::Error on invalid options (chunk 0, window 0, context beyond the model's).
  explicit Session(std::shared_ptr<const Model> model, SessionOptions options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Feeds tokens at the next positions, in chunks of prefill_chunk, and returns the logits
  // after the last one. Token ids are checked first (brise::Error for id >= vocab, an empty
  // span, or going past the context of a full-attention session) and then the session is
  // unchanged. A numeric fault during the forward pass (NaN/Inf from corrupt weights) is a
  // brise::Error naming the layer, after which the session is reset.
  std::span<const float> prefill(std::span<const int32_t> tokens);
  // Like prefill, but calls `row(t, logits)` with the logits after every token t.
  void prefill_all_logits(std::span<const int32_t> tokens,
                          const std::function<void(size_t, std::span<const float>)>& row);
  // Feeds one token (same checks as prefill).
  std::span<const float> decode(int32_t token);

  // Logits after the last fed token (empty before any).
  std::span<const float> logits() const;
  uint32_t position() const;  // tokens fed so far
  // Every id fed so far, in order.
  const std::vector<int32_t>& tokens() const;

  // Forgets everything (position 0).
  void reset();
  // Goes back to `position` tokens, as if only the first `position` tokens had been fed. A
  // rolling (sliding-window) cache has overwritten old keys, so it can only go back while every
  // windowed layer's ring still holds the keys the next position needs; otherwise brise::Error
  // (reset and prefill again).
  void rewind(uint32_t position);

  // Prefix reuse, for a session that runs one prompt after another (the turns of a chat, the
  // requests of a server's slot): a prompt that starts with tokens the session already holds
  // need not feed them again.
  //
  // How many of `prompt`'s leading tokens this session can keep for it: the longest prefix it
  // shares with tokens(), short of the whole prompt (at least one token is left to feed, so that
  // there are fresh logits to sample from), or 0 when a rolling cache can no longer rewind to
  // it. 0 for an empty prompt. Changes nothing.
  uint32_t reusable_prefix(std::span<const int32_t> prompt) const;
  // Keeps the first `count` tokens fed and forgets the rest: reset() for 0, else rewind(count)
  // (with its errors). After keep_prefix(reusable_prefix(prompt)), feed the rest of the prompt.
  void keep_prefix(uint32_t count);

  // Takes the first `count` tokens of `from` and their KV entries, forgetting what this session
  // held, as if those tokens had been fed here (the same model and options compute the same
  // entries bit for bit) but without a forward pass: n samples of one prompt share its prefill.
  // There are no logits afterwards: feed at least one more token. brise::Error when the sessions
  // differ (model, windows, KV cache layout or type) or `from` cannot give `count` tokens (it
  // holds fewer, or its rolling cache no longer holds the keys position `count` needs).
  void copy_prefix(const Session& from, uint32_t count);
  // The same from a snapshot (below): as if its first `count` tokens had been fed here; the same
  // errors (its rings hold what the session's held when it was taken).
  void copy_prefix(const KVSnapshot& from, uint32_t count);
  // A copy of every token fed and of the KV entries the session holds for them.
  KVSnapshot snapshot() const;

  // The window of the windowed layers (nullopt when every layer has full attention).
  std::optional<uint32_t> sliding_window() const;
  // Each layer's window (nullopt = full attention).
  const std::vector<std::optional<uint32_t>>& layer_windows() const;
  // Most tokens the session may hold: the context length when some layer has full attention;
  // nullopt when every layer has a rolling window (no limit).
  std::optional<uint32_t> position_limit() const;
  // Positions the largest layer's KV cache can hold: the window when every layer has the same
  // rolling window, else the context length.
  uint32_t kv_capacity() const;
  // Bytes of KV cache currently allocated (all layers, K and V).
  uint64_t kv_cache_bytes() const;
  // The most bytes of KV cache the session ever allocates (every ring whole; what
  // SessionOptions::reserve_kv_cache allocates at once).
  uint64_t kv_cache_max_bytes() const;
  const Model& model() const;
  const SessionOptions& options() const;

 private:
  friend class Batch;  // feeds several sessions in one pass (brise/batch.hpp)
  struct State;
  std::unique_ptr<State> state_;
};

// A session's tokens and KV entries copied out of it (Session::snapshot) and held apart, e.g. in
// a host-RAM prefix cache, to give a later session of the same model and options a prefix
// (Session::copy_prefix) without a forward pass. It holds what the session's KV caches held: with
// a sliding window, only the last positions of each windowed layer, so it can give only the
// prefixes a rewind of that session could have gone back to.
class KVSnapshot {
 public:
  ~KVSnapshot();
  KVSnapshot(KVSnapshot&&) noexcept;
  KVSnapshot& operator=(KVSnapshot&&) noexcept;

  const std::vector<int32_t>& tokens() const;
  // Session::reusable_prefix's rule: the longest prefix of `prompt` it can give, short of the
  // whole prompt, or 0.
  uint32_t reusable_prefix(std::span<const int32_t> prompt) const;
  // Whether copy_prefix can take its first `count` tokens (count <= tokens().size(), and every
  // windowed layer still holds the keys position `count` needs).
  bool can_give(uint32_t count) const;
  // Bytes of memory it holds: KV blocks (rounded as allocated), tokens and bookkeeping.
  uint64_t bytes() const;

 private:
  friend class Session;
  struct State;
  explicit KVSnapshot(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace brise
