// Attention over KV blocks (kernels/attention.hpp): the SIMD split against its scalar
// specification bit for bit (f32, f16 and q8_0 blocks, awkward head sizes, windows that start and
// end inside blocks, more rows than one pass takes), whole rows against a double-precision softmax,
// hand-computed cases, a row's result the same bits alone or among other rows, and the block
// layout's store, load and copy against the values stored.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/type_traits.hpp"

namespace brise::kernels {
namespace {

const TypeTraits* const kF32 = find_type("f32");
const TypeTraits* const kF16 = find_type("f16");
const TypeTraits* const kQ8 = find_type("q8_0");

// A random f16 of magnitude in [1/16, 4), as an f32 (exact in f16, so f32 and f16 blocks hold the
// same values).
float random_f16_value(std::mt19937& rng) {
  const int exponent = -4 + static_cast<int>(rng() % 6);
  const float v = std::ldexp(1.0f + static_cast<float>(rng() % 1024) / 1024.0f, exponent);
  return rng() & 1 ? -v : v;
}

// Keys and values of positions [0, keys) of one head, stored in blocks of the type. Every block is
// its own allocation, and the slots past `keys` in the last one hold 0xFF bytes (NaN in f32 and
// f16, NaN scales in q8_0): a kernel that used them would poison its result.
struct Cache {
  const TypeTraits* type = nullptr;
  size_t head_dim = 0, keys = 0;
  std::vector<float> k, v;  // [position][head_dim], the values stored
  float max_abs_v = 0.0f;
  std::vector<std::vector<std::byte>> storage;
  std::vector<const std::byte*> table;
  KVBlocks blocks() const { return {table.data(), 0, table.size()}; }
};

Cache make_cache(const TypeTraits* type, size_t head_dim, size_t keys, unsigned seed) {
  Cache c;
  c.type = type;
  c.head_dim = head_dim;
  c.keys = keys;
  std::mt19937 rng(seed);
  c.k.resize(keys * head_dim);
  c.v.resize(keys * head_dim);
  for (float& x : c.k) x = random_f16_value(rng);
  for (float& x : c.v) x = random_f16_value(rng);
  const size_t n_blocks = (keys + kKVBlock - 1) / kKVBlock;
  c.storage.assign(n_blocks,
                   std::vector<std::byte>(kv_block_bytes(*type, head_dim), std::byte{0xFF}));
  for (size_t p = 0; p < keys; ++p)
    kv_block_store(*type, head_dim, &c.k[p * head_dim], &c.v[p * head_dim], p % kKVBlock,
                   c.storage[p / kKVBlock].data());
  for (const auto& b : c.storage) c.table.push_back(b.data());
  for (const float x : c.v) c.max_abs_v = std::max(c.max_abs_v, std::fabs(x));
  return c;
}

std::vector<float> random_query(size_t head_dim, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> q(head_dim);
  for (float& x : q) x = dist(rng);
  return q;
}

// Query rows with their keys [begin, end), in the form the cache type's kernels take.
struct Rows {
  std::vector<std::vector<float>> q;
  std::vector<std::vector<std::byte>> prepared;
  std::vector<AttentionRow> rows;
  void add(const Cache& c, std::vector<float> query, uint64_t begin, uint64_t end) {
    q.push_back(std::move(query));
    prepared.emplace_back(attention_query_bytes(*c.type, c.head_dim));
    attention_prepare_query(*c.type, c.head_dim, q.back().data(), prepared.back().data());
    rows.clear();
    for (size_t r = 0; r < q.size(); ++r) rows.push_back({prepared[r].data(), 0, 0});
    ends.push_back({begin, end});
    for (size_t r = 0; r < rows.size(); ++r) {
      rows[r].begin = ends[r].first;
      rows[r].end = ends[r].second;
    }
  }
  std::vector<std::pair<uint64_t, uint64_t>> ends;
};

// Partials of every row over one split, by the SIMD kernel or the scalar specification.
struct Partials {
  std::vector<float> o;
  std::vector<AttentionPartial> parts;
  Partials(size_t rows, size_t head_dim) : o(rows * head_dim, -1.0f), parts(rows) {
    for (size_t r = 0; r < rows; ++r) parts[r] = {0.0f, -1.0f, &o[r * head_dim]};
  }
};

using SplitFn = void (*)(const TypeTraits&, size_t, float, const KVBlocks&, uint64_t,
                         std::span<const AttentionRow>, std::span<AttentionPartial>, float*);

Partials run_split(SplitFn fn, const Cache& c, float scale, uint64_t split,
                   std::span<const AttentionRow> rows) {
  Partials p(rows.size(), c.head_dim);
  std::vector<float> scratch(attention_split_scratch_floats(std::max<size_t>(rows.size(), 1)));
  fn(*c.type, c.head_dim, scale, c.blocks(), split, rows, p.parts, scratch.data());
  return p;
}

bool same_bits(float a, float b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// Each row's attention over its keys: its splits' partials folded oldest first, then finished,
// every split computed for all of `rows` at once.
std::vector<float> attend(const Cache& c, float scale, std::span<const AttentionRow> rows) {
  const size_t hd = c.head_dim;
  std::vector<float> total_o(rows.size() * hd), out(rows.size() * hd);
  std::vector<AttentionPartial> totals(rows.size());
  uint64_t last = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    totals[r] = {-std::numeric_limits<float>::infinity(), 0.0f, &total_o[r * hd]};
    last = std::max(last, rows[r].end - 1);
  }
  for (uint64_t split = 0; split <= last / kKVSplit; ++split) {
    const Partials p = run_split(attention_split, c, scale, split, rows);
    for (size_t r = 0; r < rows.size(); ++r) attention_fold(hd, p.parts[r], totals[r]);
  }
  for (size_t r = 0; r < rows.size(); ++r) attention_finish(hd, totals[r], &out[r * hd]);
  return out;
}

// The cases: head sizes (q8_0 needs multiples of 32) and rows whose keys start and end inside
// blocks, on block and split edges, within one block, and across several splits.
std::vector<size_t> head_dims(const TypeTraits* type) {
  if (type == kQ8) return {32, 64, 128, 160};
  return {8, 12, 64, 100, 128};
}

void add_awkward_rows(Rows& rows, const Cache& c, unsigned seed) {
  const uint64_t n = c.keys;
  const std::pair<uint64_t, uint64_t> spans[] = {
      {0, 1},     {0, 32},     {0, 33},    {5, 6},     {3, 29},     {31, 65},   {0, n},
      {n - 1, n}, {n - 40, n}, {250, 262}, {256, 257}, {17, n - 3}, {100, 356}, {n / 2, n / 2 + 1}};
  unsigned s = seed;
  for (const auto& [begin, end] : spans)
    if (begin < end && end <= n) rows.add(c, random_query(c.head_dim, s++), begin, end);
}

TEST(Attention, SimdSplitEqualsScalarSpecificationBitForBit) {
  for (const TypeTraits* type : {kF32, kF16, kQ8}) {
    for (const size_t hd : head_dims(type)) {
      const Cache c = make_cache(type, hd, 600, static_cast<unsigned>(hd));
      Rows rows;
      add_awkward_rows(rows, c, 7);
      // More rows than one pass of the kernel takes (128): 140 rows in one call.
      std::mt19937 rng(static_cast<unsigned>(hd) + 1);
      while (rows.q.size() < 140) {
        const uint64_t end = 1 + rng() % c.keys, begin = rng() % end;
        rows.add(c, random_query(hd, static_cast<unsigned>(rng())), begin, end);
      }
      for (const float sharpness : {1.0f, 8.0f}) {
        const float scale = sharpness / std::sqrt(static_cast<float>(hd));
        for (uint64_t split = 0; split <= (c.keys - 1) / kKVSplit; ++split) {
          SCOPED_TRACE(testing::Message() << type->name << " head_dim " << hd << " scale " << scale
                                          << " split " << split);
          const Partials simd = run_split(attention_split, c, scale, split, rows.rows);
          const Partials spec = run_split(attention_split_scalar, c, scale, split, rows.rows);
          for (size_t r = 0; r < rows.rows.size(); ++r) {
            ASSERT_TRUE(same_bits(simd.parts[r].max, spec.parts[r].max)) << "row " << r;
            ASSERT_TRUE(same_bits(simd.parts[r].sum, spec.parts[r].sum)) << "row " << r;
            ASSERT_EQ(std::memcmp(simd.parts[r].o, spec.parts[r].o, hd * sizeof(float)), 0)
                << "row " << r;
            // A row with no key in the split: the empty partial.
            const bool empty = rows.rows[r].end <= split * kKVSplit ||
                               rows.rows[r].begin >= (split + 1) * kKVSplit;
            EXPECT_EQ(simd.parts[r].sum == 0.0f, empty) << "row " << r;
          }
        }
      }
    }
  }
}

// Within 1e-5 of max|V| for f32 and f16 blocks (float arithmetic over at most 600 keys against a
// double softmax of the same stored values). q8_0 multiplies keys with the query quantized to
// int8 blocks (1/254 of the block's largest element): scores move by up to about
// |q| |k| / 127 x scale, so the bound there is 3e-2 of max|V|.
TEST(Attention, WholeRowsMatchDoublePrecisionSoftmax) {
  for (const TypeTraits* type : {kF32, kF16, kQ8}) {
    const double tolerance = type == kQ8 ? 3e-2 : 1e-5;
    double worst = 0.0;
    for (const size_t hd : head_dims(type)) {
      const Cache c = make_cache(type, hd, 600, static_cast<unsigned>(hd) + 50);
      Rows rows;
      add_awkward_rows(rows, c, 70);
      for (const float sharpness : {1.0f, 4.0f}) {
        const float scale = sharpness / std::sqrt(static_cast<float>(hd));
        const std::vector<float> out = attend(c, scale, rows.rows);
        std::vector<float> ref(hd);
        for (size_t r = 0; r < rows.rows.size(); ++r) {
          attention_ref(*type, hd, scale, c.blocks(), rows.q[r].data(), rows.rows[r].begin,
                        rows.rows[r].end, ref.data());
          for (size_t d = 0; d < hd; ++d) {
            const double err = std::fabs(out[r * hd + d] - ref[d]) / c.max_abs_v;
            worst = std::max(worst, err);
            ASSERT_LE(err, tolerance)
                << type->name << " head_dim " << hd << " row " << r << " [" << rows.rows[r].begin
                << ", " << rows.rows[r].end << ") d " << d;
          }
        }
      }
    }
    RecordProperty("worst_error_over_max_abs_v_" + std::string(type->name), std::to_string(worst));
  }
}

// What makes logits independent of chunking and batching: a row's result is the same bits
// whether it is computed alone, among the rows of a prefill tile, or among other sequences' rows.
TEST(Attention, RowResultIsTheSameAloneOrAmongOtherRows) {
  for (const TypeTraits* type : {kF32, kF16, kQ8}) {
    const size_t hd = 64;
    const Cache c = make_cache(type, hd, 600, 5);
    Rows rows;
    add_awkward_rows(rows, c, 90);
    const std::vector<float> together = attend(c, 0.2f, rows.rows);
    for (size_t r = 0; r < rows.rows.size(); ++r) {
      const std::vector<float> alone = attend(c, 0.2f, std::span(rows.rows).subspan(r, 1));
      ASSERT_EQ(std::memcmp(alone.data(), &together[r * hd], hd * sizeof(float)), 0)
          << type->name << " row " << r;
    }
    // Every other row, in reverse order.
    std::vector<size_t> picked;
    for (size_t r = rows.rows.size(); r-- > 0;)
      if (r % 2 == 0) picked.push_back(r);
    std::vector<AttentionRow> some;
    for (const size_t r : picked) some.push_back(rows.rows[r]);
    const std::vector<float> subset = attend(c, 0.2f, some);
    for (size_t i = 0; i < picked.size(); ++i)
      ASSERT_EQ(std::memcmp(&subset[i * hd], &together[picked[i] * hd], hd * sizeof(float)), 0)
          << type->name << " row " << picked[i];
  }
}

TEST(Attention, SingleKeyReturnsItsValueExactly) {
  for (const TypeTraits* type : {kF32, kF16}) {
    const Cache c = make_cache(type, 100, 70, 3);
    Rows rows;
    for (const uint64_t p : {0u, 31u, 32u, 69u}) rows.add(c, random_query(100, 4), p, p + 1);
    const std::vector<float> out = attend(c, 0.3f, rows.rows);
    for (size_t r = 0; r < rows.rows.size(); ++r)
      for (size_t d = 0; d < 100; ++d)
        ASSERT_EQ(out[r * 100 + d], c.v[rows.rows[r].begin * 100 + d]) << r << "," << d;
  }
}

TEST(Attention, HandComputedWeights) {
  // head_dim 8, q = e0, scale 1: scores are k_j[0]. Scores 0, ln 3 and ln 4 at positions 30, 31
  // and 32 (across a block edge) give weights 1/8, 3/8, 4/8.
  Cache c = make_cache(kF32, 8, 40, 1);
  const float k0[3] = {0.0f, std::log(3.0f), std::log(4.0f)};
  const float v0[3] = {8.0f, 0.0f, 16.0f};
  for (size_t i = 0; i < 3; ++i) {
    std::vector<float> k(8, 0.0f), v(8, 1.0f);
    k[0] = k0[i];
    k[1] = 5.0f;  // q[1] = 0: ignored
    v[0] = v0[i];
    kv_block_store(*kF32, 8, k.data(), v.data(), (30 + i) % kKVBlock,
                   c.storage[(30 + i) / kKVBlock].data());
  }
  std::vector<float> q(8, 0.0f);
  q[0] = 1.0f;
  Rows rows;
  rows.add(c, q, 30, 33);
  const std::vector<float> out = attend(c, 1.0f, rows.rows);
  EXPECT_NEAR(out[0], 8.0 / 8 + 16.0 * 4 / 8, 1e-5);
  for (size_t d = 1; d < 8; ++d) EXPECT_NEAR(out[d], 1.0, 1e-5);
}

TEST(Attention, RunningMaxRisingAndFallingAcrossBlocksAndSplits) {
  // Scores that climb (every block raises the running max) or fall, up to about +-60, over 600
  // keys (three splits).
  const size_t hd = 16, keys = 600;
  for (const bool rising : {true, false}) {
    const std::vector<float> q = random_query(hd, 22);
    Cache c = make_cache(kF32, hd, keys, 21);
    for (size_t p = 0; p < keys; ++p) {
      const float t = (rising ? static_cast<float>(p) : static_cast<float>(keys - p)) / keys;
      for (size_t d = 0; d < hd; ++d) c.k[p * hd + d] = q[d] * 60.0f * t;
      kv_block_store(*kF32, hd, &c.k[p * hd], &c.v[p * hd], p % kKVBlock,
                     c.storage[p / kKVBlock].data());
    }
    Rows rows;
    rows.add(c, q, 0, keys);
    rows.add(c, q, 200, 530);
    const std::vector<float> out = attend(c, 1.0f, rows.rows);
    std::vector<float> ref(hd);
    for (size_t r = 0; r < 2; ++r) {
      attention_ref(*kF32, hd, 1.0f, c.blocks(), q.data(), rows.rows[r].begin, rows.rows[r].end,
                    ref.data());
      for (size_t d = 0; d < hd; ++d)
        EXPECT_NEAR(out[r * hd + d], ref[d], 1e-5 * c.max_abs_v) << rising << " " << r;
    }
  }
}

TEST(Attention, BlockLayoutHoldsTheStoredValues) {
  for (const TypeTraits* type : {kF32, kF16, kQ8}) {
    const size_t hd = 64;
    const Cache c = make_cache(type, hd, 70, 8);
    std::vector<float> k(hd), v(hd);
    for (size_t p = 0; p < c.keys; ++p) {
      kv_block_load(*type, hd, c.table[p / kKVBlock], p % kKVBlock, k.data(), v.data());
      for (size_t d = 0; d < hd; ++d) {
        if (type == kQ8) {
          // q8_0: within half a step of the block's scale, max|x| / 127 (plus its fp16 rounding).
          float amax_k = 0, amax_v = 0;
          for (size_t i = d / 32 * 32; i < d / 32 * 32 + 32; ++i) {
            amax_k = std::max(amax_k, std::fabs(c.k[p * hd + i]));
            amax_v = std::max(amax_v, std::fabs(c.v[p * hd + i]));
          }
          ASSERT_NEAR(k[d], c.k[p * hd + d], amax_k / 127 * 0.51 + 1e-3 * amax_k) << p << "," << d;
          ASSERT_NEAR(v[d], c.v[p * hd + d], amax_v / 127 * 0.51 + 1e-3 * amax_v) << p << "," << d;
        } else {
          ASSERT_EQ(k[d], c.k[p * hd + d]) << p << "," << d;
          ASSERT_EQ(v[d], c.v[p * hd + d]) << p << "," << d;
        }
      }
    }
    // A copied slot reads back as its source, and leaves the other slots alone.
    std::vector<std::byte> to = c.storage[1];
    kv_block_copy(*type, hd, c.table[0], 5, to.data(), 9);
    std::vector<float> k2(hd), v2(hd);
    kv_block_load(*type, hd, c.table[0], 5, k.data(), v.data());
    kv_block_load(*type, hd, to.data(), 9, k2.data(), v2.data());
    EXPECT_EQ(k, k2);
    EXPECT_EQ(v, v2);
    kv_block_load(*type, hd, c.table[1], 10, k.data(), v.data());
    kv_block_load(*type, hd, to.data(), 10, k2.data(), v2.data());
    EXPECT_EQ(k, k2);
    EXPECT_EQ(v, v2);
  }
}

TEST(Attention, CacheTypesAndShapesThatAreRefused) {
  const char* why = nullptr;
  EXPECT_TRUE(kv_block_supports(*kF32, 12, &why));
  EXPECT_TRUE(kv_block_supports(*kF16, 100, &why));
  EXPECT_TRUE(kv_block_supports(*kQ8, 128, &why));
  EXPECT_FALSE(kv_block_supports(*kQ8, 48, &why));
  EXPECT_NE(std::string(why).find("multiple of 32"), std::string::npos) << why;
  EXPECT_FALSE(kv_block_supports(*find_type("q4_0"), 128, &why));
  EXPECT_NE(std::string(why).find("f32, f16 or q8_0"), std::string::npos) << why;
}

}  // namespace
}  // namespace brise::kernels
