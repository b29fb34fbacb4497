// `brise bench` options as a user types them: -d (the depth the runs are timed at) is parsed,
// refused when it is not a count or when depth + run exceeds the context, and named in the output;
// --sweep walks the context in steps (rows, table, gnuplot's PNG) and refuses bad input before it
// measures. Only what was measured is checked, never how fast (speed belongs to benchmarks).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
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
  // `env` (e.g. "PATH=/x") is set for brise alone; it is run by its full path.
  test::CommandResult run(const std::string& args, const std::string& env = "") {
    return test::run_command((env.empty() ? "" : "env " + env + " ") +
                             quote(test::cli_path().string()) + " bench -m " + model_ + " " + args +
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
  const auto r = run("-d 500 -p 16 -n 4 -t 1 --json --no-roofline");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("depth 500"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("516"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("context of 512"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  // The same run fits a larger context.
  const auto larger = run("-d 500 -p 16 -n 4 -t 1 --json --ctx-size 1024 --no-roofline");
  EXPECT_EQ(larger.status, 0) << larger.err;
}

TEST_F(CliBench, JsonAndTextNameTheDepth) {
  // The roofline is measured by default (CliBench.RooflineIsMeasuredUnlessLeftOut): left out here.
  const auto r = run("-d 40 -p 8 -n 3 -t 1 --json --no-roofline");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = test::parse_json(r.out);
  EXPECT_EQ(j.at("depth"), 40);
  EXPECT_EQ(j.at("prompt_tokens"), 8);
  EXPECT_EQ(j.at("decode_tokens"), 3);
  EXPECT_GT(j.at("prefill_tok_s").get<double>(), 0.0);
  EXPECT_GT(j.at("decode_tok_s").get<double>(), 0.0);

  const auto text = run("-d 40 -p 8 -n 3 -t 1 --no-roofline");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("prefill  8 tokens at depth 40 in"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("decode   3 tokens at depth 40 in"), std::string::npos) << text.out;

  const auto empty = run("-p 8 -n 3 -t 1 --json --no-roofline");
  ASSERT_EQ(empty.status, 0) << empty.err;
  EXPECT_EQ(test::parse_json(empty.out).at("depth"), 0);

  // -p 0 times decode only: no prefill figure, in JSON or text.
  const auto decode_only = run("-d 40 -p 0 -n 3 -t 1 --json --no-roofline");
  ASSERT_EQ(decode_only.status, 0) << decode_only.err;
  const auto d = test::parse_json(decode_only.out);
  EXPECT_EQ(d.at("prompt_tokens"), 0);
  EXPECT_TRUE(d.at("prefill_tok_s").is_null()) << decode_only.out;
  EXPECT_TRUE(d.at("flop_fraction").is_null()) << decode_only.out;
  EXPECT_GT(d.at("decode_tok_s").get<double>(), 0.0);
  const auto decode_text = run("-d 40 -p 0 -n 3 -t 1 --no-roofline");
  ASSERT_EQ(decode_text.status, 0) << decode_text.err;
  EXPECT_NE(decode_text.out.find("prefill  not timed (-p 0)"), std::string::npos)
      << decode_text.out;
  EXPECT_NE(decode_text.out.find("decode   3 tokens at depth 40 in"), std::string::npos)
      << decode_text.out;
}

TEST_F(CliBench, RooflineIsMeasuredUnlessLeftOut) {
  const char* machine_keys[] = {"read_bw_gb_s",      "fma_peak_gflop_s",   "int8_peak_gop_s",
                                "peak_gop_s",        "flop_fraction",      "bw_fraction",
                                "weights_read_gb_s", "weights_bw_fraction"};
  const auto measured = run("-p 8 -n 3 -t 1 --json");
  ASSERT_EQ(measured.status, 0) << measured.err;
  const auto j = test::parse_json(measured.out);
  for (const char* key : machine_keys) {
    ASSERT_TRUE(j.at(key).is_number()) << key << "\n" << measured.out;
    EXPECT_GT(j.at(key).get<double>(), 0.0) << key;
  }
  // The fractions are the speeds over the ceilings.
  EXPECT_NEAR(j.at("bw_fraction").get<double>(),
              j.at("decode_gb_s").get<double>() / j.at("read_bw_gb_s").get<double>(), 1e-9);
  EXPECT_NEAR(j.at("flop_fraction").get<double>(),
              j.at("prefill_gflop_s").get<double>() / j.at("peak_gop_s").get<double>(), 1e-9);

  const auto left_out = run("-p 8 -n 3 -t 1 --json --no-roofline");
  ASSERT_EQ(left_out.status, 0) << left_out.err;
  const auto k = test::parse_json(left_out.out);
  for (const char* key : machine_keys)
    EXPECT_TRUE(k.at(key).is_null()) << key << "\n" << left_out.out;
  EXPECT_GT(k.at("prefill_tok_s").get<double>(), 0.0);
  EXPECT_GT(k.at("decode_gb_s").get<double>(), 0.0);

  const auto text = run("-p 8 -n 3 -t 1 --no-roofline");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("not measured (--no-roofline)"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("% of"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("weights  "), std::string::npos) << text.out;

  const auto sweep = run("--sweep --no-roofline -t 1");
  EXPECT_EQ(sweep.status, 2) << sweep.err;
  EXPECT_NE(sweep.err.find("--no-roofline"), std::string::npos) << sweep.err;
}

// --- --sweep ---------------------------------------------------------------------------------

namespace fs = std::filesystem;

// ik_llama.cpp's sweep rule, restated: depths N_KV = 0, P, 2P, ... as long as decoding n tokens
// at N_KV and prefilling the P after it fit the context: N_KV + P + n <= C.
std::vector<int64_t> expected_depths(int64_t context, int64_t step, int64_t decode) {
  std::vector<int64_t> depths;
  for (int64_t n_kv = 0; n_kv + step + decode <= context; n_kv += step) depths.push_back(n_kv);
  return depths;
}

// The sweep runs below: C = 84, P = 16, n = 4, so the last depth, 64, fills the context exactly
// (64 + 16 + 4 = 84) and 80 is left out.
const std::string kSweep = "--sweep --ctx-size 84 -p 16 -n 4 -t 1";
const std::vector<int64_t> kDepths = {0, 16, 32, 48, 64};

bool gnuplot_on_path() {
  return test::run_command("command -v gnuplot > /dev/null").status == 0;
}

std::string file_start(const fs::path& path, size_t n) {
  const std::string text = test::read_file_text(path);
  return text.substr(0, n);
}

// N_KV of each row of the text table (the third column of the lines after its separator).
std::vector<int64_t> table_depths(const std::string& out) {
  std::vector<int64_t> depths;
  std::istringstream lines(out);
  bool in_table = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("|----", 0) == 0) {
      in_table = true;
    } else if (in_table && line.rfind("|", 0) == 0) {
      std::istringstream cells(line);
      std::string pp, tg, n_kv;
      std::getline(cells, pp, '|');  // before the first bar: empty
      std::getline(cells, pp, '|');
      std::getline(cells, tg, '|');
      std::getline(cells, n_kv, '|');
      EXPECT_EQ(std::stoll(pp), 16) << line;
      EXPECT_EQ(std::stoll(tg), 4) << line;
      depths.push_back(std::stoll(n_kv));
    }
  }
  return depths;
}

TEST_F(CliBench, SweepRuleGivesTheDepths) {
  EXPECT_EQ(expected_depths(84, 16, 4), kDepths);
  EXPECT_EQ(expected_depths(83, 16, 4), (std::vector<int64_t>{0, 16, 32, 48}));
  EXPECT_EQ(expected_depths(20, 16, 4), (std::vector<int64_t>{0}));
}

TEST_F(CliBench, SweepJsonRowsAndPlot) {
  const fs::path dir = test::scratch_dir("sweep_json_plot");
  const fs::path png = dir / "sweep.png";
  const auto r = run(kSweep + " --json --plot " + quote(png.string()));
  if (!gnuplot_on_path()) {
    // Without gnuplot the plot is refused before anything is measured.
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("gnuplot"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("PATH"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_TRUE(fs::is_empty(dir));
    return;
  }
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = test::parse_json(r.out);
  EXPECT_EQ(j.at("context"), 84);
  EXPECT_EQ(j.at("step"), 16);
  EXPECT_EQ(j.at("decode_tokens"), 4);
  EXPECT_EQ(j.at("threads"), 1);
  EXPECT_EQ(j.at("kv_type"), "f32");
  EXPECT_GT(j.at("read_bw_gb_s").get<double>(), 0.0);
  std::vector<int64_t> depths;
  for (const auto& row : j.at("rows")) {
    depths.push_back(row.at("n_kv").get<int64_t>());
    EXPECT_EQ(row.at("pp"), 16);
    EXPECT_EQ(row.at("tg"), 4);
    for (const char* key : {"t_pp_s", "s_pp_tok_s", "t_tg_s", "s_tg_tok_s", "tg_bw_fraction"})
      EXPECT_GT(row.at(key).get<double>(), 0.0) << key;
    // A speed is its tokens over its time.
    EXPECT_NEAR(row.at("s_pp_tok_s").get<double>() * row.at("t_pp_s").get<double>(), 16.0, 1e-6);
    EXPECT_NEAR(row.at("s_tg_tok_s").get<double>() * row.at("t_tg_s").get<double>(), 4.0, 1e-6);
  }
  EXPECT_EQ(depths, expected_depths(84, 16, 4));
  EXPECT_EQ(depths, kDepths);

  ASSERT_TRUE(fs::exists(png));
  EXPECT_EQ(file_start(png, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_TRUE(fs::exists(dir / "sweep.gp"));
  // The data: a comment, then one line per row whose third column is N_KV.
  std::istringstream data(test::read_file_text(dir / "sweep.dat"));
  std::vector<int64_t> data_depths;
  for (std::string line; std::getline(data, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream cells(line);
    int64_t pp = 0, tg = 0, n_kv = -1;
    cells >> pp >> tg >> n_kv;
    data_depths.push_back(n_kv);
  }
  EXPECT_EQ(data_depths, kDepths);
  // Nothing else: no temporary left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 3);
}

TEST_F(CliBench, SweepTableAndAFailedGnuplot) {
  // A gnuplot that starts a PNG and fails, as a broken script would: the table is still printed
  // row by row, the failure is an error carrying gnuplot's message, and no PNG is left. With a
  // window of 24 the decodes from depth 32 on overwrite keys that a rewind to the depth would need
  // (after 32 + 4 positions the ring holds 12 on; position 32 attends to 9 on): the sweep takes
  // its other way back (a copy of the cache) and walks the same depths.
  const fs::path dir = test::scratch_dir("sweep_failed_gnuplot");
  const fs::path bin = dir / "bin", out = dir / "out";
  fs::create_directories(bin);
  fs::create_directories(out);
  // brise runs `gnuplot -e "output='TEMPORARY'" FILE.gp`; the -e is also a shell assignment.
  test::write_file_text(bin / "gnuplot",
                        "#!/bin/sh\neval \"$2\"\nprintf 'half a PNG' > \"$output\"\n"
                        "echo 'line 3: fake gnuplot failure' >&2\nexit 3\n");
  fs::permissions(bin / "gnuplot", fs::perms::owner_all);
  const auto r = run(kSweep + " --sliding-window 24 --plot " + quote((out / "s.png").string()),
                     "PATH=" + quote(bin.string()));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("fake gnuplot failure"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("exit status 3"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out / "s.png"));
  for (const auto& entry : fs::directory_iterator(out)) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "s.gp" || name == "s.dat") << name;
  }
  EXPECT_NE(r.out.find("|    PP |     TG |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("KV cache f32, window 24"), std::string::npos) << r.out;
  EXPECT_EQ(table_depths(r.out), expected_depths(84, 16, 4));
}

TEST_F(CliBench, SweepWithoutGnuplotIsRefusedBeforeMeasuring) {
  const fs::path dir = test::scratch_dir("sweep_no_gnuplot");
  const auto r = run(kSweep + " --plot " + quote((dir / "s.png").string()), "PATH=/nonexistent");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("gnuplot, which is not on PATH"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("gnuplot-nox"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST_F(CliBench, SweepBadInputIsRefusedBeforeMeasuring) {
  struct Case {
    std::string args;
    int status;
    std::vector<std::string> message;
  };
  const std::vector<Case> cases = {
      {"--sweep -d 0 --ctx-size 84", 2, {"-d", "--sweep"}},
      {"--sweep -d 16 --ctx-size 84", 2, {"-d", "--sweep"}},
      {"--sweep -p 0 --ctx-size 84", 2, {"-p"}},
      {"--sweep -p -16 --ctx-size 84", 2, {"-p"}},
      // One step needs 16 + 4 = 20 positions.
      {"--sweep -p 16 -n 4 --ctx-size 19", 1, {"one step", "20 positions", "context of 19"}},
      {"--plot s.png -p 16 -n 4", 2, {"--plot", "--sweep"}},
      {"--sweep --ctx-size 84 -p 16 -n 4 --plot s.svg", 2, {"--plot", ".png"}},
  };
  for (const Case& c : cases) {
    const auto r = run(c.args + " -t 1");
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.err;
    for (const auto& m : c.message)
      EXPECT_NE(r.err.find(m), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << c.args << "\n" << r.out;
  }
  // The model's own context (512 for stories260k) when --ctx-size is not given.
  const auto r = run("--sweep -p 500 -n 13 -t 1");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("context of 512"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace brise
