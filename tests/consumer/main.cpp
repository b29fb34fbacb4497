// Built against an installed brise by the install_consumer test: opens the model given on the
// command line (if any) and prints what the public API reports.
#include <brise/gguf.hpp>
#include <brise/tensor_type.hpp>

#include <iostream>

int main(int argc, char** argv) {
  std::cout << "brise consumer: q8_0 block is " << brise::tensor_type_info(brise::TensorType::Q8_0).block_bytes
            << " bytes\n";
  if (argc > 1) {
    auto file = brise::gguf::File::open(argv[1]);
    std::cout << file->tensors().size() << " tensors\n";
  }
  return 0;
}
