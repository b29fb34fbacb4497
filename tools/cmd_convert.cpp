// Placeholder until this subcommand is implemented.
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {
int cmd_convert(const Args&) { throw UsageError("'convert' is not implemented yet"); }
}  // namespace brise::cli
