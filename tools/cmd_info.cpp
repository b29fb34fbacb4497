// Placeholder until this subcommand is implemented.
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {
int cmd_info(const Args&) { throw UsageError("'info' is not implemented yet"); }
}  // namespace brise::cli
