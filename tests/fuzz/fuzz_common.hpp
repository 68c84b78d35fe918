#pragma once
// Shared by the libFuzzer targets (issue 17, docs/reliability.md "Fuzzing"). Bad input must end in
// one of the typed errors (ConfigError, PlanError, UsageError: the CLI's exit 2); any other
// exception, a crash, a sanitizer report or a hang (-timeout) is a finding. A plan that resolves
// is costed with Estimator::evaluate, and its report must be a number, never NaN or negative.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/errors.hpp"
#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::fuzz {

inline std::string text_of(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Runs fn; the typed bad-input errors are expected answers, everything else escapes to libFuzzer.
template <typename Fn>
void expect_typed_errors(Fn&& fn) {
  try {
    fn();
  } catch (const ConfigError&) {
  } catch (const PlanError&) {
  } catch (const UsageError&) {
  }
}

[[noreturn]] inline void finding(const char* what, const strategies::Plan& p) {
  std::fprintf(stderr, "fuzz finding: %s (plan %s)\n", what, p.to_string().c_str());
  std::abort();
}

// The report of a resolved plan: finite, non-negative numbers; a feasible plan takes time.
inline void check_report(const strategies::StepReport& r) {
  const auto& m = r.memory;
  for (double v : {m.params, m.grads, m.optimizer, m.activations, m.buffers, m.capacity})
    if (!(v >= 0) || std::isinf(v)) finding("memory is NaN, infinite or negative", r.plan);
  const auto& t = r.time;
  for (double v : {t.step_s, t.compute_s, t.comm_exposed_s, t.bubble_s})
    if (!(v >= 0) || std::isinf(v)) finding("time is NaN, infinite or negative", r.plan);
  if (r.feasible && !(t.step_s > 0)) finding("a feasible plan with no step time", r.plan);
}

// Resolves `p` for (m, c, gpus) and costs it; a PlanError is an answer.
inline void cost_plan(const analytic::Estimator& est, strategies::Plan p, long long gpus) {
  expect_typed_errors([&] {
    const strategies::Plan q = strategies::resolve_plan(p, est.model(), est.cluster(), gpus);
    check_report(est.evaluate(q));
  });
}

}  // namespace scaleplan::fuzz
