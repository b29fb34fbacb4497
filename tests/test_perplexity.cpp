// brise perplexity against llama.cpp's llama-perplexity on the same files and text
// (../shared/reference/tiny256/llama-perplexity.json: -c 128 on val-stories.txt), and its KL
// divergence against the numbers llama-perplexity reports for the same quantized files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

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

}  // namespace
}  // namespace brise
