#include "engine/convert/checkpoint_tokenizer.hpp"

#include "brise/error.hpp"
#include "engine/convert/checkpoint.hpp"

namespace brise {
namespace fs = std::filesystem;
namespace {

constexpr const char* kSentencePieceNames[] = {"tokenizer.model", "tokenizer.model.v3",
                                               "tokenizer.model.v2", "tokenizer.model.v1"};
constexpr const char* kTekkenName = "tekken.json";

}  // namespace

fs::path find_checkpoint_tokenizer(const fs::path& dir) {
  fs::path sentencepiece;
  for (const char* name : kSentencePieceNames)
    if (is_file(dir / name)) {
      sentencepiece = dir / name;
      break;
    }
  const bool tekken = is_file(dir / kTekkenName);
  if (tekken && !sentencepiece.empty())
    throw Error(dir.string() + ": the checkpoint folder has both " +
                sentencepiece.filename().string() + " (SentencePiece) and " + kTekkenName +
                " (Tekken); give the model's own with --tokenizer");
  return tekken ? dir / kTekkenName : sentencepiece;
}

Vocabulary read_checkpoint_vocabulary(const fs::path& dir, const fs::path& file,
                                      uint32_t vocab_size) {
  if (file.empty()) {
    if (is_file(dir / "tokenizer.json"))
      throw Error(dir.string() + ": no " + kTekkenName +
                  " in the checkpoint folder: brise reads a Tekken vocabulary from Mistral's " +
                  kTekkenName +
                  " (in Mistral's repositories beside tokenizer.json), not from Hugging Face's "
                  "tokenizer.json; add it to the folder or give it with --tokenizer");
    throw Error(dir.string() + ": no tokenizer.model or " + kTekkenName +
                " in the checkpoint folder (SentencePiece models have tokenizer.model, Tekken "
                "models tekken.json); give one with --tokenizer");
  }
  if (file.filename() == "tokenizer.json")
    throw Error(file.string() + ": brise does not read Hugging Face's tokenizer.json; give " +
                "Mistral's " + kTekkenName + " (Tekken) or tokenizer.model (SentencePiece)");
  Vocabulary vocab = load_vocabulary(file);
  if (vocab.size() != vocab_size)
    throw Error(file.string() + ": the tokenizer has " + std::to_string(vocab.size()) +
                " tokens but the model's vocab_size is " + std::to_string(vocab_size));
  return vocab;
}

}  // namespace brise
