// Validation suite (DESIGN.md sec. 3 `validate`, sec. 4 "the validation suite reports MAPE"):
// the analytic estimator against the published runs of validation/published_runs.yaml.
// Targets: MAPE <= 5 %, every counted run within 12 %, every single-layer timing within 10 %.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "validation/runs.hpp"

namespace {

using namespace scaleplan;

constexpr double kMapeTargetPct = 5.0;
constexpr double kMaxErrorTargetPct = 12.0;
constexpr double kLayerTargetPct = 10.0;

const validation::ValidationSummary& summary() {
  static const validation::ValidationSummary s = validation::validate(validation::load_runs(""));
  return s;
}

std::string table() {
  std::ostringstream o;
  for (const auto& r : summary().runs)
    o << "  " << r.id << " [" << r.metric << "] published " << r.published << " predicted " << r.predicted << " error "
      << r.error_pct << "%" << (r.supported ? "" : " (excluded)") << "\n";
  return o.str();
}

TEST(Validation, RunsFileLoads) {
  const validation::RunsFile f = validation::load_runs("");
  EXPECT_GE(f.runs.size(), 20u);
  EXPECT_GE(f.layer_timings.size(), 5u);
  EXPECT_GT(summary().counted, 0);
}

TEST(Validation, PredictionsAreFiniteAndPositive) {
  for (const auto& r : summary().runs) {
    if (!r.supported) continue;
    EXPECT_TRUE(std::isfinite(r.predicted)) << r.id;
    EXPECT_GT(r.predicted, 0) << r.id;
    EXPECT_NEAR(r.error_pct, 100.0 * (r.predicted - r.published) / r.published, 1e-9) << r.id;
  }
}

TEST(Validation, SummaryIsConsistent) {
  double sum = 0, mx = 0;
  int n = 0;
  for (const auto& r : summary().runs) {
    if (!r.supported) continue;
    sum += std::fabs(r.error_pct);
    mx = std::max(mx, std::fabs(r.error_pct));
    ++n;
  }
  EXPECT_EQ(n, summary().counted);
  EXPECT_NEAR(summary().mape_pct, sum / n, 1e-9);
  EXPECT_NEAR(summary().max_error_pct, mx, 1e-9);
}

TEST(Validation, MapeWithinTarget) {
  EXPECT_LE(summary().mape_pct, kMapeTargetPct) << "MAPE " << summary().mape_pct << "% over " << summary().counted << " runs\n"
                                                << table();
}

TEST(Validation, MaxErrorWithinTarget) {
  EXPECT_LE(summary().max_error_pct, kMaxErrorTargetPct) << table();
}

TEST(Validation, EveryLayerTimingWithinTarget) {
  ASSERT_FALSE(summary().layers.empty());
  for (const auto& l : summary().layers) {
    EXPECT_LE(std::fabs(l.fwd_error_pct), kLayerTargetPct)
        << l.id << " forward: published " << l.fwd_published_ms << " ms, predicted " << l.fwd_predicted_ms << " ms";
    EXPECT_LE(std::fabs(l.bwd_error_pct), kLayerTargetPct)
        << l.id << " backward: published " << l.bwd_published_ms << " ms, predicted " << l.bwd_predicted_ms << " ms";
  }
}

// The Llama 3 131K-context row (cp=16, all-gather CP as Llama 3 sec. 3.3.2) is counted and meets
// the per-run target on its own.
TEST(Validation, LongContextRowCounted) {
  bool found = false;
  for (const auto& r : summary().runs) {
    if (r.id != "llama3-405b-t4-16384gpu-128k") continue;
    found = true;
    EXPECT_TRUE(r.supported) << r.note;
    EXPECT_EQ(r.report.plan.cp, 16);
    EXPECT_EQ(r.report.plan.cp_algo, strategies::CpAlgo::allgather);
    EXPECT_LE(std::fabs(r.error_pct), kMaxErrorTargetPct) << table();
  }
  EXPECT_TRUE(found);
}

// FLOP conventions of the runs file: SC21 eq. (3) and Korthikanti eq. (7) / Appendix A.
TEST(Validation, FlopConventions) {
  model::ModelSpec m;
  m.layers = 96;
  m.hidden = 12288;
  m.heads = 96;
  m.kv_heads = 96;
  m.ffn = 4 * 12288;
  m.vocab = 51200;
  m.seq = 2048;
  const double B = 1536, s = 2048, L = 96, h = 12288, V = 51200;
  EXPECT_NEAR(validation::sc21_eq3_flops(m, B), 96 * B * s * L * h * h * (1 + s / (6 * h) + V / (16 * L * h)), 1e6);
  EXPECT_NEAR(validation::kor22_eq7_flops(m, B), 72 * B * L * s * h * h * (1 + s / (6 * h) + V / (12 * h * L)), 1e6);
  // eq. (3) counts the recompute forward: 4/3 of eq. (7) up to the logit term.
  EXPECT_GT(validation::sc21_eq3_flops(m, B), validation::kor22_eq7_flops(m, B));
}

// The hold-out set (validation/holdout_runs.yaml, validation/HOLDOUT.md): published runs no
// parameter was fitted to. The Megatron-LM / NeMo / Megatron-Bridge rows (15) are held to the
// shared set's per-run bound and a MAPE of 6 % (measured 5.04 %, max 10.96 %); the DeepSpeed
// PipelineEngine rows (MT-NLG, BLOOM: 14-25 % too fast, a framework efficiency the model does not
// have) are only required to be predicted. The fp8 GPT-3 row fits without recompute only because
// fp8 keeps the linears' inputs in 1 B (without that: +37 %).
TEST(Validation, HoldoutMegatronFamilyWithinBounds) {
  const validation::ValidationSummary h =
      validation::validate(validation::load_runs(SCALEPLAN_SOURCE_DIR "/validation/holdout_runs.yaml"));
  double sum = 0;
  int n = 0, deepspeed = 0;
  std::ostringstream o;
  for (const auto& r : h.runs) {
    ASSERT_TRUE(r.supported) << r.id << ": " << r.note;
    o << "  " << r.id << " " << r.error_pct << "%\n";
    if (r.id.rfind("mtnlg", 0) == 0 || r.id.rfind("bloom", 0) == 0) {
      ++deepspeed;
      continue;
    }
    sum += std::fabs(r.error_pct);
    ++n;
    EXPECT_LE(std::fabs(r.error_pct), kMaxErrorTargetPct) << r.id;
    if (r.id == "nemo2407-gpt3-175b-512gpu-fp8") {
      EXPECT_EQ(r.report.plan.recompute, strategies::Recompute::none) << r.id;
    }
  }
  EXPECT_EQ(n, 15);
  EXPECT_EQ(deepspeed, 4);
  EXPECT_LE(sum / n, 6.0) << o.str();
}

}  // namespace
