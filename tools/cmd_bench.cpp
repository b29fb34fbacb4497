// brise bench: prefill and decode speed of a model, against this machine's measured roofline.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bench/support/roofline.hpp"
#include "bench_measure.hpp"
#include "bench_sweep.hpp"
#include "brise/error.hpp"
#include "brise/session.hpp"
#include "brise/system.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "session_args.hpp"

namespace brise::cli {
namespace {

// Multiply-adds of the matrices for one token (the classifier included).
double matrix_macs_per_token(const Model& m) {
  double macs = 0;
  for (const MatrixView& w : m.matrices()) macs += static_cast<double>(w.rows) * w.cols;
  return macs;
}

// The matrices' bytes, where the forward pass reads them (packed at load): what decode
// streams through once per token.
std::vector<std::span<const std::byte>> weight_regions(const Model& m) {
  std::vector<std::span<const std::byte>> regions;
  for (const MatrixView& w : m.matrices()) regions.push_back(w.bytes);
  return regions;
}

// This machine's ceilings, measured before the model is mapped.
struct Machine {
  double read_bw_gb_s;
  double fma_peak_gflop_s;
  double int8_peak_gop_s;
};

// A fraction as JSON, or null where its denominator was not measured (--no-roofline).
nlohmann::json fraction_or_null(double part, const std::optional<double>& whole) {
  return whole ? nlohmann::json(part / *whole) : nlohmann::json();
}
nlohmann::json value_or_null(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

}  // namespace

int cmd_bench(const Args& args) {
  SessionArgs session_args;
  // depth -1: not given (--sweep refuses any -d, even -d 0).
  int64_t n_prompt = 512, n_decode = 128, depth = -1;
  bool json = false, sweep = false, no_roofline = false;
  std::string plot;
  ArgParser p(
      "bench",
      "-m MODEL.gguf [-p N] [-n N] [-d N] [-t THREADS] [--json]\n"
      "       brise bench -m MODEL.gguf --sweep [--ctx-size C] [-p STEP] [-n N] [-t THREADS]\n"
      "                   [--json] [--plot FILE.png]",
      "Measures prefill speed (tok/s, GFLOP/s) on a prompt of random tokens, then decode\n"
      "speed (tok/s) from an empty cache (as llama-bench's tgN) and the bandwidth it implies\n"
      "(bytes of weights read per token x tok/s) as a fraction of this machine's read\n"
      "bandwidth, which it measures first (--no-roofline: speeds only). With -d N both are "
      "measured after N tokens\n"
      "already in the cache (prefilled untimed before each), as llama-bench's -d; -p 0\n"
      "times decode only (one fill of the cache where -d is deep).\n"
      "With --sweep, as ik_llama.cpp's llama-sweep-bench, one session walks the context in\n"
      "steps of -p tokens: at each depth N_KV = 0, STEP, 2 STEP, ... while N_KV + STEP + N\n"
      "<= C it times decoding N tokens (then forgotten) and prefilling the next STEP tokens,\n"
      "and prints a row as soon as it is measured; --plot draws both speeds against N_KV\n"
      "with gnuplot (FILE.png, beside it FILE.gp and FILE.dat).");
  session_args.add_to(p);
  p.option("-p,--prompt-tokens", &n_prompt, "N",
           "prompt tokens to prefill, 0 for none; with --sweep the step (default 512)", 0, 1 << 20);
  p.option("-n,--decode-tokens", &n_decode, "N",
           "tokens to decode; with --sweep at each step (default 128)", 1, 1 << 20);
  p.option("-d,--depth", &depth, "N",
           "tokens already in the cache when prefill and decode are timed (default 0)", 0, 1 << 24);
  p.flag("--json", &json, "print one JSON object instead of text");
  p.flag("--no-roofline", &no_roofline,
         "do not measure the machine (read bandwidth, FMA and int8 peaks, the weights' read\n"
         "      speed): speeds only, the fractions of the roofline left out (null in --json)");
  p.flag("--sweep", &sweep, "prefill and decode speed at every step of depth up to the context");
  p.option("--plot", &plot, "FILE.png",
           "with --sweep: plot the speeds with gnuplot into FILE.png (FILE.gp and FILE.dat\n"
           "      beside it)");
  if (!p.parse(args)) return 0;
  if (sweep && depth >= 0)
    throw UsageError("--sweep times every depth of the context: -d cannot be given with it");
  if (!plot.empty() && !sweep) throw UsageError("--plot draws a --sweep: give --sweep with it");
  if (no_roofline && sweep)
    throw UsageError("--no-roofline is for a single run: --sweep measures the read bandwidth only");
  if (sweep && n_prompt == 0) throw UsageError("--sweep steps by -p tokens: -p must be at least 1");
  if (sweep) return run_bench_sweep({session_args, n_prompt, n_decode, json, plot});
  depth = std::max<int64_t>(depth, 0);

  SessionOptions options = session_args.session_options();
  // At depth the cache is allocated whole at start, as llama.cpp's is: a ring that grew while a
  // run is timed (at a power-of-two depth, by the first decoded token) would time its copy.
  if (depth > 0) options.reserve_kv_cache = true;
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  // The machine first, before the model is mapped: the bandwidth test's buffer is gone by then,
  // so the peak RSS of the run is the model's.
  ProgressLine line;
  std::optional<Machine> machine;
  if (!no_roofline) {
    line.update("measuring read bandwidth and FMA peak...", true);
    machine = Machine{measure_read_bandwidth_gbs(threads), measure_fma_peak_gflops(threads),
                      measure_int8_peak_gops(threads)};
  }

  auto model = session_args.load_model();
  Session session(model, options);
  // Refused before any timed run: the deepest the session goes is depth + the longer run.
  if (const auto limit = session.position_limit();
      limit && depth + std::max(n_prompt, n_decode) > *limit)
    throw Error("bench at depth " + std::to_string(depth) + " with " + std::to_string(n_prompt) +
                " prompt and " + std::to_string(n_decode) + " decode tokens needs " +
                std::to_string(depth + std::max(n_prompt, n_decode)) +
                " positions, more than the session's context of " + std::to_string(*limit) +
                " (--ctx-size)");

  const auto& c = model->config();
  RandomTokens tokens(c);
  const std::vector<int32_t> prompt = tokens.take(n_prompt);
  const std::vector<int32_t> context = tokens.take(depth);
  // Empties the cache and fills it with the depth's tokens (untimed).
  const auto fill_to_depth = [&](const std::string& before) {
    session.reset();
    if (depth == 0) return;
    line.update("filling the cache to depth " + std::to_string(depth) + " before " + before + "...",
                true);
    session.prefill(context);
  };

  warm_up(session, n_prompt > 0 ? prompt[0] : tokens.next(), line);

  // The weights themselves, read as fast as this machine reads them where they are held.
  std::optional<double> weights_read_bw;
  if (machine) {
    line.update("reading the weights straight through...", true);
    weights_read_bw = measure_region_read_gbs(weight_regions(*model), threads, 2);
  }

  // -p 0: no prefill timed, and so no fill of the cache for it.
  double prefill_s = 0;
  if (n_prompt > 0) {
    fill_to_depth("prefill");
    line.update("prefill of " + std::to_string(n_prompt) + " tokens...", true);
    prefill_s = time_prefill(session, prompt);
  }

  // Decode from the depth (an empty cache by default), as llama-bench's tgN does: the same work
  // as the peer's figure (after the prompt, attention over its positions would add to every token).
  fill_to_depth("decode");
  const double decode_s = time_decode(session, n_decode, tokens, line);
  line.finish();

  const bool timed_prefill = n_prompt > 0;
  const double prefill_tok_s = timed_prefill ? n_prompt / prefill_s : 0.0;
  const double decode_tok_s = n_decode / decode_s;
  const double bytes_per_token = static_cast<double>(model->weight_bytes_per_token());
  const double decode_gb_s = decode_bandwidth_gb_s(*model, decode_tok_s);
  const double prefill_gflop_s = 2.0 * matrix_macs_per_token(*model) * prefill_tok_s / 1e9;
  // Quantized matrices multiply int8 activations unless the session is exact: their ceiling is
  // the int8 peak, the float matrices' the FMA peak; the prefill's is the mix of the two.
  double int8_macs = 0, all_macs = 0;
  for (const MatrixView& w : model->matrices()) {
    const double macs = static_cast<double>(w.rows) * w.cols;
    all_macs += macs;
    if (tensor_type_info(w.type).quantized && !options.exact) int8_macs += macs;
  }
  const double int8_share = all_macs > 0 ? int8_macs / all_macs : 0.0;
  std::optional<double> read_bw, fma_peak, int8_peak, peak;
  if (machine) {
    read_bw = machine->read_bw_gb_s;
    fma_peak = machine->fma_peak_gflop_s;
    int8_peak = machine->int8_peak_gop_s;
    peak = 1.0 / (int8_share / *int8_peak + (1.0 - int8_share) / *fma_peak);
  }

  if (json) {
    nlohmann::json j{{"model", session_args.model},
                     {"kernels", active_kernel_set().name},
                     {"exact", options.exact},
                     {"threads", threads},
                     {"depth", depth},
                     {"prompt_tokens", n_prompt},
                     {"decode_tokens", n_decode},
                     {"prefill_tok_s", timed_prefill ? nlohmann::json(prefill_tok_s) : nullptr},
                     {"prefill_gflop_s", timed_prefill ? nlohmann::json(prefill_gflop_s) : nullptr},
                     {"fma_peak_gflop_s", value_or_null(fma_peak)},
                     {"int8_peak_gop_s", value_or_null(int8_peak)},
                     {"int8_share", int8_share},
                     {"peak_gop_s", value_or_null(peak)},
                     {"flop_fraction", timed_prefill ? fraction_or_null(prefill_gflop_s, peak)
                                                     : nlohmann::json(nullptr)},
                     {"decode_tok_s", decode_tok_s},
                     {"decode_gb_s", decode_gb_s},
                     {"weight_bytes_per_token", bytes_per_token},
                     {"read_bw_gb_s", value_or_null(read_bw)},
                     {"bw_fraction", fraction_or_null(decode_gb_s, read_bw)},
                     {"weights_read_gb_s", value_or_null(weights_read_bw)},
                     {"weights_bw_fraction", fraction_or_null(decode_gb_s, weights_read_bw)}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  print_model_line(session_args.model, *model);
  if (machine)
    std::printf(
        "machine  %d threads: read bandwidth %.1f GB/s, FMA peak %.1f GFLOP/s, int8 peak %.1f "
        "GOP/s\n",
        threads, *read_bw, *fma_peak, *int8_peak);
  else
    std::printf("machine  %d threads: not measured (--no-roofline)\n", threads);
  print_kernels_line(options.exact);
  // A multiply-add is 2 operations whether it is a float FMA or an int8 product.
  const std::string at_depth = depth > 0 ? " at depth " + std::to_string(depth) : std::string();
  const char* peak_name = int8_share == 0 ? "FMA" : int8_share == 1 ? "int8" : "FMA/int8";
  if (timed_prefill) {
    std::printf("prefill  %lld tokens%s in %.2f s: %.2f tok/s, %.1f %s",
                static_cast<long long>(n_prompt), at_depth.c_str(), prefill_s, prefill_tok_s,
                prefill_gflop_s, int8_share == 0 ? "GFLOP/s" : "GOP/s");
    if (peak) std::printf(" (%.0f%% of the %s peak)", 100.0 * prefill_gflop_s / *peak, peak_name);
  } else {
    std::printf("prefill  not timed (-p 0)");
  }
  std::printf("\ndecode   %lld tokens%s in %.2f s: %.2f tok/s, %.1f GB/s",
              static_cast<long long>(n_decode), at_depth.c_str(), decode_s, decode_tok_s,
              decode_gb_s);
  if (read_bw) std::printf(" (%.0f%% of read bandwidth)", 100.0 * decode_gb_s / *read_bw);
  std::printf("\n");
  if (weights_read_bw)
    std::printf(
        "weights  summed straight through where they are held: %.1f GB/s; decode reaches %.0f%% "
        "of that\n",
        *weights_read_bw, 100.0 * decode_gb_s / *weights_read_bw);
  return 0;
}

}  // namespace brise::cli
