#include "token_print.hpp"

#include <nlohmann/json.hpp>

namespace brise::cli {

std::string ids_text(std::span<const int32_t> ids) {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) text += ' ';
    text += std::to_string(ids[i]);
  }
  return text;
}

std::string ids_and_pieces_json(const Tokenizer& tokenizer, std::span<const int32_t> ids) {
  nlohmann::json pieces = nlohmann::json::array();
  for (const int32_t id : ids) pieces.push_back(std::string(tokenizer.piece(id)));
  const nlohmann::json out = {{"ids", ids}, {"pieces", pieces}};
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace brise::cli
