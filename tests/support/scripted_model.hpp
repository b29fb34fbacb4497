// A model whose greedy answer is scripted, for tests of what is done with an answer (tool calls,
// chat turns): the next token depends only on the last one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <utility>
#include <vector>

#include "brise/tokenizer.hpp"

namespace brise::test {

// Writes a GGUF model over `vocab` whose greedy answer to token `first` is `second` for each pair
// of `next` (at most 64 pairs, each input token once). All layers are zero, so the hidden state is
// the last token's embedding, a one-hot vector (unit k for the k-th input of `next`); output row t
// holds the one-hots of the inputs whose answer is t. Fails the test on a write error.
void write_scripted_model(const std::filesystem::path& path, const Vocabulary& vocab,
                          const std::vector<std::pair<int32_t, int32_t>>& next);

}  // namespace brise::test
