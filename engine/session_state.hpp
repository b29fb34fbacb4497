// What a Session holds, and the forward pass over a chunk of tokens.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <vector>

#include "brise/session.hpp"
#include "engine/kv_cache.hpp"
#include "kernels/matmul.hpp"

namespace brise {

// Activations for up to `tokens` positions at once, row-major [token][feature].
struct Activations {
  size_t tokens = 0;
  std::vector<float> x, xn, q, k, v, att, h, gate, up;  // residual, normed, projections, ...
  std::vector<float> rope_cos, rope_sin;                // [token][head_dim / 2]
  std::vector<uint16_t> k16, v16;                       // chunk K/V staged as f16 for an f16 cache
  // One matmul input at a time, quantized to int8 (xn, att or gate: up to the widest of them).
  std::vector<int8_t> q8_codes;
  std::vector<float> q8_scales;
  std::vector<int32_t> q8_sums;
  void ensure(size_t n, const ModelConfig& c, TensorType kv_type);
  // The q8 buffers as rows of `cols` values.
  kernels::Q8Activations q8_view(size_t cols);
};

enum class LogitRows { Last, All };

struct Session::State {
  std::shared_ptr<const Model> model;
  SessionOptions options;
  std::optional<uint32_t> window;  // sliding window, nullopt = full attention
  uint64_t position_limit = 0;     // positions a full-attention session may hold
  int threads = 1;
  KVCache cache;
  std::vector<int32_t> tokens;
  std::vector<float> logits;      // [vocab] after the last token; empty when unknown
  std::vector<float> all_logits;  // [chunk][vocab] for prefill_all_logits
  Activations act;
  // Of the forward pass in progress: the matmul steps' row counters, and a numeric fault.
  std::vector<std::atomic<size_t>> schedule;
  std::exception_ptr fault;

  State(std::shared_ptr<const Model> m, SessionOptions o, std::optional<uint32_t> w,
        uint32_t slots);

  void check_tokens(std::span<const int32_t> ids) const;
  // Runs tokens at positions pos0.. through the model, updates the cache, and writes the logits
  // of the last row (into `logits`) or of every row (into `all_logits`).
  void forward(std::span<const int32_t> ids, uint64_t pos0, LogitRows rows);

 private:
  // The forward pass and attention as every thread of the pass's OpenMP team runs them.
  void forward_team(std::span<const int32_t> ids, uint64_t pos0, LogitRows rows);
  void attention(uint32_t layer, size_t n, uint64_t pos0);
};

}  // namespace brise
