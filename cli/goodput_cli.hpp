#pragma once
// The failure/checkpoint options and the goodput report shared by budget, scale and plan-cluster
// (issue 19; JSON block of DESIGN.md sec. 6). Kept apart from the commands' own code.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "simulator/search/train_goodput.hpp"

namespace scaleplan::cli {

struct GoodputArgs {
  std::string failures, checkpoint = "blocking";
  double interval_s = 0;
};
// --failures NAME|FILE|none, --checkpoint blocking|async, --checkpoint-interval SECONDS.
void add_goodput_options(CLI::App* sub, GoodputArgs& a);
search::GoodputOptions goodput_options(const GoodputArgs& a);  // throws UsageError

// The options and the profile they name, read before any search (bad input exits 2 early).
struct GoodputSetup {
  search::GoodputOptions options;
  hw::FailureProfile profile;
};
GoodputSetup goodput_setup(const GoodputArgs& a, const hw::Cluster& c);
// The run with failures for a chosen plan `x` on `gpus` GPUs that trains in `failure_free_s`.
search::TrainGoodput run_goodput(const GoodputSetup& s, const hw::Cluster& c, const search::Candidate& x, long long gpus,
                                 double failure_free_s, double price_usd_per_gpu_hour, double power_W_per_gpu);
// Adds "goodput" (DESIGN.md sec. 6) and "goodput_detail" to a budget/scale JSON object.
void add_goodput_json(nlohmann::json& j, const search::TrainGoodput& t);

// DESIGN.md sec. 6: {"fraction","days","interruptions","checkpoint_s","lost_s","restart_s","interval_s"}.
nlohmann::json goodput_json(const search::TrainGoodput& t);
// The rest, for people: profile, MTBF, checkpoint bytes and times, planned stops, totals with goodput.
nlohmann::json goodput_detail_json(const search::TrainGoodput& t);
// Lines for budget's text report.
// "$X at $Y per GPU-hour", or, for a cluster without a price (price_usd_per_gpu_hour unset = 0), "unknown: ..."
// rather than a silent $0.
std::string cost_text(double usd, double price_usd_per_gpu_hour);
std::string goodput_text(const search::TrainGoodput& t, double failure_free_days, double price_usd_per_gpu_hour);

}  // namespace scaleplan::cli
