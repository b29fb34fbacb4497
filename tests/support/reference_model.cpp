// Written to be read next to one_file_ref.py: same names, same order of operations, no caches,
// no fused kernels. Activations are [T x features] matrices, one row per position.
// GCC 12 reports false -Wmaybe-uninitialized warnings inside Eigen's AVX-512 GEMM kernels.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "support/reference_model.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "brise/error.hpp"
#include "kernels/type_traits.hpp"

namespace brise::reference {
namespace {

using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Decodes `n` elements of one row with the type's scalar reference decoder, written straight from
// the block layout (kernels/types/<type>.hpp; checked against gguf-py's dequantization by the
// tests).
void decode_row(TensorType type, const std::byte* in, float* out, uint64_t n) {
  const kernels::TypeTraits* t = kernels::find_type(static_cast<uint32_t>(type));
  if (!t) throw Error("unsupported tensor type");
  t->decode_row_ref(in, out, n);
}

std::string shape_text(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// The tensor `name` with GGUF dims `dims`, decoded.
Eigen::MatrixXf weight(const gguf::File& file, const std::string& name,
                       const std::vector<uint64_t>& dims) {
  const gguf::TensorInfo& t = file.tensor(name);
  if (t.dims != dims)
    throw Error(file.name() + ": tensor '" + name + "' has dims " + shape_text(t.dims) +
                " but the model config needs " + shape_text(dims));
  return decode_tensor(t, file.name());
}

// x / sqrt(mean(x^2) + eps), row by row, then scaled by the norm weight.
Eigen::MatrixXf rms_norm(const Eigen::MatrixXf& x, const Eigen::VectorXf& weight, float eps) {
  Eigen::MatrixXf out(x.rows(), x.cols());
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    const float mean_square = x.row(t).squaredNorm() / static_cast<float>(x.cols());
    out.row(t) = x.row(t) / std::sqrt(mean_square + eps);
    out.row(t).array() *= weight.transpose().array();
  }
  return out;
}

// Rotates each interleaved pair (x[2i], x[2i+1]) of every head of row t by the angle
// t * theta^(-2i / head_dim).
void apply_rope(Eigen::MatrixXf& x, uint32_t n_heads, uint32_t head_dim, double theta) {
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    for (uint32_t i = 0; i < head_dim / 2; ++i) {
      const double angle = static_cast<double>(t) * std::pow(theta, -2.0 * i / head_dim);
      const auto c = static_cast<float>(std::cos(angle));
      const auto s = static_cast<float>(std::sin(angle));
      for (uint32_t h = 0; h < n_heads; ++h) {
        const Eigen::Index col = h * head_dim + 2 * i;
        const float x0 = x(t, col), x1 = x(t, col + 1);
        x(t, col) = x0 * c - x1 * s;
        x(t, col + 1) = x0 * s + x1 * c;
      }
    }
  }
}

// mask(i, j) = 0 where query i may attend key j, -inf elsewhere.
Eigen::MatrixXf attention_mask(Eigen::Index T, std::optional<uint32_t> window) {
  Eigen::MatrixXf mask(T, T);
  for (Eigen::Index i = 0; i < T; ++i)
    for (Eigen::Index j = 0; j < T; ++j) {
      const bool visible = j <= i && (!window || j > i - static_cast<Eigen::Index>(*window));
      mask(i, j) = visible ? 0.0f : -std::numeric_limits<float>::infinity();
    }
  return mask;
}

void softmax_rows(Eigen::MatrixXf& s) {
  for (Eigen::Index i = 0; i < s.rows(); ++i) {
    s.row(i).array() -= s.row(i).maxCoeff();
    s.row(i) = s.row(i).array().exp().matrix();
    s.row(i) /= s.row(i).sum();
  }
}

Eigen::MatrixXf attention(const Layer& layer, const ModelConfig& c, const Eigen::MatrixXf& x,
                          const Eigen::MatrixXf& mask) {
  Eigen::MatrixXf xq = x * layer.wq.transpose();  // [T, n_heads * head_dim]
  Eigen::MatrixXf xk = x * layer.wk.transpose();  // [T, n_kv_heads * head_dim]
  const Eigen::MatrixXf xv = x * layer.wv.transpose();
  apply_rope(xq, c.n_heads, c.head_dim, c.rope_theta);
  apply_rope(xk, c.n_kv_heads, c.head_dim, c.rope_theta);

  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const uint32_t repeats = c.n_heads / c.n_kv_heads;
  Eigen::MatrixXf out(x.rows(), c.q_dim());
  for (uint32_t h = 0; h < c.n_heads; ++h) {
    const uint32_t kv = h / repeats;  // grouped-query attention
    const auto q = xq.middleCols(h * c.head_dim, c.head_dim);
    const auto k = xk.middleCols(kv * c.head_dim, c.head_dim);
    const auto v = xv.middleCols(kv * c.head_dim, c.head_dim);
    Eigen::MatrixXf scores = (q * k.transpose()) * scale + mask;  // [T, T]
    softmax_rows(scores);
    out.middleCols(h * c.head_dim, c.head_dim) = scores * v;
  }
  return out * layer.wo.transpose();
}

Eigen::MatrixXf feed_forward(const Layer& layer, const Eigen::MatrixXf& x) {
  const Eigen::ArrayXXf gate = (x * layer.w1.transpose()).array();
  const Eigen::ArrayXXf up = (x * layer.w3.transpose()).array();
  const Eigen::ArrayXXf silu = gate / (1.0f + (-gate).exp());
  return (silu * up).matrix() * layer.w2.transpose();
}

}  // namespace

Eigen::MatrixXf decode_tensor(const gguf::TensorInfo& t, const std::string& file_name) {
  if (t.dims.empty() || t.dims.size() > 2)
    throw Error(file_name + ": tensor '" + t.name + "' has " + std::to_string(t.dims.size()) +
                " dimensions; the reference model reads vectors and matrices only");
  const uint64_t cols = t.dims[0];
  const uint64_t rows = t.dims.size() == 2 ? t.dims[1] : 1;
  const auto row_bytes = tensor_row_bytes(t.type, cols);
  if (!row_bytes || *row_bytes * rows != t.n_bytes)
    throw Error(file_name + ": tensor '" + t.name + "' has an inconsistent byte size");
  RowMajorMatrix m(rows, cols);
  for (uint64_t r = 0; r < rows; ++r)
    decode_row(t.type, t.data + r * *row_bytes, m.row(r).data(), cols);
  if (t.dims.size() == 1) return m.transpose();  // a column vector
  return m;
}

ReferenceModel load(const gguf::File& file) {
  ReferenceModel m;
  m.config = read_model_config(file);
  const ModelConfig& c = m.config;
  const uint64_t dim = c.dim, q = c.q_dim(), kv = c.kv_dim(), ffn = c.hidden_dim;
  m.tok_embeddings = weight(file, "token_embd.weight", {dim, c.vocab_size});
  for (uint32_t i = 0; i < c.n_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    Layer l;
    l.attention_norm = weight(file, p + "attn_norm.weight", {dim});
    l.wq = weight(file, p + "attn_q.weight", {dim, q});
    l.wk = weight(file, p + "attn_k.weight", {dim, kv});
    l.wv = weight(file, p + "attn_v.weight", {dim, kv});
    l.wo = weight(file, p + "attn_output.weight", {q, dim});
    l.ffn_norm = weight(file, p + "ffn_norm.weight", {dim});
    l.w1 = weight(file, p + "ffn_gate.weight", {dim, ffn});
    l.w2 = weight(file, p + "ffn_down.weight", {ffn, dim});
    l.w3 = weight(file, p + "ffn_up.weight", {dim, ffn});
    m.layers.push_back(std::move(l));
  }
  m.norm = weight(file, "output_norm.weight", {dim});
  m.output = file.find_tensor("output.weight") ? weight(file, "output.weight", {dim, c.vocab_size})
                                               : m.tok_embeddings;
  return m;
}

Eigen::MatrixXf forward(const ReferenceModel& m, std::span<const int32_t> tokens,
                        std::optional<uint32_t> sliding_window) {
  const std::vector<std::optional<uint32_t>> windows(m.layers.size(), sliding_window);
  return forward_layer_windows(m, tokens, windows);
}

Eigen::MatrixXf forward_layer_windows(const ReferenceModel& m, std::span<const int32_t> tokens,
                                      std::span<const std::optional<uint32_t>> layer_windows) {
  const ModelConfig& c = m.config;
  if (layer_windows.size() != m.layers.size())
    throw Error("reference forward: " + std::to_string(layer_windows.size()) + " windows for " +
                std::to_string(m.layers.size()) + " layers");
  for (const auto& w : layer_windows)
    if (w && *w == 0) throw Error("reference forward: sliding_window must be positive");
  const auto T = static_cast<Eigen::Index>(tokens.size());
  Eigen::MatrixXf h(T, c.dim);
  for (Eigen::Index t = 0; t < T; ++t) {
    const int32_t id = tokens[t];
    if (id < 0 || static_cast<uint32_t>(id) >= c.vocab_size)
      throw Error("reference forward: token id " + std::to_string(id) + " at position " +
                  std::to_string(t) + " is outside the vocabulary of " +
                  std::to_string(c.vocab_size));
    h.row(t) = m.tok_embeddings.row(id);
  }
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const Layer& layer = m.layers[l];
    const Eigen::MatrixXf mask = attention_mask(T, layer_windows[l]);
    const Eigen::MatrixXf r =
        h + attention(layer, c, rms_norm(h, layer.attention_norm, c.norm_eps), mask);
    h = r + feed_forward(layer, rms_norm(r, layer.ffn_norm, c.norm_eps));
  }
  return rms_norm(h, m.norm, c.norm_eps) * m.output.transpose();
}

}  // namespace brise::reference
