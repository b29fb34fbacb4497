// What a Session holds.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "brise/session.hpp"
#include "engine/runtime/forward_pass.hpp"
#include "engine/runtime/kv_cache.hpp"

namespace brise {

using LayerWindows = std::vector<std::optional<uint32_t>>;  // nullopt = full attention

// The first layer of `cache`, after positions [0, held) were written, whose ring lacks a key that
// the query at `position` (at most `held`) needs: a rolling cache has overwritten the oldest ones.
// nullopt when every layer can go back there.
std::optional<uint32_t> layer_lacking_keys(const KVCache& cache, const LayerWindows& windows,
                                           uint64_t held, uint64_t position);
// How many of `prompt`'s leading tokens a cache that holds `held` can give it: their common
// prefix, short of the whole prompt, or 0 when a ring lacks the keys (layer_lacking_keys).
uint32_t reusable_prefix_of(const KVCache& cache, const LayerWindows& windows,
                            const std::vector<int32_t>& held, std::span<const int32_t> prompt);

struct KVSnapshot::State {
  std::shared_ptr<const Model> model;
  LayerWindows windows;
  KVCache cache;  // the session's layout, its rings as they were
  std::vector<int32_t> tokens;
};

struct Session::State {
  std::shared_ptr<const Model> model;
  SessionOptions options;
  std::vector<std::optional<uint32_t>> windows;  // of each layer, nullopt = full attention
  // Positions the session may hold: the context when a layer has full attention, else no limit.
  uint64_t position_limit = 0;
  int threads = 1;
  KVCache cache;
  std::vector<int32_t> tokens;
  std::vector<float> logits;      // [vocab] after the last token; empty when unknown
  std::vector<float> all_logits;  // [chunk][vocab] for prefill_all_logits
  PassScratch scratch;            // of this session's own passes (a Batch has its own)

  State(std::shared_ptr<const Model> m, SessionOptions o,
        std::vector<std::optional<uint32_t>> layer_windows, std::vector<uint32_t> slots);

  void check_tokens(std::span<const int32_t> ids) const;
  // The first layer whose cache would lack a key that the next position's query needs after
  // rewinding to `position` (at most the tokens held): a rolling cache has overwritten the oldest
  // ones. nullopt when every layer can go back there.
  std::optional<uint32_t> layer_unable_to_rewind(uint64_t position) const {
    return layer_lacking_keys(cache, windows, tokens.size(), position);
  }
  bool can_rewind(uint64_t position) const { return !layer_unable_to_rewind(position); }
  // copy_prefix from a session or a snapshot: `count` of `held` tokens whose KV entries `from`
  // holds (over `held_windows`).
  void take_prefix(const std::shared_ptr<const Model>& from_model, const LayerWindows& held_windows,
                   const KVCache& from, const std::vector<int32_t>& held, uint32_t count);
  // Runs ids through the model after the tokens held, updates the cache, and writes the logits
  // of the last row (into `logits`) or of every row (into `all_logits`). Does not append ids to
  // `tokens`.
  void forward(std::span<const int32_t> ids, LogitRows rows);
  // This session's part of a pass: `ids` after the tokens it holds (cache room made).
  SequenceRows rows(std::span<const int32_t> ids);
  PassOptions pass_options(int pass_threads) const {
    return {options.exact, options.kv_type, pass_threads};
  }
};

}  // namespace brise
