#pragma once
// Each CLI command registers itself on the app; `rc` receives its exit code
// (0 ok, 1 infeasible, 2 bad input).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "hardware/cluster.hpp"
#include "model/model.hpp"

namespace scaleplan::cli {

void add_estimate(CLI::App& app, int& rc);
void add_validate(CLI::App& app, int& rc);
void add_search(CLI::App& app, int& rc);
void add_scale(CLI::App& app, int& rc);
void add_budget(CLI::App& app, int& rc);
void add_capacity(CLI::App& app, int& rc);  // issue 6
void add_simulate(CLI::App& app, int& rc);
void add_presets(CLI::App& app, int& rc);  // lists the embedded presets
void add_export(CLI::App& app, int& rc);   // a plan as a framework's launch arguments (cli/export.hpp)
void add_serve(CLI::App& app, int& rc);     // inference layouts (issue 20)
void add_plan_cluster(CLI::App& app, int& rc);  // issue 19
void add_model(CLI::App& app, int& rc);     // the resolved model and its parameter counts (issue 18.2)
#ifdef SCALEPLAN_HAVE_EXECUTOR
void add_run(CLI::App& app, int& rc);        // reference executor (executor/, issue 8)
void add_calibrate(CLI::App& app, int& rc);  // measures this machine, writes a cluster YAML
#endif

// Writes `format`'s export of a resolved plan to stdout or out_path; 1 when the framework cannot express it.
struct ExportInput;
int write_export(const std::string& format, const ExportInput& in, const std::string& out_path);

// Runs fn, mapping typed input errors to a one-line message on stderr and exit code 2.
int guarded(const std::function<int()>& fn);

}  // namespace scaleplan::cli
