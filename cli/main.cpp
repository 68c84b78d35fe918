// scaleplan: plan, cost and check large-model training (DESIGN.md sec. 3, CLI contract).
#include <iostream>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "common/errors.hpp"

namespace scaleplan::cli {

int guarded(const std::function<int()>& fn) {
  try {
    return fn();
  } catch (const Interrupted& e) {
    std::cerr << "\nerror: " << e.what() << "\n";
    return 130;
  } catch (const ConfigError& e) {
    std::cerr << "error: " << printable(e.what()) << "\n";
  } catch (const PlanError& e) {
    std::cerr << "error: " << printable(e.what()) << "\n";
  } catch (const UsageError& e) {
    std::cerr << "error: " << printable(e.what()) << "\n";
  } catch (const std::exception& e) {
    // Anything else escaping the library is still reported on one line, never an abort.
    std::cerr << "error: " << printable(e.what()) << "\n";
  }
  return 2;
}

}  // namespace scaleplan::cli

int main(int argc, char** argv) {
  CLI::App app{"scaleplan - how to train a large model on 200 to 20,000 GPUs before renting them"};
  app.require_subcommand(1);
  // Every option's --help shows its default (issue 18.6): options registered after this inherit it.
  app.option_defaults()->always_capture_default();
  // SCALEPLAN_VERSION: the project version from CMakeLists.txt (project(... VERSION ...)).
  app.set_version_flag("--version", std::string("scaleplan ") + SCALEPLAN_VERSION);
  int rc = 0;
  scaleplan::cli::add_estimate(app, rc);
  scaleplan::cli::add_search(app, rc);
  scaleplan::cli::add_scale(app, rc);
  scaleplan::cli::add_budget(app, rc);
  scaleplan::cli::add_validate(app, rc);
  scaleplan::cli::add_capacity(app, rc);
  scaleplan::cli::add_simulate(app, rc);
  scaleplan::cli::add_presets(app, rc);
  scaleplan::cli::add_export(app, rc);
  scaleplan::cli::add_serve(app, rc);
  scaleplan::cli::add_plan_cluster(app, rc);
  scaleplan::cli::add_model(app, rc);
#ifdef SCALEPLAN_HAVE_EXECUTOR
  scaleplan::cli::add_run(app, rc);
  scaleplan::cli::add_calibrate(app, rc);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << scaleplan::printable(e.what()) << " (run with --help for usage)\n";
    return 2;
  }
  return rc;
}
