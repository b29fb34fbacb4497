// Errors that brise reports to its caller.
#pragma once

#include <stdexcept>
#include <string>

namespace brise {

// Every problem with user input (model files, checkpoints, token ids, options) and every misuse
// of the API is reported as a brise::Error whose message names the file/field/argument at fault.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace brise
