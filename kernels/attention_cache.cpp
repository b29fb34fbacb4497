// The KV block layout (kernels/attention.hpp): sizes, stores, copies, decoding, the queries'
// prepared form, and the double-precision reference of a row's attention.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/fp16.hpp"
#include "kernels/isa.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/types/q8_0.hpp"
#include "kernels/types/type_list.hpp"

namespace brise::kernels {

namespace {

enum class Layout { F32, F16, Q8_0, Unsupported };

Layout layout_of(const TypeTraits& type) {
  switch (type.ggml_id) {
    case ggml_type::F32:
      return Layout::F32;
    case ggml_type::F16:
      return Layout::F16;
    case ggml_type::Q8_0:
      return Layout::Q8_0;
    default:
      return Layout::Unsupported;
  }
}

// Byte offsets inside a q8_0 block of heads of `head_dim`.
struct Q8Parts {
  size_t k_scales, v_codes, v_scales, end;
  explicit Q8Parts(size_t head_dim) {
    k_scales = head_dim * kKVBlock;
    v_codes = k_scales + head_dim / 32 * kKVBlock * 2;
    v_scales = v_codes + head_dim * kKVBlock;
    end = v_scales + head_dim / 32 * kKVBlock * 2;
  }
};

}  // namespace

#if defined(BRISE_ISA_GENERIC)
bool kv_block_supports(const TypeTraits& type, size_t head_dim, const char** why) {
  const Layout layout = layout_of(type);
  if (layout == Layout::Unsupported) {
    *why = "the KV cache holds f32, f16 or q8_0";
    return false;
  }
  if (head_dim == 0) {
    *why = "head_dim is 0";
    return false;
  }
  if (layout == Layout::Q8_0 && head_dim % 32 != 0) {
    *why = "a q8_0 KV cache needs head_dim a multiple of 32";
    return false;
  }
  return true;
}

size_t kv_block_k_bytes(const TypeTraits& type, size_t head_dim) {
  switch (layout_of(type)) {
    case Layout::F32:
      return head_dim * kKVBlock * 4;
    case Layout::F16:
      return head_dim * kKVBlock * 2;
    case Layout::Q8_0:
      return Q8Parts(head_dim).v_codes;
    default:
      return 0;
  }
}

size_t kv_block_bytes(const TypeTraits& type, size_t head_dim) {
  if (layout_of(type) == Layout::Q8_0) return Q8Parts(head_dim).end;
  return 2 * kv_block_k_bytes(type, head_dim);
}

size_t attention_query_bytes(const TypeTraits& type, size_t head_dim) {
  if (layout_of(type) == Layout::Q8_0) return head_dim + head_dim / 32 * 8;
  return head_dim * sizeof(float);
}

void kv_block_copy(const TypeTraits& type, size_t head_dim, const std::byte* from, size_t from_slot,
                   std::byte* to, size_t to_slot) {
  // A transposed part: `rows` rows of kKVBlock elements of `eb` bytes, the slot a column.
  const auto column = [&](size_t offset, size_t rows, size_t eb) {
    for (size_t r = 0; r < rows; ++r)
      std::memcpy(to + offset + (r * kKVBlock + to_slot) * eb,
                  from + offset + (r * kKVBlock + from_slot) * eb, eb);
  };
  // A row-major part: kKVBlock rows of `row_bytes`, the slot a row.
  const auto row = [&](size_t offset, size_t row_bytes) {
    std::memcpy(to + offset + to_slot * row_bytes, from + offset + from_slot * row_bytes,
                row_bytes);
  };
  switch (layout_of(type)) {
    case Layout::F32:
    case Layout::F16: {
      const size_t eb = layout_of(type) == Layout::F32 ? 4 : 2;
      column(0, head_dim, eb);
      row(kv_block_k_bytes(type, head_dim), head_dim * eb);
      break;
    }
    case Layout::Q8_0: {
      const Q8Parts p(head_dim);
      column(0, head_dim / 4, 4);  // 4 codes of a key
      column(p.k_scales, head_dim / 32, 2);
      row(p.v_codes, head_dim);
      column(p.v_scales, head_dim / 32, 2);
      break;
    }
    default:
      break;
  }
}

void kv_block_load(const TypeTraits& type, size_t head_dim, const std::byte* block, size_t slot,
                   float* k, float* v) {
  switch (layout_of(type)) {
    case Layout::F32: {
      const auto* kt = reinterpret_cast<const float*>(block);
      const float* vr = kt + head_dim * kKVBlock + slot * head_dim;
      for (size_t d = 0; d < head_dim; ++d) k[d] = kt[d * kKVBlock + slot];
      std::copy_n(vr, head_dim, v);
      break;
    }
    case Layout::F16: {
      const auto* kt = reinterpret_cast<const uint16_t*>(block);
      const uint16_t* vr = kt + head_dim * kKVBlock + slot * head_dim;
      for (size_t d = 0; d < head_dim; ++d) {
        k[d] = f16_to_f32(kt[d * kKVBlock + slot]);
        v[d] = f16_to_f32(vr[d]);
      }
      break;
    }
    case Layout::Q8_0: {
      const Q8Parts p(head_dim);
      const auto* kc = reinterpret_cast<const uint8_t*>(block);
      const auto* ks = reinterpret_cast<const uint16_t*>(block + p.k_scales);
      const auto* vc = reinterpret_cast<const int8_t*>(block + p.v_codes) + slot * head_dim;
      const auto* vs = reinterpret_cast<const uint16_t*>(block + p.v_scales);
      for (size_t d = 0; d < head_dim; ++d) {
        const int code = kc[(d / 4 * kKVBlock + slot) * 4 + d % 4] - 128;
        k[d] = static_cast<float>(code) * f16_to_f32(ks[d / 32 * kKVBlock + slot]);
        v[d] = static_cast<float>(vc[d]) * f16_to_f32(vs[d / 32 * kKVBlock + slot]);
      }
      break;
    }
    default:
      break;
  }
}

void attention_ref(const TypeTraits& type, size_t head_dim, float scale, const KVBlocks& blocks,
                   const float* q, uint64_t begin, uint64_t end, float* out) {
  std::vector<float> k(head_dim), v(head_dim);
  std::vector<double> scores;
  for (uint64_t p = begin; p < end; ++p) {
    kv_block_load(type, head_dim, blocks.blocks[p / kKVBlock - blocks.first], p % kKVBlock,
                  k.data(), v.data());
    double dot = 0;
    for (size_t d = 0; d < head_dim; ++d) dot += static_cast<double>(q[d]) * k[d];
    scores.push_back(dot * scale);
  }
  double max = -INFINITY;
  for (const double s : scores) max = std::max(max, s);
  double sum = 0;
  for (double& s : scores) sum += (s = std::exp(s - max));
  std::vector<double> acc(head_dim, 0.0);
  for (uint64_t p = begin; p < end; ++p) {
    kv_block_load(type, head_dim, blocks.blocks[p / kKVBlock - blocks.first], p % kKVBlock,
                  k.data(), v.data());
    for (size_t d = 0; d < head_dim; ++d) acc[d] += scores[p - begin] * v[d];
  }
  for (size_t d = 0; d < head_dim; ++d) out[d] = sum > 0 ? static_cast<float>(acc[d] / sum) : 0.0f;
}
#endif

namespace BRISE_ISA {

void kv_block_store(const TypeTraits& type, size_t head_dim, const float* k, const float* v,
                    size_t slot, std::byte* block) {
  switch (layout_of(type)) {
    case Layout::F32: {
      auto* kt = reinterpret_cast<float*>(block);
      for (size_t d = 0; d < head_dim; ++d) kt[d * kKVBlock + slot] = k[d];
      std::copy_n(v, head_dim, kt + head_dim * kKVBlock + slot * head_dim);
      break;
    }
    case Layout::F16: {
      auto* kt = reinterpret_cast<uint16_t*>(block);
      uint16_t k16[512];
      for (size_t d0 = 0; d0 < head_dim; d0 += 512) {
        const size_t n = std::min<size_t>(512, head_dim - d0);
        convert_f32_to_f16(k + d0, k16, n);
        for (size_t d = 0; d < n; ++d) kt[(d0 + d) * kKVBlock + slot] = k16[d];
      }
      convert_f32_to_f16(v, kt + head_dim * kKVBlock + slot * head_dim, head_dim);
      break;
    }
    case Layout::Q8_0: {
      // Each 32-element block as ggml's q8_0 encodes it, then spread into the layout.
      const Q8Parts p(head_dim);
      auto* kc = reinterpret_cast<uint8_t*>(block);
      auto* ks = reinterpret_cast<uint16_t*>(block + p.k_scales);
      auto* vc = reinterpret_cast<int8_t*>(block + p.v_codes) + slot * head_dim;
      auto* vs = reinterpret_cast<uint16_t*>(block + p.v_scales);
      Q8_0::Block kb, vb;
      for (size_t b = 0; b < head_dim / 32; ++b) {
        Q8_0::encode_row(k + b * 32, &kb, 32);
        Q8_0::encode_row(v + b * 32, &vb, 32);
        ks[b * kKVBlock + slot] = kb.d;
        vs[b * kKVBlock + slot] = vb.d;
        for (size_t i = 0; i < 32; ++i) {
          const size_t d = b * 32 + i;
          kc[(d / 4 * kKVBlock + slot) * 4 + d % 4] = static_cast<uint8_t>(kb.qs[i] + 128);
        }
        std::memcpy(vc + b * 32, vb.qs, 32);
      }
      break;
    }
    default:
      break;
  }
}

void attention_prepare_query(const TypeTraits& type, size_t head_dim, const float* q,
                             std::byte* out) {
  if (layout_of(type) != Layout::Q8_0) {
    std::memcpy(out, q, head_dim * sizeof(float));
    return;
  }
  // int8 blocks of 32 with an f32 scale (not rounded to fp16: the query is made once per
  // token and head, its precision costs nothing) and -128 x the block's code sum, which takes
  // back the +128 of the key codes (vpdpbusd multiplies unsigned by signed bytes).
  auto* codes = reinterpret_cast<int8_t*>(out);
  auto* scales = reinterpret_cast<float*>(out + head_dim);
  auto* offsets = reinterpret_cast<int32_t*>(out + head_dim + head_dim / 32 * 4);
  for (size_t b = 0; b < head_dim / 32; ++b) {
    float amax = 0.0f;
    for (size_t i = 0; i < 32; ++i) {
      const float a = std::fabs(q[b * 32 + i]);
      if (a > amax || a != a) amax = a;  // a NaN query stays NaN through its scale
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (size_t i = 0; i < 32; ++i) {
      codes[b * 32 + i] = q8_code(q[b * 32 + i] * id);
      sum += codes[b * 32 + i];
    }
    scales[b] = d;
    offsets[b] = -128 * sum;
  }
}

}  // namespace BRISE_ISA
}  // namespace brise::kernels
