#include "cli/options.hpp"

#include <fmt/format.h>

#include <iostream>

#include "hardware/stack.hpp"
#include "simulator/search/batch.hpp"

namespace scaleplan::cli {

void add_model_cluster_options(CLI::App* sub, ModelClusterArgs& a) {
  sub->add_option("--model", a.model, "model preset or YAML file")->required();
  sub->add_option("--cluster", a.cluster, "cluster preset or YAML file")->required();
  add_stack_option(sub, a.stack);
}

void add_stack_option(CLI::App* sub, std::string& stack) {
  sub->add_option("--stack", stack, "software stack preset or YAML file (default: the cluster's; see docs/stacks.md)");
}

void apply_stack_option(hw::Cluster& c, const std::string& stack) {
  if (!stack.empty()) hw::use_stack(c, stack);
}

void add_seq_option(CLI::App* sub, ModelClusterArgs& a) {
  sub->add_option("--seq", a.seq, "sequence length (overrides the model's)");
}

LoadedInputs load_inputs(const ModelClusterArgs& a) {
  LoadedInputs in{model::load_model(a.model), hw::load_cluster(a.cluster)};
  if (a.seq > 0) in.model.seq = a.seq;
  apply_stack_option(in.cluster, a.stack);
  return in;
}

void add_search_tuning_options(CLI::App* sub, SearchTuningArgs& a) {
  sub->add_option("--optimizer", a.optimizer, "adam | lamb (with --gbs auto: LAMB/LARS raise B_noise)");
  sub->add_option("--b-noise", a.b_noise, "critical batch B_noise in tokens (default: the model's)");
  sub->add_option("--threads", a.threads, "worker threads (default: all cores)");
}

double b_noise_tokens(const SearchTuningArgs& a) {
  return a.b_noise.empty() ? 0 : search::parse_quantity(a.b_noise, "--b-noise");
}

search::Progress::Fn stderr_progress_line() {
  return [](const std::string& line, bool final) {
    std::cerr << fmt::format("\r{:<72}", line) << (final ? "\n" : "") << std::flush;
  };
}

}  // namespace scaleplan::cli
