// Token ids printed for people and scripts (`brise tokenize`, `brise template`).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "brise/tokenizer.hpp"

namespace brise::cli {

// "1 2 3": the ids separated by spaces.
std::string ids_text(std::span<const int32_t> ids);

// {"ids":[...],"pieces":[...]}: a piece that is not valid UTF-8 on its own shows U+FFFD.
std::string ids_and_pieces_json(const Tokenizer& tokenizer, std::span<const int32_t> ids);

}  // namespace brise::cli
