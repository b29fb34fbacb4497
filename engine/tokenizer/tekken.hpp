// What the Tekken side of the Tokenizer shares between its files: the lookup tables built once,
// the checks every Tekken vocabulary passes whatever its source, mistral-common's versions, and
// GPT-2's byte-to-unicode mapping (the form of llama.cpp's GGUF tokens).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "brise/tokenizer.hpp"
#include "engine/tokenizer/tables.hpp"

namespace brise::detail {

struct TekkenTables {
  PieceTable ranks;       // a rank's bytes -> its id
  int32_t byte_ids[256];  // the id of each single byte
};

// Throws brise::Error (message without a file name) unless `v` is a valid Tekken vocabulary:
// control tokens first (unique texts, BOS and EOS among them), then ranks with unique bytes,
// ranks 0-255 the single bytes 0x00-0xFF in order (as mistral-common requires), ids in range, a
// known version or none, and the supported pattern.
void validate_tekken(const Vocabulary& v);

// mistral-common's TokenizerVersion members: v1 v2 v3 v7 v11 v13.
bool is_known_tekken_version(std::string_view version);
std::string known_tekken_versions();

// GPT-2's byte-to-unicode form: printable bytes stand for themselves, the others (controls,
// space, 0x7F-0xA0, 0xAD) for U+0100 onwards; a space is "Ġ".
std::string bytes_to_gpt2(std::string_view bytes);
// The bytes of a GPT-2 form string; false when a character of it is outside the mapping.
bool gpt2_to_bytes(std::string_view text, std::string& bytes);

}  // namespace brise::detail

struct brise::Tokenizer::TekkenTables : brise::detail::TekkenTables {};
