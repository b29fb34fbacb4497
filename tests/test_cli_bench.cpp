// `brise bench` options as a user types them: -d (the depth the runs are timed at) is parsed,
// refused when it is not a count or when depth + run exceeds the context, and named in the output.
// Only what was measured is checked, never how fast (speed belongs to benchmarks).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/json_text.hpp"
#include "support/stories.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class CliBench : public ::testing::Test {
 protected:
  void SetUp() override {
    BRISE_REQUIRE_TESTDATA(dir);
    model_ = quote(test::converted_model(dir, "models/stories260k/hf").string());
  }
  test::CommandResult run(const std::string& args) {
    return test::run_command(quote(test::cli_path().string()) + " bench -m " + model_ + " " + args +
                             " < /dev/null");
  }
  std::string model_;
};

TEST_F(CliBench, DepthThatIsNotACountIsAUsageError) {
  for (const std::string args : {"-d -1", "-d abc", "-d", "--depth 1.5", "-d 99999999999"}) {
    const auto r = run(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find("-d"), std::string::npos) << args << "\n" << r.err;
  }
}

TEST_F(CliBench, DepthPastTheContextIsRefusedBeforeMeasuring) {
  // stories260k's context is 512: 500 positions of depth and 16 prompt tokens do not fit.
  const auto r = run("-d 500 -p 16 -n 4 -t 1 --json");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("depth 500"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("516"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("context of 512"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  // The same run fits a larger context.
  const auto larger = run("-d 500 -p 16 -n 4 -t 1 --json --ctx-size 1024");
  EXPECT_EQ(larger.status, 0) << larger.err;
}

TEST_F(CliBench, JsonAndTextNameTheDepth) {
  const auto r = run("-d 40 -p 8 -n 3 -t 1 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = test::parse_json(r.out);
  EXPECT_EQ(j.at("depth"), 40);
  EXPECT_EQ(j.at("prompt_tokens"), 8);
  EXPECT_EQ(j.at("decode_tokens"), 3);
  EXPECT_GT(j.at("prefill_tok_s").get<double>(), 0.0);
  EXPECT_GT(j.at("decode_tok_s").get<double>(), 0.0);

  const auto text = run("-d 40 -p 8 -n 3 -t 1");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("prefill  8 tokens at depth 40 in"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("decode   3 tokens at depth 40 in"), std::string::npos) << text.out;

  const auto empty = run("-p 8 -n 3 -t 1 --json");
  ASSERT_EQ(empty.status, 0) << empty.err;
  EXPECT_EQ(test::parse_json(empty.out).at("depth"), 0);
}

}  // namespace
}  // namespace brise
