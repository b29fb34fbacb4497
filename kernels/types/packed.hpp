// How matrices are laid out in memory for the matmul (packed at load, kernels/matmul.hpp). Rows go
// in groups of kGroupRows = 16 (the last group padded with zeros), so that one vector holds one
// element of each of 16 rows (a 32-bit lane per row), which the matmul multiplies by one
// activation broadcast to every lane: each lane is one row's dot product, summed in order, and no
// horizontal sums are needed. A group is exactly as large as its 16 rows were in the file.
//
// Float types (f32, f16, bf16): a group stores column by column, element k of rows 0..15 side by
// side (16 x 4 or 16 x 2 bytes).
//
// Quantized types: a GGUF row is a run of blocks (an fp16 scale, then kPayloadBytes of codes),
// and a group stores block column by block column:
//
//   group block b = [16 fp16 scales: row 0..15's block b] [payload units]
//   payload unit u (64 bytes) = for each row r = 0..15: row r's payload bytes [4u, 4u + 4)
//
// so one 64-byte load gives 4 consecutive code bytes of 16 rows, which an int8 dot-product
// instruction (vpdpbusd) multiplies with 4 activation bytes broadcast to every lane.
//
// Row-major types (the K-quants, ...) are multiplied as the file stores them, but may also be
// packed, for the kernel sets that have a one-token kernel over 16 rows (KernelSet::packs_rows):
// group block b then holds the 16 rows' blocks b word by word, and the bytes past the last whole
// word (a 2-byte tail: Q6_K's and Q3_K's fp16 d) row after row,
//
//   word unit u (64 bytes) = for each row r = 0..15: row r's block bytes [4u, 4u + 4)
//   tail (16 x (kBlockBytes % 4) bytes) = for each row r: row r's bytes [4 W, kBlockBytes)
//
// (W = kBlockBytes / 4 units), so that one load gives a header word or 4 code bytes of 16 rows,
// one row per 32-bit lane, and a tail's 16 fp16 values one vcvtph2ps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace brise::kernels::packed {

inline constexpr size_t kGroupRows = 16;
inline constexpr size_t kScaleBytes = 2;  // fp16
inline constexpr size_t kUnitBytes = 4 * kGroupRows;

// Bytes of one group block of a type whose blocks are `block_bytes` long.
constexpr size_t group_block_bytes(size_t block_bytes) {
  return kGroupRows * block_bytes;
}

// Row r's block (GGUF layout, `block_bytes` long) into its place in a group block.
inline void pack_block(const uint8_t* block, size_t block_bytes, uint8_t* group_block, size_t r) {
  std::memcpy(group_block + r * kScaleBytes, block, kScaleBytes);
  const size_t units = (block_bytes - kScaleBytes) / 4;
  uint8_t* payload = group_block + kGroupRows * kScaleBytes;
  for (size_t u = 0; u < units; ++u)
    std::memcpy(payload + u * kUnitBytes + r * 4, block + kScaleBytes + 4 * u, 4);
}

// The inverse: row r's block out of a group block.
inline void unpack_block(const uint8_t* group_block, size_t block_bytes, size_t r, uint8_t* block) {
  std::memcpy(block, group_block + r * kScaleBytes, kScaleBytes);
  const size_t units = (block_bytes - kScaleBytes) / 4;
  const uint8_t* payload = group_block + kGroupRows * kScaleBytes;
  for (size_t u = 0; u < units; ++u)
    std::memcpy(block + kScaleBytes + 4 * u, payload + u * kUnitBytes + r * 4, 4);
}

// Group block b of the group that holds row r, in a matrix packed from rows of row_bytes.
inline const uint8_t* group_block_at(const void* data, size_t row_bytes, size_t r, size_t b,
                                     size_t block_bytes) {
  return static_cast<const uint8_t*>(data) + r / kGroupRows * kGroupRows * row_bytes +
         b * group_block_bytes(block_bytes);
}

// A row-major type's block in word units and its tail, and back.
inline void pack_block_words(const uint8_t* block, size_t block_bytes, uint8_t* group_block,
                             size_t r) {
  const size_t words = block_bytes / 4, tail = block_bytes % 4;
  for (size_t u = 0; u < words; ++u)
    std::memcpy(group_block + u * kUnitBytes + r * 4, block + 4 * u, 4);
  std::memcpy(group_block + words * kUnitBytes + r * tail, block + 4 * words, tail);
}
inline void unpack_block_words(const uint8_t* group_block, size_t block_bytes, size_t r,
                               uint8_t* block) {
  const size_t words = block_bytes / 4, tail = block_bytes % 4;
  for (size_t u = 0; u < words; ++u)
    std::memcpy(block + 4 * u, group_block + u * kUnitBytes + r * 4, 4);
  std::memcpy(block + 4 * words, group_block + words * kUnitBytes + r * tail, tail);
}

}  // namespace brise::kernels::packed
