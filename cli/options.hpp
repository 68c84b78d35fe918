#pragma once
// Options several commands share, registered and loaded in one place: the model and cluster (preset
// or YAML file) with an optional sequence-length override, and the knobs of the plan search
// (optimizer family for the large-batch model, B_noise, worker threads).
#include <CLI/CLI.hpp>
#include <atomic>
#include <stdexcept>
#include <string>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/search/search.hpp"

namespace scaleplan::cli {

struct ModelClusterArgs {
  std::string model, cluster;
  long long seq = 0;  // 0: the model's
  std::string stack;  // --stack ("" = the cluster's default stack)
};
// --model and --cluster (required), --stack.
void add_model_cluster_options(CLI::App* sub, ModelClusterArgs& a);
// --seq (overrides the model's sequence length).
void add_seq_option(CLI::App* sub, ModelClusterArgs& a);

struct LoadedInputs {
  model::ModelSpec model;
  hw::Cluster cluster;
};
// --stack NAME|FILE: the software stack the plan runs on (configs/stacks; replaces the cluster's).
void add_stack_option(CLI::App* sub, std::string& stack);
// Puts the stack named by --stack on the cluster (nothing when `stack` is empty).
void apply_stack_option(hw::Cluster& c, const std::string& stack);

// Loads both (typed errors name the file, line and field) and applies --seq and --stack.
LoadedInputs load_inputs(const ModelClusterArgs& a);

struct SearchTuningArgs {
  std::string optimizer = "adam", b_noise;
  int threads = 0;  // 0: all cores
};
// --optimizer, --b-noise, --threads.
void add_search_tuning_options(CLI::App* sub, SearchTuningArgs& a);
// --b-noise in tokens (0 when not given: the model's default).
double b_noise_tokens(const SearchTuningArgs& a);

// Flag validators with documented ranges (common/limits.hpp, docs/reliability.md): --gpus in
// [1, 2^24], --seq in [1, 2^27]; floats that must be finite and > 0 (--lr) or >= 0 (--price):
// CLI11's PositiveNumber lets NaN through and prints DBL_MAX in full.
CLI::Validator gpus_range();
CLI::Validator seq_range();
CLI::Validator finite_positive();
CLI::Validator finite_non_negative();

// SIGINT during long work (issue 17): the first Ctrl-C raises the flag that search/scale/budget
// poll (SearchSpec::cancel: no new work item is taken), the second one ends the process at once.
// interrupt_flag() installs the handler; throw_if_interrupted() turns a raised flag into
// Interrupted, which main reports on one line with exit code 130 (128 + SIGINT).
struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};
const std::atomic<bool>* interrupt_flag();
void throw_if_interrupted(const std::string& what);

// The progress line of a long search on stderr: rewritten in place (carriage return, 72 columns),
// ended with a newline when the work is done.
search::Progress::Fn stderr_progress_line();

}  // namespace scaleplan::cli
