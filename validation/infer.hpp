#pragma once
// Unknown fields of a runs-file row, filled by documented rules, never silently (issue 15 item 3,
// DESIGN.md sec. 6 "assumed"). A null strategy field is filled from the row's FLOP-counting
// convention and from what the row's training stack could do (StackCaps), not from today's best
// choice; every filled field adds one line to `assumed`. Rules: docs/accuracy.md "Inference rules".
#include <optional>
#include <string>
#include <vector>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"

namespace scaleplan {
class YamlMap;
}

namespace scaleplan::validation {

// A row's strategy as published: nullopt = null or absent (not stated by the source).
struct RowStrategy {
  bool present = false;  // false: no strategy block, or every degree (tp, pp, dp, cp) null
  std::optional<long long> tp, pp, dp, cp, vpp, mbs, gbs, zero;
  std::optional<long long> ep;  // expert-parallel degree (null/absent: 1)
  std::optional<strategies::Recompute> recompute;
  std::optional<bool> sp;
  std::optional<std::string> precision;  // fp32 | fp16 | bf16 | fp8 | mixed16
  strategies::CpAlgo cp_algo = strategies::CpAlgo::ring;
  // The model-state layout the run's optimizer config gives (strategies::recipe_named); null: the estimator's.
  std::optional<std::string> optimizer;
};

// What the row's training stack can do: the one place capabilities enter inference. Until a
// software stack (configs/stacks, issue 15 item 1) supplies them, stack_caps_from_row derives them
// from the row's publication date and its cluster's `software:` block.
struct StackCaps {
  bool selective_recompute = true;   // Korthikanti et al. 2022 (arXiv 2205.05198) sec. 5
  bool sequence_parallel = true;     // Korthikanti et al. 2022 (arXiv 2205.05198) sec. 4.2.2
  bool interleaved_schedule = true;  // Narayanan et al. SC21 (arXiv 2104.04473) sec. 2.2.2
  bool flash_attention = true;       // the cluster's software block (hw::Software::flash_attention)
  std::string basis;                 // where these came from, for the row's notes
};

// Publication month of a row as year * 12 + (month - 1); 0 = unknown. From a `date:` value
// ("2022-05", "2022"), else the source text: an arXiv id (YYMM.NNNNN), "SCYY", a NeMo / Megatron
// container "YY.MM", or a four-digit year 2015-2039 (month taken as 12: the latest it can be).
int row_month(const std::string& date, const std::string& source);
std::string month_str(int month);  // "2021-04", "unknown"

// Capabilities of the row's stack from its date and cluster software block. Unknown date: all
// capabilities of a current stack (the cluster's software block still decides flash attention).
StackCaps stack_caps_from_row(int month, const hw::Software& sw);

struct InferredPlan {
  strategies::Plan plan;                // the row's fields, nulls filled
  std::vector<std::string> assumed;     // one line per filled field: "recompute=full (eq3 counting)"
  std::vector<strategies::Recompute> recompute_options;  // tried in order; the first that fits is used
  bool vpp_free = false;                // vpp null: the smallest vpp with bubble <= 10 % (runs.cpp)
  bool search = false;                  // no strategy: the best plan `search` finds under the caps
};

// Fills a row's plan. flops_counting is the row's result.flops_counting string.
InferredPlan infer_plan(const RowStrategy& s, const std::string& flops_counting, const StackCaps& caps,
                        const hw::Cluster& c, long long gpus);

// Whether a plan is one the stack could have run and keeps the fields the row does give
// (search results for rows without a strategy).
bool plan_allowed(const strategies::Plan& p, const StackCaps& caps, const RowStrategy& given);

// The row's model: `vocab: null` takes the named preset's value, else its tokenizer family's
// (name prefix -> family preset); activation relu is costed as gelu (same 2-matrix MLP) and geglu
// as swiglu (same gated 3-matrix MLP, Shazeer 2020 "GLU Variants Improve Transformer"). Each
// substitution adds a line to `assumed`. Throws ConfigError when vocab cannot be inferred.
model::ModelSpec parse_row_model(const YamlMap& m, std::vector<std::string>& assumed);

}  // namespace scaleplan::validation
