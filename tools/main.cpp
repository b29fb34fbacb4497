// brise: convert, inspect, tokenize, run and benchmark Mistral-architecture models.
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <new>
#include <string_view>

#include "brise/error.hpp"
#include "cli_args.hpp"
#include "commands.hpp"

namespace {

struct Command {
  std::string_view name;
  int (*run)(const brise::cli::Args&);
  std::string_view summary;
};

#define BRISE_COMMAND_ENTRY(name, summary) {#name, brise::cli::cmd_##name, summary},
constexpr Command kCommands[] = {BRISE_COMMANDS(BRISE_COMMAND_ENTRY)};
#undef BRISE_COMMAND_ENTRY

void print_usage(std::FILE* to) {
  std::fprintf(to, "usage: brise <command> [options]   (brise <command> --help for details)\n\n");
  for (const auto& c : kCommands)
    std::fprintf(to, "  %-11.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string_view name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (c.name != name) continue;
    brise::cli::Args args(argv + 2, argv + argc);
    try {
      return c.run(args);
    } catch (const brise::cli::UsageError& e) {
      std::cerr << "brise " << name << ": " << e.what() << " (see brise " << name << " --help)\n";
      return 2;
    } catch (const brise::Error& e) {
      std::cerr << "brise " << name << ": error: " << e.what() << "\n";
      return 1;
    } catch (const std::bad_alloc&) {
      std::cerr << "brise " << name << ": error: out of memory\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "brise " << name << ": error: " << e.what() << "\n";
      return 1;
    }
  }
  std::fprintf(stderr, "brise: unknown command '%.*s'\n\n", static_cast<int>(name.size()),
               name.data());
  print_usage(stderr);
  return 2;
}
