#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "validation/runs.hpp"

namespace scaleplan::cli {

namespace {
// Serving rows (`kind: serve`, validation/serve_runs.cpp) carry their layout in the note, not a training plan.
std::string plan_text(const validation::RunResult& r) {
  return r.metric == "output_tokens_per_s" ? std::string("(serving layout in the note)") : r.report.plan.to_string();
}
}  // namespace

void add_validate(CLI::App& app, int& rc) {
  auto runs = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("validate", "predict published training runs and report the error");
  sub->add_option("--runs", *runs, "runs file (schema of validation/published_runs.yaml); default: the embedded shared set");
  sub->add_flag("--json", *json, "print the contract JSON only");
  sub->callback([runs, json, &rc] {
    rc = guarded([&] {
      const validation::RunsFile f = validation::load_runs(*runs);
      const validation::ValidationSummary s = validation::validate(f);
      if (*json) {
        nlohmann::json j;
        j["runs"] = nlohmann::json::array();
        for (const auto& r : s.runs) {
          nlohmann::json e = {{"id", r.id},       {"metric", r.metric},      {"published", r.published}, {"predicted", r.predicted},
                              {"error_pct", r.error_pct}, {"supported", r.supported}, {"feasible", r.feasible}, {"note", r.note},
                              {"plan", plan_text(r)},
                              {"breakdown_s", {{"step", r.report.time.step_s}, {"compute", r.report.time.compute_s},
                                               {"bubble", r.report.time.bubble_s}, {"tp_comm", r.report.tp_comm_exposed_s},
                                               {"pp_comm", r.report.pp_comm_exposed_s}, {"dp_comm", r.report.dp_comm_exposed_s},
                                               {"optimizer", r.report.time.optimizer_s}}}};
          j["runs"].push_back(e);
        }
        j["layer_timings"] = nlohmann::json::array();
        for (const auto& l : s.layers)
          j["layer_timings"].push_back({{"id", l.id},
                                        {"forward_ms", {{"published", l.fwd_published_ms}, {"predicted", l.fwd_predicted_ms}, {"error_pct", l.fwd_error_pct}}},
                                        {"backward_ms", {{"published", l.bwd_published_ms}, {"predicted", l.bwd_predicted_ms}, {"error_pct", l.bwd_error_pct}}}});
        j["mape_pct"] = s.mape_pct;
        j["max_error_pct"] = s.max_error_pct;
        j["counted"] = s.counted;
        std::cout << j.dump(2) << "\n";
        return 0;
      }
      std::cout << "validation: " << f.file << "\n\n";
      std::cout << fmt::format("{:<40} {:<17} {:>10} {:>10} {:>8}  {}\n", "run", "metric", "published", "predicted", "error", "plan / notes");
      for (const auto& r : s.runs) {
        std::cout << fmt::format("{:<40} {:<17} {:>10.4g} {:>10.4g} {:>7.1f}%  {}{}\n", r.id, r.metric, r.published, r.predicted,
                                 r.error_pct, r.supported ? "" : "[excluded] ", plan_text(r));
        if (!r.note.empty()) std::cout << fmt::format("{:<40} {}\n", "", r.note);
      }
      std::cout << fmt::format("\nMAPE {:.2f}%   max |error| {:.2f}%   over {} runs\n", s.mape_pct, s.max_error_pct, s.counted);
      if (!s.layers.empty()) {
        std::cout << fmt::format("\n{:<44} {:>9} {:>9} {:>7}   {:>9} {:>9} {:>7}\n", "single-layer timing", "fwd pub", "fwd pred", "err",
                                 "bwd pub", "bwd pred", "err");
        for (const auto& l : s.layers)
          std::cout << fmt::format("{:<44} {:>7.2f}ms {:>7.2f}ms {:>6.1f}%   {:>7.2f}ms {:>7.2f}ms {:>6.1f}%\n", l.id, l.fwd_published_ms,
                                   l.fwd_predicted_ms, l.fwd_error_pct, l.bwd_published_ms, l.bwd_predicted_ms, l.bwd_error_pct);
      }
      return 0;
    });
  });
}

}  // namespace scaleplan::cli
