#include "socket_stream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace brise::serve {
namespace {

void address_of(const sockaddr_storage& addr, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    port = ntohs(a->sin6_port);
  }
  ip = text;
}

}  // namespace

SocketStream::SocketStream(socket_t sock, std::chrono::milliseconds read_timeout,
                           std::chrono::milliseconds write_timeout)
    : sock_(sock), read_timeout_(read_timeout), write_timeout_(write_timeout) {}

int SocketStream::poll_for(short events, std::chrono::milliseconds timeout) const {
  pollfd p{sock_, events, 0};
  const int ms = static_cast<int>(std::clamp<int64_t>(timeout.count(), 0, 1 << 30));
  for (;;) {
    const int r = ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r;
    return (p.revents & (events | POLLHUP | POLLERR)) ? 1 : 0;
  }
}

bool SocketStream::wait_readable(std::chrono::milliseconds timeout) const {
  if (offset_ < buffer_.size()) return true;
  return poll_for(POLLIN, timeout) > 0;
}

bool SocketStream::is_readable() const {
  return wait_readable(read_timeout_);
}

namespace {
thread_local const SocketStream* g_current = nullptr;
}

const SocketStream* SocketStream::current() {
  return g_current;
}
void SocketStream::set_current(const SocketStream* stream) {
  g_current = stream;
}

bool SocketStream::peer_closed() const {
  // A readable socket whose peek returns 0 bytes (or an error) was closed by the peer.
  pollfd p{sock_, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char c;
  const ssize_t n = ::recv(sock_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

bool SocketStream::is_writable() const {
  return poll_for(POLLOUT, write_timeout_) > 0 && !peer_closed();
}

bool SocketStream::fill() {
  const auto now = Clock::now();
  if (now >= deadline_) return false;  // the request took too long to arrive
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now);
  if (poll_for(POLLIN, std::min(read_timeout_, left + std::chrono::milliseconds(1))) <= 0)
    return false;
  char chunk[4096];
  ssize_t n;
  do {
    n = ::recv(sock_, chunk, sizeof chunk, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  buffer_.erase(0, offset_);
  offset_ = 0;
  buffer_.append(chunk, static_cast<size_t>(n));
  return true;
}

SocketStream::Head SocketStream::peek_head(size_t limit, std::string_view& head) {
  for (;;) {
    const std::string_view unread = std::string_view(buffer_).substr(offset_);
    if (const size_t end = unread.find("\r\n\r\n"); end != std::string_view::npos) {
      head = unread.substr(0, end + 4);
      return Head::Complete;
    }
    if (unread.size() >= limit) return Head::TooLarge;
    if (!fill()) return Head::Incomplete;
  }
}

ssize_t SocketStream::read(char* ptr, size_t size) {
  if (offset_ == buffer_.size() && !fill()) return -1;
  const size_t n = std::min(size, buffer_.size() - offset_);
  std::memcpy(ptr, buffer_.data() + offset_, n);
  offset_ += n;
  return static_cast<ssize_t>(n);
}

ssize_t SocketStream::write(const char* ptr, size_t size) {
  if (poll_for(POLLOUT, write_timeout_) <= 0) return -1;
  ssize_t n;
  do {
    n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n;
}

void SocketStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    address_of(addr, ip, port);
}

void SocketStream::get_local_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    address_of(addr, ip, port);
}

}  // namespace brise::serve
