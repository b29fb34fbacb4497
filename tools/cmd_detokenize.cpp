// Placeholder until this subcommand is implemented.
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {
int cmd_detokenize(const Args&) { throw UsageError("'detokenize' is not implemented yet"); }
}  // namespace brise::cli
