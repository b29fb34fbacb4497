// Placeholder until this subcommand is implemented.
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {
int cmd_logits(const Args&) { throw UsageError("'logits' is not implemented yet"); }
}  // namespace brise::cli
