#include "simulator/des/schedule.hpp"

#include <algorithm>
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

}  // namespace scaleplan::des
