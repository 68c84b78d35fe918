// Serving validation (issue 20): the `kind: serve` rows of validation/serve_runs.yaml (60 published TensorRT-LLM
// H100/H200 FP8 throughput cells, Llama 3.1 8B / 3.3 70B / 3.1 405B) predicted by the serving cost model with
// nothing fitted per row. Targets (issue 20): MAPE <= 15%, max |error| <= 30%; both hold since the CUDA-graph
// padding of decode batches and the communication buffers outside the KV pool (docs/serve.md "Validation":
// MAPE 10.31% -> 7.21%, max 42.08% -> 23.46%, with the best of several candidate batches per row). Each row now
// runs one batch, the one the benchmark ran: min(trtllm-bench's max_batch_size heuristic, the KV fit)
// (validation/trtllm_bench.hpp): MAPE 6.60%, max 25.36%. Asserted at the measured values (ratchet).
#include <gtest/gtest.h>

#include <cmath>

#include "validation/runs.hpp"

namespace {

using namespace scaleplan;

TEST(ServeValidation, PublishedServingThroughput) {
  const validation::RunsFile f = validation::load_runs(std::string(SCALEPLAN_SOURCE_DIR) + "/validation/serve_runs.yaml");
  ASSERT_GE(f.serve_runs.size(), 15u);
  EXPECT_TRUE(f.runs.empty());  // no training rows in this file
  const validation::ValidationSummary s = validation::validate(f);
  ASSERT_EQ(s.counted, static_cast<int>(f.serve_runs.size()));
  for (const auto& r : s.runs) {
    EXPECT_EQ(r.metric.rfind("output_tokens_per_s", 0), 0u) << r.metric;
    EXPECT_TRUE(r.feasible) << r.id << ": " << r.note;
    EXPECT_GT(r.predicted, 0) << r.id;
  }
  EXPECT_LE(s.mape_pct, 6.82);        // measured 6.82% (6.60% before the stop-30 refit of the device efficiencies, 6.71% before the H200's
                                      // nvidia-smi capacity 140.4 GiB; target 15%)
  EXPECT_LE(s.max_error_pct, 25.5);   // measured 25.36% (target 30%)
}

// A runs file may mix training and serving rows; the training rows are predicted as before.
TEST(ServeValidation, ServeRowBesideTrainingRows) {
  const validation::RunsFile shared = validation::load_runs("");
  EXPECT_TRUE(shared.serve_runs.empty());
  EXPECT_FALSE(shared.runs.empty());
}

}  // namespace

// The TensorRT-LLM v0.9.0 table (static batching at a published batch; validation/serve_runs_trtllm090.yaml):
// the dense rows (Llama 2 7B / 70B, H100/H200 FP8) within MAPE 15% (measured 14.1%); the Mixtral rows are a
// known gap of the MoE path (over-predicted 1.1-3x, docs/serve.md), reported, not asserted.
TEST(ServeValidation, TensorRtLlm090DenseRows) {
  const validation::RunsFile f =
      validation::load_runs(std::string(SCALEPLAN_SOURCE_DIR) + "/validation/serve_runs_trtllm090.yaml");
  ASSERT_EQ(f.serve_runs.size(), 24u);
  const validation::ValidationSummary s = validation::validate(f);
  double sum = 0;
  int n = 0;
  for (const auto& r : s.runs) {
    EXPECT_EQ(r.metric, "output_tokens_per_s_per_gpu");
    EXPECT_TRUE(r.feasible) << r.id << ": " << r.note;  // the published batch fits the memory model
    if (r.id.find("mixtral") != std::string::npos) continue;
    sum += std::fabs(r.error_pct);
    ++n;
  }
  ASSERT_EQ(n, 16);
  EXPECT_LE(sum / n, 14.24);  // measured 14.23% (14.13% before the stop-30 refit; target 15%)
}
