#include "engine/runtime/attention_step.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/runtime/forward_pass.hpp"

namespace brise {
namespace {

constexpr uint64_t kBlock = kernels::kKVBlock;
constexpr uint64_t kSplit = kernels::kKVSplit;
// A sequence with at most this many rows in the pass (decoding) has each row's splits computed
// in parallel and folded after; longer ones (prefill) go in tiles of tokens that walk their
// splits in order, sharing each block's keys among kTileRows query rows.
constexpr size_t kSplitRows = 2;
constexpr size_t kTileRows = 64;

// The first key of the query at `pos` on a layer with `window` (positions [first, pos]).
uint64_t first_key(uint64_t pos, const std::optional<uint32_t>& window) {
  return window && pos + 1 > *window ? pos + 1 - *window : 0;
}

class Step {
 public:
  Step(const ModelConfig& c, const PassOptions& options, std::span<SequenceRows> seqs,
       std::span<const uint32_t> row_sequence, Activations& a, AttentionScratch& s, uint32_t layer)
      : c_(c),
        seqs_(seqs),
        row_sequence_(row_sequence),
        a_(a),
        s_(s),
        layer_(layer),
        type_(seqs[0].cache->type()),
        hd_(c.head_dim),
        group_(c.group_size()),
        q8_(options.kv_type == TensorType::Q8_0),
        block_bytes_(seqs[0].cache->block_bytes()),
        query_bytes_(kernels::attention_query_bytes(type_, hd_)),
        scale_(1.0f / std::sqrt(static_cast<float>(hd_))) {}

  void run();

 private:
  void plan();
  void prepare_sequence(size_t i);
  void store_row(size_t t);
  void run_item(const AttentionScratch::Item& item, AttentionScratch::Thread& th);
  void run_fold(const AttentionScratch::Fold& fold);
  void unstage_row(size_t t);

  const SequenceRows& seq_of(size_t t) const { return seqs_[row_sequence_[t]]; }
  uint64_t pos_of(size_t t) const {
    const SequenceRows& s = seq_of(t);
    return s.pos0 + (t - s.row0);
  }
  const std::optional<uint32_t>& window(const SequenceRows& s) const { return s.windows[layer_]; }
  std::byte* staged_block(size_t seq, uint64_t b, uint32_t head) {
    const AttentionScratch::Sequence& p = s_.sequences[seq];
    return s_.staging.data() + p.staging +
           ((b - p.staged_first) * c_.n_kv_heads + head) * block_bytes_;
  }
  kernels::KVBlocks blocks(size_t seq, uint32_t head) const {
    const AttentionScratch::Sequence& p = s_.sequences[seq];
    return {s_.table.data() + p.table + head * p.blocks, p.first_block, p.blocks};
  }
  const void* query(size_t t, size_t q_head) const {
    if (q8_) return a_.qprep.data() + (t * c_.n_heads + q_head) * query_bytes_;
    return &a_.q[t * c_.q_dim() + q_head * hd_];
  }
  float* output(size_t t, size_t q_head) const { return &a_.att[t * c_.q_dim() + q_head * hd_]; }

  const ModelConfig& c_;
  std::span<SequenceRows> seqs_;
  std::span<const uint32_t> row_sequence_;
  Activations& a_;
  AttentionScratch& s_;
  const uint32_t layer_;
  const kernels::TypeTraits& type_;
  const size_t hd_, group_;
  const bool q8_;
  const size_t block_bytes_, query_bytes_;
  const float scale_;
};

// Where each sequence's blocks come from, the pieces of work, and the buffers they need.
void Step::plan() {
  const size_t heads = c_.n_kv_heads;
  s_.sequences.assign(seqs_.size(), {});
  s_.items.clear();
  s_.folds.clear();
  size_t table = 0, staging = 0, partials = 0, most_rows = group_;
  for (size_t i = 0; i < seqs_.size(); ++i) {
    const SequenceRows& seq = seqs_[i];
    AttentionScratch::Sequence& p = s_.sequences[i];
    const uint64_t n = seq.ids.size(), pos0 = seq.pos0, last = pos0 + n - 1;
    const uint64_t first = first_key(pos0, window(seq));
    // Writing positions [pos0, pos0 + n) first overwrites the ring's positions below
    // pos0 + n - ring_slots; the first query needs every key from `first` on.
    p.staged = pos0 + n > seq.cache->ring_slots(layer_) + first;
    p.first_block = first / kBlock;
    p.blocks = last / kBlock - p.first_block + 1;
    p.table = table;
    table += heads * p.blocks;
    if (p.staged) {
      p.staged_first = pos0 / kBlock;
      p.staging = staging;
      staging += (last / kBlock - p.staged_first + 1) * heads * block_bytes_;
    }
    const uint32_t row0 = static_cast<uint32_t>(seq.row0);
    if (n <= kSplitRows) {
      for (uint32_t t = row0; t < row0 + n; ++t) {
        const uint64_t pos = pos_of(t);
        const uint64_t s0 = first_key(pos, window(seq)) / kSplit, s1 = pos / kSplit + 1;
        for (uint32_t h = 0; h < heads; ++h) {
          s_.folds.push_back({h, t, partials, static_cast<uint32_t>(s1 - s0)});
          for (uint64_t k = s0; k < s1; ++k, partials += group_)
            s_.items.push_back(
                {static_cast<uint32_t>(i), h, t, t + 1, static_cast<uint32_t>(k), partials});
        }
      }
    } else {
      const size_t tile = std::max<size_t>(1, kTileRows / group_);
      most_rows = std::max(most_rows, tile * group_);
      for (uint32_t t0 = row0; t0 < row0 + n; t0 += tile) {
        const uint32_t t1 = static_cast<uint32_t>(std::min<uint64_t>(t0 + tile, row0 + n));
        for (uint32_t h = 0; h < heads; ++h)
          s_.items.push_back(
              {static_cast<uint32_t>(i), h, t0, t1, AttentionScratch::kEverySplit, 0});
      }
    }
  }
  s_.table.resize(table);
  s_.staging.grow(staging);
  s_.partials.resize(partials);
  s_.partial_o.resize(partials * hd_);
  for (size_t i = 0; i < partials; ++i) s_.partials[i].o = &s_.partial_o[i * hd_];
  s_.threads.resize(static_cast<size_t>(omp_get_num_threads()));
  for (AttentionScratch::Thread& th : s_.threads) {
    th.scores.resize(kernels::attention_split_scratch_floats(most_rows));
    th.o.resize(most_rows * hd_);
    th.rows.resize(most_rows);
    th.parts.resize(most_rows);
    th.totals.resize(most_rows);
  }
}

// A sequence's block table, head by head, and for a staged one the slots of its first staged
// block that precede its first row (from the ring).
void Step::prepare_sequence(size_t i) {
  const SequenceRows& seq = seqs_[i];
  const AttentionScratch::Sequence& p = s_.sequences[i];
  KVCache& cache = *seq.cache;
  for (uint32_t h = 0; h < c_.n_kv_heads; ++h) {
    const std::byte** table = s_.table.data() + p.table + h * p.blocks;
    for (uint64_t b = p.first_block; b < p.first_block + p.blocks; ++b)
      table[b - p.first_block] =
          p.staged && b >= p.staged_first ? staged_block(i, b, h) : cache.block(layer_, b, h);
    if (!p.staged) continue;
    const uint64_t from = p.staged_first * kBlock;
    for (uint64_t pos = from; pos < seq.pos0; ++pos)
      kernels::kv_block_copy(type_, hd_, cache.block(layer_, p.staged_first, h), pos % kBlock,
                             staged_block(i, p.staged_first, h), pos % kBlock);
  }
}

// Row t's keys and values into its block (the ring, or staging), and its queries prepared.
void Step::store_row(size_t t) {
  const size_t seq = row_sequence_[t];
  const uint64_t pos = pos_of(t), b = pos / kBlock;
  const size_t kv_dim = c_.kv_dim();
  for (uint32_t h = 0; h < c_.n_kv_heads; ++h) {
    std::byte* block =
        s_.sequences[seq].staged ? staged_block(seq, b, h) : seqs_[seq].cache->block(layer_, b, h);
    kernels::kv_block_store(type_, hd_, &a_.k[t * kv_dim + h * hd_], &a_.v[t * kv_dim + h * hd_],
                            pos % kBlock, block);
  }
  if (q8_) {
    for (size_t qh = 0; qh < c_.n_heads; ++qh)
      kernels::attention_prepare_query(type_, hd_, &a_.q[t * c_.q_dim() + qh * hd_],
                                       a_.qprep.data() + (t * c_.n_heads + qh) * query_bytes_);
  }
}

void Step::run_item(const AttentionScratch::Item& item, AttentionScratch::Thread& th) {
  const SequenceRows& seq = seqs_[item.seq];
  size_t n = 0;
  uint64_t first = std::numeric_limits<uint64_t>::max(), last = 0;
  for (uint32_t t = item.t0; t < item.t1; ++t) {
    const uint64_t pos = pos_of(t), begin = first_key(pos, window(seq));
    first = std::min(first, begin);
    last = std::max(last, pos);
    for (size_t g = 0; g < group_; ++g, ++n) {
      const size_t q_head = item.head * group_ + g;
      th.rows[n] = {query(t, q_head), begin, pos + 1};
      th.parts[n].o = &th.o[n * hd_];
      th.totals[n] = {-std::numeric_limits<float>::infinity(), 0.0f, output(t, q_head)};
    }
  }
  const kernels::KVBlocks kv = blocks(item.seq, item.head);
  const std::span<const kernels::AttentionRow> rows(th.rows.data(), n);
  if (item.split != AttentionScratch::kEverySplit) {
    kernels::attention_split(type_, hd_, scale_, kv, item.split, rows,
                             {&s_.partials[item.partial], n}, th.scores.data());
    return;
  }
  for (uint64_t k = first / kSplit; k <= last / kSplit; ++k) {
    kernels::attention_split(type_, hd_, scale_, kv, k, rows, {th.parts.data(), n},
                             th.scores.data());
    for (size_t r = 0; r < n; ++r) kernels::attention_fold(hd_, th.parts[r], th.totals[r]);
  }
  for (size_t r = 0; r < n; ++r) kernels::attention_finish(hd_, th.totals[r], th.totals[r].o);
}

void Step::run_fold(const AttentionScratch::Fold& fold) {
  for (size_t g = 0; g < group_; ++g) {
    float* out = output(fold.t, fold.head * group_ + g);
    kernels::AttentionPartial total{-std::numeric_limits<float>::infinity(), 0.0f, out};
    for (uint32_t k = 0; k < fold.splits; ++k)
      kernels::attention_fold(hd_, s_.partials[fold.partial + k * group_ + g], total);
    kernels::attention_finish(hd_, total, out);
  }
}

// A staged row's keys and values into the ring, unless a later row of its chunk takes the slot.
void Step::unstage_row(size_t t) {
  const size_t seq = row_sequence_[t];
  if (!s_.sequences[seq].staged) return;
  const SequenceRows& s = seqs_[seq];
  KVCache& cache = *s.cache;
  if (s.pos0 + s.ids.size() - pos_of(t) > cache.ring_slots(layer_)) return;
  const uint64_t pos = pos_of(t), b = pos / kBlock;
  for (uint32_t h = 0; h < c_.n_kv_heads; ++h)
    kernels::kv_block_copy(type_, hd_, staged_block(seq, b, h), pos % kBlock,
                           cache.block(layer_, b, h), pos % kBlock);
}

void Step::run() {
  const size_t n = row_sequence_.size();
#pragma omp single
  plan();
#pragma omp for schedule(static) nowait
  for (size_t i = 0; i < seqs_.size(); ++i) prepare_sequence(i);
#pragma omp for schedule(static)
  for (size_t t = 0; t < n; ++t) store_row(t);
  const int thread = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
  for (size_t i = 0; i < s_.items.size(); ++i) run_item(s_.items[i], s_.threads[thread]);
#pragma omp for schedule(static)
  for (size_t i = 0; i < s_.folds.size(); ++i) run_fold(s_.folds[i]);
#pragma omp for schedule(static)
  for (size_t t = 0; t < n; ++t) unstage_row(t);
}

}  // namespace

void attention_step(const ModelConfig& c, const PassOptions& options,
                    std::span<SequenceRows> sequences, std::span<const uint32_t> row_sequence,
                    Activations& a, AttentionScratch& s, uint32_t layer) {
  Step(c, options, sequences, row_sequence, a, s, layer).run();
}

}  // namespace brise
