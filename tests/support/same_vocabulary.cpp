#include "support/same_vocabulary.hpp"

#include <gtest/gtest.h>

namespace brise::test {

void expect_same_vocabulary(const Vocabulary& a, const Vocabulary& b) {
  EXPECT_EQ(a.pieces, b.pieces);
  EXPECT_EQ(a.scores, b.scores);
  EXPECT_EQ(a.kinds, b.kinds);
  EXPECT_EQ(a.bos_id, b.bos_id);
  EXPECT_EQ(a.eos_id, b.eos_id);
  EXPECT_EQ(a.unk_id, b.unk_id);
  EXPECT_EQ(a.pad_id, b.pad_id);
  EXPECT_EQ(a.add_bos, b.add_bos);
  EXPECT_EQ(a.add_eos, b.add_eos);
  EXPECT_EQ(a.add_dummy_prefix, b.add_dummy_prefix);
  EXPECT_EQ(a.remove_extra_whitespaces, b.remove_extra_whitespaces);
  EXPECT_EQ(a.byte_fallback, b.byte_fallback);
  EXPECT_EQ(a.unk_surface, b.unk_surface);
}

}  // namespace brise::test
