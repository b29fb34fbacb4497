// UTF-8 rules exactly as SentencePiece applies them (string_util::DecodeUTF8): overlong forms,
// surrogates and code points above U+10FFFF are invalid; an invalid byte is consumed on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace brise::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid character at the start of `s` (1..4), or 0 when it is invalid (including a
// multi-byte character cut short by the end of `s`).
size_t valid_char_length(std::string_view s);

// Number of bytes a character with this lead byte claims (SentencePiece's OneCharLen table:
// continuation and invalid lead bytes count as 1).
inline size_t lead_length(uint8_t lead) {
  constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// Offset of the first invalid byte of `s`, or std::string_view::npos when all of it is valid.
size_t find_invalid(std::string_view s);

// Appends the UTF-8 encoding of code point `cp` (at most U+10FFFF, not a surrogate).
void append_code_point(uint32_t cp, std::string& out);

// Appends raw bytes as text, as SentencePiece decodes a run of byte pieces: each valid character
// is copied, each byte that does not start one becomes U+FFFD.
void append_bytes_lossy(std::string_view bytes, std::string& out);

// Like append_bytes_lossy, but stops before a trailing character that more bytes could still
// complete. Returns how many bytes of `bytes` were consumed.
size_t append_complete_bytes(std::string_view bytes, std::string& out);

// The same two for byte-level decoding as Python's and tiktoken's decode(errors="replace") and
// WHATWG's decoder: each maximal subpart of an ill-formed sequence (the longest start of a
// well-formed character, or else one byte) becomes one U+FFFD. "\xE0\xA4A" is U+FFFD then "A".
void append_bytes_replacing_subparts(std::string_view bytes, std::string& out);
size_t append_complete_bytes_replacing_subparts(std::string_view bytes, std::string& out);

}  // namespace brise::utf8
