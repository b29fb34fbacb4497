// Options shared by the commands that run a model (generate, chat, logits, bench): the model
// file, the session settings and the sampling settings, each registered on an ArgParser and
// turned into brise's structs after parsing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/sampler.hpp"
#include "brise/session.hpp"
#include "cli_args.hpp"

namespace brise::cli {

struct SessionArgs {
  std::string model;           // -m, required
  int64_t threads = 0;         // 0: OpenMP's default
  std::string sliding_window;  // empty: the model's; a number or "none"
  int64_t chunk = 512;         // prefill chunk
  int64_t ctx_size = 0;        // 0: the model's context length
  std::string kv_type = "f32";
  bool exact = false;

  // Registers -m, -t, --sliding-window, --chunk, --ctx-size, --kv-type, --exact.
  void add_to(ArgParser& parser);
  // After parsing: UsageError for a missing -m or malformed values.
  SessionOptions session_options() const;
  // Loads the model (brise::Error naming the file on failure).
  std::shared_ptr<const Model> load_model() const;
};

struct SamplingArgs {
  double temperature = 0.8;
  int64_t top_k = 40;
  double top_p = 0.95;
  double min_p = 0.05;
  double repeat_penalty = 1.0;
  int64_t repeat_last_n = 64;
  std::string seed;  // empty: a random seed

  // Registers --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed.
  void add_to(ArgParser& parser);
  // After parsing: UsageError for values the sampler rejects. Draws the seed when none was given.
  SamplingParams params() const;
  // After parsing: generate's options with these sampling settings and at most `max_tokens`.
  GenerateOptions generate_options(int64_t max_tokens) const;
};

}  // namespace brise::cli
