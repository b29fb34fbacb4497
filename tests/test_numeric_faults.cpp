// Corrupt weights never give garbage tokens: NaN or Inf in a weight, or weights so large that the
// activations overflow (finite, but the next RMSNorm's sum of squares would overflow and
// silently give zeros), make Session::prefill/decode throw brise::Error "numeric fault: ..."
// naming the first layer whose output is bad ("after layer N (blk.N)", or "after the output
// layer"); the session stays usable, and `brise generate` / `brise logits` exit with status 1 and
// that message.
//
// The model is stories260k (5 layers) converted to f32; each case edits a copy of the GGUF bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"
#include "brise/tensor_type.hpp"
#include "support/stories.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;

// "Once upon a time" with BOS, as tok512 encodes it.
const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378};

struct Edit {
  std::string tensor;
  size_t first;  // first element
  size_t count;
  std::function<float(float)> value;
};

// Writes a copy of `model` with the elements of one f32 tensor replaced.
fs::path corrupted_copy(const fs::path& model, const fs::path& out, const Edit& e) {
  auto bytes = test::read_file_bytes(model);
  const auto file = gguf::File::parse(bytes, model.string());
  const gguf::TensorInfo& t = file->tensor(e.tensor);
  EXPECT_EQ(t.type, TensorType::F32);
  EXPECT_LE(e.first + e.count, t.n_elements);
  std::byte* data = bytes.data() + (t.data - bytes.data());
  for (size_t i = e.first; i < e.first + e.count; ++i) {
    float v;
    std::memcpy(&v, data + i * 4, 4);
    v = e.value(v);
    std::memcpy(data + i * 4, &v, 4);
  }
  std::ofstream(out, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return out;
}

const auto kNaN = [](float) { return std::nanf(""); };
const auto kInf = [](float) { return INFINITY; };
const auto kMinusInf = [](float) { return -INFINITY; };
const auto kHuge = [](float v) { return v * 1e37f; };  // finite, but the layer overflows

struct Fault {
  std::string name;
  Edit edit;
  std::string message;
};

std::vector<Fault> faults() {
  constexpr size_t dim = 64, hidden = 172;
  return {
      {"NaN row of blk.2.attn_q", {"blk.2.attn_q.weight", 0, dim, kNaN}, "after layer 2 (blk.2)"},
      {"Inf in blk.3.ffn_norm", {"blk.3.ffn_norm.weight", 7, 1, kInf}, "after layer 3 (blk.3)"},
      {"-Inf in blk.0.attn_v row 5",
       {"blk.0.attn_v.weight", 5 * dim + 3, 1, kMinusInf},
       "after layer 0 (blk.0)"},
      {"NaN in blk.4.attn_norm", {"blk.4.attn_norm.weight", 0, 1, kNaN}, "after layer 4 (blk.4)"},
      {"overflowing blk.1.ffn_down",
       {"blk.1.ffn_down.weight", 0, dim * hidden, kHuge},
       "after layer 1 (blk.1)"},
      {"NaN in output_norm", {"output_norm.weight", 10, 1, kNaN}, "after the output layer"},
      {"Inf row of output.weight",
       {"output.weight", 33 * dim, dim, kInf},
       "after the output layer"},
  };
}

fs::path clean_model(const fs::path& data) {
  return test::converted_model(data, "models/stories260k/hf", TensorType::F32);
}

TEST(NumericFaults, PrefillNamesTheLayerAndTheSessionStaysUsable) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("numeric-faults-library");
  for (const auto& f : faults()) {
    SCOPED_TRACE(f.name);
    const auto model = Model::load(corrupted_copy(clean_model(data), dir / "m.gguf", f.edit));
    Session session(model);
    try {
      session.prefill(kPrompt);
      ADD_FAILURE() << "prefill succeeded on corrupt weights";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("numeric fault: ", 0), 0u) << msg;
      EXPECT_NE(msg.find(f.message), std::string::npos) << msg;
    }
    EXPECT_EQ(session.position(), 0u);
    EXPECT_TRUE(session.tokens().empty());
    // The same error again: nothing of the failed pass was kept.
    EXPECT_THROW(session.prefill(kPrompt), Error);
    // Token by token, the first decode fails the same way.
    EXPECT_THROW(session.decode(kPrompt[0]), Error);
  }
}

// A NaN embedding row only matters to the token that uses it: other sequences are unaffected,
// bit for bit, and the session that hit the fault goes on working.
TEST(NumericFaults, CorruptEmbeddingRowFailsOnlyForItsToken) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("numeric-faults-embedding");
  constexpr int32_t kBad = 42;
  const auto model = Model::load(corrupted_copy(clean_model(data), dir / "m.gguf",
                                                {"token_embd.weight", kBad * 64, 64, kNaN}));
  const auto clean = Model::load(clean_model(data));

  Session session(model);
  EXPECT_THROW(session.prefill(std::vector<int32_t>{1, kBad}), Error);
  EXPECT_EQ(session.position(), 0u);
  const auto got = session.prefill(kPrompt);
  std::vector<float> logits(got.begin(), got.end());
  Session reference(clean);
  const auto want = reference.prefill(kPrompt);
  ASSERT_EQ(logits.size(), want.size());
  EXPECT_EQ(std::memcmp(logits.data(), want.data(), want.size() * 4), 0);

  // Decoding the bad token after a good prompt fails naming layer 0; the prompt stays.
  try {
    session.decode(kBad);
    ADD_FAILURE() << "decode of the corrupt token succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("after layer 0 (blk.0)"), std::string::npos) << e.what();
  }
}

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

TEST(NumericFaults, CliGenerateAndLogitsExitWithTheMessage) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("numeric-faults-cli");
  const std::string cli = quote(test::cli_path().string());
  for (const auto& f : faults()) {
    SCOPED_TRACE(f.name);
    const fs::path m = corrupted_copy(clean_model(data), dir / "m.gguf", f.edit);
    const auto gen = test::run_command(cli + " generate -m " + quote(m.string()) +
                                       " -p 'Once upon a time' -n 8 --temp 0");
    EXPECT_FALSE(gen.signaled);
    EXPECT_EQ(gen.status, 1) << gen.err;
    EXPECT_EQ(gen.err.rfind("brise generate: error: numeric fault", 0), 0u) << gen.err;
    EXPECT_NE(gen.err.find(f.message), std::string::npos) << gen.err;
    EXPECT_EQ(gen.out, "") << "no tokens may be printed";

    const fs::path out = dir / "logits.f32";
    const auto log = test::run_command(cli + " logits -m " + quote(m.string()) +
                                       " --ids '1 403 407' -o " + quote(out.string()));
    EXPECT_FALSE(log.signaled);
    EXPECT_EQ(log.status, 1) << log.err;
    EXPECT_EQ(log.err.rfind("brise logits: error: numeric fault", 0), 0u) << log.err;
    EXPECT_NE(log.err.find(f.message), std::string::npos) << log.err;
    EXPECT_FALSE(fs::exists(out)) << "no logits file may be written";
  }
}

// A fault reached during generation (the greedy continuation's first token has a corrupt
// embedding row): what was generated before stays printed, then exit 1 with the message.
TEST(NumericFaults, CliGenerateStopsWithTheMessageWhenDecodingHitsAFault) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("numeric-faults-cli-decode");
  const auto clean = Model::load(clean_model(data));
  Session session(clean);
  const auto logits = session.prefill(kPrompt);
  const auto next =
      static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const fs::path m = corrupted_copy(clean_model(data), dir / "m.gguf",
                                    {"token_embd.weight", size_t(next) * 64, 64, kNaN});
  const auto gen = test::run_command(quote(test::cli_path().string()) + " generate -m " +
                                     quote(m.string()) + " -p 'Once upon a time' -n 8 --temp 0");
  EXPECT_FALSE(gen.signaled);
  EXPECT_EQ(gen.status, 1) << gen.err;
  EXPECT_NE(gen.err.find("brise generate: error: numeric fault: NaN or Inf in the activations "
                         "after layer 0 (blk.0)"),
            std::string::npos)
      << gen.err;
}

}  // namespace
}  // namespace brise
