// Software stacks (issue 15.1, docs/stacks.md): configs/stacks/*.yaml parse into hw::Software with
// located errors; capabilities keep the search to what a stack runs and make estimate refuse the
// rest; --stack works on the CLI; naming each runs-file row's stack leaves validate's numbers as
// they were with the cluster presets' software blocks.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/errors.hpp"
#include "common/presets.hpp"
#include "hardware/cluster.hpp"
#include "hardware/stack.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "simulator/search/space.hpp"
#include "strategies/stack_caps.hpp"
#include "support/run_cli.hpp"
#include "validation/runs.hpp"

namespace {

using namespace scaleplan;
using strategies::Plan;
using strategies::Recompute;
using strategies::Schedule;

std::string config_error(const std::string& text) {
  try {
    hw::parse_stack(text, "s.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// A valid stack file; tests replace one line to break it.
const std::string kGood = R"(name: test-stack
framework: Test
version: "1"
date: "2021-01"
capabilities:
  tensor_parallel: [1d]
  sequence_parallel: false
  pipeline_schedules: [1f1b]
  recompute: [none, full]
  context_parallel: []
  zero_stages: [0, 1]
  offload: [none]
  precisions: [fp16, bf16]
  expert_parallel: false
  tp_comm_overlap: false
efficiency:
  attention: unfused
  dp_overlap: false
  step_overhead_ms: 2
)";

std::string with(const std::string& from, const std::string& to) {
  std::string s = kGood;
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

TEST(StackParse, GoodFileFillsSoftware) {
  const hw::Software sw = hw::parse_stack(kGood, "s.yaml");
  EXPECT_EQ(sw.stack, "test-stack");
  EXPECT_FALSE(sw.flash_attention);
  EXPECT_FALSE(sw.dp_overlap);
  EXPECT_DOUBLE_EQ(sw.step_overhead_s, 2e-3);
  EXPECT_EQ(sw.caps.tp_modes, 1u);        // 1d only
  EXPECT_EQ(sw.caps.schedules, 2u);       // 1f1b only
  EXPECT_EQ(sw.caps.recompute, 1u | 4u);  // none, full
  EXPECT_EQ(sw.caps.cp_algos, 0u);
  EXPECT_EQ(sw.caps.zero_stages, 3u);     // 0, 1
  EXPECT_EQ(sw.caps.precisions, 2u | 4u);
  EXPECT_FALSE(sw.caps.sequence_parallel);
}

TEST(StackParse, UnknownKeysAreLocatedErrors) {
  const std::string top = config_error(with("framework: Test", "framework: Test\nframwork: x"));
  EXPECT_NE(top.find("s.yaml:3"), std::string::npos) << top;
  EXPECT_NE(top.find("framwork"), std::string::npos) << top;
  const std::string cap = config_error(with("  expert_parallel: false", "  expert_parallel: false\n  flash: true"));
  EXPECT_NE(cap.find("s.yaml:15:3"), std::string::npos) << cap;
  EXPECT_NE(cap.find("flash"), std::string::npos) << cap;
}

TEST(StackParse, BadListValueNamesTheElement) {
  const std::string e = config_error(with("recompute: [none, full]", "recompute: [none, partial]"));
  EXPECT_NE(e.find("s.yaml:9:"), std::string::npos) << e;
  EXPECT_NE(e.find("capabilities.recompute[1]"), std::string::npos) << e;
  EXPECT_NE(e.find("partial"), std::string::npos) << e;
}

TEST(StackParse, MissingAndInconsistentCapabilities) {
  EXPECT_NE(config_error(with("  offload: [none]\n", "")).find("offload"), std::string::npos);
  EXPECT_NE(config_error(with("recompute: [none, full]", "recompute: [full]")).find("must include none"), std::string::npos);
  EXPECT_NE(config_error(with("zero_stages: [0, 1]", "zero_stages: [1]")).find("must include 0"), std::string::npos);
  EXPECT_NE(config_error(with("attention: unfused", "attention: fast")).find("efficiency.attention"), std::string::npos);
  EXPECT_NE(config_error(with("efficiency:\n  attention: unfused\n  dp_overlap: false\n  step_overhead_ms: 2\n", "")).find("efficiency"),
            std::string::npos);
}

TEST(StackParse, SequenceParallelNeedsOneDTensorParallel) {
  std::string s = with("tensor_parallel: [1d]", "tensor_parallel: [2d]");
  s.replace(s.find("sequence_parallel: false"), 24, "sequence_parallel: true");
  EXPECT_NE(config_error(s).find("needs 1d tensor parallelism"), std::string::npos) << config_error(s);
}

TEST(StackPresets, RequiredStacksLoadWithTheirFileName) {
  const std::set<std::string> names = [] {
    auto v = hw::stack_names();
    return std::set<std::string>(v.begin(), v.end());
  }();
  for (const char* n : {"megatron-lm-2020", "megatron-lm-2021", "megatron-core-2024", "nemo-2024", "megatron-deepspeed", "deepspeed-zero",
                        "gpt-neox", "torchtitan-fsdp2", "colossalai-gemini", "unrestricted"})
    EXPECT_TRUE(names.count(n)) << n;
  for (const auto& n : names) EXPECT_EQ(hw::load_stack(n).stack, n);
}

TEST(StackPresets, CapabilitiesFollowTheSources) {
  const hw::Software sc21 = hw::load_stack("megatron-lm-2021");
  EXPECT_FALSE(strategies::allows(sc21.caps, Recompute::selective));  // Korthikanti 2022 introduced it
  EXPECT_FALSE(sc21.caps.sequence_parallel);
  EXPECT_TRUE(strategies::allows(sc21.caps, Schedule::interleaved));  // SC21 sec. 2.2.2
  const hw::Software kor = hw::load_stack("megatron-lm-2022");
  EXPECT_TRUE(strategies::allows(kor.caps, Recompute::selective));
  EXPECT_TRUE(kor.caps.sequence_parallel);
  const hw::Software ds = hw::load_stack("megatron-deepspeed");
  EXPECT_FALSE(strategies::allows_zero(ds.caps, 2));  // PipelineEngine: ZeRO-2/3 incompatible with pipelining
  EXPECT_FALSE(strategies::allows(ds.caps, Schedule::interleaved));
  EXPECT_TRUE(strategies::allows(hw::load_stack("colossalai-gemini").caps, strategies::Offload::gemini));
  EXPECT_TRUE(strategies::allows(hw::load_stack("torchtitan-fsdp2").caps, Schedule::zero_bubble));
  EXPECT_TRUE(strategies::allows(hw::load_stack("nemo-2024").caps, strategies::Precision::fp8));
}

TEST(StackCluster, ClusterNamesItsStackAndOverridesIt) {
  const std::string base = R"(name: c
device: a100-80gb
node: {gpus: 8, intra: {kind: nvswitch, bw_GBps: 300}}
network: {nic_Gbps_per_gpu: 200}
)";
  const hw::Cluster plain = hw::parse_cluster(base, "c.yaml");
  EXPECT_EQ(plain.sw.stack, "unrestricted");
  const hw::Cluster named = hw::parse_cluster(base + "stack: megatron-lm-2021\n", "c.yaml");
  EXPECT_EQ(named.sw.stack, "megatron-lm-2021");
  EXPECT_FALSE(named.sw.flash_attention);
  EXPECT_FALSE(named.sw.dp_overlap);
  // The software block overrides only the keys it gives; the stack's capabilities stay.
  const hw::Cluster over = hw::parse_cluster(base + "stack: megatron-lm-2021\nsoftware: {attention: flash}\n", "c.yaml");
  EXPECT_TRUE(over.sw.flash_attention);
  EXPECT_FALSE(over.sw.dp_overlap);
  EXPECT_FALSE(over.sw.caps.sequence_parallel);
  try {
    hw::parse_cluster(base + "stack: megatron-lm-1999\n", "c.yaml");
    ADD_FAILURE() << "unknown stack accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("c.yaml:5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("megatron-lm-1999"), std::string::npos) << e.what();
  }
}

struct Loaded {
  model::ModelSpec m;
  hw::Cluster c;
  Loaded(const char* model, const char* cluster, const char* stack) : m(model::load_model(model)), c(hw::load_cluster(cluster)) {
    hw::use_stack(c, stack);
  }
};

TEST(StackCapabilities, EstimateRefusesWhatTheStackLacks) {
  Loaded s("gpt3-175b", "selene-a100", "megatron-lm-2021");
  const analytic::Estimator est(s.m, s.c);
  Plan p = strategies::parse_plan("tp=8,pp=8,mbs=1,gbs=512,recompute=selective");
  const auto r = est.evaluate(strategies::resolve_plan(p, s.m, s.c, 1024));
  EXPECT_FALSE(r.feasible);
  EXPECT_NE(r.reason.find("megatron-lm-2021"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("selective recompute"), std::string::npos) << r.reason;
  p.recompute = Recompute::full;
  const auto ok = est.evaluate(strategies::resolve_plan(p, s.m, s.c, 1024));
  EXPECT_TRUE(ok.feasible) << ok.reason;
  // Each capability names itself.
  const hw::Software& sw = s.c.sw;
  Plan q = strategies::resolve_plan(strategies::parse_plan("tp=8,pp=8,mbs=1,gbs=512,recompute=full,sp=on"), s.m, s.c, 1024);
  EXPECT_NE(strategies::stack_refusal(sw, q).find("sequence parallelism"), std::string::npos);
  q = strategies::resolve_plan(strategies::parse_plan("tp=8,pp=8,mbs=1,gbs=512,recompute=full,schedule=zero_bubble"), s.m, s.c, 1024);
  EXPECT_NE(strategies::stack_refusal(sw, q).find("zero_bubble"), std::string::npos);
  q = strategies::resolve_plan(strategies::parse_plan("tp=8,pp=8,mbs=1,gbs=512,recompute=full,zero=1"), s.m, s.c, 1024);
  EXPECT_NE(strategies::stack_refusal(sw, q).find("ZeRO stage 1"), std::string::npos);
  // The same plan on the unrestricted stack costs the same time: capabilities never change a number.
  Loaded u("gpt3-175b", "selene-a100", "unrestricted");
  u.c.sw.flash_attention = s.c.sw.flash_attention;
  u.c.sw.dp_overlap = s.c.sw.dp_overlap;
  const auto same = analytic::Estimator(u.m, u.c).evaluate(strategies::resolve_plan(p, u.m, u.c, 1024));
  EXPECT_DOUBLE_EQ(same.time.step_s, ok.time.step_s);
}

TEST(StackCapabilities, SearchEnumeratesOnlyWhatTheStackRuns) {
  auto scan = [](const char* stack, long long gbs) {
    Loaded s("gpt3-13b", "selene-a100", stack);
    const search::Space sp = search::make_space(s.m, s.c, 64, {gbs});
    struct Seen {
      bool selective = false, sp = false, zb = false, interleaved = false, zero = false, offload = false, grid = false;
      std::size_t n = 0, refused = 0;
    } seen;
    for (const Plan& p : search::enumerate_plans(sp)) {
      ++seen.n;
      seen.selective |= p.recompute == Recompute::selective;
      seen.sp |= p.sp;
      seen.zb |= p.pp > 1 && p.schedule == Schedule::zero_bubble;
      seen.interleaved |= p.pp > 1 && p.schedule == Schedule::interleaved;
      seen.zero |= p.zero > 0;
      seen.offload |= p.offload != strategies::Offload::none;
      seen.grid |= p.tp_mode != strategies::TpMode::d1;
      if (!strategies::stack_refusal(s.c.sw, p).empty()) ++seen.refused;
    }
    return seen;
  };
  const auto sc21 = scan("megatron-lm-2021", 512);
  EXPECT_GT(sc21.n, 0u);
  EXPECT_EQ(sc21.refused, 0u);
  EXPECT_FALSE(sc21.selective || sc21.sp || sc21.zb || sc21.zero || sc21.offload || sc21.grid);
  EXPECT_TRUE(sc21.interleaved);
  const auto all = scan("unrestricted", 512);  // the same space without the restriction has all of them
  EXPECT_TRUE(all.selective && all.sp && all.zb && all.zero && all.offload && all.grid);
  EXPECT_GT(all.n, sc21.n);
  const auto ds = scan("megatron-deepspeed", 512);
  EXPECT_EQ(ds.refused, 0u);
  EXPECT_FALSE(ds.interleaved || ds.zb || ds.selective);
  EXPECT_TRUE(ds.zero);  // ZeRO-1
  const auto pstar = scan("patrickstar", 512);
  EXPECT_EQ(pstar.refused, 0u);
  EXPECT_TRUE(pstar.offload);
}

// Every row names its stack, and what the validator predicts for it is a plan that stack can run
// (the stack's capabilities bound the choices the row leaves open: vpp, recompute, sp; validate's
// inference, validation/infer.cpp).
TEST(StackValidation, RowStacksCanRunTheirPredictedPlans) {
  for (const char* file : {"", "validation/holdout_runs.yaml"}) {
    const std::string path = *file ? std::string(SCALEPLAN_SOURCE_DIR) + "/" + file : "";
    const validation::RunsFile f = validation::load_runs(path);
    for (const auto& r : f.runs) {
      if (!r.refused.empty()) continue;
      EXPECT_NE(r.cluster.sw.stack, "unrestricted") << r.id << ": every row names its stack";
      const auto a = validation::predict_run(r);
      if (!a.supported) continue;
      EXPECT_EQ(strategies::stack_refusal(r.cluster.sw, a.report.plan), "") << r.id << " on " << r.cluster.sw.stack << ": " << a.report.plan.to_string();
    }
  }
}

TEST(StackValidation, RowStackIsParsedAndChecked) {
  const std::string row = R"(runs:
- id: x
  stack: STACK
  model: {name: gpt-1.7b, layers: 24, hidden: 2304, heads: 24, ffn: 9216, vocab: 51200, seq: 2048}
  hardware: {gpus: 32}
  cluster: {preset: selene-a100}
  strategy: {tp: 1, pp: 1, global_batch: 512, recompute: full, sequence_parallel: false, zero_stage: 0}
  result: {tflops_per_gpu: 137, flops_counting: eq3 incl. recompute}
)";
  auto text = [&](const std::string& s) { return std::string(row).replace(row.find("STACK"), 5, s); };
  EXPECT_EQ(validation::parse_runs(text("megatron-lm-2021"), "r.yaml").runs[0].cluster.sw.stack, "megatron-lm-2021");
  // An unknown stack refuses the row (the rest of a file is still validated) and names file:line.
  const auto bad = validation::parse_runs(text("no-such-stack"), "r.yaml");
  ASSERT_EQ(bad.runs.size(), 1u);
  EXPECT_FALSE(bad.runs[0].refused.empty()) << "unknown stack accepted";
  EXPECT_NE(bad.runs[0].refused.find("r.yaml:3"), std::string::npos) << bad.runs[0].refused;
}

// A row's free fields (vpp, recompute null) are chosen within its stack's capabilities.
TEST(StackValidation, FreeFieldsStayWithinTheStack) {
  const std::string row = R"(runs:
- id: x
  stack: STACK
  model: {name: gpt-175b, layers: 96, hidden: 12288, heads: 96, ffn: 49152, vocab: 51200, seq: 2048}
  hardware: {gpus: 1536}
  cluster: {preset: selene-a100}
  strategy: {tp: 8, pp: 12, microbatch: 4, global_batch: 1536, vpp: null, recompute: null, sequence_parallel: true, zero_stage: 0}
  result: {tflops_per_gpu: 141, flops_counting: hardware incl. recompute}
)";
  auto predict = [&](const std::string& stack) {
    const auto f = validation::parse_runs(std::string(row).replace(row.find("STACK"), 5, stack), "r.yaml");
    return validation::predict_run(f.runs[0]).report.plan;
  };
  const Plan kor = predict("megatron-lm-2022");  // interleaving and selective recompute available
  EXPECT_GT(kor.vpp, 1);
  EXPECT_EQ(kor.recompute, Recompute::selective);
  const Plan ds = predict("megatron-deepspeed");  // neither: 1F1B and full recompute (sp is the row's own, refused)
  EXPECT_EQ(ds.vpp, 1);
  EXPECT_NE(ds.recompute, Recompute::selective);
}

using scaleplan::testing::run_cli;
using scaleplan::testing::split_args;

TEST(StackCli, EveryPlanCostingCommandTakesStack) {
  const std::string plan = "--plan tp=8,pp=8,mbs=1,gbs=512,recompute=selective";
  auto r = run_cli(split_args("estimate --model gpt3-175b --cluster selene-a100 --gpus 1024 " + plan + " --json"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  r = run_cli(split_args("estimate --model gpt3-175b --cluster selene-a100 --gpus 1024 " + plan + " --stack megatron-lm-2021 --json"));
  ASSERT_EQ(r.exit_code, 1) << r.describe();
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["feasible"].get<bool>());
  EXPECT_NE(j["reason"].get<std::string>().find("megatron-lm-2021"), std::string::npos) << r.out;
  // A stack file works like a preset name.
  r = run_cli(split_args("estimate --model gpt3-175b --cluster selene-a100 --gpus 1024 " + plan + " --stack " +
                         std::string(SCALEPLAN_SOURCE_DIR) + "/configs/stacks/megatron-lm-2022.yaml --json"));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  // An unknown stack is a usage error naming the known ones.
  r = run_cli(split_args("estimate --model gpt3-175b --cluster selene-a100 --gpus 1024 " + plan + " --stack nope"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("megatron-lm-2021"), std::string::npos) << r.err;
  // search: the best plan on a 2021 stack uses none of the 2022 techniques.
  r = run_cli(split_args("search --model gpt3-13b --cluster selene-a100 --gpus 64 --gbs 512 --top 50 --stack megatron-lm-2021 --json"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out.find("\"recompute\": \"selective\""), std::string::npos);
  EXPECT_EQ(r.out.find("\"sp\": \"on\""), std::string::npos);
  // ... while without --stack (selene-a100's default, unrestricted) selective recompute or sp is among the plans.
  const auto any = run_cli(split_args("search --model gpt3-13b --cluster selene-a100 --gpus 64 --gbs 512 --top 50 --json"));
  ASSERT_EQ(any.exit_code, 0) << any.describe();
  EXPECT_TRUE(any.out.find("\"recompute\": \"selective\"") != std::string::npos || any.out.find("\"sp\": \"on\"") != std::string::npos);
  for (const char* cmd : {"scale --model gpt3-13b --cluster selene-a100 --gpus 64,128 --gbs 512 --stack megatron-lm-2021 --json",
                          "budget --model gpt3-13b --cluster selene-a100 --gpus 64 --tokens 1e9 --stack megatron-lm-2021 --json",
                          "capacity --cluster selene-a100 --gpus 8 --stack deepspeed-zero --json",
                          "validate --stack megatron-lm-2022 --json"}) {
    r = run_cli(split_args(cmd));
    EXPECT_LE(r.exit_code, 1) << cmd << "\n" << r.describe();
    EXPECT_EQ(r.err.find("error"), std::string::npos) << cmd << "\n" << r.err;
  }
  r = run_cli(split_args("scale --model gpt3-13b --cluster selene-a100 --gpus 64 --gbs 512 --stack nope --json"));
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
