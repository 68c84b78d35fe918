#pragma once
// The plan space of a search: a table of axes, one per plan dimension (DESIGN.md sec. 3 plan keys).
// Each axis lists the values it may take given the dimensions set before it, and does the same
// divisibility checks as strategies::resolve_plan, so every plan the walk produces is one
// resolve_plan accepts unchanged (tests/test_search.cpp checks this against resolve_plan) and the
// hot loop never throws. Adding a dimension (offload, ...) is a new
// entry in the table in space.cpp, or new values in an existing entry.
#include <cstdint>
#include <vector>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::search {

// What the axes read: the model, the cluster, the GPU count and the global batches to consider.
struct Space {
  const model::ModelSpec* model = nullptr;
  const hw::Cluster* cluster = nullptr;
  long long gpus = 0;
  std::vector<long long> gbs;  // candidate global batches (sequences); one value for a fixed batch
  strategies::Precision precision = strategies::Precision::bf16;  // the default resolve_plan picks
  int max_tp = 0;       // 0: every tp that divides (documented pruning knob; the CLI keeps 0)
  long long max_mbs = 0;  // 0: every power of two that divides gbs/dp
  // Also pipeline splits where pp does not divide layers (Llama 3's uneven stages, sec. 3.3.2;
  // Plan::allow_uneven_layers). Needed for counts such as 20,480 = 2^12 x 5 with a power-of-two
  // batch, which no pp | layers can use whole.
  bool uneven_layers = true;
  // tp and tp*cp divide gpus_per_node or are multiples of it (groups do not straddle nodes).
  bool align_to_nodes = true;
};
Space make_space(const model::ModelSpec& m, const hw::Cluster& c, long long gpus, std::vector<long long> gbs);

inline constexpr int kMaxAxisValues = 512;

struct Axis {
  const char* name;
  // Writes the values this axis may take for `p` (whose earlier axes are set) to out; returns the count.
  int (*values)(const Space& s, const strategies::Plan& p, int* out);
  // Sets the axis on the plan.
  void (*apply)(const Space& s, strategies::Plan& p, int value);
};

// The table, outermost first. Axes [0, split_axis()) define a work item (gbs, tp, cp, pp, dp, ep,
// mbs: the divisibility structure); the rest are switches walked per item by one thread.
int num_axes();
const Axis& axis(int i);
int split_axis();

// Depth-first walk of axes [from, to), calling visit(plan) at each leaf. No allocation.
template <typename Visit>
void walk(const Space& s, int from, int to, strategies::Plan& p, Visit& visit) {
  if (from == to) {
    visit(p);
    return;
  }
  const Axis& a = axis(from);
  int vals[kMaxAxisValues];
  const int n = a.values(s, p, vals);
  for (int i = 0; i < n; ++i) {
    a.apply(s, p, vals[i]);
    walk(s, from + 1, to, p, visit);
  }
}

// The plan every walk starts from (resolve_plan's defaults for the fields no axis sets).
strategies::Plan base_plan(const Space& s);
// Work items: the partial plans after the split axis, in walk order; items whose first leaf
// resolve_plan rejects are dropped.
std::vector<strategies::Plan> work_items(const Space& s);
// Plans under one work item / in the whole space.
std::uint64_t count_plans(const Space& s, const strategies::Plan& item);
std::uint64_t count_plans(const Space& s);
// Every plan of the space in walk order (tests and small spaces). The search additionally skips
// any leaf resolve_plan rejects (none, while the axes mirror its rules).
std::vector<strategies::Plan> enumerate_plans(const Space& s);

// Deterministic total order on plans: the fields in plan-string order (dp, tp, pp, vpp, mbs, gbs,
// cp, ep, tp_mode, tp_depth, sp, cp_algo, schedule, recompute, zero, offload, precision), numeric.
int compare_plans(const strategies::Plan& a, const strategies::Plan& b);

// Model-parallel products tp*cp*pp that the space allows for this model (any GPU count), ascending.
std::vector<long long> model_parallel_sizes(const model::ModelSpec& m, const hw::Cluster& c, int max_tp = 0,
                                           bool uneven_layers = true, bool align_to_nodes = true);

}  // namespace scaleplan::search
