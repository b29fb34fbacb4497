// Placeholder until this subcommand is implemented.
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {
int cmd_generate(const Args&) { throw UsageError("'generate' is not implemented yet"); }
}  // namespace brise::cli
