#pragma once
// Per-GPU cost of one transformer layer, the embedding and the LM head for one microbatch: the op
// list of Calculon's style (an op = FLOPs and bytes per phase), timed with the device's
// efficiency model, plus the tensor/context-parallel collectives the layer adds.
#include "hardware/cluster.hpp"
#include "hardware/collectives.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::strategies {

struct LayerShape {
  double b = 1;       // microbatch
  double s = 1;       // local tokens per sequence (seq / cp)
  double s_kv = 1;    // keys per query (seq)
  int tp = 1;
  int cp = 1;
  bool sp = false;
  bool flash = false;
  Recompute recompute = Recompute::none;
  Precision precision = Precision::bf16;
};

struct PhaseCost {
  double fwd_s = 0;          // forward compute (GEMMs + attention + element-wise)
  double bwd_s = 0;          // backward compute (activation grad + weight grad)
  double wgrad_s = 0;        // the weight-gradient part of bwd_s (hides TP backward collectives)
  double recompute_s = 0;    // extra forward compute redone in backward (full or selective)
  double fwd_comm_s = 0;     // TP/CP collectives on the forward critical path
  double bwd_comm_s = 0;     // TP/CP collectives issued in backward (may hide under wgrad)
  double bwd_comm_exposed_s = 0;  // what of bwd_comm_s the weight-gradient GEMMs do not hide
  double recompute_comm_s = 0;
  double model_flops = 0;    // forward + backward FLOPs (model convention)
  double recompute_flops = 0;
  double tp_bytes = 0;       // contract payload per microbatch (fwd + bwd + recompute)
  double cp_bytes = 0;
};

// One transformer layer.
PhaseCost layer_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const hw::Group& tp_group,
                     const hw::Group& cp_group);
// Token + position embedding (first stage) and final norm + LM head + cross-entropy (last stage).
PhaseCost embedding_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const hw::Group& tp_group);
PhaseCost head_cost(const model::ModelSpec& m, const hw::Cluster& c, const LayerShape& sh, const hw::Group& tp_group);

// Time a collective of comm_s adds when overlapped with compute_s of independent work: the part
// that does not fit under the compute, plus the slowdown overlapped NCCL kernels cause by taking
// SMs and HBM bandwidth from the compute (device efficiency `overlap_slowdown`).
double exposed_under(const hw::Device& d, double comm_s, double compute_s);

// Model FLOPs of one layer's forward per sequence of `s` tokens (all GPUs together), used to check
// Korthikanti's eq. (7): 24 s h^2 + 4 s^2 h for GPT.
double layer_forward_flops(const model::ModelSpec& m, double s);

}  // namespace scaleplan::strategies
