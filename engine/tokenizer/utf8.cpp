#include "engine/tokenizer/utf8.hpp"

#include "brise/tokenizer.hpp"

namespace brise::utf8 {
namespace {

bool is_trail(uint8_t b) {
  return (b & 0xC0) == 0x80;
}
bool is_valid_code_point(uint32_t c) {
  return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF);
}

// Bytes needed before the validity of the character at `lead` can be decided.
size_t bytes_to_decide(uint8_t lead) {
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Appends each valid character of `bytes` and U+FFFD for each byte that does not start one;
// with `stop_if_incomplete`, stops before a character that more bytes could still complete.
// Returns how many bytes were consumed.
size_t append_lossy(std::string_view bytes, std::string& out, bool stop_if_incomplete) {
  size_t i = 0;
  while (i < bytes.size()) {
    if (stop_if_incomplete && bytes.size() - i < bytes_to_decide(static_cast<uint8_t>(bytes[i])))
      break;
    const size_t n = valid_char_length(bytes.substr(i));
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(bytes.substr(i, n));
      i += n;
    }
  }
  return i;
}

}  // namespace

size_t valid_char_length(std::string_view s) {
  if (s.empty()) return 0;
  const auto* b = reinterpret_cast<const uint8_t*>(s.data());
  const size_t len = s.size();
  if (b[0] < 0x80) return 1;
  if (len >= 2 && (b[0] & 0xE0) == 0xC0) {
    const uint32_t cp = ((b[0] & 0x1Fu) << 6) | (b[1] & 0x3Fu);
    return (is_trail(b[1]) && cp >= 0x80 && is_valid_code_point(cp)) ? 2 : 0;
  }
  if (len >= 3 && (b[0] & 0xF0) == 0xE0) {
    const uint32_t cp = ((b[0] & 0x0Fu) << 12) | ((b[1] & 0x3Fu) << 6) | (b[2] & 0x3Fu);
    return (is_trail(b[1]) && is_trail(b[2]) && cp >= 0x800 && is_valid_code_point(cp)) ? 3 : 0;
  }
  if (len >= 4 && (b[0] & 0xF8) == 0xF0) {
    const uint32_t cp =
        ((b[0] & 0x07u) << 18) | ((b[1] & 0x3Fu) << 12) | ((b[2] & 0x3Fu) << 6) | (b[3] & 0x3Fu);
    return (is_trail(b[1]) && is_trail(b[2]) && is_trail(b[3]) && cp >= 0x10000 &&
            is_valid_code_point(cp))
               ? 4
               : 0;
  }
  return 0;
}

size_t find_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII fast path: most text is mostly ASCII.
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = valid_char_length(s.substr(i));
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

void append_code_point(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

void append_bytes_lossy(std::string_view bytes, std::string& out) {
  append_lossy(bytes, out, false);
}

size_t append_complete_bytes(std::string_view bytes, std::string& out) {
  return append_lossy(bytes, out, true);
}

namespace {

// Unicode's table 3-7 of well-formed UTF-8: how long the character that `lead` starts is (0 for
// a byte that starts none) and the range its second byte must be in.
struct LeadRule {
  uint8_t length;
  uint8_t second_lo;
  uint8_t second_hi;
};
LeadRule lead_rule(uint8_t lead) {
  if (lead < 0x80) return {1, 0, 0};
  if (lead >= 0xC2 && lead <= 0xDF) return {2, 0x80, 0xBF};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};
  if (lead == 0xED) return {3, 0x80, 0x9F};
  if (lead >= 0xE1 && lead <= 0xEF) return {3, 0x80, 0xBF};
  if (lead == 0xF0) return {4, 0x90, 0xBF};
  if (lead >= 0xF1 && lead <= 0xF3) return {4, 0x80, 0xBF};
  if (lead == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes at the start of `s` (not empty) agree with a well-formed character: its
// length when the whole character is there, fewer for a maximal subpart (0 for a byte that
// starts no character); `*length` is the character's length (0 for such a byte).
size_t well_formed_prefix(std::string_view s, size_t* length) {
  const auto* b = reinterpret_cast<const uint8_t*>(s.data());
  const LeadRule rule = lead_rule(b[0]);
  *length = rule.length;
  if (rule.length <= 1) return rule.length;
  size_t k = 1;
  if (k < s.size() && b[k] >= rule.second_lo && b[k] <= rule.second_hi) {
    for (++k; k < rule.length && k < s.size() && is_trail(b[k]);) ++k;
  }
  return k;
}

// Appends what `bytes` hold up to `end_of_input` rules: at the end of the input a cut-short
// character is a maximal subpart (one U+FFFD); otherwise decoding stops before it. Returns the
// bytes consumed.
size_t append_replacing_subparts(std::string_view bytes, std::string& out, bool end_of_input) {
  size_t i = 0;
  while (i < bytes.size()) {
    if (static_cast<uint8_t>(bytes[i]) < 0x80) {
      out += bytes[i++];
      continue;
    }
    size_t length;
    const size_t k = well_formed_prefix(bytes.substr(i), &length);
    if (length != 0 && k == length) {
      out.append(bytes.substr(i, k));
      i += k;
    } else if (length != 0 && i + k == bytes.size() && !end_of_input) {
      break;  // the next bytes may complete it
    } else {
      out += kReplacement;
      i += k == 0 ? 1 : k;
    }
  }
  return i;
}

}  // namespace

void append_bytes_replacing_subparts(std::string_view bytes, std::string& out) {
  append_replacing_subparts(bytes, out, true);
}

size_t append_complete_bytes_replacing_subparts(std::string_view bytes, std::string& out) {
  return append_replacing_subparts(bytes, out, false);
}

}  // namespace brise::utf8

namespace brise {

size_t find_invalid_utf8(std::string_view text) {
  return utf8::find_invalid(text);
}

}  // namespace brise
