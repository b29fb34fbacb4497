// The connection stream brise serve hands to cpp-httplib: httplib's own socket stream bounds each
// read by a timeout, so a client that sends a byte every second keeps a connection (and a
// server thread) forever. This one also bounds the whole request: reads fail once the request
// has been arriving for longer than its deadline, and the connection is closed.
#pragma once

#include <httplib.h>

#include <chrono>
#include <string>
#include <string_view>

namespace brise::serve {

class SocketStream final : public httplib::Stream {
 public:
  using Clock = std::chrono::steady_clock;
  SocketStream(socket_t sock, std::chrono::milliseconds read_timeout,
               std::chrono::milliseconds write_timeout);

  // Bytes of the connection received before this stream took it over (by the connection gate):
  // they are read first.
  void preload(std::string received) {
    buffer_ = std::move(received);
    offset_ = 0;
  }
  // The bytes received and not read yet (a pipelined next request), taken out of the stream.
  std::string take_unread() {
    std::string rest = buffer_.substr(offset_);
    buffer_.clear();
    offset_ = 0;
    return rest;
  }

  // A new request starts arriving: its reads must be done by `deadline`.
  void start_request(Clock::time_point deadline) { deadline_ = deadline; }
  // Waits up to `timeout` for the next request's first bytes (keep-alive); false on a closed
  // connection or none.
  bool wait_readable(std::chrono::milliseconds timeout) const;

  // The peer has closed the connection (without sending another request first).
  bool peer_closed() const;
  // The connection the calling thread serves (set while httplib handles a request on it), so
  // that a handler waiting for a long answer can notice its client leaving.
  static const SocketStream* current();
  static void set_current(const SocketStream* stream);

  // Reads until the unread bytes hold a whole request head (the request line and headers, up to
  // the empty line), without consuming them: httplib reads them next. Complete: `head` is it;
  // TooLarge: `limit` bytes came without its end; Incomplete: the connection closed or the
  // request's deadline passed first.
  enum class Head { Complete, TooLarge, Incomplete };
  Head peek_head(size_t limit, std::string_view& head);

  bool is_readable() const override;
  // Writable now and the peer has not closed the connection: a streaming response stops
  // early when its client has gone.
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return sock_; }

 private:
  int poll_for(short events, std::chrono::milliseconds timeout) const;
  // Appends what the socket has to the unread bytes, waiting within the deadline; false on a
  // closed connection, an error or the deadline.
  bool fill();

  socket_t sock_;
  std::chrono::milliseconds read_timeout_, write_timeout_;
  Clock::time_point deadline_ = Clock::time_point::max();
  std::string buffer_;  // bytes received, not read yet from offset_ on (httplib reads request
  size_t offset_ = 0;   // lines a byte at a time)
};

}  // namespace brise::serve
