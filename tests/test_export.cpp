// `scaleplan export` (issue 18): every flag / key an export writes exists in the framework version it
// names (lists in tests/data/export/, taken from each framework's own argument definitions, sources
// in their headers), the values carry the plan, and plans a framework cannot express are refused
// naming the plan dimension.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>
#include <set>
#include <string>

#include "cli/export.hpp"
#include "support/run_cli.hpp"

namespace {

using scaleplan::cli::ExportInput;
using scaleplan::cli::ExportRefused;
using scaleplan::cli::export_plan;
using scaleplan::testing::run_cli;
using scaleplan::testing::split_args;
namespace sp = scaleplan::strategies;

std::set<std::string> names_in(const std::string& file) {
  std::ifstream f(std::string(SCALEPLAN_SOURCE_DIR) + "/tests/data/export/" + file);
  EXPECT_TRUE(f.good()) << file;
  std::set<std::string> out;
  for (std::string line; std::getline(f, line);)
    if (!line.empty() && line[0] != '#') out.insert(line);
  return out;
}

const std::map<std::string, std::string> kNameLists = {{"megatron", "megatron-core_v0.12.0.flags"},
                                                       {"nemo", "nemo-8cfedd7.keys"},
                                                       {"deepspeed", "deepspeed-38327e0.keys"},
                                                       {"torchtitan", "torchtitan-v0.2.0.keys"}};

struct Case {
  const char* model;
  const char* cluster;
  long long gpus;
  const char* plan;
};

// Plans each framework can express (per format), over dense GPT/Llama and MoE models.
const std::map<std::string, std::vector<Case>> kExpressible = {
    {"megatron",
     {{"gpt3-175b", "selene-a100", 1024, "tp=8,pp=16,mbs=1,gbs=1536,recompute=full"},
      {"gpt3-175b", "selene-a100", 1024, "tp=8,pp=8,vpp=12,mbs=1,gbs=1536,sp=on,recompute=selective,zero=1,schedule=interleaved"},
      {"llama3-70b", "dgx-h100", 512, "tp=8,pp=4,cp=2,mbs=1,gbs=512,sp=on,zero=1,precision=fp8,cp_algo=allgather"},
      {"mixtral-8x7b", "dgx-h100", 64, "tp=2,pp=1,ep=8,mbs=1,gbs=256,sp=on,zero=3"}}},
    {"nemo",
     {{"gpt3-175b", "selene-a100", 1024, "tp=8,pp=16,mbs=1,gbs=1536,recompute=full"},
      {"llama3-70b", "dgx-h100", 512, "tp=8,pp=4,vpp=5,cp=2,mbs=1,gbs=512,sp=on,zero=1,precision=fp8,schedule=interleaved"}}},
    {"deepspeed",
     {{"gpt3-13b", "selene-a100", 64, "zero=3,offload=params,mbs=1,gbs=512,recompute=full"},
      {"gpt3-1.3b", "selene-a100", 8, "zero=2,offload=optimizer,mbs=4,gbs=256,precision=fp16"}}},
    {"torchtitan",
     {{"llama3-70b", "dgx-h100", 256, "tp=8,pp=4,mbs=1,gbs=256,sp=on,zero=3,schedule=gpipe"},
      {"llama3-8b", "dgx-h100", 64, "tp=2,cp=2,mbs=1,gbs=128,sp=on,zero=2,recompute=full,precision=fp8"},
      {"llama3-70b", "dgx-h100", 512, "tp=8,pp=8,vpp=5,mbs=1,gbs=512,sp=on,zero=3,schedule=interleaved"}}},
};

scaleplan::cli::ExportResult export_case(const std::string& format, const Case& c) {
  const auto m = scaleplan::model::load_model(c.model);
  const auto cl = scaleplan::hw::load_cluster(c.cluster);
  const auto p = sp::resolve_plan(sp::parse_plan(c.plan), m, cl, c.gpus);
  return export_plan(format, ExportInput{m, cl, p});
}

TEST(Export, EveryNameExistsInTheFrameworkVersion) {
  for (const auto& [format, cases] : kExpressible) {
    const auto valid = names_in(kNameLists.at(format));
    ASSERT_GT(valid.size(), 50u) << format;
    for (const auto& c : cases) {
      const auto r = export_case(format, c);
      EXPECT_FALSE(r.keys.empty()) << format << " " << c.plan;
      for (const auto& k : r.keys) EXPECT_TRUE(valid.count(k)) << format << " writes '" << k << "', which " << r.framework_version << " does not define (plan " << c.plan << ")";
    }
  }
}

TEST(Export, MegatronCarriesThePlan) {
  const auto r = export_case("megatron", kExpressible.at("megatron")[1]);
  for (const char* want : {"--tensor-model-parallel-size 8", "--pipeline-model-parallel-size 8", "--num-layers-per-virtual-pipeline-stage 1",
                           "--sequence-parallel", "--recompute-granularity selective", "--use-distributed-optimizer", "--micro-batch-size 1",
                           "--global-batch-size 1536", "--num-layers 96", "--hidden-size 12288", "--nnodes 128"})
    EXPECT_NE(r.text.find(want), std::string::npos) << want << "\n" << r.text;
}

TEST(Export, TorchtitanBatchPerDataParallelRank) {
  // llama3-70b, 256 GPUs, tp 8 pp 4 -> dp 8; gbs 256 -> local_batch_size 32.
  const auto r = export_case("torchtitan", kExpressible.at("torchtitan")[0]);
  for (const char* want : {"[parallelism]", "data_parallel_shard_degree = 8", "tensor_parallel_degree = 8", "pipeline_parallel_schedule = \"GPipe\"",
                           "local_batch_size = 32", "global_batch_size = 256", "[activation_checkpoint]"})
    EXPECT_NE(r.text.find(want), std::string::npos) << want << "\n" << r.text;
}

TEST(Export, DeepSpeedConfigIsJsonWithAccumulation) {
  // gpt3-1.3b on 8 GPUs, gbs 256, mbs 4 -> 256 / (4 x 8) = 8 accumulation steps.
  const auto r = export_case("deepspeed", kExpressible.at("deepspeed")[1]);
  const auto j = nlohmann::json::parse(r.text);
  EXPECT_EQ(j["train_batch_size"], 256);
  EXPECT_EQ(j["gradient_accumulation_steps"], 8);
  EXPECT_EQ(j["zero_optimization"]["stage"], 2);
  EXPECT_EQ(j["zero_optimization"]["offload_optimizer"]["device"], "cpu");
  EXPECT_EQ(j["fp16"]["enabled"], true);
}

TEST(Export, RefusalsNameThePlanDimension) {
  const std::vector<std::tuple<std::string, Case, std::string>> refused = {
      {"megatron", {"gpt3-175b", "selene-a100", 1024, "tp=16,tp_mode=2d,pp=4,mbs=4,gbs=1536"}, "tp_mode"},
      {"megatron", {"gpt3-175b", "selene-a100", 1024, "tp=8,pp=16,mbs=1,gbs=1536,schedule=gpipe"}, "schedule"},
      {"deepspeed", {"gpt3-175b", "selene-a100", 1024, "tp=8,pp=16,mbs=1,gbs=1536"}, "tp"},
      {"nemo", {"gpt3-13b", "selene-a100", 64, "zero=3,mbs=1,gbs=512"}, "zero"},
      {"torchtitan", {"gpt3-13b", "selene-a100", 64, "zero=1,mbs=1,gbs=512"}, "zero"},
      {"torchtitan", {"llama3-8b", "dgx-h100", 64, "tp=8,mbs=1,gbs=128"}, "sp"},
  };
  for (const auto& [format, c, key] : refused) {
    try {
      export_case(format, c);
      ADD_FAILURE() << format << " accepted " << c.plan;
    } catch (const ExportRefused& e) {
      EXPECT_EQ(e.key(), key) << format << " " << c.plan << ": " << e.what();
    }
  }
}

TEST(ExportCli, ExitCodes) {
  const auto ok = run_cli(split_args("export --format torchtitan --model llama3-8b --cluster dgx-h100 --gpus 64 --plan tp=2,sp=on,zero=3,mbs=1,gbs=128"));
  EXPECT_EQ(ok.exit_code, 0) << ok.describe();
  EXPECT_NE(ok.out.find("[parallelism]"), std::string::npos) << ok.out;
  const auto refused = run_cli(split_args("export --format deepspeed --model gpt3-175b --cluster selene-a100 --gpus 1024 --plan tp=8,pp=16,gbs=1536"));
  EXPECT_EQ(refused.exit_code, 1) << refused.describe();
  EXPECT_NE(refused.err.find("tp"), std::string::npos) << refused.err;
  const auto bad = run_cli(split_args("export --format jax --model gpt3-175b --cluster selene-a100 --gpus 1024 --plan tp=8,pp=16,gbs=1536"));
  EXPECT_EQ(bad.exit_code, 2) << bad.describe();
  EXPECT_NE(bad.err.find("--format"), std::string::npos) << bad.err;
}

TEST(ExportCli, SearchExportsItsBestPlan) {
  const auto r = run_cli(split_args("search --model gpt3-1.3b --cluster selene-a100 --gpus 8 --gbs 256 --export megatron"));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out.find("# scaleplan export: Megatron-LM"), 0u) << r.out;
  EXPECT_NE(r.err.find("best: "), std::string::npos) << r.err;
}

}  // namespace
