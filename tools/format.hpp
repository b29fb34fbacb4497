// Numbers as the commands print them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace brise::cli {

std::string format_bytes(uint64_t bytes);                    // "512.0 MB", "14.50 GB"
std::string format_dims(const std::vector<uint64_t>& dims);  // "4096 x 32000"

}  // namespace brise::cli
