#include "simulator/des/schedule.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <string>

#include "common/errors.hpp"

namespace scaleplan::des {

using strategies::Schedule;

namespace {

std::vector<PipeOp> gpipe(int m) {
  std::vector<PipeOp> ops;
  for (int i = 0; i < m; ++i) ops.push_back({true, i, 0});
  for (int i = m - 1; i >= 0; --i) ops.push_back({false, i, 0});  // backward in reverse (autograd order)
  return ops;
}

// PipeDream-Flush / 1F1B: warm-up min(p - stage - 1, m) forwards, steady 1F1B, cool-down backwards.
std::vector<PipeOp> one_f_one_b(int p, int m, int stage) {
  std::vector<PipeOp> ops;
  const int warm = std::min(p - stage - 1, m);
  int f = 0, b = 0;
  for (; f < warm; ++f) ops.push_back({true, f, 0});
  while (f < m) {
    ops.push_back({true, f++, 0});
    ops.push_back({false, b++, 0});
  }
  while (b < m) ops.push_back({false, b++, 0});
  return ops;
}

// Megatron-LM interleaved schedule: virtual microbatch k (0..m v - 1) runs chunk (k / p) % v of
// microbatch (k / (p v)) p + k % p forward; backward visits chunks in reverse. Warm-up:
// (p - stage - 1) * 2 + (v - 1) * p virtual microbatches (schedules.py get_num_warmup_microbatches).
std::vector<PipeOp> interleaved(int p, int v, int m, int stage) {
  const int total = m * v;
  auto fwd = [&](int k) { return PipeOp{true, (k / (p * v)) * p + k % p, (k / p) % v}; };
  auto bwd = [&](int k) { return PipeOp{false, (k / (p * v)) * p + k % p, v - 1 - (k / p) % v}; };
  std::vector<PipeOp> ops;
  const int warm = m == p ? total : std::min((p - stage - 1) * 2 + (v - 1) * p, total);
  int f = 0, b = 0;
  for (; f < warm; ++f) ops.push_back(fwd(f));
  while (f < total) {
    ops.push_back(fwd(f++));
    ops.push_back(bwd(b++));
  }
  while (b < total) ops.push_back(bwd(b++));
  return ops;
}

}  // namespace

std::vector<PipeOp> stage_order(Schedule s, int p, int v, int m, int stage) {
  switch (s) {
    case Schedule::gpipe: return gpipe(m);
    case Schedule::interleaved:
      if (v > 1) {
        if (m % p != 0)
          throw PlanError("vpp", "the interleaved schedule needs the microbatches per pipeline (" + std::to_string(m) +
                          ") to be a multiple of pp (" + std::to_string(p) + ")");
        return interleaved(p, v, m, stage);
      }
      return one_f_one_b(p, m, stage);
    default: return one_f_one_b(p, m, stage);
  }
}

namespace {
// The graph's makespan; for zero_bubble also the W slots (w_slots may be null).
double run_graph(Schedule s, int p, int v, int m, const std::vector<StagePassTimes>& t, std::vector<std::vector<int>>* w_slots) {
  const bool zb = s == Schedule::zero_bubble;
  const int vs_count = p * v;
  // done[dir][mb * vs_count + k]: finish time of F (dir 0) / B (dir 1) of microbatch mb on virtual stage k; < 0: not yet.
  std::vector<double> done[2] = {std::vector<double>(static_cast<size_t>(m) * vs_count, -1.0),
                                 std::vector<double>(static_cast<size_t>(m) * vs_count, -1.0)};
  std::vector<std::vector<PipeOp>> order(p);
  std::vector<size_t> next(p, 0);
  std::vector<double> free_at(p, 0.0);
  std::vector<std::deque<double>> pending_w(p);  // W durations waiting on each stage
  for (int i = 0; i < p; ++i) order[i] = stage_order(s, p, v, m, i);
  if (w_slots) {
    w_slots->assign(p, {});
    for (int i = 0; i < p; ++i) (*w_slots)[i].assign(order[i].size(), 0);
  }
  size_t left = 0;
  for (const auto& o : order) left += o.size();
  while (left > 0) {
    bool progress = false;
    for (int i = 0; i < p; ++i) {
      while (next[i] < order[i].size()) {
        const PipeOp& op = order[i][next[i]];
        const int k = op.chunk * p + i;
        double ready = 0;
        if (op.forward && k > 0) ready = done[0][static_cast<size_t>(op.microbatch) * vs_count + k - 1];
        if (!op.forward && k < vs_count - 1) ready = done[1][static_cast<size_t>(op.microbatch) * vs_count + k + 1];
        if (ready < 0) break;  // its input is not computed yet
        // A deferred W fills the wait when it ends before the input arrives.
        while (zb && !pending_w[i].empty() && free_at[i] + pending_w[i].front() <= ready + 1e-12) {
          free_at[i] += pending_w[i].front();
          pending_w[i].pop_front();
          if (w_slots) ++(*w_slots)[i][next[i]];
        }
        const StagePassTimes& st = t[i];
        const double dur = (op.forward ? st.f_s : zb ? st.b_s : st.b_s + st.w_s) / v;
        free_at[i] = std::max(free_at[i], ready) + dur;
        done[op.forward ? 0 : 1][static_cast<size_t>(op.microbatch) * vs_count + k] = free_at[i];
        if (zb && !op.forward) {
          pending_w[i].push_back(st.w_s / v);
          if (static_cast<int>(pending_w[i].size()) > i) {  // memory cap: at most `stage` W's wait
            free_at[i] += pending_w[i].front();
            pending_w[i].pop_front();
          }
        }
        ++next[i];
        --left;
        progress = true;
      }
    }
    if (!progress) throw std::logic_error("schedule_makespan: the schedule's order deadlocks");
  }
  double end = 0;
  for (int i = 0; i < p; ++i) {
    for (const double w : pending_w[i]) free_at[i] += w;
    end = std::max(end, free_at[i]);
  }
  return end;
}
}  // namespace

double schedule_makespan(Schedule s, int p, int v, int m, const std::vector<StagePassTimes>& t) { return run_graph(s, p, v, m, t, nullptr); }

std::vector<std::vector<int>> zero_bubble_w_slots(int p, int m, const std::vector<StagePassTimes>& t) {
  std::vector<std::vector<int>> slots;
  run_graph(Schedule::zero_bubble, p, 1, m, t, &slots);
  return slots;
}

}  // namespace scaleplan::des
