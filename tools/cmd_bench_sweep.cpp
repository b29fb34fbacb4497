// brise bench --sweep: as ik_llama.cpp's llama-sweep-bench, one session walks its context in
// steps, timing decode and prefill at each depth.
#include <omp.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/support/roofline.hpp"
#include "bench_measure.hpp"
#include "bench_sweep.hpp"
#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model_config.hpp"
#include "brise/session.hpp"
#include "brise/system.hpp"
#include "progress.hpp"
#include "sweep_plot.hpp"

namespace brise::cli {
namespace {

// The positions the sweep walks: --ctx-size, else the model's context length, read from the
// file's metadata alone so that a context too small for one step is refused before anything is
// measured or loaded. (A session whose every layer has a rolling window has no limit of its own;
// the sweep stops at the same place.)
uint32_t sweep_context(const SweepRequest& r, const SessionOptions& options) {
  if (options.context_length) return *options.context_length;
  return read_model_config(*gguf::File::open(r.session_args.model)).context_length;
}

void print_table_head() {
  std::printf("|%6s | %6s | %6s | %8s | %8s | %8s | %8s | %7s |\n", "PP", "TG", "N_KV", "T_PP s",
              "S_PP t/s", "T_TG s", "S_TG t/s", "TG BW %");
  std::printf("|%6s-|-%6s-|-%6s-|-%8s-|-%8s-|-%8s-|-%8s-|-%7s-|\n", "------", "------", "------",
              "--------", "--------", "--------", "--------", "-------");
}

void print_row(const SweepRow& r) {
  std::printf("|%6lld | %6lld | %6lld | %8.3f | %8.2f | %8.3f | %8.2f | %7.0f |\n",
              static_cast<long long>(r.pp), static_cast<long long>(r.tg),
              static_cast<long long>(r.n_kv), r.t_pp_s, r.s_pp_tok_s, r.t_tg_s, r.s_tg_tok_s,
              100.0 * r.tg_bw_fraction);
  std::fflush(stdout);  // a row as soon as it is measured: a long sweep shows its progress
}

std::string window_name(const Session& session) {
  const auto w = session.sliding_window();
  return w ? "window " + std::to_string(*w) : std::string("full attention");
}

}  // namespace

int run_bench_sweep(const SweepRequest& r) {
  const SessionOptions options = r.session_args.session_options();
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  // Checked before anything is measured: the first step decodes at depth 0 and prefills the
  // next r.step tokens, and the sweep keeps a step only when all of it fits.
  const uint32_t context = sweep_context(r, options);
  if (r.step + r.decode > context)
    throw Error("--sweep needs room for one step: " + std::to_string(r.step) + " prefill and " +
                std::to_string(r.decode) + " decode tokens need " +
                std::to_string(r.step + r.decode) + " positions, more than the context of " +
                std::to_string(context) + " (--ctx-size)");
  std::optional<SweepPlot> plot;
  if (!r.plot.empty()) plot.emplace(r.plot);

  // The machine first, before the model is mapped (as the single run does).
  ProgressLine line;
  line.update("measuring read bandwidth...", true);
  const double read_bw = measure_read_bandwidth_gbs(threads);

  auto model = r.session_args.load_model();
  Session session(model, options);
  RandomTokens tokens(model->config());
  warm_up(session, tokens.next(), line);
  line.clear();

  const std::string settings = std::to_string(threads) + " threads, KV cache " +
                               r.session_args.kv_type + ", " + window_name(session) +
                               (options.exact ? ", exact mode" : "");
  if (!r.json) {
    print_model_line(r.session_args.model, *model);
    std::printf("machine  %d threads: read bandwidth %.1f GB/s\n", threads, read_bw);
    print_kernels_line(options.exact);
    std::printf(
        "sweep    context %u in steps of %lld prefill tokens, %lld decode tokens at each depth; "
        "%s\n\n",
        context, static_cast<long long>(r.step), static_cast<long long>(r.decode),
        settings.c_str());
    print_table_head();
    std::fflush(stdout);
  }

  std::vector<SweepRow> rows;
  const std::optional<uint32_t> window = session.sliding_window();
  for (int64_t n_kv = 0; n_kv + r.step + r.decode <= context; n_kv += r.step) {
    const std::string at = " at depth " + std::to_string(n_kv);
    // Decode first, then forget its tokens: the prefill goes on from n_kv. A rolling cache that
    // has overwritten keys the rewind needs cannot go back; it is copied out first instead.
    std::optional<KVSnapshot> before_decode;
    if (window && n_kv > 0 && n_kv + r.decode > *window) before_decode = session.snapshot();
    const double t_tg = time_decode(session, r.decode, tokens, line, at);
    if (before_decode)
      session.copy_prefix(*before_decode, static_cast<uint32_t>(n_kv));
    else
      session.keep_prefix(static_cast<uint32_t>(n_kv));

    line.update("prefill of " + std::to_string(r.step) + " tokens" + at + "...", true);
    const double t_pp = time_prefill(session, tokens.take(r.step));
    SweepRow row{r.step, r.decode, n_kv, t_pp, r.step / t_pp, t_tg, r.decode / t_tg, 0};
    row.tg_bw_fraction = decode_bandwidth_gb_s(*model, row.s_tg_tok_s) / read_bw;
    rows.push_back(row);
    if (!r.json) {
      line.clear();
      print_row(row);
    }
  }
  line.finish();

  // The measurements are out before gnuplot runs: a failed plot loses none of them.
  if (r.json) {
    nlohmann::json j_rows = nlohmann::json::array();
    for (const SweepRow& row : rows)
      j_rows.push_back({{"pp", row.pp},
                        {"tg", row.tg},
                        {"n_kv", row.n_kv},
                        {"t_pp_s", row.t_pp_s},
                        {"s_pp_tok_s", row.s_pp_tok_s},
                        {"t_tg_s", row.t_tg_s},
                        {"s_tg_tok_s", row.s_tg_tok_s},
                        {"tg_bw_fraction", row.tg_bw_fraction}});
    nlohmann::json j{{"model", r.session_args.model},
                     {"kernels", active_kernel_set().name},
                     {"exact", options.exact},
                     {"threads", threads},
                     {"kv_type", r.session_args.kv_type},
                     {"sliding_window", window ? nlohmann::json(*window) : nlohmann::json()},
                     {"context", context},
                     {"step", r.step},
                     {"decode_tokens", r.decode},
                     {"weight_bytes_per_token", model->weight_bytes_per_token()},
                     {"read_bw_gb_s", read_bw},
                     {"rows", j_rows}};
    if (plot) j["plot"] = r.plot;
    std::cout << j.dump(2) << std::endl;
  }
  if (plot) {
    line.update("drawing " + r.plot + " with gnuplot...", true);
    plot->draw(rows, r.session_args.model + ": " + settings + ", " + active_kernel_set().name);
    line.clear();
    if (!r.json) std::printf("\nplot     %s (gnuplot script and data beside it)\n", r.plot.c_str());
  }
  return 0;
}

}  // namespace brise::cli
