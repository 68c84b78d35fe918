// validate's honest accuracy (issue 15 items 3 and 5, issue 16 item 4, DESIGN.md sec. 6):
// inferred unknown fields (validation/infer.hpp), refused rows that never abort a file, out-of-memory
// predictions marked, the efficiency-parameter fit and leave-one-group-out cross-validation
// (validation/fit.hpp). Numbers: docs/accuracy.md.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "common/errors.hpp"
#include "validation/fit.hpp"
#include "validation/infer.hpp"
#include "validation/runs.hpp"

namespace {

using namespace scaleplan;
using validation::RowStrategy;
using validation::StackCaps;
using strategies::Recompute;

constexpr int month(int y, int m) { return y * 12 + m - 1; }

bool has_assumed(const std::vector<std::string>& a, const std::string& prefix) {
  return std::any_of(a.begin(), a.end(), [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
}

// ---- dates and capabilities ------------------------------------------------------------------

TEST(RowMonth, FromDateKeyAndSourceText) {
  EXPECT_EQ(validation::row_month("2022-05", "anything"), month(2022, 5));
  EXPECT_EQ(validation::row_month("2023", ""), month(2023, 12));
  EXPECT_EQ(validation::row_month("", "Narayanan et al., SC21 (arXiv 2104.04473), Table 1"), month(2021, 4));
  EXPECT_EQ(validation::row_month("", "NVIDIA NeMo 24.07 performance summary"), month(2024, 7));
  EXPECT_EQ(validation::row_month("", "Megatron-Bridge archive, 25.11 NeMo container"), month(2025, 11));
  EXPECT_EQ(validation::row_month("", "performance_summary.md (commit 070a0bb1), Pretraining table (NeMo24.07, DGX-H100)"), month(2024, 7));
  // A citation with several dates (the commit read, the commit that added the table): the earliest.
  EXPECT_EQ(validation::row_month("", "README (commit d98e8a64, 2026-08-22), table added in f2e5db40, 2024-07-15"), month(2024, 7));
  EXPECT_EQ(validation::row_month("", "a talk at SC19"), month(2019, 11));
  EXPECT_EQ(validation::row_month("", "Korthikanti et al. 2022 'Reducing ...'"), month(2022, 12));
  EXPECT_EQ(validation::row_month("", "a README, commit 00327f8c"), 0);
  EXPECT_EQ(validation::month_str(month(2021, 4)), "2021-04");
}

TEST(StackCaps, FromDate) {
  hw::Software sw;
  sw.flash_attention = false;
  const StackCaps sc21 = validation::stack_caps_from_row(month(2021, 4), sw);
  EXPECT_FALSE(sc21.selective_recompute);
  EXPECT_FALSE(sc21.sequence_parallel);
  EXPECT_TRUE(sc21.interleaved_schedule);
  EXPECT_FALSE(sc21.flash_attention);
  const StackCaps early = validation::stack_caps_from_row(month(2021, 3), sw);
  EXPECT_FALSE(early.interleaved_schedule);
  const StackCaps kor22 = validation::stack_caps_from_row(month(2022, 5), sw);
  EXPECT_TRUE(kor22.selective_recompute);
  EXPECT_TRUE(kor22.sequence_parallel);
  const StackCaps unknown = validation::stack_caps_from_row(0, sw);
  EXPECT_TRUE(unknown.selective_recompute);
  EXPECT_TRUE(unknown.sequence_parallel);
}

// ---- inference rules -------------------------------------------------------------------------

RowStrategy tp8pp4() {
  RowStrategy s;
  s.present = true;
  s.tp = 8, s.pp = 4, s.cp = 1, s.gbs = 512;
  return s;
}

TEST(InferPlan, Eq3CountingMeansFullRecompute) {
  const hw::Cluster c = hw::load_cluster("selene-a100");
  const StackCaps caps = validation::stack_caps_from_row(month(2023, 1), c.sw);  // selective available
  const auto ip = validation::infer_plan(tp8pp4(), "eq3 incl. recompute", caps, c, 256);
  ASSERT_EQ(ip.recompute_options.size(), 1u);
  EXPECT_EQ(ip.recompute_options[0], Recompute::full);
  EXPECT_TRUE(has_assumed(ip.assumed, "recompute=full (eq3"));
  EXPECT_EQ(ip.plan.dp, 8);  // 256 / (8 * 4 * 1)
  EXPECT_TRUE(has_assumed(ip.assumed, "dp=gpus/(tp*pp*cp)=8"));
}

TEST(InferPlan, HardwareCountingWithoutSelectiveMeansFull) {
  const hw::Cluster c = hw::load_cluster("selene-a100");
  const StackCaps caps = validation::stack_caps_from_row(month(2021, 6), c.sw);
  const auto ip = validation::infer_plan(tp8pp4(), "hardware incl. recompute", caps, c, 256);
  EXPECT_EQ(ip.recompute_options, std::vector<Recompute>{Recompute::full});
  const auto later = validation::infer_plan(tp8pp4(), "hardware incl. recompute",
                                            validation::stack_caps_from_row(month(2023, 1), c.sw), c, 256);
  EXPECT_EQ(later.recompute_options, (std::vector<Recompute>{Recompute::selective, Recompute::full}));
}

TEST(InferPlan, Pre2022StackHasNoSelectiveRecomputeAndNoSequenceParallelism) {
  const hw::Cluster c = hw::load_cluster("selene-a100");
  const StackCaps caps = validation::stack_caps_from_row(month(2021, 12), c.sw);
  const auto ip = validation::infer_plan(tp8pp4(), "null", caps, c, 256);
  EXPECT_EQ(ip.recompute_options, (std::vector<Recompute>{Recompute::none, Recompute::full}));
  EXPECT_FALSE(ip.plan.sp);
  EXPECT_TRUE(has_assumed(ip.assumed, "sp=off"));
  EXPECT_TRUE(ip.vpp_free);
  // A 2024 row: every option, sp on for tp > 1.
  const auto now = validation::infer_plan(tp8pp4(), "null", validation::stack_caps_from_row(month(2024, 7), c.sw), c, 256);
  EXPECT_EQ(now.recompute_options, (std::vector<Recompute>{Recompute::none, Recompute::selective, Recompute::full}));
  EXPECT_TRUE(now.plan.sp);
  EXPECT_TRUE(has_assumed(now.assumed, "sp=on"));
}

TEST(InferPlan, BeforeInterleavingVppIsOne) {
  const hw::Cluster c = hw::load_cluster("selene-a100");
  const auto ip = validation::infer_plan(tp8pp4(), "null", validation::stack_caps_from_row(month(2020, 6), c.sw), c, 256);
  EXPECT_FALSE(ip.vpp_free);
  EXPECT_EQ(ip.plan.vpp, 1);
  EXPECT_TRUE(has_assumed(ip.assumed, "vpp=1"));
}

TEST(InferPlan, PublishedFieldsAreKeptWithoutAssumption) {
  const hw::Cluster c = hw::load_cluster("selene-a100");
  RowStrategy s = tp8pp4();
  s.dp = 8, s.mbs = 2, s.vpp = 2, s.recompute = Recompute::selective, s.sp = true, s.zero = 0, s.precision = "fp16";
  const auto ip = validation::infer_plan(s, "eq3 incl. recompute", validation::stack_caps_from_row(month(2021, 4), c.sw), c, 256);
  EXPECT_TRUE(ip.assumed.empty());
  EXPECT_EQ(ip.recompute_options, std::vector<Recompute>{Recompute::selective});  // published beats the rules
  EXPECT_TRUE(ip.plan.sp);
  EXPECT_EQ(ip.plan.vpp, 2);
  EXPECT_EQ(ip.plan.schedule, strategies::Schedule::interleaved);
  EXPECT_EQ(ip.plan.precision, strategies::Precision::fp16);
}

TEST(InferPlan, NoStrategyIsSearched) {
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  RowStrategy s;
  s.gbs = 256;
  const auto ip = validation::infer_plan(s, "null", validation::stack_caps_from_row(0, c.sw), c, 64);
  EXPECT_TRUE(ip.search);
  EXPECT_TRUE(has_assumed(ip.assumed, "plan=best found by search"));
  StackCaps old = validation::stack_caps_from_row(month(2021, 6), c.sw);
  strategies::Plan p;
  p.tp = 8, p.sp = true;
  EXPECT_FALSE(validation::plan_allowed(p, old, s));
  p.sp = false, p.recompute = Recompute::selective;
  EXPECT_FALSE(validation::plan_allowed(p, old, s));
  p.recompute = Recompute::full;
  EXPECT_TRUE(validation::plan_allowed(p, old, s));
  s.mbs = 2;  // a published field the search result must keep
  EXPECT_FALSE(validation::plan_allowed(p, old, s));
}

// ---- rows of a runs file ---------------------------------------------------------------------

const char* kMixedRuns = R"(runs:
- id: good-gpt
  source: Narayanan et al. SC21 (arXiv 2104.04473)
  model: {name: gpt-1.7b, layers: 24, hidden: 2304, heads: 24, ffn: 9216, vocab: null, seq: 2048, activation: relu}
  cluster: {preset: selene-a100}
  hardware: {gpus: 32}
  strategy: {tp: 1, pp: 1, cp: 1, dp: 32, global_batch: 512, recompute: null, sequence_parallel: null, zero_stage: 0}
  result: {tflops_per_gpu: 137, flops_counting: eq3 incl. recompute}
- id: bad-preset
  model: {name: gpt-1.7b, layers: 24, hidden: 2304, heads: 24, vocab: 51200, seq: 2048}
  cluster: {preset: no-such-cluster}
  hardware: {gpus: 32}
  strategy: {tp: 1, pp: 1, global_batch: 512}
  result: {tflops_per_gpu: 137}
- id: bad-plan
  model: {name: gpt-1.7b, layers: 24, hidden: 2304, heads: 24, vocab: 51200, seq: 2048}
  cluster: {preset: selene-a100}
  hardware: {gpus: 32}
  strategy: {tp: 3, pp: 1, global_batch: 512}
  result: {tflops_per_gpu: 137}
- 42
- id: unknown-vocab
  model: {name: mystery-20b, layers: 48, hidden: 6144, heads: 64, vocab: null, seq: 2048}
  cluster: {preset: selene-a100}
  hardware: {gpus: 8}
  strategy: {tp: 8, global_batch: 8}
  result: {iteration_time_s: 1}
- id: family-vocab
  group: mygroup
  source: 'a 2024 blog'
  model: {name: Llama-3-8B-custom, layers: 32, hidden: 4096, heads: 32, kv_heads: 8, ffn: 14336, vocab: null, seq: 8192, activation: geglu}
  cluster: {preset: dgx-h100}
  hardware: {gpus: 8}
  strategy: {tp: 8, global_batch: 8}
  result: {iteration_time_s: 1}
- id: searched-gpt
  source: 'arXiv 2106.00001'
  model: {name: gpt3-1.3b, layers: 24, hidden: 2048, heads: 16, vocab: 50257, seq: 2048}
  cluster: {preset: dgx-a100-40gb}
  hardware: {gpus: 16}
  strategy: {global_batch: 256, precision: null}
  result: {iteration_time_s: 1}
)";

const validation::RunSpec& by_id(const validation::RunsFile& f, const std::string& id) {
  for (const auto& r : f.runs)
    if (r.id == id) return r;
  throw std::runtime_error("no row " + id);
}

TEST(RunsFileRows, ARowThatCannotBePredictedIsRefusedAndTheRestValidated) {
  validation::RunsFile f;
  ASSERT_NO_THROW(f = validation::parse_runs(kMixedRuns, "mixed.yaml"));
  ASSERT_EQ(f.runs.size(), 7u);
  EXPECT_NE(by_id(f, "bad-preset").refused.find("mixed.yaml:11:"), std::string::npos) << by_id(f, "bad-preset").refused;
  EXPECT_NE(by_id(f, "bad-preset").refused.find("no-such-cluster"), std::string::npos);
  EXPECT_NE(by_id(f, "runs[3]").refused.find("must be a mapping"), std::string::npos);
  EXPECT_NE(by_id(f, "unknown-vocab").refused.find("vocab"), std::string::npos);
  EXPECT_TRUE(by_id(f, "bad-plan").refused.empty());  // readable; refused at prediction
  const validation::ValidationSummary s = validation::validate(f);
  EXPECT_EQ(s.refused, 4);
  EXPECT_EQ(s.counted, 3);
  for (const auto& r : s.runs) {
    if (r.id == "bad-plan") {
      EXPECT_FALSE(r.supported);
      EXPECT_NE(r.refused.find("tp"), std::string::npos) << r.refused;
    }
    if (!r.supported) {
      EXPECT_FALSE(r.refused.empty()) << r.id;
    } else {
      EXPECT_TRUE(std::isfinite(r.error_pct)) << r.id;
    }
  }
}

TEST(RunsFileRows, GoodRowInfersFromCountingAndDate) {
  const validation::RunsFile f = validation::parse_runs(kMixedRuns, "mixed.yaml");
  const validation::RunSpec& r = by_id(f, "good-gpt");
  EXPECT_EQ(r.group, "good");  // the id up to its first '-'
  EXPECT_EQ(r.model.vocab, 51200);  // preset gpt-1.7b
  EXPECT_EQ(r.model.mlp_matrices(), 2);  // relu: 2-matrix MLP
  EXPECT_TRUE(has_assumed(r.assumed, "vocab=51200 (null; preset gpt-1.7b)"));
  EXPECT_TRUE(has_assumed(r.assumed, "activation relu"));
  EXPECT_EQ(r.recompute_options, std::vector<Recompute>{Recompute::full});
  EXPECT_FALSE(r.plan.sp);  // tp = 1: nothing assumed about sp
  EXPECT_FALSE(r.caps.selective_recompute);  // published 2021-04
}

TEST(RunsFileRows, VocabFromTokenizerFamilyAndGegluAccepted) {
  const validation::RunsFile f = validation::parse_runs(kMixedRuns, "mixed.yaml");
  const validation::RunSpec& r = by_id(f, "family-vocab");
  EXPECT_EQ(r.group, "mygroup");
  EXPECT_EQ(r.model.vocab, 128256);  // Llama 3 tokenizer (configs/models/llama3-70b.yaml)
  EXPECT_EQ(r.model.mlp_matrices(), 3);  // geglu: gated 3-matrix MLP
  EXPECT_TRUE(has_assumed(r.assumed, "vocab=128256 (null; tokenizer family 'llama-3'"));
}

TEST(RunsFileRows, NoStrategyPredictedAsSearchBestUnderTheStackCapabilities) {
  const validation::RunsFile f = validation::parse_runs(kMixedRuns, "mixed.yaml");
  const validation::RunSpec& spec = by_id(f, "searched-gpt");
  EXPECT_TRUE(spec.search);
  const validation::RunResult r = validation::predict_run(spec);
  ASSERT_TRUE(r.supported) << r.refused;
  EXPECT_TRUE(has_assumed(r.assumed, "plan=best found by search"));
  EXPECT_EQ(r.report.plan.dp * r.report.plan.tp * r.report.plan.pp * r.report.plan.cp, 16);
  EXPECT_EQ(r.report.plan.gbs, 256);
  // Published 2021-06: no selective recompute, no sequence parallelism.
  EXPECT_NE(r.report.plan.recompute, Recompute::selective);
  EXPECT_FALSE(r.report.plan.sp && r.report.plan.tp > 1);
  EXPECT_TRUE(r.feasible);
}

// strategy.ep (issue 15 item 3): read as published; absent is 1; an MoE row with ep null says so.
const char* kMoeRuns = R"(runs:
- id: moe-ep4
  model: {name: mixtral-8x7b, layers: 32, hidden: 4096, heads: 32, kv_heads: 8, ffn: 14336, vocab: 32000, seq: 4096, activation: swiglu, norm: rmsnorm, position: rope, tied_embeddings: false, bias: false, moe: {experts: 8, top_k: 2}}
  cluster: {preset: dgx-h100}
  hardware: {gpus: 64}
  strategy: {tp: 2, pp: 4, dp: 8, ep: 4, microbatch: 1, global_batch: 256, recompute: full, sequence_parallel: true, zero_stage: 1, precision: bf16}
  result: {iteration_time_s: 10}
- id: moe-ep-null
  model: {name: mixtral-8x7b, layers: 32, hidden: 4096, heads: 32, kv_heads: 8, ffn: 14336, vocab: 32000, seq: 4096, activation: swiglu, norm: rmsnorm, position: rope, tied_embeddings: false, bias: false, moe: {experts: 8, top_k: 2}}
  cluster: {preset: dgx-h100}
  hardware: {gpus: 64}
  strategy: {tp: 2, pp: 4, dp: 8, ep: null, microbatch: 1, global_batch: 256, recompute: full, sequence_parallel: true, zero_stage: 1, precision: bf16}
  result: {iteration_time_s: 10}
- id: moe-ep-zero
  model: {name: mixtral-8x7b, layers: 32, hidden: 4096, heads: 32, kv_heads: 8, ffn: 14336, vocab: 32000, seq: 4096, activation: swiglu, moe: {experts: 8, top_k: 2}}
  cluster: {preset: dgx-h100}
  hardware: {gpus: 64}
  strategy: {tp: 2, pp: 4, dp: 8, ep: 0, global_batch: 256}
  result: {iteration_time_s: 10}
)";

TEST(RunsFileRows, ExpertParallelDegreeRead) {
  const validation::RunsFile f = validation::parse_runs(kMoeRuns, "moe.yaml");
  const validation::RunSpec& a = by_id(f, "moe-ep4");
  ASSERT_TRUE(a.refused.empty()) << a.refused;
  EXPECT_EQ(a.plan.ep, 4);
  EXPECT_FALSE(has_assumed(a.assumed, "ep=1"));
  const validation::RunResult ra = validation::predict_run(a);
  ASSERT_TRUE(ra.supported) << ra.refused;
  EXPECT_EQ(ra.report.plan.ep, 4);
  EXPECT_GT(ra.report.ep_comm_exposed_s, 0);  // the MoE all-to-alls cross the 4 expert-parallel ranks
  const validation::RunSpec& b = by_id(f, "moe-ep-null");
  ASSERT_TRUE(b.refused.empty()) << b.refused;
  EXPECT_EQ(b.plan.ep, 1);
  EXPECT_TRUE(has_assumed(b.assumed, "ep=1 (null"));
  EXPECT_NE(by_id(f, "moe-ep-zero").refused.find("ep"), std::string::npos) << by_id(f, "moe-ep-zero").refused;
  // A dense row without ep assumes nothing about it (every row of the shared set).
  for (const auto& r : validation::load_runs("").runs) EXPECT_FALSE(has_assumed(r.assumed, "ep=")) << r.id;
}

// A file where no row can be predicted is still read; the CLI turns that into exit 2 (bad input).
TEST(RunsFileRows, EveryRowRefused) {
  const validation::RunsFile f = validation::parse_runs("runs:\n- 1\n- id: x\n", "all-bad.yaml");
  const validation::ValidationSummary s = validation::validate(f);
  EXPECT_EQ(s.counted, 0);
  EXPECT_EQ(s.refused, 2);
  EXPECT_EQ(s.mape_pct, 0);
}

// ---- out-of-memory predictions (issue 16 item 4) ---------------------------------------------

TEST(OutOfMemory, MarkedAndMapeReportedWithAndWithout) {
  const validation::ValidationSummary s = validation::validate(validation::load_runs(""));
  double sum = 0, mx = 0;
  int n = 0, oom = 0;
  for (const auto& r : s.runs) {
    if (!r.supported) continue;
    if (!r.feasible) {
      ++oom;
      EXPECT_NE(r.note.find("exceeds memory"), std::string::npos) << r.id;
      continue;
    }
    sum += std::fabs(r.error_pct), mx = std::max(mx, std::fabs(r.error_pct)), ++n;
  }
  EXPECT_EQ(s.oom, oom);
  // The two Llama 3 405B 8K rows publish recompute none; the model's activations do not fit in 80 GB.
  for (const auto& r : s.runs)
    if (r.id == "llama3-405b-t4-8192gpu-8k" || r.id == "llama3-405b-t4-16384gpu-8k") {
      EXPECT_FALSE(r.feasible) << r.id;
    }
  EXPECT_GE(oom, 2);
  EXPECT_EQ(n + oom, s.counted);
  EXPECT_NEAR(s.mape_in_memory_pct, sum / n, 1e-9);
  EXPECT_NEAR(s.max_error_in_memory_pct, mx, 1e-9);
}

// ---- fit and cross-validation ----------------------------------------------------------------

// Issue 15 "Done when": fitted MAPE <= 5 %, max <= 15 %; leave-one-group-out MAPE <= 8 % overall
// and <= 12 % for every group with >= 3 runs.
constexpr double kFitMapePct = 5.0, kFitMaxPct = 15.0, kCvMapePct = 8.0, kCvGroupPct = 12.0;
// TARGET NOT MET on the grown fitting set (60 runs; docs/accuracy.md): max |error| <= 15 %. The
// megatron2019 tensor-parallel strong-scaling rows (1.2B on 4 and 8 V100s) lose 16-28 % more than the model
// charges (docs/accuracy-acc7.md: no sourced mechanism for the rest); shipped 3.96 %, refitted 3.89 %.
// History:
// Measured 2026-12-07 on main: shipped 15.33 % (max 86.3 %), refitted 12.12 %, cross-validated 19.13 %;
// after the sourced V100 gemm_max (v100.gemm_max fitted, prior 0.664), the per-stack
// dp_collective_nics input and the 2019 Megatron-LM stack's eager element-wise kernels (acc2
// branch): shipped 8.93 % (max 58.4 %), refitted 7.82 %, cross-validated 10.70 %; after FSDP's per-unit
// collectives, its fp32 gradient reduction, FlashAttention-2's own H100 efficiency and h100.overlap_slowdown
// fitted apart (acc5 branch, docs/accuracy.md): shipped 7.68 % (max 58.4 %), refitted 5.79 %,
// cross-validated 9.33 %; after the 2019 stack's PyTorch 1.1 RNG state copies, unfused fp16 optimizer
// passes and torch-DDP overlap (acc4 branch) as well: shipped 6.68 % (max 41.9 %), refitted 5.21 %,
// cross-validated 8.41 %; after llm-foundry's unpad / pad copies around the varlen FlashAttention kernel
// (stack activation_passes_fwd / _bwd; 13B / 30B on the triton variant, acc6 branch): shipped 6.33 %
// (max 41.9 %), refitted 4.99 %, cross-validated 8.05 %; after shipping the A100 / V100 / generic values fitted
// on the whole set and adding the rest of Shoeybi et al. 2019's scaling data (Figure 5's weak-scaling and
// model+data points, Table 7's head counts: 60 runs, docs/accuracy.md): shipped 5.72 % (max 38.3 %),
// refitted 4.88 %, cross-validated 7.61 %; with the acc8 branch's llm-foundry inputs (Composer's training
// metrics over the logits and their end-of-step sync, PyTorch's non-reentrant checkpoint early stop, MPT
// without dropout; docs/accuracy-acc8.md; 53 runs on that branch: shipped 4.20 %, refitted 4.10 %,
// cross-validated 6.02 %) merged: see the measured values at the constants. These bounds are ratchets a little above the measured numbers (a change
// that makes them worse fails); they are not the targets, which stay asserted where they hold.
// measured 3.96 / 3.89 / 5.81 % (60 runs, acc8 and acc7 merged; 4.19 / 4.12 / 6.05 % with acc8 alone); stop 29 adds the
// NeMo 24.03.01 long-sequence group (7 attention-bound rows, 16K-1M tokens, +7.7..+10.8 % on the FA2 rate the launcher's
// NVTE_FUSED_ATTN=0 selects): 67 runs at 4.53 / 4.5 / 6.54 %; with FA2's own H100 backward rate (0.326, FA3 paper's
// backward figure): 4.06 / 3.97 / 6.31 %. The same table's later revision (NeMo 19fadb67) publishes each row's
// global batch: the rows take it (it replaced an assumed 16 microbatches per DP rank) and its 4K / 8K rows leave
// pending: 69 runs at 4.00 / 3.96 / 7.42 % (the fold without foundry-h100 now fits h100.overlap_slowdown at
// its bound, 1.0, and predicts foundry-h100 at 10.37 %; docs/accuracy.md "Stop 29"). Then the Megatron-LM 2020 README
// scaling tables (group megatron2020, 12 rows, fitting by the set rule): 81 runs at 4.43 / 4.26 / 7.92 %. Stop 30 ships
// the values refitted on those 81 runs (configs/devices/*.yaml): shipped = refitted 4.26 %, cv unchanged.
constexpr double kFitWholeMapePct = 4.3, kRefitWholeMapePct = 4.3, kCvWholeMapePct = 7.95;
const std::set<std::string> kTargetGroups = {"sc21t1", "kor22", "llama3"};

const validation::RunsFile& shared() {
  // The whole fitting set: the shared set (validate's default) plus validation/fitting_runs.yaml.
  static const validation::RunsFile f = validation::load_runs(std::vector<std::string>{
      SCALEPLAN_SOURCE_DIR "/validation/published_runs.yaml", SCALEPLAN_SOURCE_DIR "/validation/fitting_runs.yaml"});
  return f;
}

TEST(Fit, ParametersDeclaredWithBoundsAndPriorsInside) {
  const auto shipped = validation::shipped_values();
  ASSERT_EQ(shipped.size(), validation::fit_params().size());
  for (std::size_t i = 0; i < shipped.size(); ++i) {
    const auto& p = validation::fit_params()[i];
    EXPECT_LT(p.lo, p.hi) << p.name;
    EXPECT_GE(p.prior, p.lo) << p.name;
    EXPECT_LE(p.prior, p.hi) << p.name;
    EXPECT_GE(shipped[i], p.lo) << p.name;
    EXPECT_LE(shipped[i], p.hi) << p.name;
  }
}

TEST(Fit, OnTheSharedSetWithinTargetsAndNoWorseThanTheShippedValues) {
  const validation::FitResult fr = validation::fit(shared().runs, shared().layer_timings);
  const validation::FitResult sh = validation::evaluate_params(shared().runs, shared().layer_timings, validation::shipped_values());
  for (bool id : fr.identified) EXPECT_TRUE(id);
  EXPECT_EQ(fr.rows, validation::validate(shared()).counted);
  EXPECT_EQ(fr.layers, static_cast<int>(shared().layer_timings.size()));
  EXPECT_LE(fr.mape_pct, kRefitWholeMapePct);
  EXPECT_LE(sh.mape_pct, kFitWholeMapePct);  // the shipped values: the plain `validate` numbers
  // The issue's fitted targets on the groups that meet them (shipped values).
  std::vector<validation::RunSpec> target_rows;
  for (const auto& r : shared().runs)
    if (kTargetGroups.count(r.group)) target_rows.push_back(r);
  const validation::FitResult tg = validation::evaluate_params(target_rows, {}, validation::shipped_values());
  EXPECT_LE(tg.mape_pct, kFitMapePct);
  EXPECT_LE(tg.max_error_pct, kFitMaxPct);
  EXPECT_NEAR(sh.mape_pct, validation::validate(shared()).mape_pct, 1e-9);
  // The minimiser, started from the priors, does at least as well as the shipped values.
  EXPECT_LE(fr.objective_pct, sh.objective_pct + 1e-9);
  for (std::size_t i = 0; i < fr.values.size(); ++i) {
    EXPECT_GE(fr.values[i], validation::fit_params()[i].lo);
    EXPECT_LE(fr.values[i], validation::fit_params()[i].hi);
  }
}

// The minimiser recovers known parameters: publish the shared set's own predictions under the
// shipped values, start from the priors, and fit them back.
TEST(Fit, RecoversParametersFromSyntheticPublishedValues) {
  std::vector<validation::RunSpec> rows = shared().runs;
  for (auto& r : rows) {
    const validation::RunResult rr = validation::predict_run(r);
    ASSERT_TRUE(rr.supported) << r.id;
    if (r.iteration_time_s) r.iteration_time_s = rr.predicted;
    else if (r.tflops_per_gpu) r.tflops_per_gpu = rr.predicted;
    else if (r.mfu_pct) r.mfu_pct = rr.predicted;
    else r.percent_of_peak = rr.predicted;
  }
  const validation::FitResult fr = validation::fit(rows);
  EXPECT_LE(fr.mape_pct, 0.5);
  const auto shipped = validation::shipped_values();
  for (std::size_t i = 0; i < shipped.size(); ++i) {
    const auto& p = validation::fit_params()[i];
    if (std::string(p.name) == "a100.gemm_half_flop") continue;  // a ridge with a100.gemm_max
    EXPECT_NEAR(fr.values[i], shipped[i], 0.05 * shipped[i]) << p.name;
  }
}

TEST(CrossValidation, LeaveOneGroupOut) {
  const validation::CvResult cv = validation::cross_validate(shared());
  std::ostringstream o;
  for (const auto& g : cv.groups) o << "  " << g.group << ": " << g.runs << " runs, cv MAPE " << g.mape_pct << "%, fitted " << g.fitted_mape_pct << "%\n";
  std::printf("cross-validated MAPE %.2f%%, max %.2f%%\n%s", cv.cv_mape_pct, cv.cv_max_error_pct, o.str().c_str());
  for (const char* want : {"sc21t1", "kor22", "llama3"})
    EXPECT_TRUE(std::any_of(cv.groups.begin(), cv.groups.end(), [&](const auto& g) { return g.group == want; })) << want;
  int total = 0;
  for (const auto& g : cv.groups) total += g.runs;
  EXPECT_EQ(total, validation::validate(shared()).counted);
  EXPECT_LE(cv.cv_mape_pct, kCvWholeMapePct) << o.str();  // measured 7.92 % over 81 runs (target 8 %)
  // Per group: the target where it holds, else a ratchet at the measured value (acc2 / acc4 / acc5, 2026-12-07).
  const std::map<std::string, double> bound = {{"sc21t1", kCvGroupPct},       {"kor22", kCvGroupPct},
                                               {"sc21t2-zero3", kCvGroupPct},  // measured 5.62 % (was 14.25 %)
                                               {"llama3", kCvGroupPct},        // measured 4.27 % (was 12.57 %, 6.91 %): target met
                                               {"foundry-h100", kCvGroupPct},  // measured 10.48 % (3.57 % before the long-sequence group joined the H100 fits, 5.53 % with its 7 rows; was 12.61 %, 9.78 %, 8.77 %): target met
                                               {"megatron2019", kCvGroupPct},
                                               {"nemo2403-longseq", kCvGroupPct},
                                               {"megatron2020", kCvGroupPct}};  // measured 6.88 % over 12 runs (stop 29): target met  // measured 4.62 % over 9 runs (9.42 % over 7 before FA2's backward rate): target met  // measured 8.42 % over 13 runs (9.53 % before acc7; 13.70 % over the 6 before Figure 5 / Table 7)
  for (const auto& g : cv.groups) {
    if (g.runs < 3) continue;
    const auto b = bound.find(g.group);
    ASSERT_NE(b, bound.end()) << "a new group of >= 3 runs: give it the target (or its measured ratchet) here: " << g.group;
    EXPECT_LE(g.mape_pct, b->second) << g.group << "\n" << o.str();
  }
  // Each held-out row is predicted with its fold's parameters.
  for (std::size_t i = 0; i < shared().runs.size(); ++i) {
    const auto& spec = shared().runs[i];
    const auto g = std::find_if(cv.groups.begin(), cv.groups.end(), [&](const auto& x) { return x.group == spec.group; });
    ASSERT_NE(g, cv.groups.end());
    std::vector<validation::RunSpec> one{spec};
    validation::apply_params(one, g->fit.values);
    EXPECT_NEAR(validation::predict_run(one[0]).predicted, cv.runs[i].predicted, 1e-9 * std::fabs(cv.runs[i].predicted)) << spec.id;
  }
}

}  // namespace
