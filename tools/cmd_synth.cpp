// Placeholder until this subcommand is implemented.
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {
int cmd_synth(const Args&) { throw UsageError("'synth' is not implemented yet"); }
}  // namespace brise::cli
