#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "common/errors.hpp"
#include "validation/fit.hpp"
#include "validation/runs.hpp"

namespace scaleplan::cli {

namespace {

struct ValidateArgs {
  std::vector<std::string> runs;  // none: the embedded shared set; several: one set (e.g. the whole fitting set)
  std::string cv;  // "group" or empty
  std::string stack;  // every row on this software stack (default: each row's own)
  bool fit = false;
  bool json = false;
  bool csv = false;  // one row per run, the --json rows' fields
};

// Serving rows (`kind: serve`, validation/serve_runs.cpp) carry their layout in the note, not a training plan.
std::string plan_text(const validation::RunResult& r) {
  return r.metric.rfind("output_tokens_per_s", 0) == 0 ? std::string("(serving layout in the note)") : r.report.plan.to_string();
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "; ") + x;
  return s;
}

nlohmann::json run_json(const validation::RunResult& r) {
  nlohmann::json e = {{"id", r.id}, {"group", r.group}, {"metric", r.metric}, {"assumed", r.assumed}, {"supported", r.supported}};
  if (!r.supported) {
    e.update({{"refused", r.refused}, {"published", nullptr}, {"predicted", nullptr}, {"error_pct", nullptr}});
    return e;
  }
  e.update({{"published", r.published},
            {"predicted", r.predicted},
            {"error_pct", r.error_pct},
            {"feasible", r.feasible},
            {"oom", !r.feasible},
            {"note", r.note},
            {"plan", plan_text(r)},
            {"breakdown_s",
             {{"step", r.report.time.step_s}, {"compute", r.report.time.compute_s}, {"bubble", r.report.time.bubble_s},
              {"tp_comm", r.report.tp_comm_exposed_s}, {"pp_comm", r.report.pp_comm_exposed_s},
              {"dp_comm", r.report.dp_comm_exposed_s}, {"optimizer", r.report.time.optimizer_s}}}});
  return e;
}

nlohmann::json params_json(const std::vector<double>& v) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t i = 0; i < v.size(); ++i) j[validation::fit_params()[i].name] = v[i];
  return j;
}

nlohmann::json fit_json(const validation::FitResult& fr) {
  const auto shipped = validation::shipped_values();
  nlohmann::json ps = nlohmann::json::array();
  for (std::size_t i = 0; i < fr.values.size(); ++i) {
    const auto& p = validation::fit_params()[i];
    ps.push_back({{"name", p.name}, {"lo", p.lo}, {"hi", p.hi}, {"prior", p.prior}, {"prior_source", p.prior_source},
                  {"shipped", shipped[i]}, {"fitted", fr.values[i]}, {"identified", static_cast<bool>(fr.identified[i])}});
  }
  return {{"params", ps}, {"mape_pct", fr.mape_pct}, {"max_error_pct", fr.max_error_pct}, {"objective_pct", fr.objective_pct},
          {"runs", fr.rows}, {"layer_timings", fr.layers}, {"evaluations", fr.evaluations}};
}

nlohmann::json validate_json(const validation::ValidationSummary& s, const validation::FitResult* fr, const validation::CvResult* cv) {
  nlohmann::json j;
  j["runs"] = nlohmann::json::array();
  for (std::size_t i = 0; i < s.runs.size(); ++i) {
    nlohmann::json e = run_json(s.runs[i]);
    if (cv && cv->runs[i].supported) e.update({{"cv_predicted", cv->runs[i].predicted}, {"cv_error_pct", cv->runs[i].error_pct}});
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
  j["refused"] = s.refused;
  j["oom"] = s.oom;
  j["mape_pct_without_oom"] = s.mape_in_memory_pct;
  j["max_error_pct_without_oom"] = s.max_error_in_memory_pct;
  if (fr) j["fit"] = fit_json(*fr);
  if (cv) {
    j["cv_mape_pct"] = cv->cv_mape_pct;
    j["cv_max_error_pct"] = cv->cv_max_error_pct;
    j["cv_oom"] = cv->oom;
    j["cv_mape_pct_without_oom"] = cv->cv_mape_in_memory_pct;
    j["cv_groups"] = nlohmann::json::array();
    for (const auto& g : cv->groups)
      j["cv_groups"].push_back({{"group", g.group}, {"runs", g.runs}, {"mape_pct", g.mape_pct}, {"max_error_pct", g.max_error_pct},
                                {"fitted_mape_pct", g.fitted_mape_pct}, {"params", params_json(g.fit.values)}});
  }
  return j;
}

void print_rows(const validation::ValidationSummary& s) {
  std::cout << fmt::format("{:<40} {:<17} {:>10} {:>10} {:>8}  {}\n", "run", "metric", "published", "predicted", "error", "plan / notes");
  for (const auto& r : s.runs) {
    if (!r.supported) {
      std::cout << fmt::format("{:<40} [refused] {}\n", r.id, r.refused);
      continue;
    }
    std::cout << fmt::format("{:<40} {:<17} {:>10.4g} {:>10.4g} {:>7.1f}%  {}{}\n", r.id, r.metric, r.published, r.predicted, r.error_pct,
                             r.feasible ? "" : "[oom] ", plan_text(r));
    if (!r.assumed.empty()) std::cout << fmt::format("{:<40} assumed: {}\n", "", joined(r.assumed));
    if (!r.note.empty()) std::cout << fmt::format("{:<40} {}\n", "", r.note);
  }
  std::cout << fmt::format("\nMAPE {:.2f}%   max |error| {:.2f}%   over {} runs", s.mape_pct, s.max_error_pct, s.counted);
  if (s.refused > 0) std::cout << fmt::format("   ({} refused)", s.refused);
  std::cout << "\n";
  if (s.oom > 0)
    std::cout << fmt::format("without the {} out-of-memory predictions: MAPE {:.2f}%   max |error| {:.2f}%   over {} runs\n", s.oom,
                             s.mape_in_memory_pct, s.max_error_in_memory_pct, s.counted - s.oom);
  if (!s.layers.empty()) {
    std::cout << fmt::format("\n{:<44} {:>9} {:>9} {:>7}   {:>9} {:>9} {:>7}\n", "single-layer timing", "fwd pub", "fwd pred", "err",
                             "bwd pub", "bwd pred", "err");
    for (const auto& l : s.layers)
      std::cout << fmt::format("{:<44} {:>7.2f}ms {:>7.2f}ms {:>6.1f}%   {:>7.2f}ms {:>7.2f}ms {:>6.1f}%\n", l.id, l.fwd_published_ms,
                               l.fwd_predicted_ms, l.fwd_error_pct, l.bwd_published_ms, l.bwd_predicted_ms, l.bwd_error_pct);
  }
}

void print_fit(const validation::FitResult& fr, const validation::FitResult& sh) {
  const auto shipped = validation::shipped_values();
  std::cout << fmt::format("\nparameters fitted on the whole runs file ({} runs, {} single-layer timings, {} evaluations):\n", fr.rows,
                           fr.layers, fr.evaluations);
  std::cout << fmt::format("{:<22} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "parameter", "lo", "hi", "prior", "shipped", "fitted");
  for (std::size_t i = 0; i < fr.values.size(); ++i) {
    const auto& p = validation::fit_params()[i];
    std::cout << fmt::format("{:<22} {:>10.4g} {:>10.4g} {:>10.4g} {:>10.4g} {:>10}\n", p.name, p.lo, p.hi, p.prior, shipped[i],
                             fr.identified[i] ? fmt::format("{:.4g}", fr.values[i]) : std::string("(no data)"));
  }
  std::cout << fmt::format("shipped:  MAPE {:.2f}%   max |error| {:.2f}%   objective {:.3f}% (runs + layer timings' fwd/bwd)\n",
                           sh.mape_pct, sh.max_error_pct, sh.objective_pct);
  std::cout << fmt::format("refitted: MAPE {:.2f}%   max |error| {:.2f}%   objective {:.3f}%\n", fr.mape_pct, fr.max_error_pct,
                           fr.objective_pct);
}

void print_cv(const validation::CvResult& cv) {
  std::cout << "\nleave-one-group-out cross-validation (each group predicted by parameters fitted on the others):\n";
  std::cout << fmt::format("{:<12} {:>5} {:>12} {:>10} {:>10}   {}\n", "group", "runs", "fitted MAPE", "cv MAPE", "cv max", "parameters fitted without it");
  for (const auto& g : cv.groups) {
    std::string ps;
    for (std::size_t i = 0; i < g.fit.values.size(); ++i)
      ps += fmt::format("{}{}={}", ps.empty() ? "" : " ", validation::fit_params()[i].name,
                        g.fit.identified[i] ? fmt::format("{:.3g}", g.fit.values[i]) : std::string("prior"));
    std::cout << fmt::format("{:<12} {:>5} {:>11.2f}% {:>9.2f}% {:>9.2f}%   {}\n", g.group, g.runs, g.fitted_mape_pct, g.mape_pct, g.max_error_pct, ps);
  }
  std::cout << fmt::format("cross-validated: MAPE {:.2f}%   max |error| {:.2f}%\n", cv.cv_mape_pct, cv.cv_max_error_pct);
  if (cv.oom > 0)
    std::cout << fmt::format("without the {} out-of-memory predictions: cross-validated MAPE {:.2f}%\n", cv.oom, cv.cv_mape_in_memory_pct);
}

}  // namespace

void add_validate(CLI::App& app, int& rc) {
  auto a = std::make_shared<ValidateArgs>();
  CLI::App* sub = app.add_subcommand("validate", "predict published training runs and report the error");
  sub->add_option("--runs", a->runs, "runs file (schema of validation/published_runs.yaml); repeat to validate several as one set "
                                    "(the fitting set: --runs validation/published_runs.yaml --runs validation/fitting_runs.yaml); "
                                    "default: the embedded shared set");
  sub->add_option("--cv", a->cv, "cross-validate: 'group' fits the efficiency parameters with one source group left out at a time")
      ->check(CLI::IsMember({"group"}));
  sub->add_option("--stack", a->stack, "predict every row on this software stack (default: each row's own; docs/stacks.md)");
  sub->add_flag("--fit", a->fit, "fit the efficiency parameters on the runs file and print them beside the shipped values");
  sub->add_flag("--json", a->json, "print the contract JSON only");
  sub->add_flag("--csv", a->csv, "print the rows as CSV (the --json fields, dotted columns) instead of the table");
  sub->callback([a, &rc] {
    rc = guarded([&] {
      if (a->json && a->csv) throw UsageError("--json and --csv each print the whole stdout: give one");
      validation::RunsFile f = validation::load_runs(a->runs);
      if (!a->stack.empty()) validation::use_stack(f, a->stack);
      const validation::ValidationSummary s = validation::validate(f);
      // Refused rows never abort the file, but a file with nothing to predict is bad input.
      if (s.counted == 0 && s.refused > 0)
        for (const auto& r : s.runs)
          if (!r.supported) throw UsageError(r.refused);
      validation::FitResult fr;
      if (a->fit) fr = validation::fit(f.runs, f.layer_timings);
      validation::CvResult cv;
      if (!a->cv.empty()) cv = validation::cross_validate(f);
      if (a->json || a->csv) {
        const nlohmann::json j = validate_json(s, a->fit ? &fr : nullptr, a->cv.empty() ? nullptr : &cv);
        if (a->csv) std::cout << csv_table(j["runs"]);
        else std::cout << j.dump(2) << "\n";
        return 0;
      }
      std::cout << "validation: " << f.file << "\n\n";
      print_rows(s);
      if (a->fit) print_fit(fr, validation::evaluate_params(f.runs, f.layer_timings, validation::shipped_values()));
      if (!a->cv.empty()) print_cv(cv);
      return 0;
    });
  });
}

}  // namespace scaleplan::cli
