// strategies/plan.hpp: plan strings (DESIGN.md sec. 3 "P"), defaults and validation errors that name the key.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "common/errors.hpp"
#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"

namespace {

using namespace scaleplan;
using namespace scaleplan::strategies;

// Runs fn, expecting a PlanError whose key() is `key` and whose message contains `rule`.
void expect_plan_error(const std::function<void()>& fn, const std::string& key, const std::string& rule = "") {
  try {
    fn();
    ADD_FAILURE() << "expected PlanError for key '" << key << "'";
  } catch (const PlanError& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_NE(std::string(e.what()).find("plan key '" + key + "'"), std::string::npos) << e.what();
    if (!rule.empty()) {
      EXPECT_NE(std::string(e.what()).find(rule), std::string::npos) << e.what();
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected PlanError for key '" << key << "', got another exception: " << e.what();
  }
}

class PlanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    gpt3_ = new model::ModelSpec(model::load_model("gpt3-175b"));
    selene_ = new hw::Cluster(hw::load_cluster("selene-a100"));
    v100_ = new hw::Cluster(hw::load_cluster("dgx1-v100"));
    h100_ = new hw::Cluster(hw::load_cluster("dgx-h100"));
  }
  static void TearDownTestSuite() {
    delete gpt3_;
    delete selene_;
    delete v100_;
    delete h100_;
  }
  static Plan resolve(const std::string& s, long long gpus, const hw::Cluster* c = nullptr) {
    return resolve_plan(parse_plan(s), *gpt3_, c ? *c : *selene_, gpus);
  }
  static model::ModelSpec* gpt3_;
  static hw::Cluster *selene_, *v100_, *h100_;
};
model::ModelSpec* PlanTest::gpt3_ = nullptr;
hw::Cluster* PlanTest::selene_ = nullptr;
hw::Cluster* PlanTest::v100_ = nullptr;
hw::Cluster* PlanTest::h100_ = nullptr;

// ---------------------------------------------------------------- parsing
TEST(ParsePlan, EveryIntegerKey) {
  const Plan p = parse_plan("dp=2,tp=4,pp=8,vpp=3,mbs=5,gbs=1536,cp=2,ep=4,tp_depth=2,zero=3");
  EXPECT_EQ(p.dp, 2);
  EXPECT_EQ(p.tp, 4);
  EXPECT_EQ(p.pp, 8);
  EXPECT_EQ(p.vpp, 3);
  EXPECT_EQ(p.mbs, 5);
  EXPECT_EQ(p.gbs, 1536);
  EXPECT_EQ(p.cp, 2);
  EXPECT_EQ(p.ep, 4);
  EXPECT_EQ(p.tp_depth, 2);
  EXPECT_EQ(p.zero, 3);
  EXPECT_EQ(p.gpus(), 2 * 4 * 8 * 2);
}

TEST(ParsePlan, EveryEnumKey) {
  EXPECT_EQ(parse_plan("tp_mode=1d").tp_mode, TpMode::d1);
  EXPECT_EQ(parse_plan("tp_mode=2d").tp_mode, TpMode::d2);
  EXPECT_EQ(parse_plan("tp_mode=2.5d").tp_mode, TpMode::d2_5);
  EXPECT_EQ(parse_plan("tp_mode=3d").tp_mode, TpMode::d3);
  EXPECT_TRUE(parse_plan("sp=on").sp);
  EXPECT_FALSE(parse_plan("sp=off").sp);
  EXPECT_EQ(parse_plan("cp_algo=ring").cp_algo, CpAlgo::ring);
  EXPECT_EQ(parse_plan("cp_algo=ulysses").cp_algo, CpAlgo::ulysses);
  EXPECT_EQ(parse_plan("cp_algo=ring_self_attn").cp_algo, CpAlgo::ring_self_attn);
  EXPECT_EQ(parse_plan("schedule=gpipe").schedule, Schedule::gpipe);
  EXPECT_EQ(parse_plan("schedule=1f1b").schedule, Schedule::one_f_one_b);
  EXPECT_EQ(parse_plan("schedule=interleaved").schedule, Schedule::interleaved);
  EXPECT_EQ(parse_plan("schedule=zero_bubble").schedule, Schedule::zero_bubble);
  EXPECT_TRUE(parse_plan("schedule=gpipe").schedule_set);
  EXPECT_EQ(parse_plan("recompute=none").recompute, Recompute::none);
  EXPECT_EQ(parse_plan("recompute=selective").recompute, Recompute::selective);
  EXPECT_EQ(parse_plan("recompute=full").recompute, Recompute::full);
  EXPECT_EQ(parse_plan("offload=none").offload, Offload::none);
  EXPECT_EQ(parse_plan("offload=optimizer").offload, Offload::optimizer);
  EXPECT_EQ(parse_plan("offload=params").offload, Offload::params);
  EXPECT_EQ(parse_plan("offload=nvme").offload, Offload::nvme);
  EXPECT_EQ(parse_plan("offload=gemini").offload, Offload::gemini);
  EXPECT_EQ(parse_plan("precision=fp32").precision, Precision::fp32);
  EXPECT_EQ(parse_plan("precision=fp16").precision, Precision::fp16);
  EXPECT_EQ(parse_plan("precision=bf16").precision, Precision::bf16);
  EXPECT_EQ(parse_plan("precision=fp8").precision, Precision::fp8);
  EXPECT_TRUE(parse_plan("precision=fp8").precision_set);
}

TEST(ParsePlan, DefaultsOfAnEmptyPlan) {
  const Plan p = parse_plan("");
  EXPECT_EQ(p.dp, 0);  // derived from --gpus
  EXPECT_EQ(p.tp, 1);
  EXPECT_EQ(p.pp, 1);
  EXPECT_EQ(p.vpp, 1);
  EXPECT_EQ(p.mbs, 1);
  EXPECT_EQ(p.gbs, 0);  // default filled by resolve_plan
  EXPECT_EQ(p.cp, 1);
  EXPECT_EQ(p.ep, 1);
  EXPECT_EQ(p.tp_mode, TpMode::d1);
  EXPECT_FALSE(p.sp);
  EXPECT_EQ(p.schedule, Schedule::one_f_one_b);
  EXPECT_FALSE(p.schedule_set);
  EXPECT_EQ(p.recompute, Recompute::none);
  EXPECT_EQ(p.zero, 0);
  EXPECT_EQ(p.offload, Offload::none);
  EXPECT_FALSE(p.precision_set);
}

TEST(ParsePlan, ToleratesBlanks) {
  const Plan p = parse_plan(" tp=8 , pp=16, mbs=1 ");
  EXPECT_EQ(p.tp, 8);
  EXPECT_EQ(p.pp, 16);
  EXPECT_EQ(p.mbs, 1);
}

// Issue 17: an empty item is a typo ("tp=8,,pp=1"), refused, naming the key before it.
TEST(ParsePlan, RefusesEmptyItems) {
  expect_plan_error([] { parse_plan(" tp=8 , pp=16,, mbs=1 "); }, "pp", "empty plan item");
  expect_plan_error([] { parse_plan("tp=8,"); }, "tp", "empty plan item");
  expect_plan_error([] { parse_plan(",tp=8"); }, "(first item)", "empty plan item");
  EXPECT_EQ(parse_plan("  ").tp, 1);  // blanks only: all defaults, as ""
}

// Issue 17: integers are range-checked as 64-bit against the documented ranges (common/limits.hpp)
// before they are stored as int: 2^32 used to pass ">= 1" and wrap to 0 (a division by zero).
TEST(ParsePlan, IntegersOutsideTheirRangeNameTheRange) {
  expect_plan_error([] { parse_plan("mbs=4294967296"); }, "mbs", "must be in [1, 16777216] (got 4294967296)");
  expect_plan_error([] { parse_plan("tp=9223372036854775807"); }, "tp", "must be in [1, 16777216]");
  expect_plan_error([] { parse_plan("tp=9223372036854775808"); }, "tp", "beyond 64-bit");
  expect_plan_error([] { parse_plan("vpp=65537"); }, "vpp", "must be in [1, 65536]");
  expect_plan_error([] { parse_plan("gbs=1099511627777"); }, "gbs", "must be in [1, 1099511627776]");
  const Plan p = parse_plan("dp=16777216,mbs=16777216,vpp=65536,gbs=1099511627776");  // the limits themselves pass
  EXPECT_EQ(p.dp, 16777216);
  EXPECT_EQ(p.vpp, 65536);
  EXPECT_EQ(p.gbs, 1099511627776LL);
}

TEST(ParsePlan, RoundTripsThroughToString) {
  const Plan p = parse_plan("dp=8,tp=8,pp=16,vpp=2,mbs=1,gbs=1536,sp=on,schedule=interleaved,recompute=selective,zero=1,precision=bf16");
  const Plan q = parse_plan(p.to_string());
  EXPECT_EQ(q.to_string(), p.to_string());
  EXPECT_EQ(q.dp, 8);
  EXPECT_EQ(q.vpp, 2);
  EXPECT_TRUE(q.sp);
  EXPECT_EQ(q.recompute, Recompute::selective);
}

TEST(ParsePlan, PlanPresetFile) {
  const Plan p = load_plan("megatron-gpt3-175b");
  EXPECT_EQ(p.tp, 8);
  EXPECT_EQ(p.pp, 16);
  EXPECT_EQ(p.mbs, 1);
  EXPECT_EQ(p.gbs, 1536);
  EXPECT_EQ(p.recompute, Recompute::full);
  EXPECT_FALSE(p.sp);
  EXPECT_EQ(p.dp, 0);
}

TEST(ParsePlanErrors, UnknownKey) { expect_plan_error([] { parse_plan("tp=8,tpp=2"); }, "tpp", "unknown key"); }
TEST(ParsePlanErrors, NonInteger) {
  expect_plan_error([] { parse_plan("tp=eight"); }, "tp", "must be an integer");
  expect_plan_error([] { parse_plan("gbs=1.5"); }, "gbs", "must be an integer");
  expect_plan_error([] { parse_plan("pp=4x"); }, "pp", "must be an integer");
}
TEST(ParsePlanErrors, Negative) {
  expect_plan_error([] { parse_plan("pp=-2"); }, "pp", "must be >= 1");
  expect_plan_error([] { parse_plan("zero=-1"); }, "zero", "must be >= 0");
  expect_plan_error([] { parse_plan("mbs=0"); }, "mbs", "must be >= 1");
}
TEST(ParsePlanErrors, DuplicateKey) { expect_plan_error([] { parse_plan("tp=8,pp=2,tp=4"); }, "tp", "given twice"); }
TEST(ParsePlanErrors, MissingValue) {
  expect_plan_error([] { parse_plan("tp="); }, "tp");
  expect_plan_error([] { parse_plan("tp"); }, "tp", "expected key=value");
}
TEST(ParsePlanErrors, BadEnumValues) {
  expect_plan_error([] { parse_plan("sp=maybe"); }, "sp");
  expect_plan_error([] { parse_plan("schedule=pipedream"); }, "schedule");
  expect_plan_error([] { parse_plan("recompute=some"); }, "recompute");
  expect_plan_error([] { parse_plan("precision=fp64"); }, "precision");
  expect_plan_error([] { parse_plan("offload=disk"); }, "offload");
  expect_plan_error([] { parse_plan("tp_mode=4d"); }, "tp_mode");
  expect_plan_error([] { parse_plan("cp_algo=tree"); }, "cp_algo");
}

// ---------------------------------------------------------------- defaults (resolve_plan)
TEST_F(PlanTest, DpDerivedFromGpus) {
  const Plan p = resolve("tp=8,pp=16", 1024);
  EXPECT_EQ(p.dp, 8);
  EXPECT_EQ(p.gpus(), 1024);
  EXPECT_EQ(resolve("tp=8", 64).dp, 8);
  EXPECT_EQ(resolve("tp=4,cp=2", 64).dp, 8);
}

TEST_F(PlanTest, WithoutGpusDpIsOne) { EXPECT_EQ(resolve("tp=8", 0).dp, 1); }

TEST_F(PlanTest, DefaultGlobalBatch) {
  // docs/plans.md "Plan defaults": dp*mbs without a pipeline; 2*pp*vpp microbatches per pipeline with one.
  EXPECT_EQ(resolve("tp=8", 64).gbs, 8);
  EXPECT_EQ(resolve("tp=8,mbs=2", 64).gbs, 16);
  EXPECT_EQ(resolve("tp=8,pp=16", 1024).gbs, 8LL * 1 * 2 * 16);
  EXPECT_EQ(resolve("tp=8,pp=4,vpp=2", 64).gbs, 2LL * 1 * 2 * 4 * 2);
  EXPECT_EQ(resolve("tp=8,pp=16,gbs=1536", 1024).gbs, 1536);
  EXPECT_EQ(resolve("tp=8,pp=16,gbs=1536", 1024).microbatches(), 192);
}

TEST_F(PlanTest, PrecisionDefaultsByDevice) {
  EXPECT_EQ(resolve("tp=8", 8, selene_).precision, Precision::bf16);  // A100: bf16
  EXPECT_EQ(resolve("tp=8", 8, h100_).precision, Precision::bf16);
  EXPECT_EQ(resolve("tp=8", 8, v100_).precision, Precision::fp16);    // V100 has no bf16
  EXPECT_EQ(resolve("tp=8,precision=fp32", 8, v100_).precision, Precision::fp32);
  EXPECT_EQ(resolve("tp=8,precision=fp8", 8, h100_).precision, Precision::fp8);
}

TEST_F(PlanTest, VppImpliesInterleaved) {
  const Plan p = resolve("tp=8,pp=4,vpp=2", 64);
  EXPECT_EQ(p.schedule, Schedule::interleaved);
  EXPECT_EQ(resolve("tp=8,pp=4", 64).schedule, Schedule::one_f_one_b);
}

TEST_F(PlanTest, AValidMegatronPlanResolves) {
  const Plan p = resolve("tp=8,pp=16,mbs=1,gbs=1536,recompute=full", 1024);
  EXPECT_EQ(p.dp, 8);
  EXPECT_EQ(p.tp, 8);
  EXPECT_EQ(p.pp, 16);
  EXPECT_EQ(p.gbs, 1536);
  EXPECT_EQ(p.recompute, Recompute::full);
}

// ---------------------------------------------------------------- validation errors (resolve_plan)
TEST_F(PlanTest, TpNotDividingHeads) {  // 96 heads
  expect_plan_error([] { resolve("tp=64", 64); }, "tp", "does not divide heads=96");
  const model::ModelSpec tiny = model::load_model("gpt-tiny");  // 4 heads
  expect_plan_error([&] { resolve_plan(parse_plan("tp=8"), tiny, *selene_, 8); }, "tp", "heads");
}

TEST_F(PlanTest, PpTimesVppNotDividingLayers) {  // 96 layers
  expect_plan_error([] { resolve("tp=8,pp=5", 40); }, "pp", "does not divide layers=96");
  expect_plan_error([] { resolve("tp=8,pp=4,vpp=5", 32); }, "vpp", "does not divide layers=96");
  expect_plan_error([] { resolve("tp=8,pp=128", 1024); }, "pp");  // more stages than layers
}

TEST_F(PlanTest, DegreesNotMatchingGpus) {
  expect_plan_error([] { resolve("dp=2,tp=8", 32); }, "dp", "does not match --gpus 32");
  expect_plan_error([] { resolve("dp=1,tp=8,pp=2", 8); }, "dp", "does not match --gpus 8");
  expect_plan_error([] { resolve("tp=8", 12); }, "tp", "does not divide --gpus 12");
}

TEST_F(PlanTest, GbsNotMultipleOfMbsTimesDp) {
  expect_plan_error([] { resolve("tp=8,mbs=2,gbs=6", 16); }, "gbs", "not a multiple of mbs*dp=4");
  expect_plan_error([] { resolve("tp=8,gbs=1537", 64); }, "gbs");
}

TEST_F(PlanTest, VppWithOneFOneB) { expect_plan_error([] { resolve("tp=8,pp=2,vpp=2,schedule=1f1b", 16); }, "vpp", "interleaved"); }

TEST_F(PlanTest, InterleavedWithoutPipeline) {
  expect_plan_error([] { resolve("tp=8,schedule=interleaved", 8); }, "schedule", "pp>1");
}

TEST_F(PlanTest, InterleavedNeedsMicrobatchesMultipleOfPp) {
  expect_plan_error([] { resolve("tp=8,pp=4,vpp=2,gbs=6", 64); }, "gbs", "multiple of pp=4");
}

TEST_F(PlanTest, Fp8OnA100) { expect_plan_error([] { resolve("tp=8,precision=fp8", 8, selene_); }, "precision", "fp8"); }
TEST_F(PlanTest, Bf16OnV100) { expect_plan_error([] { resolve("tp=8,precision=bf16", 8, v100_); }, "precision", "bf16"); }

TEST_F(PlanTest, ZeroFour) { expect_plan_error([] { resolve("tp=8,zero=4", 8); }, "zero", "must be 0, 1, 2 or 3"); }

TEST_F(PlanTest, ExpertParallelNeedsMoe) { expect_plan_error([] { resolve("tp=8,ep=2", 16); }, "ep", "MoE"); }

TEST_F(PlanTest, ContextParallelMustDivideSeq) { expect_plan_error([] { resolve("tp=8,cp=3", 24); }, "cp", "does not divide seq"); }

// Issue 17: the products resolve_plan forms are checked before use, never wrapped.
TEST_F(PlanTest, ProductsBeyondTheGpuLimitAreRefused) {
  expect_plan_error([] { resolve("dp=16777216,tp=8", 0); }, "dp", "dp*tp*pp*cp exceeds 16777216");
  expect_plan_error([] { resolve("tp=65536,pp=65536", 0); }, "tp", "tp*pp exceeds 16777216");
  expect_plan_error([] { resolve("tp=8", 16777217); }, "dp", "--gpus 16777217 is outside [1, 16777216]");
}
TEST_F(PlanTest, TokensPerStepBeyondTheLimitAreRefused) {
  // gpt3-175b seq 2048: gbs 2^30 x 2^11 = 2^41 tokens > 2^40.
  expect_plan_error([] { resolve("tp=8,gbs=1073741824", 8); }, "gbs", "gbs*seq (tokens per step, seq=2048) exceeds 1099511627776");
  EXPECT_EQ(resolve("tp=8,gbs=536870912", 8).gbs, 536870912);  // 2^29 x 2^11 = 2^40: at the limit
}
TEST_F(PlanTest, VppBeyondLayersIsRefused) { expect_plan_error([] { resolve("tp=8,pp=2,vpp=60000", 16); }, "vpp", "exceeds layers=96"); }

TEST_F(PlanTest, PlanErrorIsNotAConfigError) {
  // The CLI maps both to exit code 2, but a plan error names a key, not a file position.
  try {
    resolve("tp=64", 64);
    FAIL() << "expected PlanError";
  } catch (const PlanError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("plan key 'tp': ", 0), 0u) << e.what();
    EXPECT_FALSE(e.rule().empty());
  }
}

}  // namespace
