// libFuzzer target: a model YAML file (model::parse_model), then the model costed on selene-a100
// with two plans (single GPU, and tp=8 x pp=2 when they divide).
#include "tests/fuzz/fuzz_common.hpp"

using namespace scaleplan;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const hw::Cluster cluster = hw::load_cluster("selene-a100");
  fuzz::expect_typed_errors([&] {
    const model::ModelSpec m = model::parse_model(fuzz::text_of(data, size), "fuzz-model.yaml");
    const analytic::Estimator est(m, cluster);
    fuzz::cost_plan(est, strategies::parse_plan("mbs=1,gbs=1"), 1);
    fuzz::cost_plan(est, strategies::parse_plan("tp=8,pp=2,mbs=1,sp=on,recompute=selective"), 16);
  });
  return 0;
}
