#include "engine/generate/python_json.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <system_error>

#include "brise/error.hpp"
#include "brise/tokenizer.hpp"
#include "engine/tokenizer/utf8.hpp"

namespace brise::python_json {
namespace {

constexpr size_t kMaxDepth = 256;

// Raised inside the parser; try_parse turns it into nullopt, parse into brise::Error.
struct SyntaxError {
  size_t offset;
  std::string message;
};

// Python's repr of a finite double: the shortest digits that read back the same, in fixed
// notation when the decimal point falls within -4 < exponent <= 16, else as d.ddde+XX.
std::string float_repr(double x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string_view s(buf, static_cast<size_t>(r.ptr - buf));
  std::string out;
  if (s.front() == '-') {
    out += '-';
    s.remove_prefix(1);
  }
  const size_t e = s.find('e');
  std::string digits;
  for (const char c : s.substr(0, e))
    if (c != '.') digits += c;
  int exponent = 0;
  std::from_chars(s.data() + e + 1 + (s[e + 1] == '+'), s.data() + s.size(), exponent);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int n = static_cast<int>(digits.size());
  const int point = exponent + 1;  // value = 0.<digits> * 10^point
  if (point > -4 && point <= 16) {
    if (point <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-point), '0');
      out += digits;
    } else if (point >= n) {
      out += digits;
      out.append(static_cast<size_t>(point - n), '0');
      out += ".0";
    } else {
      out.append(digits, 0, static_cast<size_t>(point));
      out += '.';
      out.append(digits, static_cast<size_t>(point));
    }
  } else {
    out += digits[0];
    if (n > 1) {
      out += '.';
      out.append(digits, 1);
    }
    char exp[16];
    std::snprintf(exp, sizeof exp, "e%c%02d", point - 1 < 0 ? '-' : '+', std::abs(point - 1));
    out += exp;
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Value document() {
    skip_space();
    Value v = value(0);
    skip_space();
    if (i_ != s_.size()) fail("extra data after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { throw SyntaxError{i_, message}; }

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Value value(size_t depth) {
    if (i_ >= s_.size()) fail("expected a value, found the end of the text");
    const char c = s_[i_];
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth)
        throw Error("JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
      return c == '{' ? object(depth) : array(depth);
    }
    if (c == '"') return Value::string(string());
    Value v;
    if (literal("null")) return v;
    if (literal("true") || literal("false")) {
      v.kind = Value::Kind::Bool;
      v.boolean = s_.substr(i_ - 4, 4) == "true";
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    fail("expected a value");
  }

  bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }

  // The elements of an object or an array after its opening bracket: `element` reads one,
  // they are separated by ',' and end with `close`.
  template <class ReadElement>
  void elements(char close, const char* what, const ReadElement& element) {
    ++i_;
    skip_space();
    if (at(close)) {
      ++i_;
      return;
    }
    while (true) {
      skip_space();
      element();
      skip_space();
      if (at(',')) {
        ++i_;
      } else if (at(close)) {
        ++i_;
        return;
      } else {
        fail(std::string("expected ',' or '") + close + "' in " + what);
      }
    }
  }

  Value object(size_t depth) {
    Value v = Value::object();
    elements('}', "an object", [&] {
      if (!at('"')) fail("expected a key in double quotes");
      std::string key = string();
      skip_space();
      if (!at(':')) fail("expected ':' after a key");
      ++i_;
      skip_space();
      v.set(std::move(key), value(depth + 1));
    });
    return v;
  }

  Value array(size_t depth) {
    Value v = Value::array();
    elements(']', "an array", [&] { v.items.push_back(value(depth + 1)); });
    return v;
  }

  uint32_t hex4() {
    if (i_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      cp <<= 4;
      if (h >= '0' && h <= '9')
        cp |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        cp |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        cp |= static_cast<uint32_t>(h - 'A' + 10);
      else
        fail("invalid \\u escape");
    }
    return cp;
  }

  std::string string() {
    ++i_;  // the opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated string");
      switch (s_[i_++]) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (s_.substr(i_, 2) != "\\u") fail("lone UTF-16 surrogate");
            i_ += 2;
            const uint32_t low = hex4();
            if (low < 0xDC00 || low >= 0xE000) fail("lone UTF-16 surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("lone UTF-16 surrogate");
          }
          utf8::append_code_point(cp, out);
          break;
        }
        default:
          fail("invalid escape in a string");
      }
    }
  }

  Value number() {
    const size_t start = i_;
    auto digits = [&] {
      const size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ - from;
    };
    if (s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0')
      ++i_;
    else if (digits() == 0)
      fail("expected a digit");
    bool is_float = false, negative_exponent = false;
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      is_float = true;
      if (digits() == 0) fail("expected a digit after '.'");
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      is_float = true;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) negative_exponent = s_[i_++] == '-';
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    const std::string_view literal = s_.substr(start, i_ - start);
    Value v;
    if (!is_float) {  // Python's int keeps every digit; only -0 reads as 0
      v.kind = Value::Kind::Int;
      v.text = literal == "-0" ? "0" : std::string(literal);
      return v;
    }
    v.kind = Value::Kind::Float;
    double x = 0;
    const auto r = std::from_chars(literal.data(), literal.data() + literal.size(), x);
    const bool negative = literal.front() == '-';
    if (r.ec == std::errc::result_out_of_range || !std::isfinite(x)) {
      // Python's float() gives +-inf on overflow (json.dumps writes Infinity) and +-0.0 on
      // underflow.
      v.text =
          negative_exponent ? (negative ? "-0.0" : "0.0") : (negative ? "-Infinity" : "Infinity");
      return v;
    }
    v.text = float_repr(x);
    return v;
  }

  std::string_view s_;
  size_t i_ = 0;
};

void dump(const Value& v, std::string& out) {
  switch (v.kind) {
    case Value::Kind::Null:
      out += "null";
      return;
    case Value::Kind::Bool:
      out += v.boolean ? "true" : "false";
      return;
    case Value::Kind::Int:
    case Value::Kind::Float:
      out += v.text;
      return;
    case Value::Kind::String:
      out += dumps_string(v.text);
      return;
    case Value::Kind::Array:
      out += '[';
      for (size_t k = 0; k < v.items.size(); ++k) {
        if (k) out += ", ";
        dump(v.items[k], out);
      }
      out += ']';
      return;
    case Value::Kind::Object:
      out += '{';
      for (size_t k = 0; k < v.members.size(); ++k) {
        if (k) out += ", ";
        out += dumps_string(v.members[k].first);
        out += ": ";
        dump(v.members[k].second, out);
      }
      out += '}';
      return;
  }
}

}  // namespace

Value::Value() = default;
Value::Value(const Value&) = default;
Value::Value(Value&&) noexcept = default;
Value& Value::operator=(const Value&) = default;
Value& Value::operator=(Value&&) noexcept = default;
Value::~Value() = default;

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

void Value::set(std::string key, Value value) {
  for (auto& [k, v] : members)
    if (k == key) {
      v = std::move(value);
      return;
    }
  members.emplace_back(std::move(key), std::move(value));
}

Value Value::string(std::string s) {
  Value v;
  v.kind = Kind::String;
  v.text = std::move(s);
  return v;
}

Value Value::object() {
  Value v;
  v.kind = Kind::Object;
  return v;
}

Value Value::array() {
  Value v;
  v.kind = Kind::Array;
  return v;
}

Value parse(std::string_view text, const std::string& what) {
  const size_t bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos)
    throw Error(what + ": not valid UTF-8 (byte " + std::to_string(bad) + ")");
  try {
    return Parser(text).document();
  } catch (const SyntaxError& e) {
    throw Error(what + ": invalid JSON at byte " + std::to_string(e.offset) + ": " + e.message);
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
}

std::optional<Value> try_parse(std::string_view text) {
  if (find_invalid_utf8(text) != std::string_view::npos) return std::nullopt;
  try {
    return Parser(text).document();
  } catch (const SyntaxError&) {
    return std::nullopt;
  }
}

std::string dumps(const Value& value) {
  std::string out;
  dump(value, out);
  return out;
}

std::string dumps_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
          out += esc;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace brise::python_json
