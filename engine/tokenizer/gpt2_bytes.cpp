// GPT-2's byte-to-unicode mapping (openai/gpt-2 encoder.py bytes_to_unicode), the form in which
// llama.cpp's GGUF files store byte-level BPE tokens.
#include <array>

#include "engine/tokenizer/tekken.hpp"

namespace brise::detail {
namespace {

// The code point that stands for each byte: bytes '!'-'~', 0xA1-0xAC and 0xAE-0xFF stand for
// themselves, the other 68 for U+0100, U+0101, ... in byte order.
struct Gpt2Map {
  std::array<uint16_t, 256> code_point{};
  std::array<int16_t, 324> byte_of{};  // by code point (< 0x144), -1 where none
  Gpt2Map() {
    byte_of.fill(-1);
    uint16_t next = 256;
    for (unsigned b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      code_point[b] = printable ? static_cast<uint16_t>(b) : next++;
      byte_of[code_point[b]] = static_cast<int16_t>(b);
    }
  }
};

const Gpt2Map& gpt2_map() {
  static const Gpt2Map map;
  return map;
}

}  // namespace

std::string bytes_to_gpt2(std::string_view bytes) {
  const Gpt2Map& map = gpt2_map();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const uint16_t cp = map.code_point[static_cast<uint8_t>(c)];
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else {  // all below U+0800: two bytes
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

bool gpt2_to_bytes(std::string_view text, std::string& bytes) {
  const Gpt2Map& map = gpt2_map();
  bytes.clear();
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<uint8_t>(text[i]);
    uint32_t cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < text.size() &&
               (static_cast<uint8_t>(text[i + 1]) & 0xC0) == 0x80) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<uint8_t>(text[i + 1]) & 0x3Fu);
      if (cp < 0x80) return false;  // an overlong form
      i += 2;
    } else {
      return false;  // three bytes and more are beyond U+0143, or not UTF-8
    }
    if (cp >= map.byte_of.size() || map.byte_of[cp] < 0) return false;
    bytes += static_cast<char>(map.byte_of[cp]);
  }
  return true;
}

}  // namespace brise::detail
