#include "sweep_plot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "brise/error.hpp"
#include "brise/output_file.hpp"
#include "cli_args.hpp"

extern char** environ;

namespace brise::cli {
namespace fs = std::filesystem;
namespace {

// The first executable `name` in $PATH's folders, or an empty path.
fs::path find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "";
  while (!rest.empty()) {
    const size_t colon = rest.find(':');
    const std::string_view dir = rest.substr(0, colon);
    const fs::path candidate = fs::path(dir.empty() ? "." : std::string(dir)) / name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return {};
}

fs::path gnuplot_on_path() {
  fs::path found = find_on_path("gnuplot");
  if (found.empty())
    throw Error(
        "--plot draws with gnuplot, which is not on PATH (Debian: apt-get install gnuplot-nox); "
        "nothing was measured");
  return found;
}

fs::path with_png_extension(fs::path png) {
  if (png.extension() != ".png")
    throw UsageError("--plot needs a FILE.png (FILE.gp and FILE.dat are written beside it), got '" +
                     png.string() + "'");
  return png;
}

// A string literal of gnuplot's: single quotes, a quote inside doubled.
std::string gnuplot_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

void write_text(const fs::path& path, const std::string& text) {
  OutputFile file(path);
  file.write(std::as_bytes(std::span(text.data(), text.size())));
  file.commit();
}

// Runs `program args...` with stdin and stdout on /dev/null; returns its exit status (128 +
// signal when killed) and what it wrote to stderr.
int run_capturing_stderr(const fs::path& program, const std::vector<std::string>& args,
                         std::string* err) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    throw Error("cannot run " + program.string() + ": pipe: " + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  std::vector<char*> argv{const_cast<char*>(program.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    throw Error("cannot run " + program.string() + ": " + std::strerror(spawned));
  }
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n > 0) {
      err->append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

SweepPlot::SweepPlot(fs::path png)
    : png_(with_png_extension(std::move(png))),
      script_(fs::path(png_).replace_extension(".gp")),
      data_(fs::path(png_).replace_extension(".dat")),
      gnuplot_(gnuplot_on_path()) {
  // One at a time: a process writes one OutputFile at once.
  for (const fs::path& p : {png_, script_, data_}) OutputFile probe(p);
}

void SweepPlot::draw(std::span<const SweepRow> rows, const std::string& title) {
  std::string data = "# brise bench --sweep: " + title +
                     "\n# PP TG N_KV T_PP_s S_PP_tok_s T_TG_s S_TG_tok_s TG_bw_fraction\n";
  for (const SweepRow& r : rows) {
    char line[256];
    std::snprintf(line, sizeof line, "%lld %lld %lld %.6f %.3f %.6f %.3f %.4f\n",
                  static_cast<long long>(r.pp), static_cast<long long>(r.tg),
                  static_cast<long long>(r.n_kv), r.t_pp_s, r.s_pp_tok_s, r.t_tg_s, r.s_tg_tok_s,
                  r.tg_bw_fraction);
    data += line;
  }
  write_text(data_, data);

  // Absolute paths, so that `gnuplot FILE.gp` redraws the PNG from any folder.
  const std::string dat = gnuplot_quoted(fs::absolute(data_).string());
  const std::string pp = rows.empty() ? "" : " of " + std::to_string(rows.front().pp) + " tokens";
  const std::string tg = rows.empty() ? "" : " of " + std::to_string(rows.front().tg) + " tokens";
  write_text(script_,
             "# brise bench --sweep: prefill (S_PP) and decode (S_TG) speed against the tokens\n"
             "# already in the cache (N_KV), from " +
                 data_.filename().string() + ".\n# `gnuplot " + script_.filename().string() +
                 "` redraws " + png_.filename().string() +
                 "; brise draws into a temporary file first\n"
                 "# (gnuplot -e \"output='...'\"), renamed into place when gnuplot succeeds.\n"
                 "if (!exists(\"output\")) output = " +
                 gnuplot_quoted(fs::absolute(png_).string()) +
                 "\n"
                 "set terminal pngcairo size 900,800 font ',11' noenhanced\n"
                 "set output output\n"
                 "set multiplot layout 2,1 title " +
                 gnuplot_quoted(title) +
                 "\n"
                 "set grid\n"
                 "set key bottom left\n"
                 "set xlabel 'N_KV (tokens in the cache)'\n"
                 "set yrange [0:*]\n"
                 "set ylabel 'S_PP (tok/s)'\n"
                 "plot " +
                 dat + " using 3:5 with linespoints pt 7 title " + gnuplot_quoted("prefill" + pp) +
                 "\n"
                 "set ylabel 'S_TG (tok/s)'\n"
                 "plot " +
                 dat + " using 3:7 with linespoints pt 7 title " + gnuplot_quoted("decode" + tg) +
                 "\n"
                 "unset multiplot\n"
                 "set output\n");

  OutputFile png_out(png_);  // gnuplot draws into its temporary, renamed into place on success
  std::string err;
  const int status = run_capturing_stderr(
      gnuplot_, {"-e", "output=" + gnuplot_quoted(png_out.temporary().string()), script_.string()},
      &err);
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  if (status != 0)
    throw Error(gnuplot_.string() + " " + script_.string() + " failed (exit status " +
                std::to_string(status) + "), " + png_.string() + " not written" +
                (err.empty() ? std::string() : ":\n" + err));
  struct stat st {};
  if (::stat(png_out.temporary().c_str(), &st) != 0 || st.st_size == 0)
    throw Error(gnuplot_.string() + " " + script_.string() + " drew nothing, " + png_.string() +
                " not written" + (err.empty() ? std::string() : ":\n" + err));
  png_out.commit();
}

}  // namespace brise::cli
