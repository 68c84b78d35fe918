// libFuzzer target: a plan string (strategies::parse_plan), resolved and costed for gpt3-175b on
// selene-a100 (GPU count derived from the plan) and for mixtral-8x7b on dgx-h100 (MoE: ep, cp).
#include "tests/fuzz/fuzz_common.hpp"

using namespace scaleplan;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const analytic::Estimator gpt(model::load_model("gpt3-175b"), hw::load_cluster("selene-a100"));
  static const analytic::Estimator moe(model::load_model("mixtral-8x7b"), hw::load_cluster("dgx-h100"));
  fuzz::expect_typed_errors([&] {
    const strategies::Plan p = strategies::parse_plan(fuzz::text_of(data, size));
    fuzz::cost_plan(gpt, p, 0);
    fuzz::cost_plan(moe, p, 0);
  });
  return 0;
}
