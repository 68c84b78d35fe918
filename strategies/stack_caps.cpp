#include "strategies/stack_caps.hpp"

namespace scaleplan::strategies {

// hardware/stack.cpp lists the capability names in these enum orders.
static_assert(static_cast<int>(TpMode::d1) == 0 && static_cast<int>(TpMode::d3) == 3);
static_assert(static_cast<int>(Schedule::gpipe) == 0 && static_cast<int>(Schedule::one_f_one_b) == 1 &&
              static_cast<int>(Schedule::interleaved) == 2 && static_cast<int>(Schedule::zero_bubble) == 3);
static_assert(static_cast<int>(Recompute::none) == 0 && static_cast<int>(Recompute::selective) == 1 &&
              static_cast<int>(Recompute::full) == 2);
static_assert(static_cast<int>(CpAlgo::ring) == 0 && static_cast<int>(CpAlgo::ulysses) == 1 &&
              static_cast<int>(CpAlgo::ring_self_attn) == 2 && static_cast<int>(CpAlgo::allgather) == 3);
static_assert(static_cast<int>(Offload::none) == 0 && static_cast<int>(Offload::optimizer) == 1 &&
              static_cast<int>(Offload::params) == 2 && static_cast<int>(Offload::nvme) == 3 && static_cast<int>(Offload::gemini) == 4);
static_assert(static_cast<int>(Precision::fp32) == 0 && static_cast<int>(Precision::fp16) == 1 &&
              static_cast<int>(Precision::bf16) == 2 && static_cast<int>(Precision::fp8) == 3);

std::string stack_refusal(const hw::Software& sw, const Plan& p) {
  const hw::Capabilities& c = sw.caps;
  const auto no = [&](const std::string& what) { return "stack '" + sw.stack + "' has no " + what; };
  if (p.tp > 1 && !allows_tensor_parallel(c)) return no("tensor parallelism (tp=" + std::to_string(p.tp) + ")");
  if (p.tp > 1 && !allows(c, p.tp_mode)) return no(std::string("tensor-parallel mode ") + name(p.tp_mode));
  if (p.sp && p.tp > 1 && !c.sequence_parallel) return no("sequence parallelism (sp=on)");
  if (p.pp > 1 && !allows_pipeline_parallel(c)) return no("pipeline parallelism (pp=" + std::to_string(p.pp) + ")");
  if (p.pp > 1 && !allows(c, p.schedule)) return no(std::string("pipeline schedule ") + name(p.schedule));
  if (p.cp > 1 && !allows_context_parallel(c)) return no("context parallelism (cp=" + std::to_string(p.cp) + ")");
  if (p.cp > 1 && !allows(c, p.cp_algo)) return no(std::string("context-parallel algorithm ") + name(p.cp_algo));
  if (p.ep > 1 && !c.expert_parallel) return no("expert parallelism (ep=" + std::to_string(p.ep) + ")");
  if (!allows(c, p.recompute)) return no(std::string(name(p.recompute)) + " recompute");
  if (!allows_zero(c, p.zero)) return no("ZeRO stage " + std::to_string(p.zero));
  if (!allows(c, p.offload)) return no(std::string("offload=") + name(p.offload));
  if (!allows(c, p.precision)) return no(std::string(name(p.precision)) + " precision");
  return {};
}

}  // namespace scaleplan::strategies
