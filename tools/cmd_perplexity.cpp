// brise perplexity -m M.gguf -f TEXT [-c N] [--chunks K] [--json]
//                  [--save-logits FILE | --kl-divergence-base FILE]: llama-perplexity's measure.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "brise/error.hpp"
#include "brise/perplexity.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "session_args.hpp"

namespace brise::cli {

int cmd_perplexity(const Args& args) {
  SessionArgs session_args;
  std::string text_file, save_logits, kl_base;
  int64_t context = 512, chunks = 0;
  bool json = false;
  ArgParser p(
      "perplexity", "-m MODEL.gguf -f TEXT [options]",
      "Perplexity of a text as llama.cpp's llama-perplexity computes it: the text is\n"
      "tokenized once with BOS, cut into chunks of -c tokens each starting with BOS, and\n"
      "every chunk's second half is scored. Prints PPL +/- its standard error, a progress\n"
      "line per chunk on stderr; with --kl-divergence-base also the KL divergence to a\n"
      "base model's log-probabilities saved earlier with --save-logits (same text and -c).");
  session_args.add_to(p);
  p.option("-f,--file", &text_file, "TEXT", "the text (UTF-8) to score (required)");
  p.option("-c,--context", &context, "N", "tokens per chunk (default: 512)", 4, 1 << 20);
  p.option("--chunks", &chunks, "K", "score at most K chunks (default: all)", 0, 1 << 30);
  p.option("--save-logits", &save_logits, "FILE",
           "write every scored position's log-probabilities (the base of a KL divergence)");
  p.option("--kl-divergence-base", &kl_base, "FILE",
           "compare with a base model's log-probabilities from --save-logits (or from\n"
           "      llama-perplexity --kl-divergence-base FILE without --kl-divergence)");
  p.flag("--json", &json,
         "print one JSON object: ppl, ppl_err, chunks, tokens (and kld_mean, kld_err, "
         "kld_median,\n      kld_p99, kld_max, top1_agreement, ppl_ratio with a base)");
  if (!p.parse(args)) return 0;
  if (text_file.empty()) throw UsageError("missing -f TEXT");
  if (!save_logits.empty() && !kl_base.empty())
    throw UsageError("--save-logits and --kl-divergence-base are exclusive");

  std::ifstream in(text_file, std::ios::binary);
  if (!in) throw Error("cannot read " + text_file);
  std::stringstream text;
  text << in.rdbuf();
  PerplexityOptions options;
  options.context = static_cast<uint32_t>(context);
  if (chunks > 0) options.chunks = static_cast<uint32_t>(chunks);
  options.session = session_args.session_options();
  options.session.context_length = options.context;
  if (!save_logits.empty()) options.save_base = save_logits;
  if (!kl_base.empty()) options.kl_base = kl_base;

  const auto model = session_args.load_model();
  const auto tokens = model->tokenizer().encode(text.str(), /*add_bos=*/true);
  std::fprintf(stderr, "brise perplexity: %zu tokens, chunks of %lld\n", tokens.size(),
               static_cast<long long>(context));
  const auto r = perplexity(model, tokens, options, [](uint32_t done, uint32_t all, double ppl) {
    std::fprintf(stderr, "[%u/%u] PPL %.4f\n", done, all, ppl);
  });

  if (json) {
    nlohmann::json j = {{"ppl", r.ppl},
                        {"ppl_err", r.ppl_err},
                        {"chunks", r.chunks},
                        {"tokens", r.tokens},
                        {"context", context}};
    if (r.kl) {
      j["kld_mean"] = r.kl->mean;
      j["kld_err"] = r.kl->err;
      j["kld_median"] = r.kl->median;
      j["kld_p99"] = r.kl->p99;
      j["kld_max"] = r.kl->max;
      j["top1_agreement"] = r.kl->top1_agreement;
      j["ppl_base"] = r.kl->base_ppl;
      j["ppl_ratio"] = r.kl->ppl_ratio;
    }
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("PPL = %.4f +/- %.5f (%u chunks of %lld tokens, %llu tokens scored)\n", r.ppl,
              r.ppl_err, r.chunks, static_cast<long long>(context),
              static_cast<unsigned long long>(r.tokens));
  if (r.kl) {
    std::printf("KL divergence: mean %.6f +/- %.6f, median %.6f, 99th percentile %.6f, max %.6f\n",
                r.kl->mean, r.kl->err, r.kl->median, r.kl->p99, r.kl->max);
    std::printf("top-1 agreement: %.3f %%\n", 100 * r.kl->top1_agreement);
    std::printf("PPL ratio: %.5f (base PPL %.4f)\n", r.kl->ppl_ratio, r.kl->base_ppl);
  }
  return 0;
}

}  // namespace brise::cli
