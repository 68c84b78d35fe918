#pragma once
// The serving layout search (issue 20): every (tp, pp, ep, dp) that uses all GPUs, every candidate batch,
// the best output throughput per GPU under the latency SLOs, and the Pareto front of TPOT vs throughput.
#include <string>
#include <vector>

#include "simulator/serve/serve.hpp"

namespace scaleplan::serve {

struct SearchSpec {
  int gpus = 1;
  long long batch = 0;  // 0: auto (powers of two up to the largest that fits, and that largest)
  Slo slo;
};

struct SearchResult {
  bool found = false;            // a layout meets memory and the SLOs
  Result best;                   // the best feasible; else the nearest miss (see reason)
  std::string reason;            // why nothing is feasible ("" when found)
  std::vector<Result> front;     // feasible, non-dominated in (tpot_s lower, tokens_per_s_per_gpu higher), by tpot
  long long evaluated = 0;       // layouts x batches costed
  long long largest_fit = 0;     // the largest batch per replica any layout holds
};

// Layouts (tp, pp, ep, dp) for `gpus`: tp divides the heads, pp <= layers, ep divides tp and the experts.
std::vector<Layout> layouts(const model::ModelSpec& m, int gpus);
// Candidate batches for one layout: the fixed one, or powers of two up to min(fit, cap) and that bound.
int batch_candidates(long long fit, long long cap, long long fixed, long long* out, int max_out);

// `evaluated` (optional): every costed layout x batch is appended there (the GUI's scatter).
SearchResult search(const ServeModel& sm, const SearchSpec& spec, std::vector<Result>* evaluated = nullptr);

}  // namespace scaleplan::serve
