#pragma once
// Options several commands share, registered and loaded in one place: the model and cluster (preset
// or YAML file) with an optional sequence-length override, and the knobs of the plan search
// (optimizer family for the large-batch model, B_noise, worker threads).
#include <CLI/CLI.hpp>
#include <string>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/search/search.hpp"

namespace scaleplan::cli {

struct ModelClusterArgs {
  std::string model, cluster;
  long long seq = 0;  // 0: the model's
};
// --model and --cluster (required).
void add_model_cluster_options(CLI::App* sub, ModelClusterArgs& a);
// --seq (overrides the model's sequence length).
void add_seq_option(CLI::App* sub, ModelClusterArgs& a);

struct LoadedInputs {
  model::ModelSpec model;
  hw::Cluster cluster;
};
// Loads both (typed errors name the file, line and field) and applies --seq.
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

// The progress line of a long search on stderr: rewritten in place (carriage return, 72 columns),
// ended with a newline when the work is done.
search::Progress::Fn stderr_progress_line();

}  // namespace scaleplan::cli
