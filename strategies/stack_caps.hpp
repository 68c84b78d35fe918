#pragma once
// What a software stack can run (hw::Capabilities, configs/stacks/*.yaml), asked in the plan's
// terms. The search's axes (simulator/search/space.cpp) enumerate only what these allow; the
// estimator marks any other plan infeasible with stack_refusal's reason. Arithmetic only.
#include <string>

#include "hardware/cluster.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::strategies {

inline bool has_bit(unsigned mask, int i) { return ((mask >> i) & 1u) != 0; }

inline bool allows(const hw::Capabilities& c, TpMode v) { return has_bit(c.tp_modes, static_cast<int>(v)); }
inline bool allows(const hw::Capabilities& c, Schedule v) { return has_bit(c.schedules, static_cast<int>(v)); }
inline bool allows(const hw::Capabilities& c, Recompute v) { return has_bit(c.recompute, static_cast<int>(v)); }
inline bool allows(const hw::Capabilities& c, CpAlgo v) { return has_bit(c.cp_algos, static_cast<int>(v)); }
inline bool allows(const hw::Capabilities& c, Offload v) { return has_bit(c.offloads, static_cast<int>(v)); }
inline bool allows(const hw::Capabilities& c, Precision v) { return has_bit(c.precisions, static_cast<int>(v)); }
inline bool allows_zero(const hw::Capabilities& c, int stage) { return stage >= 0 && stage < 32 && has_bit(c.zero_stages, stage); }
inline bool allows_tensor_parallel(const hw::Capabilities& c) { return c.tp_modes != 0; }
inline bool allows_pipeline_parallel(const hw::Capabilities& c) { return c.schedules != 0; }
inline bool allows_context_parallel(const hw::Capabilities& c) { return c.cp_algos != 0; }

// The first thing `p` needs that the stack lacks, as "stack 'NAME' has no CAPABILITY (what)";
// empty when the stack can run `p`. Plan fields that do not apply (sp with tp = 1, the schedule
// with pp = 1, cp_algo with cp = 1) are not asked.
std::string stack_refusal(const hw::Software& sw, const Plan& p);

}  // namespace scaleplan::strategies
