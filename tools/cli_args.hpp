// A small declarative command-line parser shared by the brise subcommands.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "brise/tensor_type.hpp"

namespace brise::cli {

// Wrong usage (unknown option, missing or malformed value): the tool exits with code 2.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message) : std::runtime_error(message) {}
};

class ArgParser {
 public:
  // `usage`: the synopsis line(s) after "usage: brise"; `summary`: one sentence.
  ArgParser(std::string command, std::string usage, std::string summary);

  // Options: `names` like "-m,--model". The value is parsed when seen; parse errors are
  // UsageErrors naming the option.
  void flag(std::string names, bool* out, std::string help);
  void option(std::string names, std::string* out, std::string metavar, std::string help);
  void option(std::string names, std::optional<std::string>* out, std::string metavar,
              std::string help);
  void option(std::string names, int64_t* out, std::string metavar, std::string help,
              int64_t min_value = INT64_MIN, int64_t max_value = INT64_MAX);
  void option(std::string names, double* out, std::string metavar, std::string help);
  // May be given several times; each value is appended.
  void option_list(std::string names, std::vector<std::string>* out, std::string metavar,
                   std::string help);
  // Positional arguments, in order.
  void positional(std::string name, std::string* out, std::string help, bool required = true);

  // Returns false when --help was given (help already printed to stdout); throws UsageError.
  bool parse(const std::vector<std::string>& args);
  std::string help_text() const;
  const std::string& command() const { return command_; }

 private:
  struct Option {
    std::vector<std::string> names;
    std::string metavar;  // empty for flags
    std::string help;
    std::function<void(const std::string&)> set;
  };
  struct Positional {
    std::string name;
    std::string help;
    bool required;
    std::string* out;
  };
  const Option* find(std::string_view name) const;

  std::string command_, usage_, summary_;
  std::vector<Option> options_;
  std::vector<Positional> positionals_;
};

// Parses "1 2 3" or "1,2,3" into token ids; UsageError on anything else.
std::vector<int32_t> parse_id_list(std::string_view text, std::string_view option_name);

// A tensor type named by `option`'s value (tensor_type_from_name); UsageError otherwise.
TensorType parse_tensor_type(const std::string& text, std::string_view option);

// The sliding window a model file records (--sliding-window N|none of convert and synth): N, or
// nullopt for "none" (full attention); UsageError otherwise.
std::optional<uint32_t> parse_recorded_window(const std::string& text);

}  // namespace brise::cli
