// Perplexity of a text the way llama.cpp's llama-perplexity computes it, and the KL divergence
// of a model's predictions to a base model's (how much a quantization changes the model).
//
// The text is tokenized once with BOS and cut into chunks of `context` tokens; each chunk's first
// token is replaced by BOS, the chunk is fed from position 0, and the tokens of its second half
// are scored: the prediction at positions first .. context-2 (first = context/2) of the token
// after it. PPL = exp(mean negative log-likelihood), its error = PPL x the standard error of the
// mean NLL.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "brise/model.hpp"
#include "brise/session.hpp"

namespace brise {

struct PerplexityOptions {
  uint32_t context = 512;          // tokens per chunk (>= 4)
  std::optional<uint32_t> chunks;  // at most this many chunks (default: all whole chunks)
  SessionOptions session;          // threads, exact, kv type, prefill chunk
  // --save-logits: every scored position's log-probabilities (f32, the whole vocabulary) are
  // written here, with the chunks' tokens, for a later run's KL divergence. Written to a
  // temporary file renamed at the end.
  std::optional<std::filesystem::path> save_base;
  // --kl-divergence-base: a file written by save_base on the same text, tokenizer and context,
  // or llama-perplexity's base file (`--kl-divergence-base F` without --kl-divergence: 16-bit
  // log-probabilities, told apart by its header; with it the KL divergence leaves out base
  // log-probabilities <= -16 as llama.cpp does); read chunk by chunk, so a long text never needs
  // its logits in memory.
  std::optional<std::filesystem::path> kl_base;
};

struct KlDivergence {
  double mean = 0, err = 0;             // mean KL(base || model) per scored token, its std. error
  double median = 0, p99 = 0, max = 0;  // of the per-token KL divergences
  double top1_agreement = 0;            // fraction of positions with the same argmax (0..1)
  double base_ppl = 0;                  // the base model's PPL on the same tokens
  double ppl_ratio = 0;                 // PPL / base PPL
};

struct PerplexityResult {
  double ppl = 0, ppl_err = 0;
  uint32_t chunks = 0;
  uint64_t tokens = 0;  // scored tokens: chunks x (context - 1 - context/2)
  std::optional<KlDivergence> kl;
};

// Progress after each chunk: (chunks done, chunks in all, PPL so far).
using PerplexityProgress = std::function<void(uint32_t, uint32_t, double)>;

// `tokens`: the whole text, tokenized with BOS. Throws brise::Error when the text is shorter
// than two chunks, on a context the model cannot hold, on a base file that does not match (other
// text, tokenizer, context or vocabulary) or is truncated, and on write errors.
PerplexityResult perplexity(const std::shared_ptr<const Model>& model,
                            std::span<const int32_t> tokens, const PerplexityOptions& options,
                            const PerplexityProgress& progress = {});

}  // namespace brise
