// The forward pass over the rows of one or more sequences at once: the rows of every sequence go
// through each matrix together (one GEMM), each attends to its own sequence's KV cache. A
// Session's prefill is a pass over one sequence; a brise::Batch's step, over many.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <vector>

#include "brise/model.hpp"
#include "engine/runtime/attention_step.hpp"
#include "engine/runtime/kv_cache.hpp"
#include "kernels/matmul.hpp"

namespace brise {

// Activations for up to `tokens` rows at once, row-major [row][feature].
struct Activations {
  size_t tokens = 0;
  std::vector<float> x, xn, q, k, v, att, h, gate, up;  // residual, normed, projections, ...
  std::vector<float> rope_cos, rope_sin;                // [row][head_dim / 2]
  std::vector<std::byte> qprep;  // [row][head] queries prepared for a q8_0 cache
  // One matmul input at a time (xn, att or gate) in the int8 forms its matrices take.
  kernels::QuantizedInput quantized;
  void ensure(size_t n, const ModelConfig& c, TensorType kv_type);
};

// One sequence's part of a pass: `ids` at positions pos0.., attending to `cache`.
struct SequenceRows {
  KVCache* cache = nullptr;
  std::span<const std::optional<uint32_t>> windows;  // each layer's window, nullopt = full
  std::span<const int32_t> ids;
  uint64_t pos0 = 0;
  size_t row0 = 0;  // the sequence's first row in the pass (filled in by forward_pass)
};

// Which rows get logits: the last row of each sequence, or every row.
enum class LogitRows { Last, All };

struct PassOptions {
  bool exact = false;  // f32 activations for quantized matrices
  TensorType kv_type = TensorType::F32;
  int threads = 1;
};

// Scratch of a pass, kept between passes so that steady decoding does not allocate.
struct PassScratch {
  Activations act;
  std::vector<uint32_t> row_sequence;         // [row] -> index into the pass's sequences
  std::vector<size_t> logit_rows;             // rows whose logits are computed, in order
  std::vector<std::atomic<size_t>> schedule;  // the matmul steps' row counters
  AttentionScratch attention;
  std::exception_ptr fault;
};

// Runs the sequences' rows through the model, stores their keys and values in their caches, and
// writes the logits of the rows asked for to `logits` ([row asked for][vocab], sequences in
// order). Every row's result is bit-identical to a pass of that sequence alone, in one chunk or
// many, with any thread count: rows are independent in every matmul, norm and activation, and
// each query's attention is the same per-block arithmetic and fold of splits counted from
// position 0 (kernels/attention.hpp). Throws brise::Error on a numeric fault (the caches may
// then hold part of the pass). The caller has checked the ids and made room in the caches.
void forward_pass(const Model& model, const PassOptions& options, std::span<SequenceRows> sequences,
                  LogitRows rows, PassScratch& scratch, float* logits);

}  // namespace brise
