// What brise generate and brise chat share: generated text streamed to stdout as it comes.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "brise/generate.hpp"
#include "brise/session.hpp"

namespace brise::cli {

// Writes `text` to stdout and flushes it, so that a reader of a pipe sees each piece at once.
void write_stdout(std::string_view text);

enum class Stream {
  Text,    // the text as it is generated
  Answer,  // a chat answer: without the space SentencePiece puts before its first word (as
           // decoding the answer alone would, and as mistral-common stores it), in result.text too
  Quiet,   // nothing (the caller prints the result)
};

// generate() after `ids`, each UTF-8-complete piece of text written to stdout as it comes.
GenerateResult generate_to_stdout(Session& session, std::span<const int32_t> ids,
                                  const GenerateOptions& options, Stream stream);

}  // namespace brise::cli
