#include "cli/options.hpp"

#include <fmt/format.h>

#include <cmath>
#include <csignal>
#include <iostream>

#include "common/limits.hpp"
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
  sub->add_option("--seq", a.seq, "sequence length (overrides the model's)")->check(seq_range());
}

LoadedInputs load_inputs(const ModelClusterArgs& a) {
  LoadedInputs in{model::load_model(a.model), hw::load_cluster(a.cluster)};
  if (a.seq > 0) in.model.seq = a.seq;
  apply_stack_option(in.cluster, a.stack);
  return in;
}

void add_search_tuning_options(CLI::App* sub, SearchTuningArgs& a) {
  sub->add_option("--optimizer", a.optimizer, "adam|adamw|lamb|lars (with --gbs auto: LAMB/LARS raise B_noise)");
  sub->add_option("--b-noise", a.b_noise, "critical batch B_noise in tokens (default: the model's)");
  sub->add_option("--threads", a.threads, "worker threads (default: all cores)");
}

double b_noise_tokens(const SearchTuningArgs& a) {
  return a.b_noise.empty() ? 0 : search::parse_quantity(a.b_noise, "--b-noise");
}

namespace {
std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process
}
}  // namespace

const std::atomic<bool>* interrupt_flag() {
  static const bool installed = [] {
    std::signal(SIGINT, on_sigint);
    return true;
  }();
  (void)installed;
  return &g_interrupted;
}

void throw_if_interrupted(const std::string& what) {
  if (g_interrupted.load()) throw Interrupted("interrupted (SIGINT): " + what + " stopped before it finished; nothing printed");
}

CLI::Validator gpus_range() { return CLI::Range(1LL, limits::kMaxGpus); }
CLI::Validator seq_range() { return CLI::Range(1LL, limits::kMaxSeq); }

namespace {
CLI::Validator finite_number(bool zero_ok) {
  return CLI::Validator(
      [zero_ok](std::string& s) -> std::string {
        double v = 0;
        try {
          std::size_t used = 0;
          v = std::stod(s, &used);
          if (used != s.size()) return "'" + s + "' is not a number";
        } catch (const std::exception&) {
          return "'" + s + "' is not a number";
        }
        if (!std::isfinite(v)) return "must be a finite number (got '" + s + "')";
        if (zero_ok ? v < 0 : v <= 0) return std::string(zero_ok ? "must be >= 0" : "must be > 0") + " (got '" + s + "')";
        return "";
      },
      zero_ok ? "FINITE >= 0" : "FINITE > 0");
}
}  // namespace
CLI::Validator finite_positive() { return finite_number(false); }
CLI::Validator finite_non_negative() { return finite_number(true); }

search::Progress::Fn stderr_progress_line() {
  return [](const std::string& line, bool final) {
    std::cerr << fmt::format("\r{:<72}", line) << (final ? "\n" : "") << std::flush;
  };
}

}  // namespace scaleplan::cli
