// Placeholder until this subcommand is implemented.
#include "cli_args.hpp"
#include "commands.hpp"

namespace brise::cli {
int cmd_bench(const Args&) { throw UsageError("'bench' is not implemented yet"); }
}  // namespace brise::cli
