#include "brise/perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#include "brise/error.hpp"
#include "brise/output_file.hpp"

namespace brise {
namespace {

// The base file: "BRISEKL1", then u32 context, vocab, chunks, first; then per chunk its
// `context` token ids (i32, BOS first) and (context - 1 - first) rows of `vocab` f32
// log-probabilities, little-endian.
constexpr char kMagic[8] = {'B', 'R', 'I', 'S', 'E', 'K', 'L', '1'};

struct BaseHeader {
  uint32_t context, vocab, chunks, first;
};

template <class T>
std::span<const std::byte> bytes_of(const T* p, size_t n) {
  return {reinterpret_cast<const std::byte*>(p), n * sizeof(T)};
}

class BaseReader {
 public:
  BaseReader(const std::filesystem::path& path, const BaseHeader& expected) : path_(path) {
    in_.open(path, std::ios::binary);
    if (!in_) throw Error("cannot open the KL divergence base file " + path.string());
    char magic[8];
    BaseHeader h{};
    if (!in_.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0)
      throw Error(path.string() + " is not a brise log-probability file (made by --save-logits)");
    read(&h, 1);
    const auto mismatch = [&](const char* what, uint32_t got, uint32_t want) {
      return Error(path.string() + ": its " + what + " is " + std::to_string(got) +
                   ", this run's " + std::to_string(want) +
                   " (the base must be made with the same text, context "
                   "and tokenizer)");
    };
    if (h.context != expected.context) throw mismatch("context", h.context, expected.context);
    if (h.vocab != expected.vocab) throw mismatch("vocabulary", h.vocab, expected.vocab);
    if (h.chunks < expected.chunks) throw mismatch("chunk count", h.chunks, expected.chunks);
    if (h.first != expected.first) throw mismatch("first scored position", h.first, expected.first);
    header_ = h;
  }

  // The next chunk: its tokens must equal `tokens`; fills `logp` [scored][vocab].
  void next_chunk(std::span<const int32_t> tokens, std::vector<float>& logp, uint32_t chunk) {
    std::vector<int32_t> ids(header_.context);
    read(ids.data(), ids.size());
    if (!std::equal(ids.begin(), ids.end(), tokens.begin()))
      throw Error(path_.string() + ": chunk " + std::to_string(chunk) +
                  " holds other tokens than this run's (another text or tokenizer)");
    logp.resize(size_t{header_.context - 1 - header_.first} * header_.vocab);
    read(logp.data(), logp.size());
  }

 private:
  template <class T>
  void read(T* p, size_t n) {
    if (!in_.read(reinterpret_cast<char*>(p), static_cast<std::streamsize>(n * sizeof(T))))
      throw Error(path_.string() + " is truncated");
  }
  std::filesystem::path path_;
  std::ifstream in_;
  BaseHeader header_{};
};

// log-softmax of one row in double: logp[v] = l[v] - max - log(sum exp(l - max)).
double log_sum_exp(const float* logits, size_t vocab, float& max_out, size_t& argmax) {
  float mx = logits[0];
  argmax = 0;
  for (size_t v = 1; v < vocab; ++v)
    if (logits[v] > mx) mx = logits[v], argmax = v;
  double sum = 0;
  for (size_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(logits[v]) - mx);
  max_out = mx;
  return std::log(sum);
}

double percentile(std::vector<float> v, double q) {
  if (v.empty()) return 0;
  const size_t k =
      std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

PerplexityResult perplexity(const std::shared_ptr<const Model>& model,
                            std::span<const int32_t> tokens, const PerplexityOptions& options,
                            const PerplexityProgress& progress) {
  const uint32_t ctx = options.context;
  if (ctx < 4) throw Error("perplexity: the context must be at least 4 tokens");
  if (tokens.size() < 2 * size_t{ctx})
    throw Error("perplexity: the text is " + std::to_string(tokens.size()) +
                " tokens; a context of " + std::to_string(ctx) + " needs at least " +
                std::to_string(2 * size_t{ctx}));
  const uint32_t vocab = model->config().vocab_size;
  const int32_t bos = model->has_tokenizer() ? model->tokenizer().bos_id() : 1;
  uint32_t n_chunks = static_cast<uint32_t>(tokens.size() / ctx);
  if (options.chunks) n_chunks = std::min(n_chunks, std::max<uint32_t>(*options.chunks, 1));
  const uint32_t first = ctx / 2;
  const BaseHeader header{ctx, vocab, n_chunks, first};

  SessionOptions so = options.session;
  so.context_length = std::max(ctx, so.context_length.value_or(0));
  Session session(model, so);

  std::optional<OutputFile> save;
  if (options.save_base) {
    save.emplace(*options.save_base);
    save->write(bytes_of(kMagic, 8));
    save->write(bytes_of(&header, 1));
  }
  std::optional<BaseReader> base;
  if (options.kl_base) base.emplace(*options.kl_base, header);

  double nll = 0, nll2 = 0, base_nll = 0, kld_sum = 0, kld_sum2 = 0;
  uint64_t count = 0, same_top = 0;
  std::vector<float> klds, logp_row(vocab), base_logp;
  std::vector<int32_t> chunk(ctx);
  for (uint32_t c = 0; c < n_chunks; ++c) {
    std::copy_n(tokens.begin() + size_t{c} * ctx, ctx, chunk.begin());
    chunk[0] = bos;
    if (base) base->next_chunk(chunk, base_logp, c);
    if (save) save->write(bytes_of(chunk.data(), chunk.size()));
    session.reset();
    session.prefill_all_logits(chunk, [&](size_t j, std::span<const float> logits) {
      if (j < first || j + 1 >= ctx) return;
      float mx;
      size_t top;
      const double lse = log_sum_exp(logits.data(), vocab, mx, top);
      const int32_t next = chunk[j + 1];
      const double v = -(static_cast<double>(logits[static_cast<size_t>(next)]) - mx - lse);
      nll += v;
      nll2 += v * v;
      ++count;
      if (save) {
        for (size_t k = 0; k < vocab; ++k)
          logp_row[k] = static_cast<float>(static_cast<double>(logits[k]) - mx - lse);
        save->write(bytes_of(logp_row.data(), vocab));
      }
      if (base) {
        const float* b = &base_logp[(j - first) * vocab];
        double kld = 0;
        size_t base_top = 0;
        for (size_t k = 0; k < vocab; ++k) {
          if (b[k] > b[base_top]) base_top = k;
          const double lp = static_cast<double>(logits[k]) - mx - lse;
          kld += std::exp(static_cast<double>(b[k])) * (static_cast<double>(b[k]) - lp);
        }
        base_nll -= b[static_cast<size_t>(next)];
        kld_sum += kld;
        kld_sum2 += kld * kld;
        klds.push_back(static_cast<float>(kld));
        same_top += base_top == top;
      }
    });
    if (progress) progress(c + 1, n_chunks, std::exp(nll / static_cast<double>(count)));
  }
  if (save) save->commit();

  PerplexityResult r;
  r.chunks = n_chunks;
  r.tokens = count;
  const double n = static_cast<double>(count);
  const double mean = nll / n;
  r.ppl = std::exp(mean);
  const double var = nll2 / n - mean * mean;
  r.ppl_err = var > 0 && count > 1 ? std::sqrt(var / (n - 1)) * r.ppl : 0;
  if (base) {
    KlDivergence k;
    k.mean = kld_sum / n;
    const double kvar = kld_sum2 / n - k.mean * k.mean;
    k.err = kvar > 0 && count > 1 ? std::sqrt(kvar / (n - 1)) : 0;
    k.median = percentile(klds, 0.5);
    k.p99 = percentile(klds, 0.99);
    k.max = klds.empty() ? 0 : *std::max_element(klds.begin(), klds.end());
    k.top1_agreement = static_cast<double>(same_top) / n;
    k.base_ppl = std::exp(base_nll / n);
    k.ppl_ratio = r.ppl / k.base_ppl;
    r.kl = k;
  }
  return r;
}

}  // namespace brise
