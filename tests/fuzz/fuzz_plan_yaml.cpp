// libFuzzer target: a plan YAML file (strategies::parse_plan_yaml), resolved and costed for
// gpt3-175b on selene-a100 (GPU count derived from the plan).
#include "tests/fuzz/fuzz_common.hpp"

using namespace scaleplan;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const analytic::Estimator gpt(model::load_model("gpt3-175b"), hw::load_cluster("selene-a100"));
  fuzz::expect_typed_errors([&] {
    const strategies::Plan p = strategies::parse_plan_yaml(fuzz::text_of(data, size), "fuzz-plan.yaml");
    fuzz::cost_plan(gpt, p, 0);
  });
  return 0;
}
