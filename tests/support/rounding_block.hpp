// One block of 32 values whose q8 codes are known by hand: amax = 127 gives scale 1, so each code
// is its value rounded half away from zero. Shared by the q8_0 weight codec's tests and the
// activation quantization's tests (the same rounding rule, ggml's).
#pragma once

#include <array>
#include <cstdint>

namespace brise::test {

struct RoundingBlock {
  std::array<float, 32> x;
  std::array<int8_t, 32> codes;  // the expected codes, by hand
};

inline RoundingBlock rounding_block() {
  RoundingBlock b;
  for (int i = 0; i < 32; ++i) {
    b.x[i] = static_cast<float>(i) - 15.5f;  // -15.5 .. 15.5: rounds away from zero
    b.codes[i] = static_cast<int8_t>(i < 16 ? i - 16 : i - 15);
  }
  const float head[] = {127.0f, -2.5f, 2.5f, 0.49f, -0.5f};
  const int8_t head_codes[] = {127, -3, 3, 0, -1};
  for (int i = 0; i < 5; ++i) {
    b.x[i] = head[i];
    b.codes[i] = head_codes[i];
  }
  return b;
}

}  // namespace brise::test
