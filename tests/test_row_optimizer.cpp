// A validation row's strategy `optimizer:` names the run's model-state layout (strategies::recipe_named).
#include <gtest/gtest.h>

#include <string>

#include "validation/runs.hpp"

namespace {

using namespace scaleplan;

const std::string kRow = R"(runs:
- id: x
  stack: nemo-2024
  model: {name: gpt-1.7b, layers: 24, hidden: 2304, heads: 24, ffn: 9216, vocab: 51200, seq: 2048}
  hardware: {gpus: 8}
  cluster: {preset: dgx-h100}
  strategy: {tp: 1, pp: 1, dp: 8, microbatch: 1, global_batch: 64, recompute: none, sequence_parallel: false, zero_stage: 1, precision: bf16OPT}
  result: {iteration_time_s: 1.0}
)";

validation::RunsFile parse(const std::string& opt) {
  std::string t = kRow;
  return validation::parse_runs(t.replace(t.find("OPT"), 3, opt), "r.yaml");
}

TEST(RowOptimizer, NamesTheModelStateLayout) {
  const auto base = validation::predict_run(parse("").runs.at(0));
  const auto apex = validation::predict_run(parse(", optimizer: apex-distributed-adam-bf16").runs.at(0));
  ASSERT_TRUE(base.supported && apex.supported);
  // Same parameter count P on the GPU: zero-paper 2 + 2 + 12/8 B/param, Apex bf16 2 + 2 + 4/8.
  const double P = base.report.memory.params / 2;
  EXPECT_DOUBLE_EQ(base.report.memory.optimizer, 12 * P / 8);
  EXPECT_DOUBLE_EQ(apex.report.memory.params, 2 * P);
  EXPECT_DOUBLE_EQ(apex.report.memory.grads, 2 * P);
  EXPECT_DOUBLE_EQ(apex.report.memory.optimizer, 4 * P / 8);
}

TEST(RowOptimizer, UnknownLayoutIsRefusedWithItsField) {
  const auto f = parse(", optimizer: adamw8bit");
  ASSERT_EQ(f.runs.size(), 1u);
  EXPECT_NE(f.runs[0].refused.find("optimizer"), std::string::npos) << f.runs[0].refused;
  EXPECT_NE(f.runs[0].refused.find("r.yaml:7:"), std::string::npos) << f.runs[0].refused;
}

}  // namespace
