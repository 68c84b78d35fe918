#pragma once
// A minimal stack file in the shape of the 2019 Megatron-LM stack (tensor parallelism, fp16, full
// recompute, unfused attention), with `efficiency_lines` appended under `efficiency:`: the stack
// inputs of configs/stacks/megatron-lm-2019.yaml are parsed from it in their tests.
#include <string>

namespace scaleplan::test_support {

inline std::string stack_2019_yaml(const std::string& efficiency_lines) {
  return "name: t\nframework: f\nversion: v\ndate: '2019-09'\n"
         "capabilities:\n  tensor_parallel: [1d]\n  sequence_parallel: false\n  pipeline_schedules: []\n"
         "  recompute: [none, full]\n  context_parallel: []\n  zero_stages: [0]\n  offload: [none]\n"
         "  precisions: [fp16]\n  expert_parallel: false\n  tp_comm_overlap: false\n"
         "efficiency:\n  attention: unfused\n" +
         efficiency_lines;
}

}  // namespace scaleplan::test_support
