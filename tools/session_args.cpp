#include "session_args.hpp"

#include <charconv>
#include <random>

#include "brise/error.hpp"
#include "format.hpp"
#include "progress.hpp"

namespace brise::cli {

void SessionArgs::add_to(ArgParser& p) {
  p.option("-m,--model", &model, "MODEL.gguf", "model file (required)");
  p.option("-t,--threads", &threads, "N", "threads (default: OpenMP's default, usually all cores)",
           1, 4096);
  p.option("--sliding-window", &sliding_window, "W|none",
           "attention window W (rolling KV cache of W positions) of the windowed layers (of\n"
           "      every layer when the model has no per-layer pattern), or 'none' for full\n"
           "      attention on every layer (default: the model's)");
  p.option("--chunk", &chunk, "N", "tokens per forward pass during prefill (default: 512)", 1,
           1 << 20);
  p.option("--ctx-size", &ctx_size, "N",
           "most positions a session with a full-attention layer holds (default: the model's\n"
           "      context)",
           1, 1 << 24);
  p.option("--kv-type", &kv_type, "f32|f16|q8_0",
           "KV cache element type (default: f32; q8_0: int8 blocks of 32 with an fp16 scale,\n"
           "      keys dotted with int8 queries, heads of a multiple of 32)");
  p.flag("--exact", &exact,
         "multiply quantized weights with f32 activations instead of int8 ones (slower;\n"
         "      no activation rounding)");
}

SessionOptions SessionArgs::session_options() const {
  if (model.empty()) throw UsageError("missing -m MODEL.gguf");
  SessionOptions o;
  o.threads = static_cast<int>(threads);
  o.prefill_chunk = static_cast<uint32_t>(chunk);
  o.exact = exact;
  if (ctx_size > 0) o.context_length = static_cast<uint32_t>(ctx_size);
  if (!sliding_window.empty()) {
    if (sliding_window == "none") {
      o.sliding_window = std::optional<uint32_t>{};
    } else {
      uint32_t w = 0;
      const char* end = sliding_window.data() + sliding_window.size();
      const auto [ptr, ec] = std::from_chars(sliding_window.data(), end, w);
      if (ec != std::errc() || ptr != end || w == 0)
        throw UsageError("--sliding-window must be a positive number or 'none', got '" +
                         sliding_window + "'");
      o.sliding_window = w;
    }
  }
  if (kv_type == "f32")
    o.kv_type = TensorType::F32;
  else if (kv_type == "f16")
    o.kv_type = TensorType::F16;
  else if (kv_type == "q8_0")
    o.kv_type = TensorType::Q8_0;
  else
    throw UsageError("--kv-type must be f32, f16 or q8_0, got '" + kv_type + "'");
  return o;
}

std::shared_ptr<const Model> SessionArgs::load_model() const {
  if (model.empty()) throw UsageError("missing -m MODEL.gguf");
  // On a terminal, loading shows a progress line: quantized matrices are read and packed at load,
  // the other weights paged in (a 7B model takes a while to come off the disk); elsewhere they
  // are paged in on demand.
  ProgressLine line;
  auto loaded = Model::load(model, [&](uint64_t done, uint64_t total) {
    if (line.enabled())
      line.update("packing " + model + ": " + format_bytes(done) + " / " + format_bytes(total),
                  done == total);
  });
  if (line.enabled()) {
    loaded->prefetch([&](uint64_t done, uint64_t total) {
      line.update("loading " + model + ": " + format_bytes(done) + " / " + format_bytes(total),
                  done == total);
    });
    line.finish();
  }
  return loaded;
}

void SamplingArgs::add_to(ArgParser& p) {
  p.option("--temp", &temperature, "T", "temperature; 0 means greedy (default: 0.8)");
  p.option("--top-k", &top_k, "K", "keep the K most likely tokens, 0 = off (default: 40)", 0,
           INT32_MAX);
  p.option("--top-p", &top_p, "P",
           "keep the smallest set of tokens whose probability reaches P, 1 = off (default: 0.95)");
  p.option("--min-p", &min_p, "P",
           "drop tokens less likely than P times the most likely, 0 = off (default: 0.05)");
  p.option("--repeat-penalty", &repeat_penalty, "R",
           "divide positive / multiply negative logits of recent tokens by R, 1 = off\n"
           "      (default: 1.0)");
  p.option("--repeat-last-n", &repeat_last_n, "N",
           "how many recent tokens the penalty looks at (default: 64)", 0, INT32_MAX);
  p.option("--seed", &seed, "S",
           "random seed; the same seed and options give the same text (default: random,\n"
           "      reported on stderr)");
}

SamplingParams SamplingArgs::params() const {
  SamplingParams p;
  p.temperature = static_cast<float>(temperature);
  p.top_k = static_cast<int32_t>(top_k);
  p.top_p = static_cast<float>(top_p);
  p.min_p = static_cast<float>(min_p);
  p.repeat_penalty = static_cast<float>(repeat_penalty);
  p.repeat_last_n = static_cast<int32_t>(repeat_last_n);
  if (seed.empty()) {
    std::random_device device;
    p.seed = (static_cast<uint64_t>(device()) << 32) ^ device();
  } else {
    const char* end = seed.data() + seed.size();
    const auto [ptr, ec] = std::from_chars(seed.data(), end, p.seed);
    if (ec != std::errc() || ptr != end)
      throw UsageError("--seed expects a non-negative integer, got '" + seed + "'");
  }
  try {
    Sampler check(p);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  return p;
}

GenerateOptions SamplingArgs::generate_options(int64_t max_tokens) const {
  GenerateOptions options;
  options.sampling = params();
  options.max_tokens = static_cast<uint32_t>(max_tokens);
  return options;
}

}  // namespace brise::cli
