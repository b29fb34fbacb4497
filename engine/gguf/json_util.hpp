// JSON parsing (checkpoint configs, safetensors headers, tekken.json), with limits and typed access
// whose errors name the file and the key.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace brise::json_util {

inline constexpr size_t kMaxDepth = 64;

// Throws brise::Error "<name>: invalid JSON: ..." on a syntax error or nesting beyond max_depth.
nlohmann::json parse(std::string_view text, const std::string& name, size_t max_depth = kMaxDepth);
nlohmann::json parse_file(const std::string& path, size_t max_bytes = 64u << 20);

// Typed lookups in an object. Missing keys and JSON null read as absent.
std::optional<uint64_t> get_uint(const nlohmann::json& obj, std::string_view key,
                                 const std::string& name);
std::optional<double> get_number(const nlohmann::json& obj, std::string_view key,
                                 const std::string& name);
std::optional<bool> get_bool(const nlohmann::json& obj, std::string_view key,
                             const std::string& name);
std::optional<std::string> get_string(const nlohmann::json& obj, std::string_view key,
                                      const std::string& name);
// The same, throwing "<name>: missing key '<key>'" when absent.
uint64_t require_uint(const nlohmann::json& obj, std::string_view key, const std::string& name);
double require_number(const nlohmann::json& obj, std::string_view key, const std::string& name);

}  // namespace brise::json_util
