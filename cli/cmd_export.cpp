// `scaleplan export --format megatron|nemo|deepspeed|torchtitan --model M --cluster C [--gpus N] --plan P
// [--out FILE]` (DESIGN.md sec. 6): the plan as a framework's launch arguments / config file.
// Exit 0 written; 1 the framework cannot express the plan (the message names the plan key); 2 bad input.
#include <fstream>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/export.hpp"
#include "cli/options.hpp"
#include "common/errors.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::cli {

namespace {

struct ExportArgs {
  ModelClusterArgs mc;
  std::string format, plan, out;
  long long gpus = 0;
};

}  // namespace

int write_export(const std::string& format, const ExportInput& in, const std::string& out_path) {
  ExportResult r;
  try {
    r = export_plan(format, in);
  } catch (const ExportRefused& e) {
    std::cerr << "error: " << format << " cannot express this plan: " << e.what() << "\n";
    return 1;
  }
  if (out_path.empty()) {
    std::cout << r.text;
    return 0;
  }
  std::ofstream f(out_path, std::ios::binary | std::ios::trunc);
  if (!f) throw UsageError("--out: cannot write '" + out_path + "'");
  f << r.text;
  f.close();
  if (!f) throw UsageError("--out: writing '" + out_path + "' failed");
  std::cerr << "wrote " << out_path << " (" << r.framework_version << ")\n";
  return 0;
}

void add_export(CLI::App& app, int& rc) {
  auto a = std::make_shared<ExportArgs>();
  std::string formats;
  for (const auto& e : exporters()) formats += (formats.empty() ? "" : "|") + std::string(e.format);
  CLI::App* sub = app.add_subcommand("export", "a plan as a training framework's launch arguments or config (" + formats + ")");
  sub->add_option("--format", a->format, "framework: " + formats)->required();
  add_model_cluster_options(sub, a->mc);
  add_seq_option(sub, a->mc);
  sub->add_option("--gpus", a->gpus, "GPU count (dp is derived when the plan omits it)")->check(CLI::PositiveNumber);
  sub->add_option("--plan", a->plan, "plan: key=value,... or a plan preset / YAML file")->required();
  sub->add_option("--out", a->out, "write to this file instead of stdout");
  sub->callback([a, &rc] {
    rc = guarded([&] {
      const LoadedInputs in = load_inputs(a->mc);
      const strategies::Plan p = strategies::resolve_plan(strategies::load_plan(a->plan), in.model, in.cluster, a->gpus);
      return write_export(a->format, ExportInput{in.model, in.cluster, p}, a->out);
    });
  });
}

}  // namespace scaleplan::cli
