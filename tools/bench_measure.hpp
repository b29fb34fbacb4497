// What `brise bench` measures with, shared by its single run (cmd_bench.cpp) and its sweep over
// depths (cmd_bench_sweep.cpp): the random tokens, the warm-up, the timed prefill and decode, and
// the bandwidth a decode speed implies.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "brise/model.hpp"
#include "brise/session.hpp"
#include "progress.hpp"

namespace brise::cli {

// Random token ids past the special ones (3 onwards), the same sequence on every run: the
// speed of a forward pass does not depend on the ids, only the count.
class RandomTokens {
 public:
  explicit RandomTokens(const ModelConfig& config);
  int32_t next() { return token_(rng_); }
  std::vector<int32_t> take(int64_t count);

 private:
  std::mt19937 rng_{1234};
  std::uniform_int_distribution<int32_t> token_;
};

// One prefill of a token and one decode, then an empty cache: every weight page touched once,
// so that the timed runs read memory, not the disk.
void warm_up(Session& session, int32_t token, ProgressLine& line);

// Seconds to prefill `tokens` after those the session holds.
double time_prefill(Session& session, std::span<const int32_t> tokens);

// Seconds to decode `count` random tokens one at a time after those the session holds; the
// progress line reads "decode i/count" after `what` (e.g. " at depth 512").
double time_decode(Session& session, int64_t count, RandomTokens& tokens, ProgressLine& line,
                   const std::string& what = {});

// The decode bandwidth of `tok_s` tokens per second in GB/s: the bytes of weights read per token
// (Model::weight_bytes_per_token) times tok/s, what the read bandwidth bounds.
double decode_bandwidth_gb_s(const Model& model, double tok_s);

// The text output's first lines: "model    PATH: N layers, dim D, B of weights read per token"
// and "kernels  SET (INSTRUCTIONS)[, exact mode ...]".
void print_model_line(const std::string& path, const Model& model);
void print_kernels_line(bool exact);

}  // namespace brise::cli
