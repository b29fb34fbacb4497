// Comparison of GGUF metadata values for tests: the same type and the same bits (NaN payloads and
// -0.0 included), element by element in arrays.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "brise/gguf.hpp"

namespace brise::test {

// `where` (usually the key) names the value in the failure message.
::testing::AssertionResult same_value(const gguf::Value& a, const gguf::Value& b,
                                      const std::string& where);

}  // namespace brise::test
