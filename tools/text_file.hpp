// Reading a whole file given on the command line (a prompt, a conversation, a tools list).
#pragma once

#include <string>

namespace brise::cli {

// The file's bytes as they are; brise::Error naming the path when it cannot be read.
std::string read_text_file(const std::string& path);

}  // namespace brise::cli
