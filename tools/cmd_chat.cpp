// Placeholder until this subcommand is implemented.
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {
int cmd_chat(const Args&) { throw UsageError("'chat' is not implemented yet"); }
}  // namespace brise::cli
