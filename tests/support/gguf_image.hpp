// Whole GGUF images for tests that make a model file by hand: a gguf::Writer's header and tensor
// data the test chooses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "brise/gguf.hpp"

namespace brise::test {

// The writer's header, then the bytes `tensor_bytes(i)` gives for each tensor it declares (cut or
// zero-extended to the tensor's size), each followed by its padding to `alignment` (the one the
// writer was made with). Throws std::logic_error if the image is not writer.file_size() long.
std::vector<std::byte> gguf_image(
    const gguf::Writer& writer,
    const std::function<std::vector<std::byte>(size_t index)>& tensor_bytes,
    uint32_t alignment = gguf::kDefaultAlignment);

}  // namespace brise::test
