// The Mistral forward pass over the rows of one or more sequences
// (engine/runtime/forward_pass.hpp).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "brise/error.hpp"
#include "engine/gguf/tensor_encoding.hpp"
#include "engine/runtime/attention_step.hpp"
#include "engine/runtime/forward_pass.hpp"
#include "engine/runtime/model_weights.hpp"
#include "engine/runtime/parallel_ops.hpp"
#include "kernels/activation.hpp"
#include "kernels/norm.hpp"
#include "kernels/rope.hpp"

namespace brise {
namespace {

void add_rows(float* x, const float* h, size_t count) {
  for (size_t i = 0; i < count; ++i) x[i] += h[i];
}

// Corrupt weights show up as NaN/Inf in the activations: name where they appear.
[[noreturn]] void nonfinite_fault(const std::string& where) {
  throw Error("numeric fault: NaN or Inf in the activations after " + where +
              " (corrupt weights?)");
}

void check_finite(const float* x, size_t count, const std::string& where) {
  for (size_t i = 0; i < count; ++i)
    if (!std::isfinite(x[i])) nonfinite_fault(where);
}

// The residual stream after layer `layer` must be finite and also small enough for the next
// RMSNorm: a row whose sum of squares overflows f32 would be normalised to zeros, silently (huge
// but finite weights). One pass: the double sum of squares of finite floats cannot overflow, so
// it is non-finite exactly when the row holds a NaN or Inf. A NaN/Inf anywhere is reported before
// an overflow; the message is only built on a fault.
void check_residual(const float* x, size_t rows, size_t dim, size_t layer) {
  const auto where = [&] {
    return "layer " + std::to_string(layer) + " (blk." + std::to_string(layer) + ")";
  };
  bool overflow = false;
  for (size_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (size_t i = 0; i < dim; ++i) sum += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
    if (!std::isfinite(sum)) nonfinite_fault(where());
    overflow = overflow || sum > std::numeric_limits<float>::max();
  }
  if (overflow)
    throw Error("numeric fault: activations too large for f32 (overflow) after " + where() +
                " (corrupt weights?)");
}

// Inside the forward pass's team: f(t) for t in [0, n), split among the threads; every thread
// waits at the end. Each row's work is the same whatever thread does it.
template <class F>
void each_row(size_t n, F&& f) {
#pragma omp for schedule(static)
  for (size_t t = 0; t < n; ++t) f(t);
}

// The pass as every thread of its OpenMP team runs it.
class Pass {
 public:
  Pass(const Model& model, const PassOptions& options, std::span<SequenceRows> sequences,
       PassScratch& scratch, float* logits)
      : c_(model.config()),
        weights_(model_weights(model)),
        options_(options),
        seqs_(sequences),
        s_(scratch),
        a_(scratch.act),
        logits_(logits) {}

  void run_team();

 private:
  const ModelConfig& c_;
  const ModelWeights& weights_;
  const PassOptions& options_;
  std::span<SequenceRows> seqs_;
  PassScratch& s_;
  Activations& a_;
  float* logits_;
};

}  // namespace

// One OpenMP team runs the whole pass: every thread executes Pass::run_team, the work of each step
// is split inside it (matmul rows handed out by the step's own counter, rows or heads by
// worksharing loops), and the threads wait for each other only where a step needs the previous
// one's result. Numeric faults are found by one thread and end the pass for all of them at the
// same barrier, then are thrown here.
void forward_pass(const Model& model, const PassOptions& options, std::span<SequenceRows> sequences,
                  LogitRows rows, PassScratch& scratch, float* logits) {
  const ModelConfig& c = model.config();
  size_t n = 0;
  scratch.row_sequence.clear();
  scratch.logit_rows.clear();
  for (size_t i = 0; i < sequences.size(); ++i) {
    SequenceRows& seq = sequences[i];
    seq.row0 = n;
    n += seq.ids.size();
    scratch.row_sequence.insert(scratch.row_sequence.end(), seq.ids.size(),
                                static_cast<uint32_t>(i));
    if (rows == LogitRows::Last) scratch.logit_rows.push_back(n - 1);
  }
  if (rows == LogitRows::All)
    for (size_t t = 0; t < n; ++t) scratch.logit_rows.push_back(t);
  scratch.act.ensure(n, c, options.kv_type);
  // One counter per matmul step (4 per layer and the classifier), zero before the team starts.
  scratch.schedule = std::vector<std::atomic<size_t>>(4 * size_t{c.n_layers} + 1);
  scratch.fault = nullptr;
  // Threads worth waking for one layer's matmuls (a small model decoding runs on one thread).
  const size_t layer_macs =
      size_t{c.dim} * (c.q_dim() + 2 * c.kv_dim()) + c.q_dim() * c.dim + 3 * c.dim * c.hidden_dim;
  size_t attention_macs = 0;  // q . k and p . v of every row over (about) its keys
  for (const SequenceRows& seq : sequences)
    attention_macs += seq.ids.size() * (seq.pos0 + seq.ids.size()) * 2 * c.q_dim();
  const int team = team_size(n * layer_macs + attention_macs, options.threads);
  Pass pass(model, options, sequences, scratch, logits);
#pragma omp parallel num_threads(team)
  pass.run_team();
  if (scratch.fault) std::rethrow_exception(scratch.fault);
}

namespace {

void Pass::run_team() {
  const ModelConfig& c = c_;
  const ModelWeights& weights = weights_;
  const size_t n = s_.row_sequence.size(), dim = c.dim, hd = c.head_dim, ffn = c.hidden_dim;
  const size_t q_dim = c.q_dim(), kv_dim = c.kv_dim();
  Activations& a = a_;
  std::atomic<size_t>* next = s_.schedule.data();
  std::exception_ptr& fault = s_.fault;

  // The input of matrices `ws`: n rows of `cols` f32 values, and unless the pass is exact the
  // same rows quantized to the int8 formats the matrices' types take (TypeTraits::activation).
  // Ends with the team waiting when it quantizes.
  const auto input = [&](const float* x, size_t rows_in, size_t cols,
                         std::initializer_list<const kernels::WeightMatrix*> ws) {
    kernels::ActivationFormats formats;
    if (!options_.exact)
      for (const auto* w : ws) formats.add(w->type->activation);
    if (formats.any_int8())
      each_row(rows_in, [&](size_t t) { a.quantized.quantize_rows(x, cols, t, 1, cols, formats); });
    return a.quantized.input(x, cols, rows_in, cols, formats);
  };
  // Matmuls sharing an input, then the team waits for all of their rows.
  const auto matmuls = [&]<size_t N>(const MatmulOutput(&outputs)[N],
                                     const kernels::MatmulInput& x) {
    team_matmuls(outputs, x, *next++);
#pragma omp barrier
  };
  // One thread checks; everyone learns the verdict at the barrier that ends `single`.
  const auto check = [&](auto&& f) {
#pragma omp single
    {
      try {
        f();
      } catch (...) {
        fault = std::current_exception();
      }
    }
    return fault == nullptr;
  };

  each_row(n, [&](size_t t) {
    const SequenceRows& seq = seqs_[s_.row_sequence[t]];
    const size_t i = t - seq.row0;
    embedding_row(weights.token_embedding, seq.ids[i], &a.x[t * dim]);
    kernels::rope_angles(seq.pos0 + i, hd, c.rope_theta, &a.rope_cos[t * hd / 2],
                         &a.rope_sin[t * hd / 2]);
  });

  for (uint32_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = weights.layers[l];

    // h = x + wo · attention(rope(wq · xn), rope(wk · xn), wv · xn),  xn = rmsnorm(x) *
    // attention_norm
    each_row(n, [&](size_t t) {
      kernels::rmsnorm(&a.x[t * dim], w.attention_norm, dim, c.norm_eps, &a.xn[t * dim]);
    });
    matmuls({{w.wq, a.q.data()}, {w.wk, a.k.data()}, {w.wv, a.v.data()}},
            input(a.xn.data(), n, dim, {&w.wq, &w.wk, &w.wv}));
    each_row(n, [&](size_t t) {
      kernels::rope_apply(&a.q[t * q_dim], c.n_heads, hd, &a.rope_cos[t * hd / 2],
                          &a.rope_sin[t * hd / 2]);
      kernels::rope_apply(&a.k[t * kv_dim], c.n_kv_heads, hd, &a.rope_cos[t * hd / 2],
                          &a.rope_sin[t * hd / 2]);
    });
    attention_step(c, options_, seqs_, s_.row_sequence, a, s_.attention, l);
    matmuls({{w.wo, a.h.data()}}, input(a.att.data(), n, q_dim, {&w.wo}));
    each_row(n, [&](size_t t) { add_rows(&a.x[t * dim], &a.h[t * dim], dim); });

    // x = h + w2 · (silu(w1 · xn) * (w3 · xn)),  xn = rmsnorm(h) * ffn_norm
    each_row(n, [&](size_t t) {
      kernels::rmsnorm(&a.x[t * dim], w.ffn_norm, dim, c.norm_eps, &a.xn[t * dim]);
    });
    matmuls({{w.w1, a.gate.data()}, {w.w3, a.up.data()}},
            input(a.xn.data(), n, dim, {&w.w1, &w.w3}));
    each_row(n, [&](size_t t) {  // row by row: each row's SIMD/tail split is fixed
      kernels::silu_mul(&a.gate[t * ffn], &a.up[t * ffn], &a.gate[t * ffn], ffn);
    });
    matmuls({{w.w2, a.h.data()}}, input(a.gate.data(), n, ffn, {&w.w2}));
    each_row(n, [&](size_t t) { add_rows(&a.x[t * dim], &a.h[t * dim], dim); });

    if (!check([&] { check_residual(a.x.data(), n, dim, l); })) return;
  }

  // logits = output · (rmsnorm(x) * output_norm), for the rows asked for, gathered into the
  // first rows of xn.
  const size_t n_out = s_.logit_rows.size();
  each_row(n_out, [&](size_t o) {
    kernels::rmsnorm(&a.x[s_.logit_rows[o] * dim], weights.output_norm, dim, c.norm_eps,
                     &a.xn[o * dim]);
  });
  matmuls({{weights.output, logits_}}, input(a.xn.data(), n_out, dim, {&weights.output}));
  check([&] { check_finite(logits_, n_out * c.vocab_size, "the output layer"); });
}

}  // namespace

void Activations::ensure(size_t n, const ModelConfig& c, TensorType kv_type) {
  if (n <= tokens) return;
  tokens = n;
  x.resize(n * c.dim);
  xn.resize(n * c.dim);
  h.resize(n * c.dim);
  q.resize(n * c.q_dim());
  att.resize(n * c.q_dim());
  k.resize(n * c.kv_dim());
  v.resize(n * c.kv_dim());
  gate.resize(n * c.hidden_dim);
  up.resize(n * c.hidden_dim);
  rope_cos.resize(n * c.head_dim / 2);
  rope_sin.resize(n * c.head_dim / 2);
  if (kv_type == TensorType::Q8_0)  // f32 and f16 caches read the queries from q itself
    qprep.resize(n * c.n_heads * kernels::attention_query_bytes(type_traits(kv_type), c.head_dim));
  quantized.reserve(n, std::max<size_t>({c.dim, c.q_dim(), c.hidden_dim}));
}

}  // namespace brise
