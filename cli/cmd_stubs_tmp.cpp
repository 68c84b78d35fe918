#include "cli/commands.hpp"
namespace scaleplan::cli {
void add_search(CLI::App&, int&) {}
void add_scale(CLI::App&, int&) {}
void add_budget(CLI::App&, int&) {}
}  // namespace scaleplan::cli
