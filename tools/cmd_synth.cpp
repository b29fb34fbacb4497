// brise synth --preset mistral-7b|mistral-1b|tiny -o OUT.gguf [--type T] [--seed S] [shape options]
#include <omp.h>

#include <chrono>
#include <cstdio>

#include "brise/error.hpp"
#include "brise/synth.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "format.hpp"
#include "progress.hpp"

namespace brise::cli {
namespace {

// Replaces a config field when its option was given (options default to 0 = keep the preset's).
void override_size(uint32_t* field, int64_t value) {
  if (value > 0) *field = static_cast<uint32_t>(value);
}

}  // namespace

int cmd_synth(const Args& args) {
  std::string preset, output, type = "f16", window, name;
  int64_t seed = 1, threads = 0;
  int64_t dim = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0,
          context = 0;
  double rope_theta = 0;
  bool tied = false;
  ArgParser p("synth", "--preset mistral-7b|mistral-1b|tiny -o OUT.gguf [options]",
              "Writes a model with deterministic random weights in real Mistral shapes (the same\n"
              "options and seed give the same bytes), with a synthetic byte-fallback vocabulary.\n"
              "For running and benchmarking the engine at full size without a checkpoint; the\n"
              "text it generates is meaningless.");
  p.option("--preset", &preset, "NAME", "mistral-7b, mistral-1b or tiny (required)");
  p.option("-o,--output", &output, "OUT.gguf", "file to write (required)");
  p.option("--type", &type, "TYPE", tensor_type_names() + " for the matrices (default f16)");
  p.option("--seed", &seed, "S", "random seed (default 1)", 0);
  p.flag("--tied", &tied, "no output.weight: the classifier is the token embedding");
  p.option("--dim", &dim, "N", "override the preset's hidden size", 1, 1 << 20);
  p.option("--layers", &layers, "N", "override the number of layers", 1, 1 << 16);
  p.option("--heads", &heads, "N", "override the number of query heads", 1, 1 << 16);
  p.option("--kv-heads", &kv_heads, "N", "override the number of key/value heads", 1, 1 << 16);
  p.option("--head-dim", &head_dim, "N", "override the head size", 2, 1 << 16);
  p.option("--ffn", &ffn, "N", "override the feed-forward size", 1, 1 << 20);
  p.option("--vocab", &vocab, "N", "override the vocabulary size (at least 260)", 260, 1 << 22);
  p.option("--context", &context, "N", "override the context length", 1, 1 << 24);
  p.option("--rope-theta", &rope_theta, "X", "override the RoPE base");
  p.option("--sliding-window", &window, "N|none", "sliding attention window (default none)");
  p.option("--name", &name, "NAME", "general.name (default synthetic-PRESET)");
  p.option("-t,--threads", &threads, "N", "threads (default: all cores)", 1, 1024);
  if (!p.parse(args)) return 0;
  if (preset.empty()) throw UsageError("missing --preset mistral-7b|mistral-1b|tiny");
  if (output.empty()) throw UsageError("missing -o OUT.gguf");

  SynthSpec spec;
  try {
    spec = synth_preset(preset);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  spec.type = parse_tensor_type(type, "--type");
  spec.seed = static_cast<uint64_t>(seed);
  spec.tied_embeddings = tied;
  ModelConfig& c = spec.config;
  override_size(&c.dim, dim);
  override_size(&c.n_layers, layers);
  override_size(&c.n_heads, heads);
  override_size(&c.n_kv_heads, kv_heads);
  override_size(&c.head_dim, head_dim);
  override_size(&c.hidden_dim, ffn);
  override_size(&c.vocab_size, vocab);
  override_size(&c.context_length, context);
  if (rope_theta != 0) c.rope_theta = rope_theta;
  if (!window.empty()) c.sliding_window = parse_recorded_window(window);
  if (!name.empty()) c.name = name;
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  ProgressLine line;
  uint64_t file_bytes = 0;
  write_synthetic_model(output, spec, [&](const WriteProgress& pr) {
    file_bytes = pr.bytes_total;
    const double percent = pr.bytes_total ? 100.0 * pr.bytes_done / pr.bytes_total : 0.0;
    const double rate = pr.seconds > 0 ? pr.bytes_done / pr.seconds : 0;
    char buf[160];
    std::snprintf(buf, sizeof buf, "synth: %s / %s (%3.0f%%)  %s/s",
                  format_bytes(pr.bytes_done).c_str(), format_bytes(pr.bytes_total).c_str(),
                  percent, format_bytes(static_cast<uint64_t>(rate)).c_str());
    line.update(buf, pr.bytes_done == pr.bytes_total);
  });
  line.finish();
  std::printf(
      "wrote %s: %s, dim %u, %u layers, %u/%u heads of %u, ffn %u, vocab %u, %s, seed %llu, %s, "
      "in %.1f s\n",
      output.c_str(), c.name.c_str(), c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim,
      c.hidden_dim, c.vocab_size, std::string(tensor_type_name(spec.type)).c_str(),
      static_cast<unsigned long long>(spec.seed), format_bytes(file_bytes).c_str(), seconds());
  return 0;
}

}  // namespace brise::cli
