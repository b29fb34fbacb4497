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

// The whole response for an error found before httplib saw the request: OpenAI's error object,
// and "Connection: close".
std::string closing_error_response(const ApiError& e);

}  // namespace brise::serve
