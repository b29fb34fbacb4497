// Streaming decode: the same output as Tokenizer::decode, delivered piece by piece, holding back
// only the bytes of a character that the next byte pieces may still complete.
#include "brise/tokenizer.hpp"
#include "engine/tokenizer/tables.hpp"
#include "engine/tokenizer/utf8.hpp"

namespace brise {

Tokenizer::StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool at_start)
    : tokenizer_(&tokenizer), at_start_(at_start) {}

std::string Tokenizer::StreamDecoder::push(int32_t id) {
  if (tokenizer_->tekken_) {
    std::string out = tokenizer_->push_tekken(id, pending_);
    if (!out.empty()) emitted_ = true;
    return out;
  }
  (void)tokenizer_->piece(id);  // throws on an id outside the vocabulary
  const detail::TokenizerTables& tables = *tokenizer_->tables_;
  std::string out;
  const int byte = tables.byte_of_id[static_cast<size_t>(id)];
  if (byte >= 0) {
    pending_.push_back(static_cast<char>(byte));
    pending_.erase(0, utf8::append_complete_bytes(pending_, out));
  } else {
    // A non-byte piece ends the run of byte pieces: what is held back is final now.
    utf8::append_bytes_lossy(pending_, out);
    pending_.clear();
    if (bos_ws_seen_ || emitted_ || !out.empty()) at_start_ = false;
    bos_ws_seen_ = detail::append_piece_text(tokenizer_->vocab_, id, at_start_, out);
  }
  if (!out.empty()) emitted_ = true;
  return out;
}

std::string Tokenizer::StreamDecoder::flush() {
  std::string out;
  if (tokenizer_->tekken_)
    utf8::append_bytes_replacing_subparts(pending_, out);
  else
    utf8::append_bytes_lossy(pending_, out);
  pending_.clear();
  if (!out.empty()) emitted_ = true;
  return out;
}

}  // namespace brise
