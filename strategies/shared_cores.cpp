#include "strategies/shared_cores.hpp"

#include <algorithm>
#include <array>
#include <limits>

namespace scaleplan::strategies {

namespace {

struct Op {
  bool fwd;
  long long mb;
};

// Stage i's n-th op (n < 2m): GPipe all forwards then all backwards; 1F1B a warm-up of
// min(p-i-1, m) forwards, then forward/backward pairs, then the cool-down backwards (executor/gpt.cpp,
// Narayanan et al. 2021 Fig. 4).
Op op_at(Schedule s, int i, int p, long long m, long long n) {
  if (s == Schedule::gpipe) return n < m ? Op{true, n} : Op{false, n - m};
  const long long warm = std::min<long long>(p - i - 1, m);
  if (n < warm) return {true, n};
  const long long j = n - warm, pairs = m - warm;
  if (j < 2 * pairs) return (j % 2 == 0) ? Op{true, warm + j / 2} : Op{false, j / 2};
  return {false, pairs + (j - 2 * pairs)};
}

}  // namespace

double shared_cores_pipeline_time(Schedule s, int p, long long m, const double* f_s, const double* b_s, double k) {
  if ((s != Schedule::gpipe && s != Schedule::one_f_one_b) || p < 1 || p > kSharedCoresMaxStages || m < 1 || k <= 1)
    return -1;
  std::array<long long, kSharedCoresMaxStages> next{}, fwd_done{}, bwd_done{};
  std::array<double, kSharedCoresMaxStages> rem{};
  std::array<bool, kSharedCoresMaxStages> ready{};
  for (int i = 0; i < p; ++i) rem[i] = op_at(s, i, p, m, 0).fwd ? f_s[i] : b_s[i];
  const long long ops = 2 * m;
  double t = 0;
  for (;;) {
    int w = 0;
    for (int i = 0; i < p; ++i) {
      ready[i] = false;
      if (next[i] >= ops) continue;
      const Op o = op_at(s, i, p, m, next[i]);
      // A forward needs the previous stage's forward of its microbatch; a backward the next stage's
      // backward (the last stage: its own forward, which its op order puts first).
      ready[i] = o.fwd ? (i == 0 || fwd_done[i - 1] > o.mb) : (i == p - 1 || bwd_done[i + 1] > o.mb);
      w += ready[i];
    }
    if (w == 0) break;  // all stages done (a valid schedule never waits with nothing runnable)
    const double speed = std::min(static_cast<double>(p) / w, k);
    double dt = std::numeric_limits<double>::infinity();
    for (int i = 0; i < p; ++i)
      if (ready[i]) dt = std::min(dt, rem[i] / speed);
    t += dt;
    for (int i = 0; i < p; ++i) {
      if (!ready[i]) continue;
      const bool done = rem[i] / speed <= dt * (1 + 1e-12);
      rem[i] -= dt * speed;
      if (!done) continue;
      const Op o = op_at(s, i, p, m, next[i]);
      (o.fwd ? fwd_done[i] : bwd_done[i]) += 1;
      if (++next[i] < ops) rem[i] = op_at(s, i, p, m, next[i]).fwd ? f_s[i] : b_s[i];
    }
  }
  return t;
}

}  // namespace scaleplan::strategies
