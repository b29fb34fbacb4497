// The tokenizer of a checkpoint folder: SentencePiece's tokenizer.model (Mistral 7B, Mixtral,
// Codestral; Mistral's native folders name it tokenizer.model.v3, .v2 or .v1) or Tekken's
// tekken.json (Nemo, Small 3.x, Ministral, Devstral). Hugging Face's tokenizer.json is not read:
// Mistral's repositories ship tekken.json beside it, and it is the file mistral-common reads.
#pragma once

#include <cstdint>
#include <filesystem>

#include "brise/tokenizer.hpp"

namespace brise {

// The folder's tokenizer file; empty when it has none. A folder with both a tokenizer.model and a
// tekken.json is an error: which one the model was trained with cannot be told (--tokenizer
// chooses).
std::filesystem::path find_checkpoint_tokenizer(const std::filesystem::path& dir);

// The vocabulary in `file` (a tokenizer.model, a tekken.json or a GGUF file), which must have
// `vocab_size` tokens. An empty `file` means the folder `dir` has no tokenizer: an error that
// names the file to add (tekken.json where the folder has Hugging Face's tokenizer.json).
Vocabulary read_checkpoint_vocabulary(const std::filesystem::path& dir,
                                      const std::filesystem::path& file, uint32_t vocab_size);

}  // namespace brise
