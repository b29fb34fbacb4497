// Attention over a KV cache stored in blocks of kKVBlock positions, with an online (running max)
// softmax: the keys and values of one KV head are read once per block for every query row that
// attends them (the query heads of a GQA group, and in a prefill chunk every token of it).
//
// The split of the work is fixed by the data, never by the thread count: positions are cut into
// blocks of kKVBlock and splits of kKVSplit counted from position 0. A row's result over one split
// is a softmax partial (running max, sum, unnormalised weighted sum of V) made block by block,
// oldest first; the partials of a row's splits are folded oldest first. A query computed inside a
// prefill chunk, decoded alone or in a batch, goes through the same per-block arithmetic and the
// same fold: the result is the same bits whatever the chunking, the batching, the thread count and
// whichever thread computes a split (each key's score is one FMA chain over head_dim, each output
// element one FMA chain over the block's keys, and sums over a block follow one fixed tree).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/type_traits.hpp"

namespace brise::kernels {

// Positions per block (the unit of the cache layout and of masking).
inline constexpr size_t kKVBlock = 32;
// Positions per split (the unit of a partial; a whole number of blocks).
inline constexpr size_t kKVSplit = 256;
static_assert(kKVSplit % kKVBlock == 0);

// One block of one KV head (kKVBlock positions, `slot` = position mod kKVBlock), K part then V
// part:
//   f32, f16: K transposed, [head_dim][kKVBlock] elements (element d of 32 keys side by side, so
//             the 32 scores of a block are vertical FMA chains); V [kKVBlock][head_dim].
//   q8_0 (head_dim a multiple of 32): each key's 32-element blocks quantized as ggml's q8_0
//             (d = max|x| / 127 in fp16, codes round(x / d)).
//             K codes [head_dim / 4][kKVBlock][4] stored as code + 128 (bytes of 4 consecutive
//             elements of a key in one 32-bit lane, for vpdpbusd), K scales [head_dim / 32]
//             [kKVBlock] fp16, V codes [kKVBlock][head_dim] int8, V scales [head_dim / 32]
//             [kKVBlock] fp16.
// Whether `type` can hold a KV cache of heads of `head_dim`; false with a reason in `why`.
bool kv_block_supports(const TypeTraits& type, size_t head_dim, const char** why);
size_t kv_block_k_bytes(const TypeTraits& type, size_t head_dim);
size_t kv_block_bytes(const TypeTraits& type, size_t head_dim);  // K and V
// Writes position `slot` of a block from f32 keys and values (head_dim each).
void kv_block_store(const TypeTraits& type, size_t head_dim, const float* k, const float* v,
                    size_t slot, std::byte* block);
// Copies position `from_slot` of one block to `to_slot` of another (same type and head_dim).
void kv_block_copy(const TypeTraits& type, size_t head_dim, const std::byte* from, size_t from_slot,
                   std::byte* to, size_t to_slot);
// The values held at `slot`, decoded to f32 (tests and references).
void kv_block_load(const TypeTraits& type, size_t head_dim, const std::byte* block, size_t slot,
                   float* k, float* v);

// A query in the form the cache type's scores take: for f32 and f16 the f32 values themselves;
// for q8_0 int8 blocks of 32 (attention_prepare_query).
size_t attention_query_bytes(const TypeTraits& type, size_t head_dim);
void attention_prepare_query(const TypeTraits& type, size_t head_dim, const float* q,
                             std::byte* out);

// The blocks a call may read: blocks[i] holds positions (first + i) * kKVBlock ...
struct KVBlocks {
  const std::byte* const* blocks = nullptr;
  uint64_t first = 0;
  uint64_t count = 0;
};

// One query row (one head of one token): its keys are positions [begin, end).
struct AttentionRow {
  const void* q = nullptr;  // the query in the form above
  uint64_t begin = 0, end = 0;
};

// A softmax partial: the running max of the scores, the sum of exp(score - max), and o, the sum
// of exp(score - max) * v (head_dim floats). Empty: max = -inf, sum = 0.
struct AttentionPartial {
  float max;
  float sum;
  float* o;
};

// Floats of scratch attention_split needs for `rows` rows.
inline size_t attention_split_scratch_floats(size_t rows) {
  return rows * kKVBlock;
}

// For every row, its partial over its keys inside split `split` (positions [split * kKVSplit,
// (split + 1) * kKVSplit)), into out[r] (o: head_dim floats, written; zeros for a row with no key
// there). `blocks` must hold every block those keys lie in. scale multiplies each q . k.
void attention_split(const TypeTraits& type, size_t head_dim, float scale, const KVBlocks& blocks,
                     uint64_t split, std::span<const AttentionRow> rows,
                     std::span<AttentionPartial> out, float* scratch);
// The same operations one at a time, in the same order (the kernels' specification; tests hold
// attention_split to it bit for bit).
void attention_split_scalar(const TypeTraits& type, size_t head_dim, float scale,
                            const KVBlocks& blocks, uint64_t split,
                            std::span<const AttentionRow> rows, std::span<AttentionPartial> out,
                            float* scratch);
// total := total followed by part (the next split's partial; an empty part leaves total as is).
void attention_fold(size_t head_dim, const AttentionPartial& part, AttentionPartial& total);
// out = total.o / total.sum (zeros for an empty total).
void attention_finish(size_t head_dim, const AttentionPartial& total, float* out);

// Double-precision reference of a row's attention: plain softmax over its keys [begin, end) as
// the blocks hold them (decoded), weighted sum of the values. `q` is f32 (not prepared).
void attention_ref(const TypeTraits& type, size_t head_dim, float scale, const KVBlocks& blocks,
                   const float* q, uint64_t begin, uint64_t end, float* out);

}  // namespace brise::kernels
