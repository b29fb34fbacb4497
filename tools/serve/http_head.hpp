// The head of an HTTP request (request line and headers), checked before httplib reads it:
// httplib 0.11 keeps a connection open after a malformed request line and waits for a body
// whose Content-Length is "-1" or "5x", so brise answers those itself, once, and closes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "api.hpp"

namespace brise::serve {

// What is wrong with a whole request head (ending in an empty line), as the 400 to answer it
// with; nullopt when nothing is. Checks the request line (METHOD SP target SP HTTP/1.x), each
// header line (name: value, no line folding) and Content-Length (digits, one value).
std::optional<ApiError> head_problem(std::string_view head);

// Whether `received` (a connection's bytes from the start of a request) is enough for a worker
// to answer without waiting on the client: a whole head and its whole body (Content-Length bytes,
// up to max_gathered_body), or a head the worker deals with at once: a malformed one (a 400),
// max_header_bytes without its end (a 431), or one whose body the worker reads itself (larger
// than max_gathered_body, chunked, or sent after "Expect: 100-continue").
bool request_arrived(std::string_view received, size_t max_header_bytes, size_t max_gathered_body);

// The whole response for an error found before httplib saw the request: OpenAI's error object,
// and "Connection: close".
std::string closing_error_response(const ApiError& e);

}  // namespace brise::serve
