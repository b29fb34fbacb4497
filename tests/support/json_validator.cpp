#include "support/json_validator.hpp"

#include <cmath>
#include <stdexcept>

namespace brise::test {
namespace {

using json = nlohmann::json;

class Validator {
 public:
  explicit Validator(const json& root) : root_(root) {}

  std::optional<std::string> check(const json& x, const json& s, const std::string& at,
                                   int depth = 0) const {
    if (depth > 200) throw std::invalid_argument("$ref recursion without end");
    if (s.is_boolean()) {
      if (s.get<bool>()) return std::nullopt;
      return at + ": the schema false";
    }
    if (!s.is_object()) throw std::invalid_argument("a schema must be an object or a boolean");
    for (const auto& [key, value] : s.items()) {
      static const char* const kKnown[] = {"type",
                                           "properties",
                                           "required",
                                           "additionalProperties",
                                           "enum",
                                           "const",
                                           "items",
                                           "minItems",
                                           "maxItems",
                                           "anyOf",
                                           "$ref",
                                           "$defs",
                                           "definitions",
                                           "title",
                                           "description",
                                           "default",
                                           "examples",
                                           "$comment",
                                           "$schema",
                                           "$id",
                                           "deprecated",
                                           "readOnly",
                                           "writeOnly",
                                           "minimum",
                                           "maximum",
                                           "exclusiveMinimum",
                                           "exclusiveMaximum",
                                           "minLength",
                                           "maxLength"};
      bool known = false;
      for (const char* k : kKnown) known = known || key == k;
      if (!known) throw std::invalid_argument("keyword outside the subset: " + key);
    }
    if (s.contains("$ref")) {
      if (auto e = check(x, resolve(s["$ref"].get<std::string>()), at, depth + 1)) return e;
    }
    if (s.contains("type") && !type_ok(x, s["type"])) return at + ": type " + s["type"].dump();
    if (s.contains("enum")) {
      bool found = false;
      for (const auto& v : s["enum"]) found = found || equal(x, v);
      if (!found) return at + ": not in enum";
    }
    if (s.contains("const") && !equal(x, s["const"])) return at + ": not the const";
    if (s.contains("anyOf")) {
      bool any = false;
      for (const auto& alt : s["anyOf"]) any = any || !check(x, alt, at, depth + 1);
      if (!any) return at + ": no anyOf alternative";
    }
    if (x.is_object()) {
      const json empty = json::object();
      const json& props = s.contains("properties") ? s["properties"] : empty;
      if (s.contains("required"))
        for (const auto& name : s["required"])
          if (!x.contains(name.get<std::string>()))
            return at + ": required '" + name.get<std::string>() + "' missing";
      for (const auto& [key, value] : x.items()) {
        const std::string where = at + "/" + key;
        if (props.contains(key)) {
          if (auto e = check(value, props[key], where, depth + 1)) return e;
        } else if (s.contains("additionalProperties")) {
          if (auto e = check(value, s["additionalProperties"], where, depth + 1)) return e;
        }
      }
    }
    if (x.is_number()) {
      // Validation 6.2: minimum <= x, x < exclusiveMinimum fails, and so on (draft 4's boolean
      // exclusiveMinimum makes minimum strict).
      const auto strict = [&](const char* k) {
        return s.contains(k) && s[k].is_boolean() && s[k].get<bool>();
      };
      if (s.contains("minimum") && compare(x, s["minimum"]) < (strict("exclusiveMinimum") ? 1 : 0))
        return at + ": below minimum";
      if (s.contains("maximum") && compare(x, s["maximum"]) > (strict("exclusiveMaximum") ? -1 : 0))
        return at + ": above maximum";
      if (s.contains("exclusiveMinimum") && s["exclusiveMinimum"].is_number() &&
          compare(x, s["exclusiveMinimum"]) <= 0)
        return at + ": not above exclusiveMinimum";
      if (s.contains("exclusiveMaximum") && s["exclusiveMaximum"].is_number() &&
          compare(x, s["exclusiveMaximum"]) >= 0)
        return at + ": not below exclusiveMaximum";
    }
    if (x.is_string()) {
      // Validation 6.3: the length in characters (RFC 8259), here code points of the UTF-8 text.
      size_t length = 0;
      for (const unsigned char c : x.get<std::string>()) length += (c & 0xC0) != 0x80;
      if (s.contains("minLength") && length < s["minLength"].get<size_t>())
        return at + ": shorter than minLength";
      if (s.contains("maxLength") && length > s["maxLength"].get<size_t>())
        return at + ": longer than maxLength";
    }
    if (x.is_array()) {
      if (s.contains("minItems") && x.size() < s["minItems"].get<size_t>())
        return at + ": fewer than minItems";
      if (s.contains("maxItems") && x.size() > s["maxItems"].get<size_t>())
        return at + ": more than maxItems";
      if (s.contains("items"))
        for (size_t i = 0; i < x.size(); ++i)
          if (auto e = check(x[i], s["items"], at + "/" + std::to_string(i), depth + 1)) return e;
    }
    return std::nullopt;
  }

 private:
  const json& resolve(const std::string& ref) const {
    if (ref == "#") return root_;
    for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
      const std::string p = prefix;
      if (ref.rfind(p, 0) == 0) {
        const std::string section = p.substr(2, p.size() - 3);
        return root_.at(section).at(ref.substr(p.size()));
      }
    }
    throw std::invalid_argument("$ref outside the subset: " + ref);
  }

  static bool is_integer(const json& x) {
    if (x.is_number_integer()) return true;
    if (!x.is_number_float()) return false;
    const double d = x.get<double>();
    return std::isfinite(d) && std::floor(d) == d;
  }

  static bool one_type_ok(const json& x, const std::string& t) {
    if (t == "object") return x.is_object();
    if (t == "array") return x.is_array();
    if (t == "string") return x.is_string();
    if (t == "number") return x.is_number();
    if (t == "integer") return is_integer(x);
    if (t == "boolean") return x.is_boolean();
    if (t == "null") return x.is_null();
    throw std::invalid_argument("unknown type " + t);
  }

  static bool type_ok(const json& x, const json& type) {
    if (type.is_string()) return one_type_ok(x, type.get<std::string>());
    for (const auto& t : type)
      if (one_type_ok(x, t.get<std::string>())) return true;
    return false;
  }

  // -1, 0, 1: integers exactly, anything else as long doubles (which keep every 64-bit integer
  // exact beside a fraction).
  static int compare(const json& a, const json& b) {
    const auto sign = [](auto x, auto y) { return (x > y) - (x < y); };
    if (a.is_number_integer() && b.is_number_integer()) {
      const bool a_negative = !a.is_number_unsigned() && a.get<int64_t>() < 0;
      const bool b_negative = !b.is_number_unsigned() && b.get<int64_t>() < 0;
      if (a_negative != b_negative) return a_negative ? -1 : 1;
      if (a_negative) return sign(a.get<int64_t>(), b.get<int64_t>());
      return sign(a.get<uint64_t>(), b.get<uint64_t>());
    }
    const auto real = [](const json& v) {
      if (v.is_number_unsigned()) return static_cast<long double>(v.get<uint64_t>());
      if (v.is_number_integer()) return static_cast<long double>(v.get<int64_t>());
      return static_cast<long double>(v.get<double>());
    };
    return sign(real(a), real(b));
  }

  // JSON Schema equality: numbers by mathematical value, objects without order.
  static bool equal(const json& a, const json& b) {
    if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
    if (a.type() != b.type()) return false;
    if (a.is_array()) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (!equal(a[i], b[i])) return false;
      return true;
    }
    if (a.is_object()) {
      if (a.size() != b.size()) return false;
      for (const auto& [k, v] : a.items())
        if (!b.contains(k) || !equal(v, b[k])) return false;
      return true;
    }
    return a == b;
  }

  const json& root_;
};

}  // namespace

std::optional<std::string> json_schema_violation(const nlohmann::json& instance,
                                                 const nlohmann::json& schema) {
  return Validator(schema).check(instance, schema, "");
}

std::optional<std::string> json_text_violation(const std::string& text,
                                               const nlohmann::json& schema) {
  json value;
  try {
    value = json::parse(text);
  } catch (const json::exception& e) {
    return std::string("not JSON: ") + e.what();
  }
  return json_schema_violation(value, schema);
}

}  // namespace brise::test
