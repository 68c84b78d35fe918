// libFuzzer target: a cluster YAML file (hw::parse_cluster, with inline or preset devices), then
// gpt3-1.3b costed on it over one node and over two nodes.
#include "tests/fuzz/fuzz_common.hpp"

using namespace scaleplan;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const model::ModelSpec model = model::load_model("gpt3-1.3b");
  fuzz::expect_typed_errors([&] {
    const hw::Cluster c = hw::parse_cluster(fuzz::text_of(data, size), "fuzz-cluster.yaml");
    const analytic::Estimator est(model, c);
    fuzz::cost_plan(est, strategies::parse_plan("mbs=1"), c.gpus_per_node);
    fuzz::cost_plan(est, strategies::parse_plan("tp=2,pp=2,zero=1"), 2LL * c.gpus_per_node);
  });
  return 0;
}
