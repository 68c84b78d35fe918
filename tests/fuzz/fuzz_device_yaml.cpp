// libFuzzer target: a device YAML file (hw::parse_device), then gpt3-1.3b costed on selene-a100
// with that device in place of the A100.
#include "tests/fuzz/fuzz_common.hpp"

using namespace scaleplan;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const model::ModelSpec model = model::load_model("gpt3-1.3b");
  static const hw::Cluster base = hw::load_cluster("selene-a100");
  fuzz::expect_typed_errors([&] {
    hw::Cluster c = base;
    c.device = hw::parse_device(fuzz::text_of(data, size), "fuzz-device.yaml");
    const analytic::Estimator est(model, c);
    fuzz::cost_plan(est, strategies::parse_plan("tp=8,mbs=2"), 8);
    fuzz::cost_plan(est, strategies::parse_plan("zero=3,offload=params"), 8);
  });
  return 0;
}
