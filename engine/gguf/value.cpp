// GGUF metadata values: type names and the typed accessors.
#include <limits>
#include <string>

#include "brise/error.hpp"
#include "brise/gguf.hpp"

namespace brise::gguf {
namespace {

// The variant's alternatives are declared in ValueType order, so index() is the type id.
static_assert(std::variant_size_v<decltype(Value::data)> == 13);
static_assert(std::is_same_v<std::variant_alternative_t<8, decltype(Value::data)>, std::string>);
static_assert(std::is_same_v<std::variant_alternative_t<12, decltype(Value::data)>, double>);

[[noreturn]] void mismatch(std::string_view what, std::string_view expected, const Value& v) {
  throw Error(std::string(what) + ": expected " + std::string(expected) + ", got " +
              std::string(value_type_name(v.type())));
}

}  // namespace

std::string_view value_type_name(ValueType type) {
  // Indexed by the type's number (GGUF numbers them 0 to 12).
  static constexpr std::string_view kNames[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                                "i32", "f32", "bool", "string", "array",
                                                "u64", "i64", "f64"};
  const auto i = static_cast<size_t>(type);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

ValueType Value::type() const {
  return static_cast<ValueType>(data.index());
}

uint64_t Value::as_uint(std::string_view what) const {
  return std::visit(
      [&](const auto& v) -> uint64_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_signed_v<T>) {
            if (v < 0)
              throw Error(std::string(what) + ": expected a non-negative integer, got " +
                          std::to_string(v));
          }
          return static_cast<uint64_t>(v);
        } else {
          mismatch(what, "an unsigned integer", *this);
        }
      },
      data);
}

int64_t Value::as_int(std::string_view what) const {
  return std::visit(
      [&](const auto& v) -> int64_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_same_v<T, uint64_t>) {
            if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
              throw Error(std::string(what) + ": integer " + std::to_string(v) +
                          " does not fit in int64");
          }
          return static_cast<int64_t>(v);
        } else {
          mismatch(what, "an integer", *this);
        }
      },
      data);
}

double Value::as_float(std::string_view what) const {
  if (const auto* f = std::get_if<float>(&data)) return *f;
  if (const auto* d = std::get_if<double>(&data)) return *d;
  mismatch(what, "f32 or f64", *this);
}

bool Value::as_bool(std::string_view what) const {
  if (const auto* b = std::get_if<bool>(&data)) return *b;
  mismatch(what, "bool", *this);
}

const std::string& Value::as_string(std::string_view what) const {
  if (const auto* s = std::get_if<std::string>(&data)) return *s;
  mismatch(what, "string", *this);
}

const Array& Value::as_array(std::string_view what) const {
  if (const auto* a = std::get_if<Array>(&data)) return *a;
  mismatch(what, "array", *this);
}

namespace {
template <typename T>
Array make_typed_array(ValueType type, const std::vector<T>& items) {
  Array a;
  a.elem_type = type;
  a.items.reserve(items.size());
  for (const auto& item : items) a.items.emplace_back(item);
  return a;
}
}  // namespace

Array make_array(const std::vector<std::string>& items) {
  return make_typed_array(ValueType::STRING, items);
}
Array make_array(const std::vector<float>& items) {
  return make_typed_array(ValueType::F32, items);
}
Array make_array(const std::vector<int32_t>& items) {
  return make_typed_array(ValueType::I32, items);
}
Array make_array(const std::vector<bool>& items) {
  return make_typed_array(ValueType::BOOL, items);
}

}  // namespace brise::gguf
