#include "support/gguf_values.hpp"

#include <cstring>
#include <type_traits>
#include <variant>

namespace brise::test {

::testing::AssertionResult same_value(const gguf::Value& a, const gguf::Value& b,
                                      const std::string& where) {
  if (a.type() != b.type())
    return ::testing::AssertionFailure() << where << ": type " << gguf::value_type_name(a.type())
                                         << " vs " << gguf::value_type_name(b.type());
  if (a.type() == gguf::ValueType::ARRAY) {
    const gguf::Array& x = std::get<gguf::Array>(a.data);
    const gguf::Array& y = std::get<gguf::Array>(b.data);
    if (x.elem_type != y.elem_type)
      return ::testing::AssertionFailure() << where << ": element type differs";
    if (x.items.size() != y.items.size())
      return ::testing::AssertionFailure()
             << where << ": " << x.items.size() << " vs " << y.items.size() << " items";
    for (size_t i = 0; i < x.items.size(); ++i) {
      auto r = same_value(x.items[i], y.items[i], where + "[" + std::to_string(i) + "]");
      if (!r) return r;
    }
    return ::testing::AssertionSuccess();
  }
  const bool equal = std::visit(
      [&](const auto& va) {
        using T = std::decay_t<decltype(va)>;
        const T& vb = std::get<T>(b.data);
        if constexpr (std::is_floating_point_v<T>) {
          return std::memcmp(&va, &vb, sizeof(T)) == 0;
        } else if constexpr (std::is_same_v<T, gguf::Array>) {
          return false;  // handled above
        } else {
          return va == vb;
        }
      },
      a.data);
  if (!equal) return ::testing::AssertionFailure() << where << ": values differ";
  return ::testing::AssertionSuccess();
}

}  // namespace brise::test
