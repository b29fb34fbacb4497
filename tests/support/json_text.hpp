// JSON text into a value, for the tests, compiled once: nlohmann::json's parser is a template
// that costs every test file instantiating it ~6 s of compile time under the sanitizers (CI
// builds the suite three times), so tests parse through this instead of json::parse.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace brise::test {

// nlohmann::json::parse(text); throws nlohmann::json::parse_error on bad text.
nlohmann::json parse_json(std::string_view text);

// The same, but a discarded value (is_discarded()) instead of an exception.
nlohmann::json parse_json_or_discarded(std::string_view text);

}  // namespace brise::test
