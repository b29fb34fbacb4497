// bench_slowloris --url http://HOST:PORT [--connections 200] [--samples 50] [--trickle-ms 500]
//
// A slowloris against `brise serve` (run by bench/slowloris.sh): it holds --connections open,
// half of them silent and half sending a request head one byte every --trickle-ms without ever
// ending it, reopening any the server closes, and meanwhile measures, from fresh connections, the
// latency of GET /health and of a small completion (a 1-token answer to a 1-word prompt): p50 and
// p99 over --samples each, first with no attack, then under it. Exit status 1 when a measured
// request did not answer 200.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int connect_to(const std::string& host, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The stalled connections: opened at once, then kept open (reopened when the server closes one)
// until `stop`.
struct Slowloris {
  std::string host;
  int port = 0;
  int connections = 0;
  std::chrono::milliseconds trickle{500};
  std::atomic<bool> stop{false};
  std::atomic<int> open{0}, reopened{0};

  void run() {
    struct Held {
      int fd = -1;
      bool trickles = false;
      Clock::time_point next{};
    };
    std::vector<Held> held(static_cast<size_t>(connections));
    const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    const auto start = [&](Held& h, size_t i) {
      h.fd = connect_to(host, port);
      h.trickles = i % 2 == 1;
      h.next = Clock::now() + trickle;
      if (h.fd >= 0 && h.trickles) ::send(h.fd, head.data(), head.size(), MSG_NOSIGNAL);
    };
    for (size_t i = 0; i < held.size(); ++i) start(held[i], i);
    while (!stop) {
      int count = 0;
      for (size_t i = 0; i < held.size(); ++i) {
        Held& h = held[i];
        pollfd p{h.fd, POLLIN, 0};
        char b;
        const bool closed = h.fd < 0 || (::poll(&p, 1, 0) > 0 && ::recv(h.fd, &b, 1, 0) <= 0);
        const bool due = h.trickles && Clock::now() >= h.next;
        if (!closed && due) {
          h.next += trickle;
          if (::send(h.fd, "a", 1, MSG_NOSIGNAL) == 1) {
            ++count;
            continue;
          }
        } else if (!closed) {
          ++count;
          continue;
        }
        if (h.fd >= 0) ::close(h.fd);
        start(h, i);
        ++reopened;
        count += h.fd >= 0;
      }
      open = count;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (Held& h : held)
      if (h.fd >= 0) ::close(h.fd);
  }
};

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// Latencies (ms) of `samples` requests, each on a fresh connection; false when one failed.
bool measure(const std::string& host, int port, int samples, std::vector<double>& health,
             std::vector<double>& completion) {
  bool ok = true;
  for (int i = 0; i < samples; ++i) {
    for (const bool small_request : {false, true}) {
      httplib::Client c(host, port);
      c.set_connection_timeout(30, 0);
      c.set_read_timeout(60, 0);
      const auto t0 = Clock::now();
      const auto r = small_request ? c.Post("/v1/completions", R"({"prompt":"a","max_tokens":1})",
                                            "application/json")
                                   : c.Get("/health");
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (!r || r->status != 200) {
        std::fprintf(stderr, "bench_slowloris: %s answered %d\n",
                     small_request ? "POST /v1/completions" : "GET /health", r ? r->status : -1);
        ok = false;
      }
      (small_request ? completion : health).push_back(ms);
    }
  }
  return ok;
}

void report(const char* what, const std::vector<double>& health,
            const std::vector<double>& completion) {
  std::printf("%-28s /health p50 %7.1f ms  p99 %7.1f ms   completion p50 %7.1f ms  p99 %7.1f ms\n",
              what, percentile(health, 0.5), percentile(health, 0.99), percentile(completion, 0.5),
              percentile(completion, 0.99));
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  int connections = 200, samples = 50, trickle_ms = 500;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--url")
      url = value;
    else if (key == "--connections")
      connections = std::stoi(value);
    else if (key == "--samples")
      samples = std::stoi(value);
    else if (key == "--trickle-ms")
      trickle_ms = std::stoi(value);
    else {
      std::fprintf(stderr, "bench_slowloris: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  const size_t colon = url.rfind(':');
  if (url.rfind("http://", 0) != 0 || colon < 7 || samples < 1) {
    std::fprintf(stderr,
                 "usage: bench_slowloris --url http://HOST:PORT [--connections N] "
                 "[--samples N] [--trickle-ms MS]\n");
    return 2;
  }
  const std::string host = url.substr(7, colon - 7);
  const int port = std::stoi(url.substr(colon + 1));

  // The server listens before its model is loaded: wait for /health.
  for (const auto until = Clock::now() + std::chrono::seconds(120);;) {
    httplib::Client c(host, port);
    const auto r = c.Get("/health");
    if (r && r->status == 200) break;
    if (Clock::now() > until) {
      std::fprintf(stderr, "bench_slowloris: the server was not ready within 120 s\n");
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::vector<double> health, completion;
  bool ok = measure(host, port, samples, health, completion);
  report("no attack", health, completion);

  Slowloris attack;
  attack.host = host;
  attack.port = port;
  attack.connections = connections;
  attack.trickle = std::chrono::milliseconds(trickle_ms);
  std::thread attacker([&] { attack.run(); });
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (attack.open < connections && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  health.clear();
  completion.clear();
  ok = measure(host, port, samples, health, completion) && ok;
  const int open_at_end = attack.open;
  attack.stop = true;
  attacker.join();
  char what[64];
  std::snprintf(what, sizeof what, "%d stalled connections", connections);
  report(what, health, completion);
  std::printf(
      "stalled connections open at the end: %d (reopened after the server closed them: "
      "%d)\n",
      open_at_end, attack.reopened.load());
  return ok ? 0 : 1;
}
