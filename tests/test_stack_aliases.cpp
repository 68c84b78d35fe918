// Framework family names in a runs file's `stack:` (issue 15.3, unknown fields inferred and said): "nemo",
// "Megatron-LM", "torchtitan" ... resolve to the stack preset that ran at the row's date
// (hw::resolve_stack_name: the preset answering the name with the latest `alias_from` <= the row's month),
// and the row says so; on the command line a family name is refused with its stacks named.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "common/errors.hpp"
#include "hardware/device.hpp"
#include "hardware/stack.hpp"
#include "validation/runs.hpp"

namespace {

using namespace scaleplan;

int month(int y, int m) { return y * 12 + (m - 1); }

// Whether one of the row's `assumed` lines contains `text`.
bool says(const validation::RunSpec& r, const std::string& text) {
  for (const std::string& a : r.assumed)
    if (a.find(text) != std::string::npos) return true;
  return false;
}

// Loads a runs file written from `yaml` (in the test's temp dir) and removes it.
validation::RunsFile runs_from(const std::string& name, const std::string& yaml) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << yaml;
  validation::RunsFile rf = validation::load_runs(path);
  return rf;
}

TEST(StackAliases, PresetNamesAndFilesPassThrough) {
  std::string note;
  EXPECT_EQ(hw::resolve_stack_name("nemo-2024", month(2021, 1), &note), "nemo-2024");
  EXPECT_EQ(hw::resolve_stack_name("my/stack.yaml", 0, &note), "my/stack.yaml");
  EXPECT_EQ(hw::resolve_stack_name("no-such-framework", month(2024, 1), &note), "no-such-framework");
  EXPECT_TRUE(note.empty());
}

TEST(StackAliases, FamilyResolvesByTheRowsMonth) {
  std::string note;
  EXPECT_EQ(hw::resolve_stack_name("NeMo", month(2024, 7), &note), "nemo-2024");
  EXPECT_NE(note.find("stack NeMo -> nemo-2024"), std::string::npos) << note;
  EXPECT_EQ(hw::resolve_stack_name("nemo", month(2025, 11), nullptr), "megatron-core-2025");
  EXPECT_EQ(hw::resolve_stack_name("Megatron-LM", month(2021, 4), nullptr), "megatron-lm-2021");
  EXPECT_EQ(hw::resolve_stack_name("megatron_lm", month(2019, 9), nullptr), "megatron-lm-2019");
  EXPECT_EQ(hw::resolve_stack_name("megatron-lm", month(2020, 9), nullptr), "megatron-lm-2020");
  EXPECT_EQ(hw::resolve_stack_name("megatron-lm", month(2024, 7), nullptr), "megatron-core-2024");
  EXPECT_EQ(hw::resolve_stack_name("NeoX", month(2022, 4), nullptr), "gpt-neox-2022");
  EXPECT_EQ(hw::resolve_stack_name("GPT-NeoX", month(2022, 4), nullptr), "GPT-NeoX");  // a preset's own name wins
  EXPECT_EQ(hw::resolve_stack_name("llm-foundry", month(2024, 1), nullptr), "llm-foundry-fsdp-2023-10");
  EXPECT_EQ(hw::resolve_stack_name("torchtitan", month(2025, 1), nullptr), "torchtitan-fsdp2");
  // Before every preset answering it: the earliest; no date: the latest.
  note.clear();
  EXPECT_EQ(hw::resolve_stack_name("megatron-lm", month(2018, 1), &note), "megatron-lm-2019");
  EXPECT_NE(note.find("predates it"), std::string::npos) << note;
  EXPECT_EQ(hw::resolve_stack_name("megatron-lm", 0, &note), "megatron-core-2025");
  EXPECT_NE(note.find("no date"), std::string::npos) << note;
}

TEST(StackAliases, CommandLineNamesTheFamilysStacks) {
  try {
    (void)hw::load_stack("nemo");
    FAIL() << "a family name is not a stack preset";
  } catch (const UsageError& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("framework family"), std::string::npos) << w;
    EXPECT_NE(w.find("megatron-core-2025, nemo-2024"), std::string::npos) << w;
  }
}

TEST(StackAliases, RunsFileRowSaysWhichStackItTook) {
  std::ostringstream yaml;
  yaml << "runs:\n"
       "- id: sc21-alias\n"
       "  source: Narayanan et al. SC21 Table 1\n"
       "  stack: Megatron-LM\n"
       "  model: {name: gpt-1.7b, layers: 24, hidden: 2304, heads: 24, vocab: 51200, seq: 2048}\n"
       "  hardware: {gpu: a100-80gb, gpus: 32}\n"
       "  cluster: {preset: selene-a100}\n"
       "  strategy: {tp: 1, pp: 1, dp: 32, microbatch: 16, global_batch: 512}\n"
       "  result: {tflops_per_gpu: 137}\n";
  const validation::RunsFile rf = runs_from("stack_alias_runs.yaml", yaml.str());
  ASSERT_EQ(rf.runs.size(), 1u);
  const validation::RunSpec& r = rf.runs.front();
  EXPECT_TRUE(r.refused.empty()) << r.refused;
  EXPECT_EQ(r.cluster.sw.stack, "megatron-lm-2021");
  EXPECT_TRUE(says(r, "stack Megatron-LM -> megatron-lm-2021"));
}

// A row with no `stack:` takes the framework its source names (the most specific name first), at its date.
TEST(StackAliases, SourceTextNamesTheStack) {
  const auto first = [](const std::string& text, int m) {
    const auto all = hw::stacks_named_in(text, m);
    return all.empty() ? std::string() : all.front().stack;
  };
  EXPECT_EQ(first("Narayanan et al., SC21 'Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM'",
                  month(2021, 11)),
            "megatron-lm-2021");
  // "Megatron-Turing" outranks "DeepSpeed" and "Megatron": MT-NLG ran Megatron-DeepSpeed.
  EXPECT_EQ(first("Smith et al. 2022, 'Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B'", month(2022, 1)),
            "megatron-deepspeed");
  EXPECT_EQ(first("NVIDIA-NeMo/Megatron-Bridge docs/performance-summary-archive.md, '25.11 NeMo Container'", month(2025, 11)),
            "megatron-core-2025");
  EXPECT_EQ(first("NVIDIA NeMo 24.07 performance summary", month(2024, 7)), "nemo-2024");
  EXPECT_EQ(first("Black et al. 2022 + EleutherAI/gpt-neox configs/20B.yml", month(2022, 4)), "gpt-neox-2022");
  EXPECT_EQ(first("pytorch/torchtitan docs/performance.md", month(2025, 1)), "torchtitan-fsdp2");
  EXPECT_EQ(first("Korthikanti et al. 2022 'Reducing Activation Recomputation in Large Transformer Models'", month(2022, 5)), "");
  EXPECT_EQ(first("the nemotron model", month(2024, 1)), "");  // a word that only contains an alias does not name it
}

TEST(StackAliases, InferredStackMustRunThePublishedPlan) {
  std::ostringstream yaml;
  // The source names Megatron-LM (longest) and ZeRO-3; megatron-lm-2021 has no ZeRO-3, deepspeed-zero has.
  yaml << "runs:\n"
       "- id: zero3-row\n"
       "  source: 'SC21 (Megatron-LM paper) Table 2, ZeRO-3 without Model Parallelism'\n"
       "  model: {name: gpt-175b, layers: 96, hidden: 12288, heads: 96, vocab: 51200, seq: 2048}\n"
       "  hardware: {gpu: a100-80gb, gpus: 384}\n"
       "  cluster: {preset: selene-a100}\n"
       "  strategy: {tp: 1, pp: 1, dp: 384, microbatch: 4, global_batch: 1536, zero_stage: 3, recompute: full}\n"
       "  result: {tflops_per_gpu: 144}\n"
       "- id: plain-row\n"
       "  source: 'SC21 (Megatron-LM paper) Table 1'\n"
       "  model: {name: gpt-1.7b, layers: 24, hidden: 2304, heads: 24, vocab: 51200, seq: 2048}\n"
       "  hardware: {gpu: a100-80gb, gpus: 32}\n"
       "  cluster: {preset: selene-a100}\n"
       "  strategy: {tp: 1, pp: 1, dp: 32, microbatch: 16, global_batch: 512}\n"
       "  result: {tflops_per_gpu: 137}\n";
  const validation::RunsFile rf = runs_from("stack_infer_runs.yaml", yaml.str());
  ASSERT_EQ(rf.runs.size(), 2u);
  EXPECT_EQ(rf.runs[0].cluster.sw.stack, "deepspeed-zero");
  EXPECT_EQ(rf.runs[1].cluster.sw.stack, "megatron-lm-2021");
  EXPECT_TRUE(says(rf.runs[1], "stack inferred from the source, which names 'megatron-lm'"));
}

// A family name takes, among the presets answering it by the row's date, the first that can run the row's
// published strategy: "DeepSpeed" is Megatron-DeepSpeed for a pipeline run, DeepSpeed ZeRO for a ZeRO-3 run.
TEST(StackAliases, FamilyTakesAStackThatRunsThePlan) {
  std::ostringstream yaml;
  const char* model = "  model: {name: gpt-175b, layers: 96, hidden: 12288, heads: 96, vocab: 51200, seq: 2048}\n";
  yaml << "runs:\n- id: pipeline\n  source: x\n  date: '2022-01'\n  stack: DeepSpeed\n" << model
    << "  hardware: {gpu: a100-80gb, gpus: 384}\n  cluster: {preset: selene-a100}\n"
       "  strategy: {tp: 8, pp: 12, dp: 4, microbatch: 1, global_batch: 1536, recompute: full}\n  result: {tflops_per_gpu: 120}\n"
    << "- id: zero3\n  source: x\n  date: '2022-01'\n  stack: DeepSpeed\n" << model
    << "  hardware: {gpu: a100-80gb, gpus: 384}\n  cluster: {preset: selene-a100}\n"
       "  strategy: {tp: 1, pp: 1, dp: 384, microbatch: 4, global_batch: 1536, zero_stage: 3, recompute: full}\n"
       "  result: {tflops_per_gpu: 144}\n";
  const validation::RunsFile rf = runs_from("family_plan_runs.yaml", yaml.str());
  ASSERT_EQ(rf.runs.size(), 2u);
  EXPECT_EQ(rf.runs[0].cluster.sw.stack, "megatron-deepspeed");
  EXPECT_EQ(rf.runs[1].cluster.sw.stack, "deepspeed-zero");
  EXPECT_TRUE(says(rf.runs[1], "cannot run the published strategy"));
}

// hardware.gpu as a source writes it names the device preset (when the row gives no cluster.device).
TEST(StackAliases, HardwareGpuNamesTheDevice) {
  EXPECT_EQ(hw::device_named_in("h100-80gb"), "h100-sxm-80gb");  // an alias
  EXPECT_EQ(hw::device_named_in("NVIDIA A100-SXM4-80GB"), "a100-80gb");
  EXPECT_EQ(hw::device_named_in("A100 40GB"), "a100-40gb");
  EXPECT_EQ(hw::device_named_in("H100 96GB HBM2e, 500 W"), "h100-96gb-hbm2e-500w");
  EXPECT_EQ(hw::device_named_in("NVIDIA H100 SXM5"), "h100-sxm-80gb");  // no size: the family's own alias
  EXPECT_EQ(hw::device_named_in("GB200 NVL72"), "gb200");
  EXPECT_EQ(hw::device_named_in("B200"), "b200");
  EXPECT_EQ(hw::device_named_in("Tesla V100-SXM3-32GB"), "v100-32gb");
  EXPECT_EQ(hw::device_named_in("MI300X"), "");
  EXPECT_EQ(hw::device_named_in(""), "");
}

TEST(StackAliases, RowGpuReplacesTheClusterPresetsDevice) {
  std::ostringstream yaml;
  yaml << "runs:\n"
       "- id: tt\n"
       "  source: 'pytorch/torchtitan docs/performance.md (2025-01)'\n"
       "  model: {name: llama3-8b, layers: 32, hidden: 4096, heads: 32, kv_heads: 8, ffn: 14336, vocab: 128256, seq: 8192}\n"
       "  hardware: {gpu: 'H100 96GB HBM2e (500 W)', gpus: 8}\n"
       "  cluster: {preset: meta-h100-roce}\n"
       "  strategy: {tp: 1, pp: 1, dp: 8, microbatch: 2, global_batch: 16, zero_stage: 3}\n"
       "  result: {iteration_time_s: 2.84}\n";
  const validation::RunsFile rf = runs_from("row_gpu_runs.yaml", yaml.str());
  ASSERT_EQ(rf.runs.size(), 1u);
  EXPECT_EQ(rf.runs[0].cluster.device.name, "h100-96gb-hbm2e-500w");
  EXPECT_EQ(rf.runs[0].cluster.sw.stack, "torchtitan-fsdp2");
  EXPECT_TRUE(says(rf.runs[0], "device h100-96gb-hbm2e-500w from hardware.gpu"));
}

// A row naming no cluster preset, or one scaleplan lacks, runs on the reference system of its hardware.gpu
// (an NVIDIA DGX preset first, then a SuperPOD); with neither it is refused with the reason.
TEST(StackAliases, ClusterFromHardwareGpu) {
  std::ostringstream yaml;
  const char* model = "  model: {name: llama3-8b, layers: 32, hidden: 4096, heads: 32, kv_heads: 8, ffn: 14336, vocab: 128256, seq: 8192}\n";
  const char* rest = "  strategy: {tp: 1, pp: 1, dp: 8, microbatch: 1, global_batch: 64}\n  result: {iteration_time_s: 30}\n";
  yaml << "runs:\n- id: unknown-preset\n  source: x\n" << model << "  hardware: {gpu: GB200, gpus: 8}\n  cluster: {preset: dgx-gb200}\n" << rest
    << "- id: no-cluster\n  source: x\n" << model << "  hardware: {gpu: NVIDIA A100 80GB, gpus: 8}\n" << rest
    << "- id: h100\n  source: x\n" << model << "  hardware: {gpu: H100 SXM, gpus: 8}\n" << rest
    << "- id: nothing\n  source: x\n" << model << "  hardware: {gpus: 8}\n" << rest;
  const validation::RunsFile rf = runs_from("row_cluster_runs.yaml", yaml.str());
  ASSERT_EQ(rf.runs.size(), 4u);
  EXPECT_EQ(rf.runs[0].cluster.name, "gb200-nvl72");
  EXPECT_NE(rf.runs[0].assumed.front().find("unknown cluster preset 'dgx-gb200'"), std::string::npos);
  EXPECT_EQ(rf.runs[1].cluster.name, "superpod-a100-80gb");
  EXPECT_EQ(rf.runs[2].cluster.name, "dgx-h100");
  EXPECT_NE(rf.runs[3].refused.find("is required"), std::string::npos) << rf.runs[3].refused;
}

}  // namespace
