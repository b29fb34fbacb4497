#include "support/json_text.hpp"

namespace brise::test {

nlohmann::json parse_json(std::string_view text) {
  return nlohmann::json::parse(text);
}

nlohmann::json parse_json_or_discarded(std::string_view text) {
  return nlohmann::json::parse(text, nullptr, false);
}

}  // namespace brise::test
