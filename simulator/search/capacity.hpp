#pragma once
// `scaleplan capacity` (issue 6): the largest GPT-shaped model each memory strategy trains on a
// cluster, and its throughput. Binary search over the model size of one shape family:
//   hidden = 128 k, heads = k (head dim 128), layers = k, ffn = 4 hidden, vocab 50257 (GPT-2 BPE),
//   learned positions, tied embeddings, biases, GELU, LayerNorm -- GPT-3's family from 6.7B up
//   (Brown et al. 2020 Table 2.1: 6.7B is 32 x 4096, 13B 40 x 5120, 175B 96 x 12288, all d_head 128
//   and d_model / n_layers = 128). k is searched first (doubling, then bisection); then, at that
//   hidden size, layers grow (bisection over (k, 2k] in steps of pp) while the model fits: a finer
//   answer than a whole k step (~3/k of the size), and one that a step in the chunk waste at k+1 does
//   not cut short.
#include <string>
#include <vector>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/plan.hpp"
#include "strategies/step_report.hpp"

namespace scaleplan::search {

struct CapacityStrategy {
  const char* name;  // the contract's strategy names
  int zero;
  strategies::Offload offload;
};
// ddp, zero1, zero2, zero3, zero_offload (zero=2, optimizer), zero3_offload (zero=3, params),
// zero_infinity (zero=3, nvme), chunked (zero=3, gemini).
const std::vector<CapacityStrategy>& capacity_strategies();

// The family member (k, layers) at sequence length seq.
model::ModelSpec gpt_family(long long k, long long layers, long long seq);

// The estimator options of the capacity runs: the defaults, plus the ZeRO paper baseline's
// flattened fp32 gradient buffer for plain data parallel (dp_fused_grad_buffer_bytes = 4; ZeRO
// paper sec. 3.2), the baseline its "data parallel runs out of memory at 1.4B" was measured on.
analytic::EstimatorOptions default_capacity_options();

struct CapacitySpec {
  long long gpus = 0;
  // The rest of the plan (tp, pp, mbs, recompute, ...): zero and offload come from the strategy.
  // Default: mbs=1, recompute=full, no model parallelism (the largest model that trains).
  strategies::Plan base;
  long long seq = 1024;
  long long max_k = 2048;  // search bound on k (hidden 262,144)
  // The estimator's accounting (default_capacity_options()).
  analytic::EstimatorOptions options = default_capacity_options();
};
strategies::Plan default_capacity_plan();

struct CapacityEntry {
  std::string strategy;
  bool available = true;  // false: the plan rules refuse the strategy here (reason says why)
  std::string reason;
  double max_params = 0;  // 0: not even the smallest member fits
  long long layers = 0, hidden = 0, heads = 0;
  double tokens_per_s = 0;
  strategies::StepReport report;  // the largest fitting model's report
  std::string binding;            // what refuses the next size: "gpu", "host", "nvme"
  std::string binding_reason;     // its report's reason
};
// Throws UsageError for gpus <= 0; PlanError for a base plan that cannot hold any family member.
std::vector<CapacityEntry> run_capacity(const hw::Cluster& c, const CapacitySpec& s);
// One strategy (tests).
CapacityEntry capacity_of(const hw::Cluster& c, const CapacitySpec& s, const CapacityStrategy& st);

}  // namespace scaleplan::search
