// brise synth --preset NAME -o OUT.gguf [--type T] [--seed S] [shape options] [--dry-run]
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

std::string preset_list(std::string_view separator) {
  std::string s;
  for (const auto name : synth_preset_names())
    s += (s.empty() ? "" : std::string(separator)) + std::string(name);
  return s;
}

// "W"/"F" per layer, repeated over the layers (W: sliding window, F: full attention).
std::vector<bool> parse_pattern(const std::string& text, uint32_t layers) {
  if (text.empty() || text.find_first_not_of("WF") != std::string::npos)
    throw UsageError("--window-pattern must be letters W (window) and F (full), got '" + text +
                     "'");
  std::vector<bool> pattern;
  for (uint32_t l = 0; l < layers; ++l) pattern.push_back(text[l % text.size()] == 'W');
  return pattern;
}

std::string pattern_text(const ModelConfig& c) {
  if (!c.sliding_window) return "none";
  if (c.sliding_window_pattern.empty()) return std::to_string(*c.sliding_window);
  std::string s;
  size_t windowed = 0;
  for (const bool w : c.sliding_window_pattern) {
    s += w ? 'W' : 'F';
    windowed += w ? 1 : 0;
  }
  return std::to_string(*c.sliding_window) + " on " + std::to_string(windowed) + " of " +
         std::to_string(c.n_layers) + " layers (" + s + ")";
}

std::string shape_text(const SynthSpec& spec) {
  const ModelConfig& c = spec.config;
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "%s, dim %u, %u layers, %u/%u heads of %u, ffn %u, vocab %u, context %u, rope "
                "theta %g, window %s, %s vocabulary, %s, seed %llu",
                c.name.c_str(), c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim,
                c.hidden_dim, c.vocab_size, c.context_length, c.rope_theta, pattern_text(c).c_str(),
                spec.vocabulary == TokenizerModel::Tekken ? "Tekken" : "SentencePiece",
                std::string(tensor_type_name(spec.type)).c_str(),
                static_cast<unsigned long long>(spec.seed));
  return buf;
}

// The tensors and size of the file, nothing written.
void print_dry_run(const SynthSpec& spec) {
  const SynthLayout layout = synthetic_model_layout(spec);
  std::printf("%s\n%zu tensors, %llu weights, %s (%llu bytes)\n", shape_text(spec).c_str(),
              layout.tensors.size(), static_cast<unsigned long long>(layout.parameters),
              format_bytes(layout.file_bytes).c_str(),
              static_cast<unsigned long long>(layout.file_bytes));
  for (const auto& t : layout.tensors) {
    std::string dims;
    for (size_t i = 0; i < t.dims.size(); ++i) dims += (i ? " x " : "") + std::to_string(t.dims[i]);
    std::printf("  %-28s %-5s %-16s %llu\n", t.name.c_str(),
                std::string(tensor_type_name(t.type)).c_str(), dims.c_str(),
                static_cast<unsigned long long>(t.n_bytes));
  }
}

}  // namespace

int cmd_synth(const Args& args) {
  std::string preset, output, type = "f16", window, pattern, name, tokenizer;
  int64_t seed = 1, threads = 0;
  int64_t dim = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0,
          context = 0;
  double rope_theta = 0;
  bool tied = false, dry_run = false;
  ArgParser p("synth", "--preset " + preset_list("|") + " -o OUT.gguf [options]",
              "Writes a model with deterministic random weights in real Mistral shapes (the same\n"
              "options and seed give the same bytes), with a synthetic byte-fallback vocabulary.\n"
              "For running and benchmarking the engine at full size without a checkpoint; the\n"
              "text it generates is meaningless.");
  p.option("--preset", &preset, "NAME", preset_list(", ") + " (required)");
  p.option("-o,--output", &output, "OUT.gguf", "file to write (required unless --dry-run)");
  p.option("--type", &type, "TYPE", tensor_type_names() + " for the matrices (default f16)");
  p.option("--seed", &seed, "S", "random seed (default 1)", 0);
  p.flag("--tied", &tied, "no output.weight: the classifier is the token embedding");
  p.option("--dim", &dim, "N", "override the preset's hidden size", 1, 1 << 20);
  p.option("--layers", &layers, "N",
           "override the number of layers (a window pattern repeats over them)", 1, 1 << 16);
  p.option("--heads", &heads, "N", "override the number of query heads", 1, 1 << 16);
  p.option("--kv-heads", &kv_heads, "N", "override the number of key/value heads", 1, 1 << 16);
  p.option("--head-dim", &head_dim, "N", "override the head size", 2, 1 << 16);
  p.option("--ffn", &ffn, "N", "override the feed-forward size", 1, 1 << 20);
  p.option("--vocab", &vocab, "N", "override the vocabulary size (at least 260)", 260, 1 << 22);
  p.option("--context", &context, "N", "override the context length", 1, 1 << 24);
  p.option("--rope-theta", &rope_theta, "X", "override the RoPE base");
  p.option("--sliding-window", &window, "N|none",
           "attention window of the windowed layers (of every layer without a pattern), or\n"
           "none (default: the preset's)");
  p.option("--window-pattern", &pattern, "WF...",
           "which layers use the window, W or F (full attention) per layer, repeated over the\n"
           "layers (e.g. FWWW for Ministral)");
  p.option("--tokenizer", &tokenizer, "sentencepiece|tekken",
           "the synthetic vocabulary's kind (default: the preset's; tekken needs --vocab >= "
           "1256)");
  p.option("--name", &name, "NAME", "general.name (default synthetic-PRESET)");
  p.option("-t,--threads", &threads, "N", "threads (default: all cores)", 1, 1024);
  p.flag("--dry-run", &dry_run, "print the shapes, tensors and file size; write nothing");
  if (!p.parse(args)) return 0;
  if (preset.empty()) throw UsageError("missing --preset " + preset_list("|"));
  if (output.empty() && !dry_run) throw UsageError("missing -o OUT.gguf");

  SynthSpec spec;
  try {
    spec = synth_preset(preset);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  spec.type = parse_tensor_type(type, "--type");
  spec.seed = static_cast<uint64_t>(seed);
  spec.tied_embeddings = tied;
  if (tokenizer == "tekken") {
    spec.vocabulary = TokenizerModel::Tekken;
  } else if (tokenizer == "sentencepiece") {
    spec.vocabulary = TokenizerModel::SentencePiece;
  } else if (!tokenizer.empty()) {
    throw UsageError("--tokenizer must be sentencepiece or tekken, got '" + tokenizer + "'");
  }
  ModelConfig& c = spec.config;
  const std::vector<bool> preset_pattern = c.sliding_window_pattern;
  override_size(&c.dim, dim);
  override_size(&c.n_layers, layers);
  override_size(&c.n_heads, heads);
  override_size(&c.n_kv_heads, kv_heads);
  override_size(&c.head_dim, head_dim);
  override_size(&c.hidden_dim, ffn);
  override_size(&c.vocab_size, vocab);
  override_size(&c.context_length, context);
  if (rope_theta != 0) c.rope_theta = rope_theta;
  c.sliding_window_pattern.clear();
  for (uint32_t l = 0; l < c.n_layers && !preset_pattern.empty(); ++l)
    c.sliding_window_pattern.push_back(preset_pattern[l % preset_pattern.size()]);
  if (!pattern.empty()) c.sliding_window_pattern = parse_pattern(pattern, c.n_layers);
  if (!window.empty()) c.override_sliding_window(parse_recorded_window(window));
  if (!c.sliding_window_pattern.empty() && !c.sliding_window)
    throw UsageError("--window-pattern needs a window (--sliding-window N)");
  if (!name.empty()) c.name = name;
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
  if (dry_run) {
    print_dry_run(spec);
    return 0;
  }

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
  std::printf("wrote %s: %s, %s, in %.1f s\n", output.c_str(), shape_text(spec).c_str(),
              format_bytes(file_bytes).c_str(), seconds());
  return 0;
}

}  // namespace brise::cli
