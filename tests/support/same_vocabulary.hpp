// One gtest failure for each field in which two vocabularies differ: the checks of the tokenizer
// tests that read a vocabulary back (from a .model, from GGUF) against the one it came from.
#pragma once

#include "brise/tokenizer.hpp"

namespace brise::test {

void expect_same_vocabulary(const Vocabulary& a, const Vocabulary& b);

}  // namespace brise::test
