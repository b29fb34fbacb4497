// Placeholder until this subcommand is implemented.
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {
int cmd_tokenize(const Args&) { throw UsageError("'tokenize' is not implemented yet"); }
}  // namespace brise::cli
