#pragma once
// A minimal stack file in the shape of the llm-foundry FSDP stacks (no tensor or pipeline parallelism,
// ZeRO 0/2/3, full recompute, bf16, FlashAttention-2), with `efficiency_lines` appended under
// `efficiency:` after `attention: flash2`: the llm-foundry stack inputs are parsed from it in their tests.
#include <string>

namespace scaleplan::test_support {

inline std::string stack_fsdp_yaml(const std::string& efficiency_lines) {
  return "name: t\nframework: f\nversion: v\ndate: '2024-01'\n"
         "capabilities:\n  tensor_parallel: []\n  sequence_parallel: false\n  pipeline_schedules: []\n"
         "  recompute: [none, full]\n  context_parallel: []\n  zero_stages: [0, 2, 3]\n  offload: [none]\n"
         "  precisions: [bf16]\n  expert_parallel: false\n  tp_comm_overlap: false\n"
         "efficiency:\n  attention: flash2\n" +
         efficiency_lines;
}

}  // namespace scaleplan::test_support
