#include "connection_gate.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "brise/error.hpp"
#include "http_head.hpp"

namespace brise::serve {
namespace {

void close_socket(int sock) {
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
}

}  // namespace

ConnectionGate::ConnectionGate(GateLimits limits, Ready ready)
    : limits_(limits), ready_(std::move(ready)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw Error("cannot create an eventfd for the connection gate");
  thread_ = std::thread([this] { run(); });
}

ConnectionGate::~ConnectionGate() {
  stop();
  ::close(wake_fd_);
}

void ConnectionGate::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void ConnectionGate::adopt(int sock) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      close_socket(sock);
      return;
    }
    ++open_;
    incoming_.push_back({sock, {}, Clock::time_point::max(), 0, Clock::now()});
  }
  wake();
}

void ConnectionGate::resume(Connection c) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      close_socket(c.sock);
      --open_;
      return;
    }
    c.since = Clock::now();
    c.deadline = Clock::time_point::max();
    incoming_.push_back(std::move(c));
  }
  wake();
}

void ConnectionGate::closed() {
  std::lock_guard lock(mutex_);
  --open_;
}

size_t ConnectionGate::open_connections() const {
  std::lock_guard lock(mutex_);
  return open_;
}

void ConnectionGate::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
}

// The connection that has waited longest in the gate makes room for a new one.
void ConnectionGate::drop_oldest(std::vector<Connection>& held) {
  const auto oldest = std::min_element(
      held.begin(), held.end(), [](const auto& a, const auto& b) { return a.since < b.since; });
  close_socket(oldest->sock);
  held.erase(oldest);
  std::lock_guard lock(mutex_);
  --open_;
}

void ConnectionGate::take_incoming(std::vector<Connection>& held) {
  std::vector<Connection> incoming;
  {
    std::lock_guard lock(mutex_);
    incoming.swap(incoming_);
  }
  for (Connection& c : incoming) {
    if (c.requests == 0) {  // new: over the limit, an old one goes (or, with none here, this one)
      const size_t open = open_connections();
      if (open > limits_.max_connections) {
        if (held.empty()) {
          close_socket(c.sock);
          closed();
          continue;
        }
        drop_oldest(held);
      }
    }
    // A resumed connection may already hold (some of) the next request (pipelined).
    if (!c.received.empty()) {
      c.deadline = Clock::now() + limits_.request_timeout;
      if (request_arrived(c.received, limits_.max_header_bytes, limits_.max_gathered_body)) {
        ready_(std::move(c));
        continue;
      }
    }
    held.push_back(std::move(c));
  }
}

void ConnectionGate::run() {
  std::vector<Connection> held;
  std::vector<pollfd> polled;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    take_incoming(held);
    // Connections past their deadline (a request that took too long, or none within the idle
    // timeout) are closed; the poll waits until the next deadline.
    const auto now = Clock::now();
    auto next = now + std::chrono::hours(1);
    for (size_t i = 0; i < held.size();) {
      Connection& c = held[i];
      const auto deadline = c.received.empty() ? c.since + limits_.idle_timeout : c.deadline;
      if (deadline <= now) {
        close_socket(c.sock);
        closed();
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      next = std::min(next, deadline);
      ++i;
    }
    polled.assign(1, pollfd{wake_fd_, POLLIN, 0});
    for (const Connection& c : held) polled.push_back({c.sock, POLLIN, 0});
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
    if (::poll(polled.data(), polled.size(), static_cast<int>(wait)) < 0 && errno != EINTR) break;
    if (polled[0].revents) {
      uint64_t count;
      [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof count);
    }
    // Read what came; hand on the connections whose request has arrived. Walks backwards so
    // that erasing keeps the indices of polled (1 + i) and held (i) in step.
    for (size_t i = held.size(); i-- > 0;) {
      if (!polled[i + 1].revents) continue;
      Connection& c = held[i];
      char chunk[4096];
      const ssize_t n = ::recv(c.sock, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      const auto erase = [&] { held.erase(held.begin() + static_cast<std::ptrdiff_t>(i)); };
      if (n <= 0) {  // closed by the client (before its request was whole), or an error
        close_socket(c.sock);
        closed();
        erase();
        continue;
      }
      if (c.received.empty()) c.deadline = Clock::now() + limits_.request_timeout;
      c.received.append(chunk, static_cast<size_t>(n));
      if (request_arrived(c.received, limits_.max_header_bytes, limits_.max_gathered_body)) {
        ready_(std::move(c));
        erase();
      }
    }
  }
  for (Connection& c : held) {
    close_socket(c.sock);
    closed();
  }
  // Connections adopted or resumed while stopping were closed there; any left queued close here.
  std::lock_guard lock(mutex_);
  for (Connection& c : incoming_) close_socket(c.sock);
  open_ -= incoming_.size();
  incoming_.clear();
}

}  // namespace brise::serve
