// plan-cluster's speed target (issue 19): 5 node types x 40 GPU counts x 4 networks (800 options,
// each a plan search and a goodput model) within 5 s on 2 cores.
#include <benchmark/benchmark.h>

#include "common/presets.hpp"
#include "hardware/network_preset.hpp"
#include "simulator/search/plan_cluster.hpp"

namespace {

using namespace scaleplan;

void BM_PlanCluster(benchmark::State& state) {
  const model::ModelSpec m = model::load_model("llama3-405b");
  std::vector<hw::Cluster> clusters;
  for (const char* node : {"dgx-h100", "meta-h100-roce", "selene-a100", "dgx-a100-40gb", "dgx1-v100"})
    for (const char* net : {"ib-ndr400-rail", "ib-hdr200-fat-tree", "roce400-clos-7to1", "efa400-per-node"})
      clusters.push_back(hw::with_network(hw::load_cluster(node), hw::load_network_preset(net)));
  const std::vector<long long> counts = search::auto_gpu_counts(64, 32768, 40, 8);
  search::PlanClusterSpec spec;
  spec.tokens = 15.6e12;
  spec.deadline_days = 90;
  spec.batch.model = search::batch_model(m, search::Optimizer::adam);
  spec.batch.gbs = search::noise_batch_sequences(spec.batch.model, m.seq);
  spec.threads = static_cast<int>(state.range(0));
  size_t options = 0, with_plan = 0;
  for (auto _ : state) {
    const search::PlanClusterResult r = search::plan_cluster(m, clusters, counts, spec);
    options = r.options.size();
    with_plan = 0;
    for (const auto& o : r.options) with_plan += o.ok ? 1 : 0;
    benchmark::DoNotOptimize(r.options.data());
  }
  state.counters["options"] = static_cast<double>(options);
  state.counters["with_plan"] = static_cast<double>(with_plan);
}
BENCHMARK(BM_PlanCluster)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
