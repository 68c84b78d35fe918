#pragma once
// Tensor parallelism, one registry entry per mode (DESIGN.md sec. 2 "one component per dimension"):
//  1d   Megatron-LM column/row-parallel linears (Shoeybi et al. 2019; Korthikanti et al. 2022 for SP)
//  2d   SUMMA on a q x q grid, P = q^2 (Optimus, Xu et al. 2021)
//  2.5d Tesseract, d layers of q x q grids, P = d q^2 (Wang et al. 2021)
//  3d   q x q x q cube, P = q^3 (Bian et al. 2021, "Maximizing parallelism ... 3D tensor parallelism")
// Each entry answers: the layout (how tokens, hidden and weights are split), the local GEMM shapes
// (compute scaling), the collectives of one linear layer (kind, payload bytes, group axis, phase),
// and what that means for one transformer layer (time, contract bytes, transient buffers).
#include "hardware/cluster.hpp"
#include "hardware/collectives.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::strategies {

struct LayerShape;

// How a TP group of `tp` ranks is arranged. Axis 0 is innermost (consecutive ranks).
struct TpLayout {
  TpMode mode = TpMode::d1;
  int tp = 1;     // P: ranks in the TP group
  int q = 1;      // grid side (1d: q = P)
  int d = 1;      // 2.5d depth
  int axes = 1;   // 1d: 1 (the whole group); 2d: row, col; 2.5d: row, col, depth; 3d: three axes
  double row_div = 1;     // tokens of a GEMM divided by (1d: 1; 2d: q; 2.5d: d q; 3d: q)
  double batch_div = 1;   // microbatch split (attention core, stored activations): 1d 1; 2d q; 2.5d d q; 3d q^2
  double head_div = 1;    // attention heads split: 1d P; 2d/2.5d/3d q
  double weight_div = 1;  // weights a rank holds = W / weight_div: 1d P; 2d q^2; 2.5d q^2 (replicated over d); 3d q^3
  double act_div = 1;     // stored activations divided by (1d: P inside the TP region only; nd: P everywhere)
  double gemm_steps = 1;  // local GEMMs per linear (SUMMA: q steps of (m/q)x(n/q)x(k/q)... ; 3d: 1)
};

// Which group axis a collective runs on (strides 1, q, q^2 inside the TP group).
enum class TpAxis { all = 0, a0, a1, a2 };
enum class TpPhase { fwd, bwd };

// One collective of one linear layer: `count` calls of `kind`, each handing `bytes` per GPU to the
// call (DESIGN.md comm_bytes_per_gpu contract: AR buffer, RS input, AG output).
struct TpColl {
  hw::Coll kind = hw::Coll::all_reduce;
  double bytes = 0;
  TpAxis axis = TpAxis::all;
  TpPhase phase = TpPhase::fwd;
  int size = 1;  // ranks in the group
};

// Which Megatron role the linear plays (1d only: column-parallel linears communicate in backward,
// row-parallel linears in forward; the nd modes treat every linear alike).
enum class LinearRole { column, row };

inline constexpr int kMaxTpColls = 8;

// The groups of the TP axes for a layout, TP innermost in the global rank order.
struct TpGroups {
  hw::Group all, axis[3];
};
TpGroups make_tp_groups(const hw::Cluster& c, const TpLayout& l);

// Time and contract bytes of the linears and TP collectives of one transformer layer.
struct TpLayerCost {
  double fwd_s = 0, dgrad_s = 0, wgrad_s = 0;  // GEMM time of the four linears (dense FFN; MoE FFN excluded)
  double fwd_comm_s = 0, bwd_comm_s = 0;       // TP collectives (bwd may hide under wgrad)
  double recompute_comm_s = 0;                 // forward collectives again under full recompute
  // LayerShape::tp_overlap: what of bwd_comm_s its paired GEMMs do not hide (< 0: not computed, the
  // layer exposes bwd_comm_s under the weight gradients as without overlap).
  double bwd_comm_exposed_s = -1;
  double tp_bytes = 0, recompute_tp_bytes = 0; // contract payload per microbatch
  double buffer_bytes = 0;                     // transient gather buffers (workspace)
};

struct TpModel {
  TpMode mode;
  const char* name;
  // Throws PlanError (naming the key) when tp / tp_depth / mbs / the model do not fit the mode.
  void (*check)(const Plan& p, const model::ModelSpec& m);
  TpLayout (*layout)(int tp, int depth);
  // The collectives of one linear y = x W with x: `a_bytes`, W: `w_bytes`, y: `y_bytes` (full
  // tensors, all ranks together). Writes at most kMaxTpColls entries, returns the count.
  int (*linear_colls)(const TpLayout& l, LinearRole role, double a_bytes, double w_bytes, double y_bytes, TpColl* out);
  // The four linears of a layer (QKV, projection, FC1, FC2) with their collectives; `ffn_linears`
  // false for MoE layers (the experts are costed by strategies/expert).
  TpLayerCost (*layer)(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const TpLayout& l,
                       const TpGroups& g, bool ffn_linears);
};

// Registry lookup.
const TpModel& tp_model(TpMode mode);
inline TpLayout tp_layout(TpMode mode, int tp, int depth) { return tp_model(mode).layout(tp, depth); }

// Wire bytes one rank sends for a collective under the ring/alpha-beta model (FORMULAS.md):
// all-reduce 2(n-1)/n B, reduce-scatter / all-gather / all-to-all (n-1)/n B.
double wire_bytes(const TpColl& c);
// Sum of wire_bytes over the collectives of one linear (the complexity-table quantity).
double linear_wire_bytes(const TpLayout& l, LinearRole role, double a_bytes, double w_bytes, double y_bytes,
                         bool include_depth = true);

// Integer root helpers (exact): q with q^k == n, or 0.
int exact_root(long long n, int k);

}  // namespace scaleplan::strategies
