// Several sessions fed in one forward pass: the continuous batching of a server. Each session
// keeps its own KV cache and position; their rows go through every weight matrix together, so N
// sequences decoding read the weights once per step instead of N times.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "brise/session.hpp"

namespace brise {

struct BatchItem {
  Session* session = nullptr;
  std::span<const int32_t> tokens;  // fed after what the session holds: a decode token, or a chunk
};

class Batch {
 public:
  // threads: of each pass (0: OpenMP's default).
  explicit Batch(int threads = 0);
  ~Batch();
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;

  // Feeds each item's tokens to its session in one forward pass; afterwards each session's
  // logits() are those after its last token. Batch invariance: every session's logits are
  // bit-identical to feeding it the same tokens alone (Session::prefill/decode, any chunking,
  // any thread count), whatever the other items are. The sessions must be distinct, share one
  // model, and agree on SessionOptions::exact and kv_type; every item is checked as
  // Session::prefill checks its tokens before anything runs (brise::Error, nothing changed). A
  // numeric fault resets every session of the batch and is thrown as brise::Error.
  void forward(std::span<const BatchItem> items);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace brise
