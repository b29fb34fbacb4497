// brise perplexity against llama.cpp's llama-perplexity on the same files and text
// (../shared/reference/tiny256/llama-perplexity.json: -c 128 on val-stories.txt), and its KL
// divergence against the numbers llama-perplexity reports for the same quantized files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/json_text.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

class Perplexity : public ::testing::Test {
 protected:
  void SetUp() override {
    BRISE_REQUIRE_TESTDATA(dir);
    data_ = dir;
    reference_ =
        test::parse_json(test::read_file_text(data_ / "reference/tiny256/llama-perplexity.json"));
    scratch_ = test::scratch_dir("perplexity");
  }
  fs::path model(const std::string& name) const {
    return data_ / "models/tiny256/gguf" / ("tiny256-" + name + ".gguf");
  }
  test::CommandResult run(const std::string& args) const {
    return test::run_command(quote(test::cli_path().string()) + " perplexity " + args +
                             " -t 2 --json");
  }
  std::string text() const { return quote((data_ / "reference/tiny256/val-stories.txt").string()); }
  fs::path data_, scratch_;
  json reference_;
};

TEST_F(Perplexity, AgreesWithLlamaPerplexityAndItsKlDivergence) {
  const fs::path base = scratch_ / "f32.kl";
  const auto f32 = run("-m " + quote(model("f32").string()) + " -f " + text() +
                       " -c 128 --save-logits " + quote(base.string()));
  ASSERT_EQ(f32.status, 0) << f32.err;
  const json a = test::parse_json(f32.out);
  const double want = reference_["results"]["F32"]["ppl"];
  EXPECT_NEAR(a["ppl"].get<double>(), want, 0.001 * want);  // within 0.1 %
  EXPECT_NEAR(a["ppl_err"].get<double>(), reference_["results"]["F32"]["ppl_err"].get<double>(),
              0.002);
  EXPECT_EQ(a["chunks"], 97);
  EXPECT_EQ(a["tokens"], 97 * 63);

  // pure Q4_0: PPL within 1 %, and the KL divergence / top-1 agreement near llama.cpp's (both
  // multiply with int8 activations; their roundings differ in detail).
  const auto q4 = run("-m " + quote(model("pure-Q4_0").string()) + " -f " + text() +
                      " -c 128 --kl-divergence-base " + quote(base.string()));
  ASSERT_EQ(q4.status, 0) << q4.err;
  const json b = test::parse_json(q4.out);
  const json& ref = reference_["results"]["pure-Q4_0"];
  EXPECT_NEAR(b["ppl"].get<double>(), ref["ppl"].get<double>(), 0.01 * ref["ppl"].get<double>());
  EXPECT_NEAR(b["kld_mean"].get<double>(), ref["kld_mean"].get<double>(),
              0.2 * ref["kld_mean"].get<double>());
  EXPECT_NEAR(100 * b["top1_agreement"].get<double>(), ref["same_top_p"].get<double>(), 1.5);
  EXPECT_NEAR(b["ppl_ratio"].get<double>(), b["ppl"].get<double>() / a["ppl"].get<double>(), 1e-9);
  EXPECT_GT(b["kld_err"].get<double>(), 0);
  EXPECT_LE(b["kld_median"].get<double>(), b["kld_p99"].get<double>());
  EXPECT_LE(b["kld_p99"].get<double>(), b["kld_max"].get<double>());

  // A model against its own log-probabilities: no divergence at all.
  const auto self = run("-m " + quote(model("f32").string()) + " -f " + text() +
                        " -c 128 --chunks 3 --kl-divergence-base " + quote(base.string()));
  ASSERT_EQ(self.status, 0) << self.err;
  const json s = test::parse_json(self.out);
  EXPECT_LT(std::abs(s["kld_mean"].get<double>()), 1e-6);
  EXPECT_EQ(s["top1_agreement"], 1.0);
  EXPECT_NEAR(s["ppl_ratio"].get<double>(), 1.0, 1e-6);
}

TEST_F(Perplexity, MismatchedOrBrokenInputsAreClearErrors) {
  const fs::path base = scratch_ / "c64.kl";
  const std::string m = quote(model("f32").string());
  ASSERT_EQ(
      run("-m " + m + " -f " + text() + " -c 64 --chunks 2 --save-logits " + quote(base.string()))
          .status,
      0);
  // Another context than the base's.
  auto r = run("-m " + m + " -f " + text() + " -c 128 --chunks 2 --kl-divergence-base " +
               quote(base.string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("context"), std::string::npos) << r.err;
  // Another text.
  const fs::path other = scratch_ / "other.txt";
  {
    std::ofstream o(other);
    for (int i = 0; i < 200; ++i) o << "The cat sat on the mat and looked at the big red ball. ";
  }
  r = run("-m " + m + " -f " + quote(other.string()) + " -c 64 --chunks 2 --kl-divergence-base " +
          quote(base.string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("other tokens"), std::string::npos) << r.err;
  // A truncated base.
  const fs::path cut = scratch_ / "cut.kl";
  fs::copy_file(base, cut);
  fs::resize_file(cut, fs::file_size(base) / 2);
  r = run("-m " + m + " -f " + text() + " -c 64 --chunks 2 --kl-divergence-base " +
          quote(cut.string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  // Not a base file at all; a text too short for two chunks.
  r = run("-m " + m + " -f " + text() + " -c 64 --kl-divergence-base " + text());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("not a brise log-probability file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nor llama-perplexity's"), std::string::npos) << r.err;
  const fs::path tiny = scratch_ / "tiny.txt";
  std::ofstream(tiny) << "Once upon a time.";
  r = run("-m " + m + " -f " + quote(tiny.string()) + " -c 64");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("needs at least 128"), std::string::npos) << r.err;
  // A failed run leaves no base file behind.
  r = run("-m " + m + " -f " + quote(tiny.string()) + " -c 64 --save-logits " +
          quote((scratch_ / "never.kl").string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_FALSE(fs::exists(scratch_ / "never.kl"));
}

// llama-perplexity's base file (`--kl-divergence-base F` without --kl-divergence), restated from
// its tools/perplexity/perplexity.cpp: "_logits_", i32 n_ctx, n_vocab, n_chunk, the text's
// n_chunk x n_ctx token ids, then per chunk (n_ctx - 1 - n_ctx/2) rows of
// nv = 2*((n_vocab+1)/2) + 4 u16: f32 scale, f32 min_log_prob, n_vocab codes q (log-prob =
// scale*q + min_log_prob), padding.
struct LlamaBase {
  int32_t ctx = 0, vocab = 0, chunks = 0;
  std::vector<int32_t> tokens;
  std::vector<uint16_t> rows;  // chunks x rows per chunk x nv
  size_t nv() const { return 2 * ((static_cast<size_t>(vocab) + 1) / 2) + 4; }
  std::vector<std::byte> bytes() const {
    std::vector<std::byte> out(8);
    std::memcpy(out.data(), "_logits_", 8);
    const auto put = [&](const void* p, size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      out.insert(out.end(), b, b + n);
    };
    const int32_t head[3] = {ctx, vocab, chunks};
    put(head, sizeof head);
    put(tokens.data(), tokens.size() * 4);
    put(rows.data(), rows.size() * 2);
    return out;
  }
};

// The model's own log-probabilities, read back from a brise base file (f32, restated layout:
// "BRISEKL1", u32 context, vocab, chunks, first, then per chunk its token ids and rows).
struct BriseBase {
  uint32_t ctx = 0, vocab = 0, chunks = 0, first = 0;
  std::vector<std::vector<float>> rows;  // every scored position, in order
};

BriseBase read_brise_base(const fs::path& path) {
  const std::vector<std::byte> b = test::read_file_bytes(path);
  BriseBase base;
  size_t at = 8;
  const auto get = [&](void* p, size_t n) {
    if (at + n > b.size()) throw std::runtime_error("short brise base file");
    std::memcpy(p, b.data() + at, n);
    at += n;
  };
  uint32_t head[4];
  get(head, sizeof head);
  base.ctx = head[0], base.vocab = head[1], base.chunks = head[2], base.first = head[3];
  for (uint32_t c = 0; c < base.chunks; ++c) {
    at += size_t{base.ctx} * 4;
    for (uint32_t r = 0; r + 1 + base.first < base.ctx; ++r) {
      base.rows.emplace_back(base.vocab);
      get(base.rows.back().data(), size_t{base.vocab} * 4);
    }
  }
  return base;
}

TEST_F(Perplexity, ReadsLlamaPerplexityBaseFilesAndRefusesMismatches) {
  const std::string m = quote(model("f32").string());
  const std::string run_args = "-m " + m + " -f " + text() + " -c 64 --chunks 2 ";
  // The model's log-probabilities on 2 chunks of 64 (31 scored positions each), and the text's
  // tokens from the tokenizer alone.
  const fs::path own = scratch_ / "own.kl";
  ASSERT_EQ(run(run_args + "--save-logits " + quote(own.string())).status, 0);
  const BriseBase model_lp = read_brise_base(own);
  ASSERT_EQ(model_lp.rows.size(), 62u);
  const auto tok = test::run_command(quote(test::cli_path().string()) + " tokenize -m " + m +
                                     " -f " + text() + " --bos");
  ASSERT_EQ(tok.status, 0) << tok.err;
  std::vector<int32_t> ids;
  std::istringstream tok_in(tok.out);
  for (int32_t id; tok_in >> id;) ids.push_back(id);
  ASSERT_GE(ids.size(), 128u);

  // Hand-chosen base rows: a top token of log-prob log(0.6) (the model's own argmax on even
  // positions, the token after it on odd ones), the token after that at -20 (below llama.cpp's
  // -16 floor: left out of the sum), every other token log(0.4 / (vocab - 2)).
  LlamaBase base{64, static_cast<int32_t>(model_lp.vocab), 2, {ids.begin(), ids.begin() + 128}, {}};
  const int vocab = base.vocab;
  const float min_lp = -20.f, scale = static_cast<float>((std::log(0.6) + 20) / 65535);
  const auto code = [&](double lp) {
    return static_cast<uint16_t>(std::lround((lp + 20) / static_cast<double>(scale)));
  };
  double kld_sum = 0, base_nll = 0, kld_max = 0;
  int same_top = 0;
  for (size_t g = 0; g < model_lp.rows.size(); ++g) {
    const std::vector<float>& lp = model_lp.rows[g];
    const int model_top = static_cast<int>(std::max_element(lp.begin(), lp.end()) - lp.begin());
    const int top = (model_top + static_cast<int>(g % 2)) % vocab, low = (top + 1) % vocab;
    std::vector<uint16_t> row(base.nv(), 0);
    std::memcpy(&row[0], &scale, 4);
    std::memcpy(&row[2], &min_lp, 4);
    for (int v = 0; v < vocab; ++v)
      row[4 + static_cast<size_t>(v)] = v == top   ? code(std::log(0.6))
                                        : v == low ? 0
                                                   : code(std::log(0.4 / (vocab - 2)));
    base.rows.insert(base.rows.end(), row.begin(), row.end());
    // KL(base || model) = sum over base log-probs > -16 of exp(b) (b - model log-prob).
    double kld = 0;
    for (int v = 0; v < vocab; ++v) {
      const double b = static_cast<double>(scale) * row[4 + static_cast<size_t>(v)] + min_lp;
      if (b > -16) kld += std::exp(b) * (b - lp[static_cast<size_t>(v)]);
    }
    kld_sum += kld;
    kld_max = std::max(kld_max, kld);
    same_top += top == model_top;
    const size_t chunk = g / 31, next = chunk * 64 + 32 + g % 31 + 1;
    base_nll -= static_cast<double>(scale) * row[4 + static_cast<size_t>(ids[next])] + min_lp;
  }
  ASSERT_EQ(same_top, 31);
  const fs::path llama = scratch_ / "llama.kld";
  test::write_file_bytes(llama, base.bytes());
  const auto ok = run(run_args + "--kl-divergence-base " + quote(llama.string()));
  ASSERT_EQ(ok.status, 0) << ok.err;
  const json k = test::parse_json(ok.out);
  // The model's log-probabilities went through f32 (the base file) and the dequantized base is
  // f32 in brise: 1e-5 nats covers both roundings over the vocabulary.
  EXPECT_NEAR(k["kld_mean"].get<double>(), kld_sum / 62, 1e-5);
  EXPECT_NEAR(k["kld_max"].get<double>(), kld_max, 1e-5);
  EXPECT_NEAR(k["top1_agreement"].get<double>(), 0.5, 1e-12);
  // The base PPL from the log-prob of each next token (f32 dequantization: relative 1e-6).
  EXPECT_NEAR(k["ppl_base"].get<double>(), std::exp(base_nll / 62), 1e-6 * std::exp(base_nll / 62));

  // Files that do not match this run, or are broken, are clear errors.
  const auto refused = [&](LlamaBase b, const std::string& want, size_t cut = 0, size_t extra = 0) {
    std::vector<std::byte> bytes = b.bytes();
    bytes.resize(bytes.size() - cut + extra);
    const fs::path path = scratch_ / "bad.kld";
    test::write_file_bytes(path, bytes);
    const auto r = run(run_args + "--kl-divergence-base " + quote(path.string()));
    EXPECT_EQ(r.status, 1) << want;
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
  };
  LlamaBase bad = base;
  bad.ctx = 32;
  refused(bad, "its context is 32, this run's 64");
  bad = base, bad.vocab = vocab + 1;
  refused(bad, "its vocabulary is");
  bad = base, bad.chunks = 1;
  refused(bad, "its chunk count is 1, this run's 2");
  bad = base, bad.tokens[64 + 40] ^= 1;
  refused(bad, "chunk 1 holds other tokens");
  refused(base, "is truncated", 100);
  refused(base, "bytes more than its header announces", 0, 6);
  bad = base, bad.chunks = std::numeric_limits<int32_t>::max();
  refused(bad, "is truncated");
  bad = base, bad.ctx = -64;
  refused(bad, "non-positive context");
  bad = base;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&bad.rows[base.nv() * 40], &nan, 4);
  refused(bad, "chunk 1 row 9 holds a malformed scale");
  refused(base, "is not a brise log-probability file", base.bytes().size() - 5);
}

}  // namespace
}  // namespace brise
