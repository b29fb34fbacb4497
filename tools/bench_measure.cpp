#include "bench_measure.hpp"

#include <chrono>
#include <cstdio>

#include "brise/system.hpp"
#include "format.hpp"

namespace brise::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

RandomTokens::RandomTokens(const ModelConfig& config)
    : token_(3, static_cast<int32_t>(config.vocab_size) - 1) {}

std::vector<int32_t> RandomTokens::take(int64_t count) {
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (auto& t : ids) t = next();
  return ids;
}

void warm_up(Session& session, int32_t token, ProgressLine& line) {
  line.update("warming up (mapping the weights)...", true);
  const int32_t one[] = {token};
  session.prefill(one);
  session.decode(token);
  session.reset();
}

double time_prefill(Session& session, std::span<const int32_t> tokens) {
  const auto t0 = Clock::now();
  session.prefill(tokens);
  return seconds_since(t0);
}

double time_decode(Session& session, int64_t count, RandomTokens& tokens, ProgressLine& line,
                   const std::string& what) {
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < count; ++i) {
    session.decode(tokens.next());
    line.update("decode " + std::to_string(i + 1) + "/" + std::to_string(count) + what);
  }
  return seconds_since(t0);
}

double decode_bandwidth_gb_s(const Model& model, double tok_s) {
  return static_cast<double>(model.weight_bytes_per_token()) * tok_s / 1e9;
}

void print_model_line(const std::string& path, const Model& model) {
  const auto& c = model.config();
  std::printf("model    %s: %u layers, dim %u, %s of weights read per token\n", path.c_str(),
              c.n_layers, c.dim, format_bytes(model.weight_bytes_per_token()).c_str());
}

void print_kernels_line(bool exact) {
  std::printf("kernels  %s (%s)%s\n", active_kernel_set().name.c_str(),
              active_kernel_set().instructions.c_str(),
              exact ? ", exact mode (f32 activations)" : "");
}

}  // namespace brise::cli
