#include "strategies/pipeline.hpp"

#include <algorithm>

namespace scaleplan::strategies {

namespace {

// GPipe and 1F1B: one microbatch flows through all stages (sum of stage times), the other m-1
// follow at the pace of the slowest stage. Uniform stages: (m + p - 1) t, bubble (p-1)/m.
double time_flush(const StageTimes& st, int p, int v, long long m) {
  return static_cast<double>(m - 1) * st.max_s + st.sum_s;
}
// GPipe (Huang et al. 2019) runs all forwards, then all backwards: two flow shops of identical
// jobs, each (m - 1) x its slowest stage + the sum; when the slowest forward and the slowest
// backward sit on different stages this is more than time_flush.
double time_gpipe(const StageTimes& st, int p, int v, long long m) {
  return std::max(time_flush(st, p, v, m), static_cast<double>(m - 1) * (st.f_max_s + st.b_max_s) + st.sum_s);
}
// Interleaved 1F1B: the fill/drain is (p-1) chunks of 1/v of a stage (SC21 sec. 2.2: bubble (p-1)/(v m)).
double time_interleaved(const StageTimes& st, int p, int v, long long m) {
  const double avg = st.sum_s / p;
  return static_cast<double>(m) * st.max_s + static_cast<double>(p - 1) / v * avg;
}
// Zero bubble, ZB-H1 (Qi et al. 2023, "Zero Bubble Pipeline Parallelism", sec. 3.1, Fig. 3): the
// backward splits into B (input gradient) and W (weight gradient); W passes are deferred to fill the
// warm-up/cool-down, so the bubble shrinks from (p-1)(t_F + t_B + t_W) to (p-1)(t_F + t_B - t_W)
// with the same peak activation memory as 1F1B. Uniform stages, t = F + B + W: m >= p gives
// (m + p - 1)(F + B) + (m - p + 1) W; with m < p there are too few W's to fill the bubble: the
// last microbatch's F and B chain through all stages after m - 1 (F + B) slots and one W ends the
// step, (m + p - 1)(F + B) + W. Both are flush - min(2 (p - 1), m + p - 2) W, never below the
// critical path (pipeline_lower_bound). Stages of unequal W (the first and last, uneven splits)
// fill with the smallest W of any stage (a bubble on the critical path is filled only by the W of
// the stage it sits on; tests/test_schedule_bounds.cpp checks the result against the graph).
double time_zero_bubble(const StageTimes& st, int p, int v, long long m) {
  const double flush = time_flush(st, p, v, m);
  const double filled = static_cast<double>(std::min<long long>(2LL * (p - 1), m + p - 2));
  return std::max(pipeline_lower_bound(st, m), flush - filled * st.w_min_s);
}
// GPipe keeps all m microbatches; 1F1B keeps p - i on stage i (Narayanan et al. SC21 sec. 2.2).
double inflight_gpipe(int i, int p, int v, long long m) { return static_cast<double>(m); }
double inflight_1f1b(int i, int p, int v, long long m) { return static_cast<double>(std::min<long long>(m, p - i)); }
// Interleaved: the first stage holds p microbatches times (1 + (p-1)/(p v)) (Korthikanti 2022 sec. 4.2.3).
double inflight_interleaved(int i, int p, int v, long long m) {
  const double base = static_cast<double>(std::min<long long>(m, p - i));
  return std::min(static_cast<double>(m), base * (1.0 + static_cast<double>(p - 1) / (static_cast<double>(p) * v)));
}

const ScheduleModel kSchedules[] = {
    {Schedule::gpipe, "gpipe", time_gpipe, inflight_gpipe},
    {Schedule::one_f_one_b, "1f1b", time_flush, inflight_1f1b},
    {Schedule::interleaved, "interleaved", time_interleaved, inflight_interleaved},
    {Schedule::zero_bubble, "zero_bubble", time_zero_bubble, inflight_1f1b},  // ZB-H1: memory as 1F1B (Qi et al. sec. 3.1)
};

}  // namespace

double pipeline_lower_bound(const StageTimes& st, long long m) {
  return std::max(static_cast<double>(m) * st.max_s, st.sum_s - st.w_sum_s + st.w_first_s);
}

const ScheduleModel& schedule_model(Schedule s) {
  for (const auto& m : kSchedules)
    if (m.kind == s) return m;
  return kSchedules[1];
}

double bubble_fraction(Schedule s, int p, int v, long long m) {
  if (m <= 0) return 0;
  if (s == Schedule::zero_bubble) return static_cast<double>(p - 1) / (3.0 * m);
  return s == Schedule::interleaved ? static_cast<double>(p - 1) / (static_cast<double>(v) * m)
                                    : static_cast<double>(p - 1) / m;
}

StageLayers stage_layers(const Plan& p, long long L) {
  if (p.layers_first <= 0) return stage_layers(L, p.pp);
  StageLayers s;
  s.first = p.layers_first;
  s.middle = p.layers_middle;
  s.last = p.layers_last;
  return s;
}

StageLayers stage_layers(long long L, int p) {
  StageLayers s;
  if (p <= 1) {
    s.first = s.middle = s.last = static_cast<double>(L);
    return s;
  }
  if (L % p == 0) {
    s.first = s.middle = s.last = static_cast<double>(L / p);
    return s;
  }
  const long long mid = (L + p - 1) / p;
  if (p == 2) {
    s.first = static_cast<double>(mid);
    s.last = static_cast<double>(L - mid);
    s.middle = s.first;
    return s;
  }
  const long long rest = L - mid * (p - 2);  // first + last
  s.middle = static_cast<double>(mid);
  s.first = static_cast<double>((rest + 1) / 2);
  s.last = static_cast<double>(rest / 2);
  return s;
}

}  // namespace scaleplan::strategies
