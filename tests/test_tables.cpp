// Tables that add up and do not repeat (issue 16.4) and the MFU sanity flag (16.5): one search row
// per cost and memory, its equivalents listed and truly equal; the MFU ceilings are data with a
// source, and a plan above its device's is flagged.
#include <gtest/gtest.h>

#include <string>

#include "simulator/search/search.hpp"
#include "strategies/plan.hpp"
#include "validation/mfu_ceiling.hpp"

namespace {

using namespace scaleplan;

TEST(SearchRows, IdenticalCostPlansAreOneRowWithTheirEquivalents) {
  const model::ModelSpec m = model::load_model("llama3-70b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const analytic::Estimator est(m, c);
  search::SearchSpec spec;
  spec.gpus = 10000;
  spec.gbs = {2000};
  spec.top_k = 10;
  spec.pareto = false;
  const search::SearchResult r = search::run_search(est, spec);
  ASSERT_EQ(r.top.size(), 10u);
  int with_equivalents = 0;
  for (size_t i = 0; i < r.top.size(); ++i) {
    const auto& a = r.top[i];
    for (size_t j = i + 1; j < r.top.size(); ++j) {
      const auto& b = r.top[j];
      EXPECT_FALSE(a.metrics.time.step_s == b.metrics.time.step_s && a.metrics.memory.total() == b.metrics.memory.total())
          << "rows " << i << " and " << j << " repeat";
    }
    EXPECT_LE(a.equivalents.size(), search::kMaxEquivalents);
    for (const auto& q : a.equivalents) {
      const auto x = est.evaluate(strategies::resolve_plan(q, m, c, 10000));
      EXPECT_EQ(x.time.step_s, a.metrics.time.step_s) << q.to_string();
      EXPECT_EQ(x.memory.total(), a.metrics.memory.total()) << q.to_string();
      EXPECT_LT(search::compare_plans(a.plan, q), 0);  // the row shows the smallest plan
    }
    with_equivalents += a.equivalents.empty() ? 0 : 1;
  }
  EXPECT_GT(with_equivalents, 0);  // recompute none and selective under flash attention, at least
  // The same answer on one thread (the merge is order-independent).
  spec.threads = 1;
  const search::SearchResult one = search::run_search(est, spec);
  ASSERT_EQ(one.top.size(), r.top.size());
  for (size_t i = 0; i < r.top.size(); ++i) {
    EXPECT_EQ(one.top[i].plan.to_string(), r.top[i].plan.to_string());
    ASSERT_EQ(one.top[i].equivalents.size(), r.top[i].equivalents.size());
    for (size_t k = 0; k < r.top[i].equivalents.size(); ++k)
      EXPECT_EQ(one.top[i].equivalents[k].to_string(), r.top[i].equivalents[k].to_string());
  }
}

TEST(MfuCeiling, PublishedBestPerDeviceWithSource) {
  const auto a100 = validation::mfu_ceiling("a100-80gb");
  ASSERT_TRUE(a100.has_value());
  EXPECT_DOUBLE_EQ(a100->mfu, 0.563);  // Korthikanti et al. 2022 Table 5, 1T: MFU 56.3%
  EXPECT_NE(a100->source.find("2205.05198"), std::string::npos);
  const auto h100 = validation::mfu_ceiling("h100-sxm-80gb");
  ASSERT_TRUE(h100.has_value());
  EXPECT_DOUBLE_EQ(h100->mfu, 0.43);  // Llama 3 Table 4, 8,192 GPUs: 43%
  EXPECT_TRUE(validation::mfu_flag("a100-80gb", 0.55).empty());
  const std::string f = validation::mfu_flag("a100-80gb", 0.59);
  EXPECT_NE(f.find("59.0%"), std::string::npos) << f;
  EXPECT_NE(f.find("kor22-t5-1t-selective-sp"), std::string::npos) << f;
  EXPECT_TRUE(validation::mfu_flag("no-such-device", 0.99).empty());
}

}  // namespace
