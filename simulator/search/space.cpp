#include "simulator/search/space.hpp"

#include <algorithm>
#include <cassert>
#include <set>

#include "common/errors.hpp"
#include "strategies/pipeline.hpp"
#include "strategies/stack_caps.hpp"
#include "strategies/tensor_nd.hpp"

namespace scaleplan::search {

using strategies::CpAlgo;
using strategies::Offload;
using strategies::Plan;
using strategies::Precision;
using strategies::Recompute;
using strategies::Schedule;
using strategies::TpMode;

namespace {

// Context parallelism is only worth its ring traffic for long sequences; below this length the
// search keeps cp=1 (Llama 3 sec. 3.3.2 used CP only for its 128K-token stage; Megatron-LM
// recommends CP from 32K-token sequences, docs "context_parallel").
constexpr long long kCpMinSeq = 32768;

bool tp_divides_model(const model::ModelSpec& m, long long d) {
  // The rules of strategies::resolve_plan: heads, ffn divisible; kv_heads and tp divide one another.
  return m.heads % d == 0 && m.ffn % d == 0 && (m.kv_heads % d == 0 || d % m.kv_heads == 0);
}

// The grid-mode rules of strategies/tensor_nd (check_grid), without the microbatch: grid side q
// divides heads, hidden, ffn; kv_heads and q divide one another; no MoE experts.
bool grid_divides_model(const model::ModelSpec& m, long long q) {
  return !m.moe.enabled() && q >= 2 && m.heads % q == 0 && m.hidden % q == 0 && m.ffn % q == 0 &&
         (m.kv_heads % q == 0 || q % m.kv_heads == 0);
}

// The tensor-parallel modes a TP degree allows, encoded mode + 8 * depth; writes them to out
// (when given) and returns the count. mbs <= 0: ignore the microbatch rule (the tp axis).
// Depths of 2.5d: every d >= 2 with tp = d q^2, q >= 2 (d = 1 is 2d). `modes`: the stack's
// tensor-parallel modes (hw::Capabilities::tp_modes); tp = 1 (no tensor parallelism) always passes.
int tp_mode_codes(const model::ModelSpec& m, long long tp, long long mbs, int* out, unsigned modes = 0xF) {
  int n = 0;
  auto add = [&](TpMode mode, long long depth, long long rows, long long q) {
    if (tp > 1 && !strategies::has_bit(modes, static_cast<int>(mode))) return;
    if (!grid_divides_model(m, q) && mode != TpMode::d1) return;
    if (mbs > 0 && mbs % rows != 0) return;
    if (out) out[n] = static_cast<int>(mode) + 8 * static_cast<int>(depth);
    ++n;
  };
  if (tp_divides_model(m, tp)) add(TpMode::d1, 1, 1, tp);
  if (const int q = strategies::exact_root(tp, 2); q >= 2) add(TpMode::d2, 1, q, q);
  for (long long d = 2; d * 4 <= tp; ++d)
    if (tp % d == 0)
      if (const int q = strategies::exact_root(tp / d, 2); q >= 2) add(TpMode::d2_5, d, d * q, q);
  if (const int q = strategies::exact_root(tp, 3); q >= 2) add(TpMode::d3, 1, static_cast<long long>(q) * q, q);
  return n;
}

// Node alignment: a tensor- (or tensor x context-) parallel group either fits a node evenly or
// spans whole nodes (d | gpus_per_node or gpus_per_node | d), as Megatron deployments place TP
// inside NVLink domains (SC21 sec. 3.3). hw::make_group costs a group of d < gpus_per_node ranks
// as one node, which a misaligned group (tp=3 on 8-GPU nodes) is not.
bool node_aligned(const hw::Cluster& c, long long d) {
  const long long g = c.gpus_per_node;
  return g <= 0 || g % d == 0 || d % g == 0;
}

int push(int* out, int n, long long v) {
  assert(n < kMaxAxisValues && "axis has more values than kMaxAxisValues");
  if (n < kMaxAxisValues) out[n++] = static_cast<int>(v);
  return n;
}

// --- gbs: the candidate global batches (index into Space::gbs) ---
int gbs_values(const Space& s, const Plan&, int* out) {
  int n = 0;
  for (size_t i = 0; i < s.gbs.size(); ++i) n = push(out, n, static_cast<long long>(i));
  return n;
}
void gbs_apply(const Space& s, Plan& p, int v) { p.gbs = s.gbs[static_cast<size_t>(v)]; }

// --- tp: divides heads and ffn, kv_heads rule, and the GPU count ---
int tp_values(const Space& s, const Plan&, int* out) {
  int n = 0;
  const model::ModelSpec& m = *s.model;
  for (long long d = 1; d <= m.heads; ++d) {
    if (s.gpus % d != 0 || tp_mode_codes(m, d, 0, nullptr, s.cluster->sw.caps.tp_modes) == 0) continue;
    if (s.align_to_nodes && !node_aligned(*s.cluster, d)) continue;
    if (s.max_tp > 0 && d > s.max_tp) break;
    n = push(out, n, d);
  }
  return n;
}
void tp_apply(const Space&, Plan& p, int v) { p.tp = v; }

// --- cp: powers of two dividing seq (long sequences only) ---
int cp_values(const Space& s, const Plan& p, int* out) {
  int n = 0;
  const long long seq = s.model->seq;
  if (seq < kCpMinSeq || !strategies::allows_context_parallel(s.cluster->sw.caps)) return push(out, n, 1);
  for (long long c = 1; c <= seq; c *= 2) {
    if (seq % c != 0) break;
    if (s.gpus % (static_cast<long long>(p.tp) * c) != 0) continue;
    if (s.align_to_nodes && !node_aligned(*s.cluster, p.tp * c)) continue;
    n = push(out, n, c);
  }
  return n;
}
void cp_apply(const Space&, Plan& p, int v) { p.cp = v; }

// --- pp: divides the GPU count left after tp*cp, and either divides layers or, with
// Space::uneven_layers, splits them unevenly as Llama 3 did (sec. 3.3.2: middle stages take
// ceil(L/p) layers, the first and last share the rest; strategies::stage_layers): kept when the
// first and last stages get between 1 and ceil(L/p) layers ---
bool uneven_split_ok(long long L, long long p, strategies::StageLayers* out = nullptr) {
  if (p < 2 || p > L || L % p == 0) return false;
  const strategies::StageLayers sl = strategies::stage_layers(L, static_cast<int>(p));
  if (out) *out = sl;
  return sl.first >= 1 && sl.last >= 1 && sl.first <= sl.middle && sl.last <= sl.middle;
}
int pp_values(const Space& s, const Plan& p, int* out) {
  int n = 0;
  const long long L = s.model->layers;
  const long long tc = static_cast<long long>(p.tp) * p.cp;
  const long long max_pp = strategies::allows_pipeline_parallel(s.cluster->sw.caps) ? L : 1;
  for (long long d = 1; d <= max_pp; ++d) {
    if (s.gpus % (tc * d) != 0) continue;
    if (L % d == 0 || (s.uneven_layers && uneven_split_ok(L, d))) n = push(out, n, d);
  }
  return n;
}
void pp_apply(const Space& s, Plan& p, int v) {
  p.pp = v;
  p.allow_uneven_layers = s.model->layers % v != 0;
  const strategies::StageLayers sl = strategies::stage_layers(s.model->layers, v);  // the plan says its split (key layers=)
  p.layers_first = static_cast<int>(sl.first);
  p.layers_middle = static_cast<int>(sl.middle);
  p.layers_last = static_cast<int>(sl.last);
}

// --- dp: what is left of the GPUs; must divide the global batch ---
int dp_values(const Space& s, const Plan& p, int* out) {
  const long long inner = static_cast<long long>(p.tp) * p.cp * p.pp;
  if (s.gpus % inner != 0) return 0;
  const long long dp = s.gpus / inner;
  if (p.gbs % dp != 0) return 0;
  return push(out, 0, dp);
}
void dp_apply(const Space&, Plan& p, int v) { p.dp = v; }

// --- ep: MoE only; divides the experts and dp ---
int ep_values(const Space& s, const Plan& p, int* out) {
  int n = 0;
  if (!s.model->moe.enabled() || !s.cluster->sw.caps.expert_parallel) return push(out, n, 1);
  for (int e = 1; e <= s.model->moe.experts; ++e)
    if (s.model->moe.experts % e == 0 && p.dp % e == 0) n = push(out, n, e);
  return n;
}
void ep_apply(const Space&, Plan& p, int v) { p.ep = v; }

// --- mbs: powers of two dividing the per-replica batch gbs/dp ---
int mbs_values(const Space& s, const Plan& p, int* out) {
  int n = 0;
  const long long per_replica = p.gbs / p.dp;
  for (long long b = 1; b <= per_replica; b *= 2) {
    if (per_replica % b != 0 || (s.max_mbs > 0 && b > s.max_mbs)) break;
    n = push(out, n, b);
  }
  return n;
}
void mbs_apply(const Space&, Plan& p, int v) { p.mbs = v; }

// --- tp_mode (with tp_depth for 2.5d): the modes strategies/tensor_nd allows for tp and mbs ---
int tp_mode_values(const Space& s, const Plan& p, int* out) {
  int codes[kMaxAxisValues];
  const int c = tp_mode_codes(*s.model, p.tp, p.mbs, codes, s.cluster->sw.caps.tp_modes);
  int n = 0;
  for (int i = 0; i < c; ++i) n = push(out, n, codes[i]);
  return n;
}
void tp_mode_apply(const Space&, Plan& p, int v) {
  p.tp_mode = static_cast<TpMode>(v % 8);
  p.tp_depth = v / 8;
}

// --- sp: Megatron sequence parallelism needs 1d tp > 1 (and a stack that has it) ---
int sp_values(const Space& s, const Plan& p, int* out) {
  int n = push(out, 0, 0);
  return p.tp > 1 && p.tp_mode == TpMode::d1 && s.cluster->sw.caps.sequence_parallel ? push(out, n, 1) : n;
}
void sp_apply(const Space&, Plan& p, int v) { p.sp = v != 0; }

// --- recompute ---
int recompute_values(const Space& s, const Plan&, int* out) {
  int n = 0;
  for (Recompute r : {Recompute::none, Recompute::selective, Recompute::full})
    if (strategies::allows(s.cluster->sw.caps, r)) n = push(out, n, static_cast<int>(r));
  return n;
}
void recompute_apply(const Space&, Plan& p, int v) { p.recompute = static_cast<Recompute>(v); }

// --- precision: the cluster's default (bf16 where the device has it, else fp16) ---
int precision_values(const Space& s, const Plan&, int* out) { return push(out, 0, static_cast<int>(s.precision)); }
void precision_apply(const Space&, Plan& p, int v) {
  p.precision = static_cast<Precision>(v);
  p.precision_set = true;
}

// --- zero: 0-3; with dp=1 every stage shards over one rank, the same plan as zero=0 ---
int zero_values(const Space& s, const Plan& p, int* out) {
  int n = push(out, 0, 0);
  if (p.dp > 1)
    for (int z = 1; z <= 3; ++z)
      if (strategies::allows_zero(s.cluster->sw.caps, z)) n = push(out, n, z);
  return n;
}
void zero_apply(const Space&, Plan& p, int v) { p.zero = v; }

// --- schedule: pp=1 runs plain gradient accumulation (1f1b); interleaved needs a vpp >= 2 (below)
// and microbatches divisible by pp (resolve_plan's rules) ---
// vpp >= 2 that splits every stage into whole-layer chunks: it divides L/p (even split), or for an
// uneven split it divides the middle stages' layers and the first and last keep >= vpp layers.
int chunk_values(const Space& s, const Plan& p, int* out) {
  int n = 0;
  const long long L = s.model->layers;
  if (L % p.pp == 0) {
    const long long per_stage = L / p.pp;
    for (long long v = 2; v <= per_stage; ++v)
      if (per_stage % v == 0) n = push(out, n, v);
    return n;
  }
  strategies::StageLayers sl;
  if (!uneven_split_ok(L, p.pp, &sl)) return 0;
  const long long mid = static_cast<long long>(sl.middle), edge = static_cast<long long>(std::min(sl.first, sl.last));
  for (long long v = 2; v <= edge; ++v)
    if (mid % v == 0) n = push(out, n, v);
  return n;
}
int schedule_values(const Space& s, const Plan& p, int* out) {
  if (p.pp == 1) return push(out, 0, static_cast<int>(Schedule::one_f_one_b));
  const hw::Capabilities& caps = s.cluster->sw.caps;
  int n = 0;
  if (strategies::allows(caps, Schedule::gpipe)) n = push(out, n, static_cast<int>(Schedule::gpipe));
  if (strategies::allows(caps, Schedule::one_f_one_b)) n = push(out, n, static_cast<int>(Schedule::one_f_one_b));
  int tmp[kMaxAxisValues];
  if (strategies::allows(caps, Schedule::interleaved) && p.microbatches() % p.pp == 0 && chunk_values(s, p, tmp) > 0)
    n = push(out, n, static_cast<int>(Schedule::interleaved));
  if (strategies::allows(caps, Schedule::zero_bubble)) n = push(out, n, static_cast<int>(Schedule::zero_bubble));  // ZB-H1 (strategies/pipeline)
  return n;
}
void schedule_apply(const Space&, Plan& p, int v) {
  p.schedule = static_cast<Schedule>(v);
  p.schedule_set = true;
}

// --- vpp: model chunks per stage for the interleaved schedule ---
int vpp_values(const Space& s, const Plan& p, int* out) {
  if (p.schedule != Schedule::interleaved) return push(out, 0, 1);
  return chunk_values(s, p, out);
}
void vpp_apply(const Space&, Plan& p, int v) { p.vpp = v; }

// --- cp_algo: every algorithm of strategies/context when cp > 1 (Ulysses: heads % (split*cp)) ---
int cp_algo_values(const Space& s, const Plan& p, int* out) {
  if (p.cp <= 1) return push(out, 0, static_cast<int>(CpAlgo::ring));
  const hw::Capabilities& caps = s.cluster->sw.caps;
  int n = 0;
  if (strategies::allows(caps, CpAlgo::ring)) n = push(out, n, static_cast<int>(CpAlgo::ring));
  const long long split = p.tp_mode == TpMode::d1 ? p.tp : strategies::tp_layout(p.tp_mode, p.tp, p.tp_depth).q;
  if (strategies::allows(caps, CpAlgo::ulysses) && s.model->heads % (split * p.cp) == 0) n = push(out, n, static_cast<int>(CpAlgo::ulysses));
  if (strategies::allows(caps, CpAlgo::ring_self_attn)) n = push(out, n, static_cast<int>(CpAlgo::ring_self_attn));
  if (strategies::allows(caps, CpAlgo::allgather)) n = push(out, n, static_cast<int>(CpAlgo::allgather));
  return n;
}
void cp_algo_apply(const Space&, Plan& p, int v) { p.cp_algo = static_cast<CpAlgo>(v); }

// --- offload (issue 6): none first, then the modes strategies::check_offload allows for this zero:
// optimizer under zero=1|2, params and nvme (where the nodes have NVMe) under zero=3. With dp=1
// (zero axis 0 only) the mode brings its stage (optimizer: zero=2, params/nvme: zero=3), and none
// restores zero=0. The search costs an offload leaf only when its offload=none sibling (the leaf
// just before it) does not fit (search.cpp): offload only adds time, so it wins only when nothing
// else fits. gemini (chunk-based) comes last under zero=3: its chunk configuration is prepared once
// per (tp, ep, pp, dp) (search.cpp ChunkCache), so its leaves cost arithmetic only. ---
int offload_values(const Space& s, const Plan& p, int* out) {
  int n = push(out, 0, static_cast<int>(Offload::none));
  const hw::Capabilities& caps = s.cluster->sw.caps;
  const bool solo = p.dp == 1;  // zero may still hold the stage the previous leaf's mode brought
  // With dp = 1 the mode brings its ZeRO stage (offload_apply), which the stack must offer too.
  const bool opt_ok = strategies::allows(caps, Offload::optimizer) && (!solo || strategies::allows_zero(caps, 2));
  const bool z3_ok = !solo || strategies::allows_zero(caps, 3);
  if ((solo || p.zero == 1 || p.zero == 2) && opt_ok) n = push(out, n, static_cast<int>(Offload::optimizer));
  if ((solo || p.zero == 3) && z3_ok) {
    if (strategies::allows(caps, Offload::params)) n = push(out, n, static_cast<int>(Offload::params));
    if (strategies::allows(caps, Offload::nvme) && s.cluster->host.nvme_bytes > 0 && s.cluster->host.nvme_Bps > 0)
      n = push(out, n, static_cast<int>(Offload::nvme));
    if (strategies::allows(caps, Offload::gemini)) n = push(out, n, static_cast<int>(Offload::gemini));
  }
  return n;
}
void offload_apply(const Space&, Plan& p, int v) {
  p.offload = static_cast<Offload>(v);
  if (p.dp == 1) p.zero = p.offload == Offload::none ? 0 : p.offload == Offload::optimizer ? 2 : 3;  // params, nvme, gemini: 3
}

const Axis kAxes[] = {
    // Work-item axes: the divisibility structure.
    {"gbs", gbs_values, gbs_apply},
    {"tp", tp_values, tp_apply},
    {"cp", cp_values, cp_apply},
    {"pp", pp_values, pp_apply},
    {"dp", dp_values, dp_apply},
    {"ep", ep_values, ep_apply},
    {"mbs", mbs_values, mbs_apply},
    // Switches. tp_mode, sp, recompute, precision and cp_algo first: with mbs, tp, cp and ep they
    // key the layer table, so consecutive leaves share it.
    {"tp_mode", tp_mode_values, tp_mode_apply},
    {"sp", sp_values, sp_apply},
    {"recompute", recompute_values, recompute_apply},
    {"precision", precision_values, precision_apply},
    {"cp_algo", cp_algo_values, cp_algo_apply},
    {"zero", zero_values, zero_apply},
    {"schedule", schedule_values, schedule_apply},
    {"vpp", vpp_values, vpp_apply},
    {"offload", offload_values, offload_apply},
};
constexpr int kNumAxes = static_cast<int>(sizeof(kAxes) / sizeof(kAxes[0]));
constexpr int kSplit = 7;  // gbs .. mbs

}  // namespace

int num_axes() { return kNumAxes; }
const Axis& axis(int i) { return kAxes[i]; }
int split_axis() { return kSplit; }

Space make_space(const model::ModelSpec& m, const hw::Cluster& c, long long gpus, std::vector<long long> gbs) {
  if (gpus <= 0) throw UsageError("--gpus must be a positive GPU count (got " + std::to_string(gpus) + ")");
  if (gbs.empty()) throw UsageError("no global batch to search");
  for (long long b : gbs)
    if (b <= 0) throw UsageError("--gbs must be positive (got " + std::to_string(b) + ")");
  Space s;
  s.model = &m;
  s.cluster = &c;
  s.gpus = gpus;
  s.gbs = std::move(gbs);
  // resolve_plan's default precision, where the stack offers it (else fp16).
  s.precision = c.device.peak(hw::Dtype::bf16) > 0 && strategies::allows(c.sw.caps, Precision::bf16) ? Precision::bf16 : Precision::fp16;
  return s;
}

Plan base_plan(const Space& s) {
  Plan p;
  p.precision = s.precision;
  p.precision_set = true;
  return p;
}

namespace {
// The first leaf under axes [from, end) (depth first, backtracking past axes with no value).
bool first_leaf(const Space& s, int from, Plan& p) {
  if (from == kNumAxes) return true;
  const Axis& a = kAxes[from];
  int vals[kMaxAxisValues];
  const int n = a.values(s, p, vals);
  for (int i = 0; i < n; ++i) {
    a.apply(s, p, vals[i]);
    if (first_leaf(s, from + 1, p)) return true;
  }
  return false;
}
}  // namespace

std::vector<Plan> work_items(const Space& s) {
  std::vector<Plan> items;
  // Each item is probed once with resolve_plan (its first leaf): a dimension value resolve_plan
  // rejects as a whole (ep > 1 until expert parallelism is modelled, say) drops the item here, so
  // the axis table can list what the Plan can express and the hot loop stays exception-free.
  auto collect = [&](const Plan& item) {
    Plan leaf = item;
    if (!first_leaf(s, kSplit, leaf)) return;
    try {
      (void)strategies::resolve_plan(leaf, *s.model, *s.cluster, s.gpus);
    } catch (const PlanError&) {
      return;
    }
    items.push_back(item);
  };
  Plan p = base_plan(s);
  walk(s, 0, kSplit, p, collect);
  return items;
}

std::uint64_t count_plans(const Space& s, const Plan& item) {
  std::uint64_t n = 0;
  auto count = [&](const Plan&) { ++n; };
  Plan p = item;
  walk(s, kSplit, kNumAxes, p, count);
  return n;
}

std::uint64_t count_plans(const Space& s) {
  std::uint64_t n = 0;
  for (const Plan& it : work_items(s)) n += count_plans(s, it);
  return n;
}

std::vector<Plan> enumerate_plans(const Space& s) {
  std::vector<Plan> out;
  auto collect = [&](const Plan& p) { out.push_back(p); };
  for (const Plan& item : work_items(s)) {
    Plan p = item;
    walk(s, kSplit, kNumAxes, p, collect);
  }
  return out;
}

int compare_plans(const Plan& a, const Plan& b) {
  const long long ka[] = {a.dp, a.tp, a.pp, a.vpp, a.mbs, a.gbs, a.cp, a.ep, static_cast<int>(a.tp_mode), a.tp_depth, a.sp,
                          static_cast<int>(a.cp_algo), static_cast<int>(a.schedule), static_cast<int>(a.recompute), a.zero,
                          static_cast<int>(a.offload), static_cast<int>(a.precision)};
  const long long kb[] = {b.dp, b.tp, b.pp, b.vpp, b.mbs, b.gbs, b.cp, b.ep, static_cast<int>(b.tp_mode), b.tp_depth, b.sp,
                          static_cast<int>(b.cp_algo), static_cast<int>(b.schedule), static_cast<int>(b.recompute), b.zero,
                          static_cast<int>(b.offload), static_cast<int>(b.precision)};
  for (size_t i = 0; i < sizeof ka / sizeof ka[0]; ++i)
    if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
  return 0;
}

std::vector<long long> model_parallel_sizes(const model::ModelSpec& m, const hw::Cluster& c, int max_tp, bool uneven_layers,
                                           bool align_to_nodes) {
  std::set<long long> out;
  const hw::Capabilities& caps = c.sw.caps;  // the stack's parallelisms only
  for (long long t = 1; t <= m.heads; ++t) {
    if (tp_mode_codes(m, t, 0, nullptr, caps.tp_modes) == 0) continue;
    if (align_to_nodes && !node_aligned(c, t)) continue;
    if (max_tp > 0 && t > max_tp) break;
    for (long long cp = 1; cp <= (m.seq >= kCpMinSeq && strategies::allows_context_parallel(caps) ? m.seq : 1); cp *= 2) {
      if (m.seq % cp != 0) break;
      if (align_to_nodes && !node_aligned(c, t * cp)) continue;
      for (long long pp = 1; pp <= (strategies::allows_pipeline_parallel(caps) ? m.layers : 1); ++pp)
        if (m.layers % pp == 0 || (uneven_layers && uneven_split_ok(m.layers, pp))) out.insert(t * cp * pp);
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace scaleplan::search
