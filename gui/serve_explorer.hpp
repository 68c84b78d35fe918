#pragma once
// The GUI's serving tab, Qt-free part (issue 20 item 4): runs the serving layout search through the library
// (simulator/serve, the same search as `scaleplan serve`) and keeps every costed layout for the scatter.
#include <string>
#include <vector>

#include "simulator/serve/serve_search.hpp"

namespace scaleplan::gui {

struct ServeInputs {
  std::string model;      // preset name or YAML path
  std::string cluster;    // preset name or YAML path
  std::string precision;  // bf16 | fp8 | int8 | int4; "" = the checkpoint's (serve::default_precision)
  int gpus = 8;
  long long prompt_tokens = 1000;
  long long output_tokens = 1000;
};

struct ServeExploration {
  std::string model, cluster, precision;  // resolved names
  serve::SearchResult search;             // best, Pareto front (feasible, TPOT vs tokens/s per GPU)
  std::vector<serve::Result> points;      // every costed layout x batch that fits in memory
};

// Throws UsageError / ConfigError with the field's name (as `scaleplan serve` does for its flags) on bad input:
// unknown preset, prompt or prompt + output longer than the model's context, unknown precision, a precision the
// GPU has no tensor cores for.
ServeExploration explore_serve(const ServeInputs& in);

}  // namespace scaleplan::gui
