// Little-endian byte editing for hand-made and damaged GGUF images in tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace brise::test {

using Bytes = std::vector<std::byte>;

inline void put_u32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.at(at + i) = static_cast<std::byte>(v >> (8 * i));
}
inline void put_u64(Bytes& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.at(at + i) = static_cast<std::byte>(v >> (8 * i));
}
inline void append_u32(Bytes& b, uint32_t v) {
  b.resize(b.size() + 4);
  put_u32(b, b.size() - 4, v);
}
inline void append_u64(Bytes& b, uint64_t v) {
  b.resize(b.size() + 8);
  put_u64(b, b.size() - 8, v);
}
// A gguf_string: u64 length, then the bytes.
inline void append_str(Bytes& b, std::string_view s) {
  append_u64(b, s.size());
  for (const char c : s) b.push_back(static_cast<std::byte>(c));
}

// Offset of the gguf_string (u64 length + text) holding `text`; throws when there is none.
inline size_t find_string(const Bytes& b, std::string_view text) {
  std::string needle(8, '\0');
  for (int i = 0; i < 8; ++i)
    needle[i] = static_cast<char>(static_cast<uint64_t>(text.size()) >> (8 * i));
  needle += text;
  const std::string_view hay(reinterpret_cast<const char*>(b.data()), b.size());
  const size_t at = hay.find(needle);
  if (at == std::string_view::npos)
    throw std::runtime_error("string not found: " + std::string(text));
  return at;
}

}  // namespace brise::test
