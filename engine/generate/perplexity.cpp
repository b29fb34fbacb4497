#include "brise/perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>

#include "brise/error.hpp"
#include "brise/output_file.hpp"

namespace brise {
namespace {

// brise's base file: "BRISEKL1", then u32 context, vocab, chunks, first; then per chunk its
// `context` token ids (i32, BOS first) and (context - 1 - first) rows of `vocab` f32
// log-probabilities, little-endian.
constexpr char kMagic[8] = {'B', 'R', 'I', 'S', 'E', 'K', 'L', '1'};
// llama-perplexity's base file (--kl-divergence-base F without --kl-divergence): "_logits_", i32
// n_ctx, n_vocab, n_chunk, the n_chunk x n_ctx token ids of the text (the first of each chunk as
// the text has it, not BOS), then per chunk (n_ctx - 1 - n_ctx/2) rows of nv = 2*((n_vocab+1)/2)
// + 4 u16: two f32 (scale, min_log_prob) and n_vocab codes q, log-prob = scale*q + min_log_prob
// (16-bit: each value is rounded to ~1/65535 of the row's range, up to 16 nats).
constexpr char kLlamaMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
// llama.cpp leaves base log-probabilities at or below -16 out of the KL divergence's sum on its
// files; brise applies the same rule when it reads one, so that both engines are measured alike
// against it (on brise's own f32 files every entry counts).
constexpr float kLlamaLogProbFloor = -16.f;

struct BaseHeader {
  uint32_t context, vocab, chunks, first;
};

template <class T>
std::span<const std::byte> bytes_of(const T* p, size_t n) {
  return {reinterpret_cast<const std::byte*>(p), n * sizeof(T)};
}

// Reads either file chunk by chunk; a file that does not match this run (context, vocabulary,
// too few chunks, other tokens) or is truncated or malformed is a brise::Error.
class BaseReader {
 public:
  BaseReader(const std::filesystem::path& path, const BaseHeader& expected) : path_(path) {
    in_.open(path, std::ios::binary);
    if (!in_) throw Error("cannot open the KL divergence base file " + path.string());
    char magic[8];
    if (!in_.read(magic, 8)) throw not_a_base_file();
    if (std::memcmp(magic, kMagic, 8) == 0) {
      read(&header_, 1);
    } else if (std::memcmp(magic, kLlamaMagic, 8) == 0) {
      llama_ = true;
      read_llama_header();
    } else {
      throw not_a_base_file();
    }
    const auto mismatch = [&](const char* what, uint32_t got, uint32_t want) {
      return Error(path.string() + ": its " + what + " is " + std::to_string(got) +
                   ", this run's " + std::to_string(want) +
                   " (the base must be made with the same text, context "
                   "and tokenizer)");
    };
    const BaseHeader& h = header_;
    if (h.context != expected.context) throw mismatch("context", h.context, expected.context);
    if (h.vocab != expected.vocab) throw mismatch("vocabulary", h.vocab, expected.vocab);
    if (h.chunks < expected.chunks) throw mismatch("chunk count", h.chunks, expected.chunks);
    if (h.first != expected.first) throw mismatch("first scored position", h.first, expected.first);
    if (llama_) check_llama_size();
  }

  // Below this a base log-probability adds nothing to the KL divergence (llama.cpp's rule on
  // its own files; brise's f32 files count every entry).
  float log_prob_floor() const {
    return llama_ ? kLlamaLogProbFloor : -std::numeric_limits<float>::infinity();
  }

  // The next chunk: `text` is the chunk as the text has it, `fed` with BOS first; the file's
  // tokens must equal them. Fills `logp` [scored][vocab].
  void next_chunk(std::span<const int32_t> text, std::span<const int32_t> fed,
                  std::vector<float>& logp, uint32_t chunk) {
    const auto want = llama_ ? text : fed;
    bool same = true;
    if (llama_) {
      same =
          std::equal(want.begin(), want.end(), llama_tokens_.begin() + size_t{chunk} * want.size());
    } else {
      std::vector<int32_t> ids(header_.context);
      read(ids.data(), ids.size());
      same = std::equal(ids.begin(), ids.end(), want.begin());
    }
    if (!same)
      throw Error(path_.string() + ": chunk " + std::to_string(chunk) +
                  " holds other tokens than this run's (another text or tokenizer)");
    const size_t rows = header_.context - 1 - header_.first;
    logp.resize(rows * header_.vocab);
    if (llama_) {
      read_llama_rows(logp, rows, chunk);
    } else {
      read(logp.data(), logp.size());
    }
  }

 private:
  Error not_a_base_file() const {
    return Error(path_.string() +
                 " is not a brise log-probability file (made by --save-logits) nor "
                 "llama-perplexity's (made by --kl-divergence-base without --kl-divergence)");
  }

  void read_llama_header() {
    int32_t n[3];  // n_ctx, n_vocab, n_chunk
    read(n, 3);
    for (int i = 0; i < 3; ++i)
      if (n[i] <= 0)
        throw Error(path_.string() + ": llama-perplexity header holds a non-positive " +
                    (i == 0   ? "context"
                     : i == 1 ? "vocabulary size"
                              : "chunk count") +
                    " (" + std::to_string(n[i]) + ")");
    header_ = {static_cast<uint32_t>(n[0]), static_cast<uint32_t>(n[1]),
               static_cast<uint32_t>(n[2]), static_cast<uint32_t>(n[0]) / 2};
  }

  // Called once the header matches the run (so the sizes are the run's, not the file's whim):
  // the file must hold exactly what its header announces, then its tokens are read.
  void check_llama_size() {
    const uint64_t ctx = header_.context, chunks = header_.chunks;
    row_codes_ = 2 * ((uint64_t{header_.vocab} + 1) / 2) + 4;
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path_, ec);
    if (ec) throw Error("cannot read the size of " + path_.string());
    // A chunk count beyond what the file could hold is caught before it can overflow `want`.
    const uint64_t chunk_bytes = ctx * 4 + (ctx - 1 - header_.first) * row_codes_ * 2;
    const uint64_t want =
        chunks <= size / chunk_bytes ? 8 + 12 + chunks * chunk_bytes : ~uint64_t{0};
    if (size < want)
      throw Error(path_.string() + " is truncated: its header announces " + std::to_string(chunks) +
                  " chunks of " + std::to_string(ctx) + " tokens, more than its " +
                  std::to_string(size) + " bytes hold");
    if (size > want)
      throw Error(path_.string() + " holds " + std::to_string(size - want) +
                  " bytes more than its header announces (not a llama-perplexity base file)");
    llama_tokens_.resize(chunks * ctx);
    read(llama_tokens_.data(), llama_tokens_.size());
  }

  void read_llama_rows(std::vector<float>& logp, size_t rows, uint32_t chunk) {
    codes_.resize(rows * row_codes_);
    read(codes_.data(), codes_.size());
    const size_t vocab = header_.vocab;
    for (size_t r = 0; r < rows; ++r) {
      const uint16_t* row = &codes_[r * row_codes_];
      float scale, min_log_prob;
      std::memcpy(&scale, row, 4);
      std::memcpy(&min_log_prob, row + 2, 4);
      if (!std::isfinite(scale) || !std::isfinite(min_log_prob) || scale < 0)
        throw Error(path_.string() + ": chunk " + std::to_string(chunk) + " row " +
                    std::to_string(r) + " holds a malformed scale or minimum (" +
                    std::to_string(scale) + ", " + std::to_string(min_log_prob) + ")");
      float* out = &logp[r * vocab];
      for (size_t v = 0; v < vocab; ++v)
        out[v] = scale * static_cast<float>(row[4 + v]) + min_log_prob;
    }
  }

  template <class T>
  void read(T* p, size_t n) {
    if (!in_.read(reinterpret_cast<char*>(p), static_cast<std::streamsize>(n * sizeof(T))))
      throw Error(path_.string() + " is truncated");
  }
  std::filesystem::path path_;
  std::ifstream in_;
  BaseHeader header_{};
  bool llama_ = false;
  uint64_t row_codes_ = 0;
  std::vector<int32_t> llama_tokens_;
  std::vector<uint16_t> codes_;
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

// Interpolated between the two nearest ranks, as llama-perplexity does (its median is the mean
// of the two middle values of an even count), so both engines' figures are read alike.
double percentile(std::vector<float> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double at = q * static_cast<double>(v.size() - 1);
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(at));
  const double frac = at - static_cast<double>(k);
  return (1 - frac) * v[k] + frac * v[std::min(k + 1, v.size() - 1)];
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
  const float floor = base ? base->log_prob_floor() : 0.f;

  double nll = 0, nll2 = 0, base_nll = 0, kld_sum = 0, kld_sum2 = 0;
  uint64_t count = 0, same_top = 0;
  std::vector<float> klds, logp_row(vocab), base_logp;
  std::vector<int32_t> chunk(ctx);
  for (uint32_t c = 0; c < n_chunks; ++c) {
    std::copy_n(tokens.begin() + size_t{c} * ctx, ctx, chunk.begin());
    chunk[0] = bos;
    if (base) base->next_chunk(tokens.subspan(size_t{c} * ctx, ctx), chunk, base_logp, c);
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
          if (!(b[k] > floor)) continue;
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
