// std::regex for the tests, compiled once: <regex> costs every test file that instantiates it
// ~7 s of compile time under the sanitizers (CI builds the suite three times).
#pragma once

#include <string>
#include <string_view>

namespace brise::test {

// std::regex_search(text, std::regex(pattern)) (ECMAScript grammar).
bool matches_regex(const std::string& text, const std::string& pattern);

// std::regex_match: the whole text matches the pattern.
bool fully_matches_regex(const std::string& text, const std::string& pattern);

// `literal` with every character that is special in an ECMAScript regex escaped.
std::string escape_for_regex(std::string_view literal);

}  // namespace brise::test
