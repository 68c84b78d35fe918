// Scaling answers that are physically sound (issue 16.5): `scale --gbs auto` for Llama 3 70B on
// dgx-h100 from 200 to 20,000 GPUs. Efficiency (speedup / GPU ratio) may rise with the GPU count
// only where the report names why; and no point may claim a step below its pipeline's critical
// path (the zero-bubble m < p plan that made efficiency rise from 5k to 10k GPUs before issue 16).
#include <gtest/gtest.h>

#include <cstdio>

#include "simulator/search/scale.hpp"
#include "strategies/pipeline.hpp"
#include "strategies/plan_label.hpp"

namespace {

using namespace scaleplan;

TEST(ScaleEfficiency, Llama70bFrom200To20000GpusNeverRisesUnexplained) {
  const model::ModelSpec m = model::load_model("llama3-70b");
  const hw::Cluster c = hw::load_cluster("dgx-h100");
  const analytic::Estimator est(m, c);
  search::SearchSpec base;
  base.top_k = 1;
  base.pareto = false;
  base.threads = 2;
  search::BatchChoice b;
  b.automatic = true;
  b.model = search::batch_model(m, search::Optimizer::adam);
  const std::vector<long long> counts = {200, 500, 1000, 2000, 5000, 10000, 20000};
  const search::ScaleResult r = search::run_scale(est, base, b, counts, 0);
  const search::ScalePoint* prev = nullptr;
  for (const auto& p : r.points) {
    ASSERT_TRUE(p.at.ok()) << p.at.requested;
    const auto& x = p.at.best();
    std::printf("%6lld GPUs  eff %.3f  gbs %lld  MFU %.1f%%  %s  %s\n", p.at.used, p.efficiency, x.plan.gbs, 100 * x.metrics.throughput.mfu,
                strategies::short_label(x.plan).c_str(), p.efficiency_note.c_str());
    const double m_b = static_cast<double>(x.plan.microbatches());
    EXPECT_GE(x.metrics.time.step_s * (1 + 1e-9), strategies::pipeline_lower_bound(x.metrics.stages, x.plan.microbatches()));
    EXPECT_GE(x.metrics.time.step_s * (1 + 1e-9), m_b * x.metrics.stages.max_s);
    if (prev && p.efficiency > prev->efficiency * (1 + 1e-9)) {
      EXPECT_FALSE(p.efficiency_note.empty()) << p.at.used << " GPUs: efficiency rises without a note";
    }
    if (prev) EXPECT_LE(p.efficiency, 1.0 + 1e-9);  // never super-linear against the smallest count
    prev = &p;
  }
}

}  // namespace
