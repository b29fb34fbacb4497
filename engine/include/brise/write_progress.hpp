// Progress of writing a model file: brise::convert_checkpoint, brise::quantize_model and
// brise::write_synthetic_model all report it the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

namespace brise {

struct WriteProgress {
  size_t tensor_index = 0;  // 0-based index of the tensor being written; n_tensors at the end
  size_t n_tensors = 0;
  std::string_view tensor_name;  // empty at the end
  uint64_t bytes_done = 0;       // bytes of the output file written so far
  uint64_t bytes_total = 0;      // size of the finished output file
  double seconds = 0;            // since the call began
};

// Called from the calling thread at the start of each tensor, after each chunk of its rows, and
// once more when the file is in place (tensor_index == n_tensors, bytes_done == bytes_total).
using WriteProgressCallback = std::function<void(const WriteProgress&)>;

}  // namespace brise
