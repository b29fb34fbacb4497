// `brise convert` never loses data: interrupted by SIGINT/SIGTERM/SIGHUP/SIGQUIT while writing,
// it leaves nothing at the output path (an existing file there stays intact) and removes its
// temporary file; killed by SIGKILL (which cannot be handled) it still leaves the output path
// untouched (the temporary file may remain); a write error (file-size limit) is a clear error that
// names the destination and leaves nothing; and it refuses to overwrite its own input.
//
// "Mid-write" is detected by polling the output folder for the temporary file
// ".<name>.tmp-*" and waiting until it holds data, on a checkpoint big enough (~200 MB of f32,
// converted to q4_0 on one thread: ~0.5 s) that the conversion is still running then.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <string_view>
#include <thread>

#include "support/safetensors_writer.hpp"
#include "support/testdata.hpp"

namespace brise {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A Mistral-shaped HF checkpoint: dim 1024, 4 layers, 8 heads, ffn 2816, vocab 512 (the tok512
// tokenizer): ~200 MB of f32. Made once in the build tree and shared by the test processes (ctest
// runs each case as its own process, several at a time): built in a private folder, then renamed
// into place; a process that loses the race uses the winner's (identical) folder.
fs::path big_checkpoint(const fs::path& data) {
  const fs::path dir =
      fs::path(BRISE_BINARY_DIR) / "test-scratch" / "convert-interrupt-checkpoint-v1";
  if (fs::exists(dir / "complete")) return dir;
  const fs::path tmp = dir.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  constexpr uint64_t dim = 1024, layers = 4, ffn = 2816, vocab = 512;
  std::ofstream(tmp / "config.json") << R"({"architectures": ["MistralForCausalLM"],
    "hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 4,
    "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 512,
    "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "hidden_act": "silu", "tie_word_embeddings": false})";
  fs::copy_file(data / "tokenizers/tok512/tokenizer.model", tmp / "tokenizer.model");
  uint32_t state = 12345;
  auto tensor = [&](std::string name, std::vector<uint64_t> shape) {
    uint64_t n = 1;
    for (const uint64_t s : shape) n *= s;
    std::vector<std::byte> bytes(n * 4);
    for (uint64_t i = 0; i < n; ++i) {
      state = state * 1664525u + 1013904223u;
      const float v = static_cast<float>(static_cast<int32_t>(state >> 8) - (1 << 23)) * 1e-9f;
      std::memcpy(bytes.data() + i * 4, &v, 4);
    }
    return test::StTensor{std::move(name), "F32", std::move(shape), std::move(bytes)};
  };
  std::vector<test::StTensor> t;
  t.push_back(tensor("model.embed_tokens.weight", {vocab, dim}));
  for (uint64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back(tensor(p + "input_layernorm.weight", {dim}));
    t.push_back(tensor(p + "self_attn.q_proj.weight", {dim, dim}));
    t.push_back(tensor(p + "self_attn.k_proj.weight", {dim, dim}));
    t.push_back(tensor(p + "self_attn.v_proj.weight", {dim, dim}));
    t.push_back(tensor(p + "self_attn.o_proj.weight", {dim, dim}));
    t.push_back(tensor(p + "post_attention_layernorm.weight", {dim}));
    t.push_back(tensor(p + "mlp.gate_proj.weight", {ffn, dim}));
    t.push_back(tensor(p + "mlp.up_proj.weight", {ffn, dim}));
    t.push_back(tensor(p + "mlp.down_proj.weight", {dim, ffn}));
  }
  t.push_back(tensor("model.norm.weight", {dim}));
  t.push_back(tensor("lm_head.weight", {vocab, dim}));
  test::write_safetensors(tmp / "model.safetensors", t);
  std::ofstream(tmp / "complete") << "ok\n";
  std::error_code ec;
  fs::rename(tmp, dir, ec);  // fails if another process got there first: use theirs
  if (ec) fs::remove_all(tmp);
  return dir;
}

struct Child {
  pid_t pid = -1;
  fs::path err_path;
};

// Starts `brise ARGS...` with default signal dispositions, stderr to a file, and optionally a
// file-size limit.
Child spawn(const std::vector<std::string>& args, const fs::path& err_path,
            std::optional<rlim_t> fsize_limit = std::nullopt) {
  std::vector<std::string> argv_s = {test::cli_path().string()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // The test runner may have ignored or blocked signals; the CLI must see them as a shell
    // would give them.
    for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXFSZ}) ::signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);  // SIGQUIT would dump core
    if (fsize_limit) {
      const rlimit fsize{*fsize_limit, *fsize_limit};
      ::setrlimit(RLIMIT_FSIZE, &fsize);
    }
    const int devnull = ::open("/dev/null", O_WRONLY);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(devnull, 1);
    ::dup2(err, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return {pid, err_path};
}

int wait_for(const Child& c) {
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::vector<fs::path> temporaries(const fs::path& folder, const std::string& name) {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(folder))
    if (e.path().filename().string().rfind("." + name + ".tmp-", 0) == 0) found.push_back(e.path());
  return found;
}

// Waits until the temporary file of `name` exists and holds data (the converter is writing).
// Returns false if the process ended first.
bool wait_until_writing(const Child& c, const fs::path& folder, const std::string& name) {
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& t : temporaries(folder, name)) {
      std::error_code ec;
      if (fs::file_size(t, ec) > 0 && !ec) return true;
    }
    int status;
    if (::waitpid(c.pid, &status, WNOHANG) == c.pid) return false;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

const std::string kPrecious = "an earlier model that must survive\n";

struct Interrupt {
  int signal;
  bool existing_file;  // a file is already at the output path
};

class ConvertInterrupt : public ::testing::TestWithParam<Interrupt> {};

TEST_P(ConvertInterrupt, LeavesNothingAtTheOutputAndNoTemporaryFile) {
  BRISE_REQUIRE_TESTDATA(data);
  const auto [sig, existing] = GetParam();
  const fs::path ck = big_checkpoint(data);
  const fs::path dir = test::scratch_dir("convert-interrupt-" + std::to_string(sig) +
                                         (existing ? "-existing" : "-new"));
  const fs::path out = dir / "out.gguf";
  if (existing) std::ofstream(out) << kPrecious;

  const Child c = spawn({"convert", ck.string(), "-o", out.string(), "--type", "q4_0", "-t", "1"},
                        dir / "stderr.txt");
  const bool writing = wait_until_writing(c, dir, "out.gguf");
  if (writing) ::kill(c.pid, sig);
  const int status = wait_for(c);
  ASSERT_TRUE(writing) << "the conversion ended before it could be interrupted (status " << status
                       << "): " << test::read_file_text(c.err_path);

  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), sig) << "the process must die by the signal it got";
  if (existing)
    EXPECT_EQ(test::read_file_text(out), kPrecious) << "the existing file was changed";
  else
    EXPECT_FALSE(fs::exists(out)) << "a partial output was left at the destination";
  const auto left = temporaries(dir, "out.gguf");
  if (sig == SIGKILL) {
    for (const auto& t : left) fs::remove(t);  // cannot be cleaned up by the process: accepted
  } else {
    EXPECT_TRUE(left.empty()) << "temporary file left: " << left.front();
  }
}

INSTANTIATE_TEST_SUITE_P(Signals, ConvertInterrupt,
                         ::testing::Values(Interrupt{SIGINT, false}, Interrupt{SIGINT, true},
                                           Interrupt{SIGTERM, true}, Interrupt{SIGHUP, false},
                                           Interrupt{SIGQUIT, true}, Interrupt{SIGKILL, true},
                                           Interrupt{SIGKILL, false}),
                         [](const auto& p) {
                           return std::string(sigabbrev_np(p.param.signal)) +
                                  (p.param.existing_file ? "_OverExistingFile" : "_NoFile");
                         });

TEST(ConvertInterrupt, FileSizeLimitIsAClearErrorAndLeavesNothing) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path ck = big_checkpoint(data);
  for (const bool existing : {false, true}) {
    SCOPED_TRACE(existing ? "over an existing file" : "no existing file");
    const fs::path dir = test::scratch_dir("convert-fsize");
    const fs::path out = dir / "out.gguf";
    if (existing) std::ofstream(out) << kPrecious;
    // 4 MB: past the first buffer flush (8 MB) the write fails with EFBIG.
    const Child c = spawn({"convert", ck.string(), "-o", out.string(), "--type", "q4_0", "-t", "1"},
                          dir / "stderr.txt", rlim_t{4} << 20);
    const int status = wait_for(c);
    const std::string err = test::read_file_text(c.err_path);
    ASSERT_TRUE(WIFEXITED(status))
        << "died by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << "; stderr: " << err;
    EXPECT_EQ(WEXITSTATUS(status), 1) << err;
    EXPECT_EQ(err.rfind("brise convert: error: ", 0), 0u) << err;
    EXPECT_NE(err.find(out.string()), std::string::npos) << "must name the destination: " << err;
    EXPECT_NE(err.find("File too large"), std::string::npos) << err;
    if (existing)
      EXPECT_EQ(test::read_file_text(out), kPrecious);
    else
      EXPECT_FALSE(fs::exists(out));
    EXPECT_TRUE(temporaries(dir, "out.gguf").empty());
  }
}

// Concatenates parts (gcc 12 warns falsely, -Wrestrict, on long chains of string `+`).
std::string join(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (const auto part : parts) s += part;
  return s;
}

TEST(ConvertInterrupt, RefusesToOverwriteItsOwnInput) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path ck = test::scratch_dir("convert-own-input") / "hf";
  test::copy_folder(data / "models/stories260k/hf", ck);
  for (const char* input : {"model.safetensors", "config.json", "tokenizer.model"}) {
    SCOPED_TRACE(input);
    const auto before = test::read_file_bytes(ck / input);
    const auto r = test::run_command(join({"'", test::cli_path().string(), "' convert '",
                                           ck.string(), "' -o '", (ck / input).string(), "'"}));
    EXPECT_FALSE(r.signaled);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.err.rfind("brise convert: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(input), std::string::npos) << r.err;
    EXPECT_TRUE(test::read_file_bytes(ck / input) == before) << "the input was changed";
    EXPECT_TRUE(temporaries(ck, input).empty());
  }
}

// The output goes to a temporary file renamed over the destination, which would replace a
// device node or FIFO given as the destination (as root, -o /dev/null replaced the device): such
// destinations are refused before anything is written, and stay what they were.
TEST(ConvertInterrupt, NonRegularDestinationsAreRefusedAndLeftAlone) {
  BRISE_REQUIRE_TESTDATA(data);
  const fs::path dir = test::scratch_dir("output-non-regular");
  const fs::path fifo = dir / "fifo", link = dir / "link-to-fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  fs::create_symlink(fifo, link);
  fs::create_directory(dir / "folder.gguf");
  const std::string cli = join({"'", test::cli_path().string(), "'"});
  const std::string ck = join({"'", (data / "models/stories260k/hf").string(), "'"});
  for (const fs::path& out : {fifo, link, dir / "folder.gguf"}) {
    SCOPED_TRACE(out.string());
    for (const std::string& command :
         {join({cli, " convert ", ck, " -o '", out.string(), "'"}),
          join({cli, " synth --preset tiny -o '", out.string(), "'"})}) {
      const auto r = test::run_command(command);
      EXPECT_FALSE(r.signaled);
      EXPECT_EQ(r.status, 1) << r.err;
      EXPECT_NE(r.err.find(out.string()), std::string::npos) << r.err;
      EXPECT_TRUE(r.err.find("is not a regular file") != std::string::npos ||
                  r.err.find("is a folder") != std::string::npos)
          << r.err;
    }
  }
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(fs::is_directory(dir / "folder.gguf"));
  EXPECT_TRUE(temporaries(dir, "fifo").empty());
}

}  // namespace
}  // namespace brise
