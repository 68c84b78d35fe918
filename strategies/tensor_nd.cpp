#include "strategies/tensor_nd.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/errors.hpp"
#include "strategies/layer_cost.hpp"

namespace scaleplan::strategies {

int exact_root(long long n, int k) {
  if (n < 1) return 0;
  const long long r = std::llround(std::pow(static_cast<double>(n), 1.0 / k));
  for (long long c = std::max(1LL, r - 1); c <= r + 1; ++c) {
    long long v = 1;
    for (int i = 0; i < k; ++i) v *= c;
    if (v == n) return static_cast<int>(c);
  }
  return 0;
}

double wire_bytes(const TpColl& c) {
  const double n = c.size;
  if (n <= 1) return 0;
  return (c.kind == hw::Coll::all_reduce ? 2.0 : 1.0) * (n - 1) / n * c.bytes;
}

double linear_wire_bytes(const TpLayout& l, LinearRole role, double a, double w, double y, bool include_depth) {
  TpColl cs[kMaxTpColls];
  const int n = tp_model(l.mode).linear_colls(l, role, a, w, y, cs);
  double v = 0;
  for (int i = 0; i < n; ++i)
    if (include_depth || cs[i].axis != TpAxis::a2 || l.mode != TpMode::d2_5) v += wire_bytes(cs[i]);
  return v;
}

TpGroups make_tp_groups(const hw::Cluster& c, const TpLayout& l) {
  TpGroups g;
  g.all = hw::make_group(c, l.tp, 1);
  if (l.mode == TpMode::d1) {
    g.axis[0] = g.all;
    return g;
  }
  // Axis k has stride q^k inside the TP group (TP innermost in the global rank order).
  g.axis[0] = hw::make_group(c, l.q, 1);
  g.axis[1] = hw::make_group(c, l.q, l.q);
  g.axis[2] = l.mode == TpMode::d3 ? hw::make_group(c, l.q, l.q * l.q) : hw::make_group(c, l.d, l.q * l.q);
  return g;
}

namespace {

const hw::Group& group_of(const TpGroups& g, TpAxis a) {
  switch (a) {
    case TpAxis::a0: return g.axis[0];
    case TpAxis::a1: return g.axis[1];
    case TpAxis::a2: return g.axis[2];
    case TpAxis::all: break;
  }
  return g.all;
}

// ---- layouts ------------------------------------------------------------------------------
TpLayout layout_1d(int tp, int) {
  TpLayout l;
  l.mode = TpMode::d1;
  l.tp = l.q = tp;
  l.head_div = tp;
  l.weight_div = tp;
  l.act_div = tp;
  return l;
}
TpLayout layout_2d(int tp, int) {
  TpLayout l;
  l.mode = TpMode::d2;
  l.tp = tp;
  l.q = std::max(1, exact_root(tp, 2));
  l.axes = 2;
  l.row_div = l.q;
  l.batch_div = l.q;
  l.head_div = l.q;
  l.weight_div = static_cast<double>(l.q) * l.q;
  l.act_div = tp;
  l.gemm_steps = l.q;
  return l;
}
TpLayout layout_2_5d(int tp, int depth) {
  TpLayout l;
  l.mode = TpMode::d2_5;
  l.tp = tp;
  l.d = std::max(1, depth);
  l.q = tp % l.d == 0 ? std::max(1, exact_root(tp / l.d, 2)) : 1;
  l.axes = 3;
  l.row_div = static_cast<double>(l.d) * l.q;
  l.batch_div = l.row_div;
  l.head_div = l.q;
  l.weight_div = static_cast<double>(l.q) * l.q;
  l.act_div = tp;
  l.gemm_steps = l.q;
  return l;
}
TpLayout layout_3d(int tp, int) {
  TpLayout l;
  l.mode = TpMode::d3;
  l.tp = tp;
  l.q = std::max(1, exact_root(tp, 3));
  l.axes = 3;
  l.row_div = l.q;
  l.batch_div = static_cast<double>(l.q) * l.q;
  l.head_div = l.q;
  l.weight_div = static_cast<double>(l.q) * l.q * l.q;
  l.act_div = tp;
  l.gemm_steps = 1;
  return l;
}

// ---- per-linear collectives ------------------------------------------------------------------
// 1d (Megatron, Shoeybi et al. 2019 sec. 3): a column-parallel linear all-reduces its input
// gradient in backward (operator f); a row-parallel linear all-reduces its output in forward
// (operator g). One all-reduce of the full activation per linear: wire 2(P-1)/P M.
int colls_1d(const TpLayout& l, LinearRole role, double a, double, double y, TpColl* out) {
  if (l.tp <= 1) return 0;
  out[0] = role == LinearRole::column ? TpColl{hw::Coll::all_reduce, a, TpAxis::all, TpPhase::bwd, l.tp}
                                      : TpColl{hw::Coll::all_reduce, y, TpAxis::all, TpPhase::fwd, l.tp};
  return 1;
}
// 2d SUMMA (Xu et al. 2021, Optimus, Algorithms 1-3): C = AB broadcasts the A blocks along rows
// and the B blocks along columns, q steps; backward dA = dC B^T broadcasts B and reduces dA,
// dB = A^T dC broadcasts A and reduces dB. q broadcasts of a block over q ranks move the same
// bytes as one all-gather whose output is the q blocks (and q reduces as one reduce-scatter), so
// each becomes one AG/RS here. Activation blocks: A/q^2 per rank, A/q per row; weights W/q per
// column. Six collectives, wire (q-1)/q each: 6(q-1)/q in units of M/q (A = W = M).
int colls_2d(const TpLayout& l, LinearRole, double a, double w, double, TpColl* out) {
  const int q = l.q;
  if (q <= 1) return 0;
  const double ab = a / q, wb = w / q;
  out[0] = {hw::Coll::all_gather, ab, TpAxis::a0, TpPhase::fwd, q};      // broadcast A along the row
  out[1] = {hw::Coll::all_gather, wb, TpAxis::a1, TpPhase::fwd, q};      // broadcast B along the column
  out[2] = {hw::Coll::all_gather, wb, TpAxis::a1, TpPhase::bwd, q};      // dA = dC B^T: broadcast B
  out[3] = {hw::Coll::reduce_scatter, ab, TpAxis::a0, TpPhase::bwd, q};  //   ... reduce dA along the row
  out[4] = {hw::Coll::all_gather, ab, TpAxis::a0, TpPhase::bwd, q};      // dB = A^T dC: broadcast A
  out[5] = {hw::Coll::reduce_scatter, wb, TpAxis::a1, TpPhase::bwd, q};  //   ... reduce dB along the column
  return 6;
}
// 2.5d Tesseract (Wang et al. 2021, sec. 3): A is split into d q x q grids (A/(d q^2) per rank,
// A/(d q) per row), B into one q x q grid replicated over the d layers. The SUMMA pattern runs in
// each layer: three activation collectives of A/(dq) and three weight collectives of B/q, wire
// (q-1)/q each: 3(q-1)(d+1)/(d q) in units of M/q. The weight gradient, replicated over depth, is
// then all-reduced over the d layers (B/q^2 per rank), which the table leaves out.
int colls_2_5d(const TpLayout& l, LinearRole, double a, double w, double, TpColl* out) {
  const int q = l.q, dd = l.d;
  int n = 0;
  if (q > 1) {
    const double ab = a / (static_cast<double>(dd) * q), wb = w / q;
    out[n++] = {hw::Coll::all_gather, ab, TpAxis::a0, TpPhase::fwd, q};
    out[n++] = {hw::Coll::all_gather, wb, TpAxis::a1, TpPhase::fwd, q};
    out[n++] = {hw::Coll::all_gather, wb, TpAxis::a1, TpPhase::bwd, q};
    out[n++] = {hw::Coll::reduce_scatter, ab, TpAxis::a0, TpPhase::bwd, q};
    out[n++] = {hw::Coll::all_gather, ab, TpAxis::a0, TpPhase::bwd, q};
    out[n++] = {hw::Coll::reduce_scatter, wb, TpAxis::a1, TpPhase::bwd, q};
  }
  if (dd > 1) out[n++] = {hw::Coll::all_reduce, w / (static_cast<double>(q) * q), TpAxis::a2, TpPhase::bwd, dd};
  return n;
}
// 3d (Bian et al. 2021, sec. 3, Algorithm 1): A and B each split over the cube (1/q^3 per rank).
// Forward all-gathers A along one axis and B along another (outputs A/q^2, B/q^2), multiplies, and
// reduce-scatters C along the third (input C/q^2); backward all-gathers dC, reduce-scatters dA and
// dB. Six collectives, wire (q-1)/q x M/q^2 each: 6(q-1)/q^3 in units of M.
int colls_3d(const TpLayout& l, LinearRole, double a, double w, double y, TpColl* out) {
  const int q = l.q;
  if (q <= 1) return 0;
  const double q2 = static_cast<double>(q) * q;
  // Placement: the activation-sized collectives (A, Y) on the two inner axes, the weight's on the
  // outermost (stride q^2), the one most likely to cross nodes (as 2d keeps A on its inner row).
  out[0] = {hw::Coll::all_gather, a / q2, TpAxis::a0, TpPhase::fwd, q};
  out[1] = {hw::Coll::all_gather, w / q2, TpAxis::a2, TpPhase::fwd, q};
  out[2] = {hw::Coll::reduce_scatter, y / q2, TpAxis::a1, TpPhase::fwd, q};
  out[3] = {hw::Coll::all_gather, y / q2, TpAxis::a1, TpPhase::bwd, q};
  out[4] = {hw::Coll::reduce_scatter, a / q2, TpAxis::a0, TpPhase::bwd, q};
  out[5] = {hw::Coll::reduce_scatter, w / q2, TpAxis::a2, TpPhase::bwd, q};
  return 6;
}

// ---- checks ----------------------------------------------------------------------------------
std::string s(long long v) { return std::to_string(v); }

void check_1d(const Plan& p, const model::ModelSpec& m) {
  if (p.tp_depth != 1) throw PlanError("tp_depth", "only tp_mode=2.5d has a depth (got tp_depth=" + s(p.tp_depth) + ")");
  if (m.heads % p.tp != 0) throw PlanError("tp", "tp=" + s(p.tp) + " does not divide heads=" + s(m.heads));
  if (m.ffn % p.tp != 0) throw PlanError("tp", "tp=" + s(p.tp) + " does not divide ffn=" + s(m.ffn));
  if (m.kv_heads % p.tp != 0 && p.tp % m.kv_heads != 0)
    throw PlanError("tp", "tp=" + s(p.tp) + " and kv_heads=" + s(m.kv_heads) + ": one must divide the other");
}

// Rules shared by the grid modes: the grid side q splits heads, hidden and ffn; the microbatch is
// split over the token rows (Colossal-AI's Linear2D/2p5D/3D split the batch dimension of the input).
void check_grid(const Plan& p, const model::ModelSpec& m, const TpLayout& l, const char* mode) {
  const std::string md = mode;
  if (m.moe.enabled())
    throw PlanError("tp_mode", md + " tensor parallelism of MoE experts is not modelled (use tp_mode=1d with ep)");
  if (p.sp) throw PlanError("sp", "sp=on is Megatron 1d sequence parallelism; tp_mode=" + md + " already distributes every activation");
  const int q = l.q;
  if (m.heads % q != 0) throw PlanError("tp", "tp_mode=" + md + ": grid side q=" + s(q) + " does not divide heads=" + s(m.heads));
  if (m.hidden % q != 0) throw PlanError("tp", "tp_mode=" + md + ": grid side q=" + s(q) + " does not divide hidden=" + s(m.hidden));
  if (m.ffn % q != 0) throw PlanError("tp", "tp_mode=" + md + ": grid side q=" + s(q) + " does not divide ffn=" + s(m.ffn));
  if (m.kv_heads % q != 0 && q % m.kv_heads != 0)
    throw PlanError("tp", "tp_mode=" + md + ": grid side q=" + s(q) + " and kv_heads=" + s(m.kv_heads) + ": one must divide the other");
  const long long rows = static_cast<long long>(l.batch_div);
  if (p.mbs % rows != 0)
    throw PlanError("mbs", "tp_mode=" + md + " splits the microbatch over " + s(rows) + " ranks: mbs=" + s(p.mbs) + " must be a multiple of " + s(rows));
}

void check_2d(const Plan& p, const model::ModelSpec& m) {
  if (p.tp_depth != 1) throw PlanError("tp_depth", "only tp_mode=2.5d has a depth (got tp_depth=" + s(p.tp_depth) + ")");
  const int q = exact_root(p.tp, 2);
  if (q < 2) throw PlanError("tp", "tp_mode=2d needs tp = q^2 with q >= 2 (4, 9, 16, 25, 36, 64, ...; got tp=" + s(p.tp) + ")");
  check_grid(p, m, layout_2d(p.tp, 1), "2d");
}
void check_2_5d(const Plan& p, const model::ModelSpec& m) {
  const int d = p.tp_depth;
  if (p.tp % d != 0 || exact_root(p.tp / d, 2) < 2)
    throw PlanError("tp_depth", "tp_mode=2.5d needs tp = tp_depth * q^2 with q >= 2 (got tp=" + s(p.tp) + ", tp_depth=" + s(d) + ")");
  check_grid(p, m, layout_2_5d(p.tp, d), "2.5d");
}
void check_3d(const Plan& p, const model::ModelSpec& m) {
  if (p.tp_depth != 1) throw PlanError("tp_depth", "only tp_mode=2.5d has a depth (got tp_depth=" + s(p.tp_depth) + ")");
  const int q = exact_root(p.tp, 3);
  if (q < 2) throw PlanError("tp", "tp_mode=3d needs tp = q^3 with q >= 2 (8, 27, 64, ...; got tp=" + s(p.tp) + ")");
  check_grid(p, m, layout_3d(p.tp, 1), "3d");
}

// ---- layer costs -----------------------------------------------------------------------------
struct Lin {
  double k, n;
  LinearRole role;
};

// Sequence-parallel collectives overlapped with their GEMMs (LayerShape::tp_overlap). Transformer
// Engine's userbuffers (Megatron-Core --tp-comm-overlap, NeMo ub_tp_comm_overlap; TE
// pytorch/module/base.py initialize_ub: "qkv_fprop", "proj_fprop", "fc1_fprop", "fc2_fprop" ... as
// split-pipelined ring exchanges, "qkv_dgrad" / "fc1_dgrad" as bulk overlaps) and torch's async TP
// (torch/distributed/_symmetric_memory: fused all-gather-matmul / matmul-reduce-scatter) split each
// all-gather or reduce-scatter into chunks that run under the GEMM next to it, so each pair exposes
// exposed_under(collective, GEMM) (strategies/layer_cost: the part the GEMM does not cover, plus the
// device's overlap_slowdown of the covered part). Forward: the all-gather before QKV and before FC1,
// the reduce-scatter after proj and after FC2. Backward (the mirror, Korthikanti 2022 sec. 4.2.2):
// the all-gather of the output gradient before the proj and FC2 input-gradient GEMMs, the
// reduce-scatter after the QKV and FC1 input-gradient GEMMs, and the re-gather of the QKV and FC1
// inputs under their weight-gradient GEMMs. Dense layers only: an MoE layer's FFN GEMMs are the
// experts' (strategies/expert), not paired here, so its collectives keep the non-overlapped model.
void overlap_sp_collectives(const hw::Device& d, const GemmCost& qkv, const GemmCost& proj, const GemmCost& fc1,
                            const GemmCost& fc2, double ag, double rs, TpLayerCost& r) {
  r.fwd_comm_s = r.recompute_comm_s = exposed_under(d, ag, qkv.fwd) + exposed_under(d, rs, proj.fwd) +
                                      exposed_under(d, ag, fc1.fwd) + exposed_under(d, rs, fc2.fwd);
  r.bwd_comm_exposed_s = exposed_under(d, ag, proj.dgrad) + exposed_under(d, rs, qkv.dgrad) + exposed_under(d, ag, qkv.wgrad) +
                         exposed_under(d, ag, fc2.dgrad) + exposed_under(d, rs, fc1.dgrad) + exposed_under(d, ag, fc1.wgrad);
}

// Megatron 1d: the code that validated against Korthikanti 2022 Table 4 (moved from layer_cost).
TpLayerCost layer_1d(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const TpLayout&, const TpGroups& g,
                     bool ffn_linears) {
  const hw::Device& d = c.device;
  const hw::Dtype dt = gemm_dtype(sh.precision);
  const double e = bytes_per_element(sh.precision);
  const double t = sh.tp;
  const double T = sh.b * sh.s;
  const double h = m.hidden;
  TpLayerCost r;
  // Q is heads x head_dim wide (q_dim; = h unless the model decouples head_dim, e.g. Qwen3, Gemma 2).
  const double q = static_cast<double>(m.q_dim());
  const GemmCost qkv = linear_gemms(d, T, (q + 2.0 * m.kv_dim()) / t, h, e, dt);
  const GemmCost proj = linear_gemms(d, T, h, q / t, e, dt);
  r.fwd_s = qkv.fwd + proj.fwd;
  r.dgrad_s = qkv.dgrad + proj.dgrad;
  r.wgrad_s = qkv.wgrad + proj.wgrad;
  GemmCost fc1, fc2;
  if (ffn_linears) {
    const double up_cols = static_cast<double>(m.ffn) * (m.gated() ? 2 : 1) / t;
    fc1 = linear_gemms(d, T, up_cols, h, e, dt);
    fc2 = linear_gemms(d, T, h, m.ffn / t, e, dt);
    r.fwd_s += fc1.fwd + fc2.fwd;
    r.dgrad_s += fc1.dgrad + fc2.dgrad;
    r.wgrad_s += fc1.wgrad + fc2.wgrad;
  }
  // 2 all-reduces of T*h in forward and 2 in backward, or with SP 2 all-gathers + 2
  // reduce-scatters each way (same bytes on the wire).
  const double act = e * T * h;
  r.buffer_bytes = act;  // the gathered activation (SP all-gather output / all-reduce buffer)
  if (t > 1) {
    // fp8 with SP: TE gathers fp8 tensors (1 B), the QKV / FC1 inputs (LayerNormLinear writes them in
    // fp8 and gathers `ln_out`, also for the backward re-gather) and the row-parallel output gradients
    // (base.py grad_output_preprocess "FP8 case with gather": cast, gather, transpose), TE v1.8;
    // the reduce-scatters stay 16-bit.
    const double ag_bytes = sh.sp && sh.precision == Precision::fp8 ? act / e : act;
    const double ag = hw::collective_time(c, hw::Coll::all_gather, ag_bytes, g.all);
    const double rs = hw::collective_time(c, hw::Coll::reduce_scatter, act, g.all);
    const double ar = hw::collective_time(c, hw::Coll::all_reduce, act, g.all);
    r.fwd_comm_s = sh.sp ? 2 * (ag + rs) : 2 * ar;
    // Backward: the mirrored collectives; with SP Megatron also re-gathers the two sharded GEMM
    // inputs (QKV and FC1) for the weight gradients (Korthikanti 2022 sec. 4.2.2).
    r.bwd_comm_s = sh.sp ? 2 * (ag + rs) + 2 * ag : 2 * ar;
    r.tp_bytes = sh.sp ? 6 * ag_bytes + 4 * act : 4 * act;
    r.recompute_comm_s = r.fwd_comm_s;
    r.recompute_tp_bytes = sh.sp ? 2 * ag_bytes + 2 * act : 2 * act;
    if (sh.tp_overlap && sh.sp && ffn_linears) overlap_sp_collectives(d, qkv, proj, fc1, fc2, ag, rs, r);
  }
  return r;
}

// The grid modes: every linear runs gemm_steps local GEMMs of (T/row_div) x (N/q) x (K/q) and
// the collectives of linear_colls; the two norms all-reduce their per-token statistics (mean and
// variance, fp32) over the row whose ranks hold the other hidden slices (Colossal-AI LayerNorm2D).
TpLayerCost layer_grid(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const TpLayout& l, const TpGroups& g,
                       bool ffn_linears) {
  const hw::Device& d = c.device;
  const hw::Dtype dt = gemm_dtype(sh.precision);
  const double e = bytes_per_element(sh.precision);
  const double T = sh.b * sh.s;
  const double h = m.hidden;
  const double q = l.q;
  const double up = static_cast<double>(m.ffn) * (m.gated() ? 2 : 1);
  const Lin lins[4] = {{h, h + 2.0 * m.kv_dim(), LinearRole::column}, {h, h, LinearRole::row}, {h, up, LinearRole::column},
                       {static_cast<double>(m.ffn), h, LinearRole::row}};
  const int nlin = ffn_linears ? 4 : 2;
  TpLayerCost r;
  const TpModel& tm = tp_model(l.mode);
  for (int i = 0; i < 4; ++i) {
    const Lin& L = lins[i];
    if (i < nlin) {
      const GemmCost gc = linear_gemms(d, T / l.row_div, L.n / q, L.k / q, e, dt, l.gemm_steps);
      r.fwd_s += gc.fwd;
      r.dgrad_s += gc.dgrad;
      r.wgrad_s += gc.wgrad;
    }
    TpColl cs[kMaxTpColls];
    const int n = tm.linear_colls(l, L.role, e * T * L.k, e * L.k * L.n, e * T * L.n, cs);
    double gathered = 0;
    for (int k = 0; k < n; ++k) {
      const double tm_s = hw::collective_time(c, cs[k].kind, cs[k].bytes, group_of(g, cs[k].axis));
      if (cs[k].phase == TpPhase::fwd) {
        r.fwd_comm_s += tm_s;
        r.recompute_tp_bytes += cs[k].bytes;
        if (cs[k].kind == hw::Coll::all_gather) gathered += cs[k].bytes;
      } else {
        r.bwd_comm_s += tm_s;
      }
      r.tp_bytes += cs[k].bytes;
    }
    r.buffer_bytes = std::max(r.buffer_bytes, gathered);
  }
  // Norm statistics: 2 norms x (forward + backward) all-reduces of 2 fp32 values per local token.
  const double stats = 2 * 4.0 * T / l.row_div;
  const double t_stats = hw::collective_time(c, hw::Coll::all_reduce, stats, g.axis[0]);
  r.fwd_comm_s += 2 * t_stats;
  r.bwd_comm_s += 2 * t_stats;
  r.tp_bytes += 4 * stats;
  r.recompute_tp_bytes += 2 * stats;
  r.recompute_comm_s = r.fwd_comm_s;
  return r;
}

const TpModel kTpModels[] = {
    {TpMode::d1, "1d", check_1d, layout_1d, colls_1d, layer_1d},
    {TpMode::d2, "2d", check_2d, layout_2d, colls_2d, layer_grid},
    {TpMode::d2_5, "2.5d", check_2_5d, layout_2_5d, colls_2_5d, layer_grid},
    {TpMode::d3, "3d", check_3d, layout_3d, colls_3d, layer_grid},
};

}  // namespace

const TpModel& tp_model(TpMode mode) {
  for (const auto& t : kTpModels)
    if (t.mode == mode) return t;
  return kTpModels[0];
}

}  // namespace scaleplan::strategies
