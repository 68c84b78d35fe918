// ZeRO-1/2 parameter all-gather overlapped with the next step's first forward
// (hw::Software::dp_param_gather_overlap; Megatron-Core --overlap-param-gather): only the gradient
// reduce-scatters wait on the backward window, the gather hides under the forward.
#include <gtest/gtest.h>

#include "hardware/stack.hpp"
#include "simulator/analytic/estimator.hpp"

namespace {

using namespace scaleplan;

TEST(DpParamGather, ShippedOnTheMegatronCoreStacksOnly) {
  EXPECT_TRUE(hw::load_stack("megatron-core-2024").dp_param_gather_overlap);
  EXPECT_TRUE(hw::load_stack("megatron-core-2025").dp_param_gather_overlap);
  for (const char* n : {"megatron-lm-2022", "nemo-2024", "deepspeed-zero", "llama3-meta", "unrestricted"})
    EXPECT_FALSE(hw::load_stack(n).dp_param_gather_overlap) << n;
}

// GPT-3 175B, tp 8 (SP), dp 16 over 16 DGX H100 nodes, ZeRO-1, 4 microbatches of one sequence: the
// reduce-scatter and the all-gather outlast the last microbatch's backward; with the flag the next
// forward takes part of the gather out of that window.
TEST(DpParamGather, TheNextForwardTakesPartOfTheGather) {
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw = hw::load_stack("megatron-core-2024");
  const model::ModelSpec m = model::load_model("gpt3-175b");
  const strategies::Plan p =
      strategies::resolve_plan(strategies::parse_plan("tp=8,pp=1,sp=on,mbs=1,gbs=64,zero=1,recompute=full"), m, c, 128);
  auto exposed = [&](bool overlap, bool dp_overlap = true) {
    hw::Cluster cl = c;
    cl.sw.dp_param_gather_overlap = overlap;
    cl.sw.dp_overlap = dp_overlap;
    return analytic::Estimator(m, cl).evaluate(p).time.comm_exposed_s;  // TP (the same both ways) + DP
  };
  EXPECT_LT(exposed(true), exposed(false) - 0.1);  // measured 1.70 s against 1.91 s
  EXPECT_GT(exposed(false, false), exposed(false));  // no DP overlap at all: more still
}

// The flag never makes a plan slower: the gather's part the forward does not cover joins the
// reduce-scatters' window as without it.
TEST(DpParamGather, NeverWorseThanWithoutIt) {
  hw::Cluster c = hw::load_cluster("dgx-h100");
  c.sw = hw::load_stack("megatron-core-2024");
  for (const char* model : {"llama2-7b", "llama3-70b", "gpt3-175b"})
    for (const char* plan : {"tp=1,pp=1,mbs=1,gbs=256,zero=1", "tp=8,pp=1,sp=on,mbs=1,gbs=16,zero=1,recompute=full",
                             "tp=8,pp=1,sp=on,mbs=2,gbs=256,zero=2,recompute=full", "tp=4,pp=4,sp=on,mbs=1,gbs=128,zero=1,recompute=full"}) {
      const model::ModelSpec m = model::load_model(model);
      const strategies::Plan p = strategies::resolve_plan(strategies::parse_plan(plan), m, c, 128);
      hw::Cluster on = c, off = c;
      on.sw.dp_param_gather_overlap = true;
      off.sw.dp_param_gather_overlap = false;
      EXPECT_LE(analytic::Estimator(m, on).evaluate(p).time.step_s, analytic::Estimator(m, off).evaluate(p).time.step_s + 1e-12)
          << model << " " << plan;
    }
}

}  // namespace
