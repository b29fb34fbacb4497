#include "support/gguf_image.hpp"

#include <stdexcept>
#include <string>

namespace brise::test {

std::vector<std::byte> gguf_image(
    const gguf::Writer& writer,
    const std::function<std::vector<std::byte>(size_t index)>& tensor_bytes, uint32_t alignment) {
  std::vector<std::byte> image = writer.header_bytes();
  for (size_t i = 0; i < writer.tensors().size(); ++i) {
    const uint64_t n = writer.tensors()[i].n_bytes;
    std::vector<std::byte> data = tensor_bytes(i);
    data.resize(n);
    image.insert(image.end(), data.begin(), data.end());
    image.resize(image.size() + gguf::padding_after(n, alignment));
  }
  if (image.size() != writer.file_size())
    throw std::logic_error("gguf_image: " + std::to_string(image.size()) +
                           " bytes, the writer says " + std::to_string(writer.file_size()) +
                           " (another alignment?)");
  return image;
}

}  // namespace brise::test
