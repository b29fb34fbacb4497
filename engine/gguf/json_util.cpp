#include "engine/gguf/json_util.hpp"

#include <cmath>
#include <fstream>
#include <iterator>

#include "brise/error.hpp"

namespace brise::json_util {
namespace {

// nlohmann's parser is iterative, but destroying a deeply nested value recurses: refuse deep
// documents before parsing.
void check_depth(std::string_view text, const std::string& name, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        throw Error(name + ": invalid JSON: nesting deeper than " + std::to_string(max_depth));
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

const nlohmann::json* lookup(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

nlohmann::json parse(std::string_view text, const std::string& name, size_t max_depth) {
  check_depth(text, name, max_depth);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw Error(name + ": invalid JSON: " + e.what());
  }
}

nlohmann::json parse_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<size_t>(in.tellg());
  if (size > max_bytes)
    throw Error(path + ": " + std::to_string(size) + " bytes is too large for a JSON config");
  in.seekg(0);
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (!in) throw Error(path + ": read failed");
  return parse(text, path);
}

std::optional<uint64_t> get_uint(const nlohmann::json& obj, std::string_view key,
                                 const std::string& name) {
  const auto* v = lookup(obj, key);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) return v->get<uint64_t>();
  if (v->is_number_integer() && v->get<int64_t>() >= 0) return v->get<uint64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (d >= 0 && d < 1.8e19 && std::floor(d) == d) return static_cast<uint64_t>(d);
  }
  throw Error(name + ": key '" + std::string(key) + "' must be a non-negative integer, got " +
              v->dump());
}

std::optional<double> get_number(const nlohmann::json& obj, std::string_view key,
                                 const std::string& name) {
  const auto* v = lookup(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number())
    throw Error(name + ": key '" + std::string(key) + "' must be a number, got " + v->dump());
  const double d = v->get<double>();
  if (!std::isfinite(d)) throw Error(name + ": key '" + std::string(key) + "' must be finite");
  return d;
}

std::optional<bool> get_bool(const nlohmann::json& obj, std::string_view key,
                             const std::string& name) {
  const auto* v = lookup(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean())
    throw Error(name + ": key '" + std::string(key) + "' must be true or false, got " + v->dump());
  return v->get<bool>();
}

std::optional<std::string> get_string(const nlohmann::json& obj, std::string_view key,
                                      const std::string& name) {
  const auto* v = lookup(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string())
    throw Error(name + ": key '" + std::string(key) + "' must be a string, got " + v->dump());
  return v->get<std::string>();
}

uint64_t require_uint(const nlohmann::json& obj, std::string_view key, const std::string& name) {
  auto v = get_uint(obj, key, name);
  if (!v) throw Error(name + ": missing key '" + std::string(key) + "'");
  return *v;
}

double require_number(const nlohmann::json& obj, std::string_view key, const std::string& name) {
  auto v = get_number(obj, key, name);
  if (!v) throw Error(name + ": missing key '" + std::string(key) + "'");
  return *v;
}

}  // namespace brise::json_util
