// Connections while their next request arrives. One thread polls every open connection that is
// not being answered (new ones, keep-alive ones between requests, ones whose head or body is
// still coming) and hands a connection to the worker pool only once its request has arrived, so
// a client that connects and sends nothing, or trickles its request a byte at a time, holds a
// socket and a few bytes but never a worker: /health and the API answer beside any number of
// them. Each request must arrive within its deadline (from its first byte), an idle connection
// is closed after the idle timeout, and at most max_connections are open: when a new one comes
// and all are taken, the one that has waited longest in the gate is dropped (a stalled or idle
// client, never one being answered).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace brise::serve {

struct GateLimits {
  size_t max_connections = 512;
  size_t max_header_bytes = 16384;  // a head this long without its end is passed on (a 431)
  // Bodies up to this size arrive in the gate; a larger one (or a chunked one, or one the client
  // sends after "Expect: 100-continue") is read by the worker, within the request's deadline.
  size_t max_gathered_body = 65536;
  std::chrono::milliseconds request_timeout{10000};  // from a request's first byte to its last
  std::chrono::milliseconds idle_timeout{5000};      // with no request started
};

class ConnectionGate {
 public:
  using Clock = std::chrono::steady_clock;
  // A connection whose request has arrived (or is to be refused: a malformed or oversized head),
  // as its bytes received so far, and the time by which the rest of the request must arrive.
  struct Connection {
    int sock = -1;
    std::string received;
    Clock::time_point deadline = Clock::time_point::max();
    unsigned requests = 0;      // answered on it so far (keep-alive)
    Clock::time_point since{};  // when it came into the gate (the oldest goes first)
  };
  // Called on the gate's thread with each connection whose request has arrived; it must not
  // block (it queues the connection for a worker), and the connection comes back by resume() or
  // closed().
  using Ready = std::function<void(Connection)>;

  ConnectionGate(GateLimits limits, Ready ready);
  ~ConnectionGate();  // stop()
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // A new connection (the gate owns and closes it from now on).
  void adopt(int sock);
  // A worker has answered a request and the connection stays open for the next (its unread
  // bytes in `c.received`).
  void resume(Connection c);
  // A worker has closed a connection the gate handed it.
  void closed();
  // Closes every connection in the gate and ends its thread; later adopt()/resume() close theirs.
  void stop();

  size_t open_connections() const;

 private:
  void run();
  void take_incoming(std::vector<Connection>& held);
  void drop_oldest(std::vector<Connection>& held);
  void wake();

  GateLimits limits_;
  Ready ready_;
  int wake_fd_ = -1;  // an eventfd: new or resumed connections, or stop
  mutable std::mutex mutex_;
  std::vector<Connection> incoming_;
  size_t open_ = 0;  // connections adopted and not closed (in the gate or with a worker)
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace brise::serve
