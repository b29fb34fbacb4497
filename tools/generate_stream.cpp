#include "generate_stream.hpp"

#include <cstdio>

namespace brise::cli {

void write_stdout(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

GenerateResult generate_to_stdout(Session& session, std::span<const int32_t> ids,
                                  const GenerateOptions& options, Stream stream) {
  bool first = true;
  GenerateResult result = generate(session, ids, options, [&](std::string_view text) {
    if (stream == Stream::Quiet) return true;
    if (stream == Stream::Answer && first && !text.empty()) {
      first = false;
      if (text.front() == ' ') text.remove_prefix(1);
    }
    write_stdout(text);
    return true;
  });
  if (stream == Stream::Answer && !result.text.empty() && result.text.front() == ' ')
    result.text.erase(0, 1);
  return result;
}

}  // namespace brise::cli
