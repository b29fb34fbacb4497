// The reference forward pass: a plain, unoptimised Eigen transcription of Mistral's
// one_file_ref.py (mistral-src @ cad0f61). It is the oracle that the fast Model/Session is tested
// against, on real and synthetic models, so it shares nothing with the fast path except the
// scalar f16/bf16 decoding of weights: every weight is widened to f32 once, at load time.
//
// Layout conventions (those of GGUF and of PyTorch's nn.Linear): a GGUF matrix with dims
// [cols, rows] becomes an Eigen rows x cols matrix W, and a linear layer computes y = W x.
// q/k rows are in the interleaved-pair RoPE layout, as the converter writes them.
#pragma once

// The oracle runs single-threaded: the models it checks are small, and Eigen's OpenMP GEMM only
// spins against the fast path's threads. Defined here, before any Eigen header, so that every
// file using this header agrees on it.
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Dense>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "brise/gguf.hpp"
#include "brise/model_config.hpp"

namespace brise::reference {

struct Layer {
  Eigen::VectorXf attention_norm, ffn_norm;  // [dim]
  Eigen::MatrixXf wq;                        // [n_heads * head_dim, dim]
  Eigen::MatrixXf wk, wv;                    // [n_kv_heads * head_dim, dim]
  Eigen::MatrixXf wo;                        // [dim, n_heads * head_dim]
  Eigen::MatrixXf w1;                        // gate [hidden_dim, dim]
  Eigen::MatrixXf w2;                        // down [dim, hidden_dim]
  Eigen::MatrixXf w3;                        // up   [hidden_dim, dim]
};

struct ReferenceModel {
  ModelConfig config;
  Eigen::MatrixXf tok_embeddings;  // [vocab, dim]
  std::vector<Layer> layers;
  Eigen::VectorXf norm;    // [dim]
  Eigen::MatrixXf output;  // [vocab, dim]
};

// Decodes one GGUF tensor (f32, f16, bf16, q8_0, q4_0) to f32: rows x cols for dims [cols, rows],
// a column vector for a 1-D tensor. Throws brise::Error for other shapes.
Eigen::MatrixXf decode_tensor(const gguf::TensorInfo& tensor, const std::string& file_name);

// Reads the config and every weight, decoded to f32 (a 7B model needs ~29 GB: use it on small
// models). A missing output.weight means the classifier is tied to token_embd.weight. Throws
// brise::Error naming the tensor when a tensor is missing or has the wrong shape.
ReferenceModel load(const gguf::File& file);

// Logits [T x vocab]: row t holds the logits after feeding tokens[t] at position t (positions
// 0..T-1, one sequence, causal). `sliding_window` W: query i sees keys j with i - W < j <= i;
// nullopt = full causal attention. Throws brise::Error on a token id outside the vocabulary or
// W == 0. Positions are not limited to the context length.
Eigen::MatrixXf forward(const ReferenceModel& m, std::span<const int32_t> tokens,
                        std::optional<uint32_t> sliding_window);
// The same with a window per layer (Ministral's interleaved layers): layer l masks with
// layer_windows[l] (nullopt = full causal attention). Throws brise::Error unless there is one
// entry per layer.
Eigen::MatrixXf forward_layer_windows(const ReferenceModel& m, std::span<const int32_t> tokens,
                                      std::span<const std::optional<uint32_t>> layer_windows);

}  // namespace brise::reference
