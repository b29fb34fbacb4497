// What exists once, outside the kernel sets (compiled in the generic set only): packing matrices
// into 16-row groups (kernels/types/packed.hpp) and back, and the scalar references of the matmul,
// which read the file's layout and sum in the kernels' order (kernels/matmul.hpp).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/isa.hpp"
#include "kernels/matmul.hpp"
#include "kernels/matmul_checks.hpp"
#include "kernels/types/all_types.hpp"
#include "kernels/types/int8_block.hpp"
#include "kernels/types/packed.hpp"

namespace brise::kernels {

#if defined(BRISE_ISA_GENERIC)
namespace {

using BRISE_ISA::with_codec;
using packed::kGroupRows;

// Row r of a matrix in the file's layout.
const uint8_t* row_of(const WeightMatrix& w, size_t r) {
  return static_cast<const uint8_t*>(w.data) + r * w.row_bytes;
}

// The references' dot products over one row in the file's layout, in the kernels' order.
template <class C>
float exact_dot(const uint8_t* row, const float* x, size_t cols) {
  float acc = 0.0f;
  if constexpr (BRISE_ISA::kIsRowMajor<C>) {
    // 16 lane sums (k mod 16) in order, then the fixed tree (int8_block.hpp).
    float values[C::kBlockElems];
    float part[16] = {};
    for (size_t b = 0; b < cols / C::kBlockElems; ++b) {
      C::decode_row_ref(row + b * C::kBlockBytes, values, C::kBlockElems);
      for (size_t j = 0; j < C::kBlockElems; ++j)
        part[j % 16] = std::fma(values[j], x[b * C::kBlockElems + j], part[j % 16]);
    }
    return sum_lanes16(part);
  } else if constexpr (C::kQuantized) {
    int8_t codes[C::kBlockElems];
    for (size_t b = 0; b < cols / C::kBlockElems; ++b) {
      const uint8_t* block = row + b * C::kBlockBytes;
      C::block_codes(block, codes);
      const float scale = C::block_scale(block);
      for (size_t j = 0; j < C::kBlockElems; ++j)
        acc = std::fma(static_cast<float>(codes[j]) * scale, x[b * C::kBlockElems + j], acc);
    }
  } else {
    float w;
    for (size_t k = 0; k < cols; ++k) {
      C::decode_row_ref(row + k * C::kBlockBytes, &w, 1);
      acc = std::fma(w, x[k], acc);
    }
  }
  return acc;
}

// Row-major types with int8 activations in blocks of kBlockElems: per block the exact integer sums
// of int8_block.hpp, then add_block. asum(b, j): the activations' sum over elements
// [16 j, 16 j + 16) of block b.
template <class C, class ActSum>
float row_major_q8_dot(const uint8_t* row, const int8_t* q, const float* d, ActSum asum,
                       size_t cols) {
  float acc = 0.0f;
  Int8Block ib;
  for (size_t b = 0; b < cols / C::kBlockElems; ++b) {
    C::to_int8(row + b * C::kBlockBytes, ib);
    int32_t sumi = 0, summ = 0;
    for (size_t j = 0; j < C::kBlockElems / 16; ++j) {
      int32_t isum = 0;
      for (size_t i = 0; i < 16; ++i)
        isum += int32_t{ib.code[16 * j + i]} * int32_t{q[b * C::kBlockElems + 16 * j + i]};
      sumi += ib.scale[j] * (isum - ib.offset * asum(b, j));
      summ += ib.min[j] * asum(b, j);
    }
    acc = add_block(acc, sumi, summ, ib.d, ib.dmin, d[b]);
  }
  return acc;
}

template <class C>
float q8_dot(const uint8_t* row, const int8_t* q, const float* d, size_t cols) {
  float acc = 0.0f;
  int8_t codes[C::kBlockElems];
  for (size_t b = 0; b < cols / C::kBlockElems; ++b) {
    const uint8_t* block = row + b * C::kBlockBytes;
    C::block_codes(block, codes);
    int32_t isum = 0;
    for (size_t j = 0; j < C::kBlockElems; ++j)
      isum += int32_t{codes[j]} * int32_t{q[b * C::kBlockElems + j]};
    acc = std::fma(static_cast<float>(isum), C::block_scale(block) * d[b], acc);
  }
  return acc;
}

// Copies row i of a group between the file's layout and the group (to_group: into it): quantized
// types interleave the blocks' scales and 4-byte pieces of their codes (packed::pack_block),
// row-major ones their blocks' words (packed::pack_block_words), float types elements.
void move_row(const TypeTraits& t, uint8_t* group, size_t i, const uint8_t* row, size_t cols,
              bool to_group) {
  if (t.quantized) {
    const size_t group_block = packed::group_block_bytes(t.block_bytes);
    for (size_t b = 0; b < cols / t.block_elems; ++b) {
      uint8_t* plain = const_cast<uint8_t*>(row) + b * t.block_bytes;
      uint8_t* in_group = group + b * group_block;
      if (t.row_major && to_group)
        packed::pack_block_words(plain, t.block_bytes, in_group, i);
      else if (t.row_major)
        packed::unpack_block_words(in_group, t.block_bytes, i, plain);
      else if (to_group)
        packed::pack_block(plain, t.block_bytes, in_group, i);
      else
        packed::unpack_block(in_group, t.block_bytes, i, plain);
    }
    return;
  }
  // Element by element, with the element's own width (a copy per element is the loading's
  // inner loop: a 14 GB model has 7 billion of them).
  const auto interleave = [&]<class E>() {
    E* packed = reinterpret_cast<E*>(group) + i;
    E* plain = reinterpret_cast<E*>(const_cast<uint8_t*>(row));
    for (size_t k = 0; k < cols; ++k) {
      if (to_group)
        std::memcpy(packed + k * kGroupRows, plain + k, sizeof(E));
      else
        std::memcpy(plain + k, packed + k * kGroupRows, sizeof(E));
    }
  };
  if (t.block_bytes == 4)
    interleave.template operator()<uint32_t>();
  else if (t.block_bytes == 2)
    interleave.template operator()<uint16_t>();
  else
    throw std::invalid_argument("pack_groups: no packing for " + std::string(t.name));
}

}  // namespace

size_t WeightMatrix::bytes() const {
  const size_t stored_rows = packed ? (rows + kGroupRows - 1) / kGroupRows * kGroupRows : rows;
  return stored_rows * row_bytes;
}

size_t packed_bytes(const WeightMatrix& m) {
  const auto size = m.type ? row_bytes(*m.type, m.cols) : std::nullopt;
  if (!size) throw std::invalid_argument("packed_bytes: rows are not whole blocks");
  return (m.rows + kGroupRows - 1) / kGroupRows * kGroupRows * *size;
}

void pack_groups(const WeightMatrix& m, void* dst, size_t group_begin, size_t group_end) {
  if (!m.type || m.packed) throw std::invalid_argument("pack_groups: needs an unpacked matrix");
  const auto row_size = row_bytes(*m.type, m.cols);
  if (!row_size || m.row_bytes < *row_size)
    throw std::invalid_argument("pack_groups: rows are not whole blocks");
  const size_t size = *row_size;
  std::vector<uint8_t> zero(size, 0);  // padding rows: zero values (quantized: scale 0)
  for (size_t g = group_begin; g < group_end; ++g) {
    uint8_t* group = static_cast<uint8_t*>(dst) + g * kGroupRows * size;
    for (size_t i = 0; i < kGroupRows; ++i) {
      const size_t r = g * kGroupRows + i;
      move_row(*m.type, group, i, r < m.rows ? row_of(m, r) : zero.data(), m.cols, true);
    }
  }
}

void unpack_row(const WeightMatrix& p, size_t r, void* out) {
  if (!p.packed || !p.type || r >= p.rows)
    throw std::invalid_argument("unpack_row: not a row of a packed matrix");
  auto* group = const_cast<uint8_t*>(static_cast<const uint8_t*>(p.data)) +
                r / kGroupRows * kGroupRows * p.row_bytes;
  move_row(*p.type, group, r % kGroupRows, static_cast<uint8_t*>(out), p.cols, false);
}

namespace {

void matmul_f32_ref(const WeightMatrix& w, const float* x, size_t x_stride, size_t n_tokens,
                    float* y, size_t y_stride, size_t row_begin, size_t row_end) {
  with_codec(*w.type, [&]<class C>() {
    for (size_t t = 0; t < n_tokens; ++t)
      for (size_t r = row_begin; r < row_end; ++r)
        y[t * y_stride + r] = exact_dot<C>(row_of(w, r), x + t * x_stride, w.cols);
  });
}

void matmul_q8_ref(const WeightMatrix& w, const Q8Activations& x, size_t n_tokens, float* y,
                   size_t y_stride, size_t row_begin, size_t row_end) {
  with_codec(*w.type, [&]<class C>() {
    if constexpr (BRISE_ISA::kIsRowMajor<C>) {
      if constexpr (C::kActivations == ActivationFormat::Q8) {
        for (size_t t = 0; t < n_tokens; ++t) {
          const size_t blocks = x.cols / kQ8Block;
          // One sum per block of 32: each half's sum is not kept, and a row-major type of
          // 32-element blocks has one scale and one min for both halves, so split it as
          // (whole, 0): scale * (isum0 - off * s) + scale * (isum1 - off * 0) is the same.
          const int32_t* s = x.s + t * blocks;
          const auto asum = [&](size_t b, size_t j) { return j == 0 ? s[b] : 0; };
          for (size_t r = row_begin; r < row_end; ++r)
            y[t * y_stride + r] =
                row_major_q8_dot<C>(row_of(w, r), x.q + t * x.cols, x.d + t * blocks, asum, w.cols);
        }
      }
    } else if constexpr (C::kQuantized) {
      for (size_t t = 0; t < n_tokens; ++t)
        for (size_t r = row_begin; r < row_end; ++r)
          y[t * y_stride + r] =
              q8_dot<C>(row_of(w, r), x.q + t * x.cols, x.d + t * x.cols / kQ8Block, w.cols);
    }
  });
}

void matmul_q8k_ref(const WeightMatrix& w, const Q8KActivations& x, size_t n_tokens, float* y,
                    size_t y_stride, size_t row_begin, size_t row_end) {
  with_codec(*w.type, [&]<class C>() {
    if constexpr (C::kActivations == ActivationFormat::Q8K) {
      for (size_t t = 0; t < n_tokens; ++t) {
        const int32_t* s16 = x.s16 + t * (x.cols / 16);
        const auto asum = [&](size_t b, size_t j) { return s16[b * (kQ8KBlock / 16) + j]; };
        for (size_t r = row_begin; r < row_end; ++r)
          y[t * y_stride + r] = row_major_q8_dot<C>(row_of(w, r), x.q + t * x.cols,
                                                    x.d + t * (x.cols / kQ8KBlock), asum, w.cols);
      }
    }
  });
}

}  // namespace

void matmul_ref(const WeightMatrix& w, const MatmulInput& x, float* y, size_t y_stride,
                size_t row_begin, size_t row_end) {
  check_matrix(w, /*for_reference=*/true);
  const ActivationFormat reads = input_format(w, x);
  check_rows(w, x, reads, y, row_begin, row_end);
  switch (reads) {
    case ActivationFormat::F32:
      return matmul_f32_ref(w, x.x, x.x_stride, x.n_tokens, y, y_stride, row_begin, row_end);
    case ActivationFormat::Q8:
      return matmul_q8_ref(w, x.q8, x.n_tokens, y, y_stride, row_begin, row_end);
    case ActivationFormat::Q8K:
      return matmul_q8k_ref(w, x.q8k, x.n_tokens, y, y_stride, row_begin, row_end);
  }
}
#endif  // BRISE_ISA_GENERIC

}  // namespace brise::kernels
