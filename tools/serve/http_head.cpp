#include "http_head.hpp"

#include <algorithm>
#include <string>

namespace brise::serve {
namespace {

// RFC 9110's tchar: what a method or a header name is made of.
bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);  // ASCII letters in any case (tokens hold no others)
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ApiError malformed(const std::string& what) {
  return ApiError(400, "malformed HTTP request: " + what);
}

std::optional<ApiError> request_line_problem(std::string_view line) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos)
    return malformed("the request line is not 'METHOD target HTTP/1.1'");
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return malformed("the method is not a token");
  if (target.empty() || std::any_of(target.begin(), target.end(), [](char c) {
        return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
      }))
    return malformed("the request target is empty or holds spaces or control characters");
  if (version != "HTTP/1.1" && version != "HTTP/1.0")
    return malformed("the version is not HTTP/1.1 or HTTP/1.0");
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> head_problem(std::string_view head) {
  size_t at = head.find("\r\n");
  if (at == std::string_view::npos) return malformed("no request line");
  if (auto p = request_line_problem(head.substr(0, at))) return p;
  std::optional<std::string_view> length;
  for (at += 2; at < head.size();) {
    const size_t end = head.find("\r\n", at);
    if (end == std::string_view::npos) return malformed("a header line does not end in CRLF");
    const std::string_view line = head.substr(at, end - at);
    at = end + 2;
    if (line.empty()) break;  // the end of the head
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
      return malformed("a header line is not 'Name: value' (line folding is not allowed)");
    if (!same_name(line.substr(0, colon), "Content-Length")) continue;
    const std::string_view value = trim(line.substr(colon + 1));
    if (value.empty() || value.size() > 18 ||
        !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return malformed("Content-Length must be a number of bytes (0 or more), not '" +
                       std::string(value.substr(0, 40)) + "'");
    if (length && *length != value) return malformed("two Content-Length headers disagree");
    length = value;
  }
  return std::nullopt;
}

bool request_arrived(std::string_view received, size_t max_header_bytes, size_t max_gathered_body) {
  const size_t end = received.find("\r\n\r\n");
  if (end == std::string_view::npos) return received.size() >= max_header_bytes;
  const std::string_view head = received.substr(0, end + 4);
  if (head_problem(head)) return true;
  size_t body = 0;
  for (size_t at = head.find("\r\n") + 2; at < end;) {
    const size_t line_end = head.find("\r\n", at);
    const std::string_view line = head.substr(at, line_end - at);
    at = line_end + 2;
    const size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    if (same_name(name, "Transfer-Encoding") || same_name(name, "Expect")) return true;
    if (same_name(name, "Content-Length"))  // digits, checked by head_problem
      body = std::stoull(std::string(trim(line.substr(colon + 1))));
  }
  return body > max_gathered_body || received.size() - head.size() >= body;
}

std::string closing_error_response(const ApiError& e) {
  const char* reason = e.status == 431 ? "Request Header Fields Too Large" : "Bad Request";
  const std::string body =
      error_body(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return "HTTP/1.1 " + std::to_string(e.status) + " " + reason +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace brise::serve
