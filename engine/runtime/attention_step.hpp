// The attention step of one layer of a forward pass (engine/runtime/forward.cpp), over the KV
// blocks of kernels/attention.hpp: where each row's keys and values go, which blocks each
// sequence's queries read, and how the work is cut into pieces for the team's threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "brise/model_config.hpp"
#include "engine/runtime/kv_cache.hpp"
#include "kernels/attention.hpp"

namespace brise {

struct SequenceRows;
struct Activations;
struct PassOptions;

struct AttentionScratch {
  // What a sequence's rows read in this layer.
  struct Sequence {
    // Its rows' keys and values wait in `staging` until every query has read the ring: writing
    // them first would overwrite ring positions its own first queries need (a chunk longer than
    // the ring's slack). Otherwise they go straight into the ring.
    bool staged = false;
    uint64_t first_block = 0, blocks = 0;  // the blocks its rows read
    size_t table = 0;                      // its pointers in `table`, head after head
    uint64_t staged_first = 0;             // first staged block (that of its first row)
    size_t staging = 0;                    // byte offset of its staged blocks, [block][head]
  };
  // One thread's piece: rows [t0, t1) of the pass, the query heads of KV head `head`; every split
  // folded here (split == kEverySplit), or one split's partials into `partials`.
  struct Item {
    uint32_t seq, head, t0, t1;
    uint32_t split;
    size_t partial;
  };
  static constexpr uint32_t kEverySplit = UINT32_MAX;
  // The fold of a row's split partials (those of Items with one split), oldest split first.
  struct Fold {
    uint32_t head, t;
    size_t partial;
    uint32_t splits;
  };
  // A thread's buffers for one Item.
  struct Thread {
    std::vector<float> scores, o;
    std::vector<kernels::AttentionRow> rows;
    std::vector<kernels::AttentionPartial> parts, totals;
  };

  std::vector<Sequence> sequences;
  std::vector<const std::byte*> table;
  BlockBuffer staging;
  std::vector<Item> items;
  std::vector<Fold> folds;
  std::vector<kernels::AttentionPartial> partials;  // [fold's split][group head]
  std::vector<float> partial_o;
  std::vector<Thread> threads;
};

// Grouped-query attention of every row of the pass in `layer`, and the rows' keys and values
// stored in their sequences' caches. Run by the whole team; ends with the team waiting.
void attention_step(const ModelConfig& c, const PassOptions& options,
                    std::span<SequenceRows> sequences, std::span<const uint32_t> row_sequence,
                    Activations& a, AttentionScratch& s, uint32_t layer);

}  // namespace brise
