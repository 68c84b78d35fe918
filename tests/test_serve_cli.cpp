// `scaleplan serve` through the real binary (DESIGN.md sec. 6; issue 20): the JSON keys and units, exit codes
// 0/1/2, bad inputs naming their flag, and the answer time for 8 to 64 GPUs.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "support/run_cli.hpp"

namespace {

using nlohmann::json;
using scaleplan::testing::CliResult;
using scaleplan::testing::run_cli;
using scaleplan::testing::split_args;

CliResult serve(const std::string& args) { return run_cli(split_args("serve " + args)); }

TEST(ServeCli, JsonKeys) {
  const CliResult r = serve("--model llama3-70b --cluster dgx-h100 --gpus 8 --prompt-tokens 1000 --output-tokens 500 --precision fp8 --json");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const json j = json::parse(r.out);  // one JSON object, nothing else on stdout
  EXPECT_TRUE(j.at("feasible").get<bool>());
  EXPECT_EQ(j.at("reason").get<std::string>(), "");
  for (const char* k : {"tp", "pp", "ep", "dp", "batch"}) EXPECT_TRUE(j.at("plan").contains(k)) << k;
  EXPECT_EQ(j["plan"]["tp"].get<int>() * j["plan"]["pp"].get<int>() * j["plan"]["dp"].get<int>(), 8);
  const json& m = j.at("memory");
  for (const char* k : {"weights", "kv_cache", "activations", "buffers", "total", "capacity"}) EXPECT_GT(m.at(k).get<double>(), 0) << k;
  EXPECT_NEAR(m["total"].get<double>(),
              m["weights"].get<double>() + m["kv_cache"].get<double>() + m["activations"].get<double>() + m["buffers"].get<double>(), 1.0);
  EXPECT_LE(m["total"].get<double>(), m["capacity"].get<double>());
  EXPECT_DOUBLE_EQ(m["capacity"].get<double>(), 80.0 * 1024 * 1024 * 1024);  // bytes (SI edge: the preset's 80 GiB)
  // kv_cache = batch x (prompt + output) tokens x bytes per token per GPU (FP8 KV, 80 layers, 8 KV heads of 128 over tp).
  const int tp = j["plan"]["tp"], pp = j["plan"]["pp"];
  const double per_tok = 2.0 * 8 * 128 * (80.0 / pp) * 1 / std::min(tp, 8);
  EXPECT_DOUBLE_EQ(m["kv_cache"].get<double>(), j["plan"]["batch"].get<double>() * 1500 * per_tok);
  for (const char* k : {"ttft_s", "tpot_s", "e2e_s"}) EXPECT_GT(j.at("latency").at(k).get<double>(), 0) << k;
  EXPECT_LT(j["latency"]["tpot_s"].get<double>(), 1.0);  // seconds, not ms
  for (const char* k : {"tokens_per_s_per_gpu", "usd_per_m_tokens"}) EXPECT_GT(j.at("throughput").at(k).get<double>(), 0) << k;
  ASSERT_TRUE(j.at("pareto").is_array());
  EXPECT_GE(j["pareto"].size(), 2u);
}

TEST(ServeCli, InfeasibleIsExitOneWithReason) {
  // An SLO no layout meets: a result, not an error.
  const CliResult r = serve("--model llama3-70b --cluster dgx-h100 --gpus 8 --prompt-tokens 1000 --output-tokens 500 --tpot-slo-ms 0.5 --json");
  ASSERT_EQ(r.exit_code, 1) << r.describe();
  const json j = json::parse(r.out);
  EXPECT_FALSE(j["feasible"].get<bool>());
  EXPECT_NE(j["reason"].get<std::string>().find("SLO"), std::string::npos);
  // Weights that do not fit: Llama 3 405B in bf16 (810 GB) on 8 H100s.
  const CliResult oom = serve("--model llama3-405b --cluster dgx-h100 --gpus 8 --prompt-tokens 100 --output-tokens 100 --precision bf16");
  EXPECT_EQ(oom.exit_code, 1) << oom.describe();
  EXPECT_NE(oom.out.find("out of memory"), std::string::npos) << oom.out;
}

// Bad input: exit 2, the message names the flag.
// A cluster without a price (dgx-b200) has no cost per token, not a zero one.
TEST(ServeCli, UnpricedClusterSaysCostUnknown) {
  const auto r = scaleplan::testing::run_cli(scaleplan::testing::split_args(
      "serve --model llama3-8b --cluster dgx-b200 --gpus 8 --prompt-tokens 512 --output-tokens 128"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("cost unknown (the cluster sets no price_usd_per_gpu_hour)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("0.000 USD"), std::string::npos) << r.out;
}

TEST(ServeCli, BadInputsNameTheFlag) {
  struct Case {
    const char* args;
    const char* flag;
  };
  const Case cases[] = {
      {"--model llama3-8b --cluster dgx-h100 --gpus 1 --prompt-tokens 9000 --output-tokens 10", "--prompt-tokens"},
      {"--model llama3-8b --cluster dgx-h100 --gpus 1 --prompt-tokens 8000 --output-tokens 500", "--output-tokens"},
      {"--model llama3-8b --cluster dgx-h100 --gpus 1 --prompt-tokens 100 --output-tokens 10 --precision fp4", "--precision"},
      {"--model llama3-70b --cluster dgx-h100 --gpus 8 --prompt-tokens 4000 --output-tokens 4000 --batch 100000", "--batch"},
      {"--model llama3-8b --cluster dgx-h100 --gpus 1 --prompt-tokens 100 --output-tokens 10 --batch lots", "--batch"},
      {"--model llama3-8b --cluster dgx-a100-40gb --gpus 1 --prompt-tokens 100 --output-tokens 10 --precision fp8", "--precision"},
      {"--model llama3-8b --cluster dgx-h100 --gpus 0 --prompt-tokens 100 --output-tokens 10", "--gpus"},
  };
  for (const Case& c : cases) {
    const CliResult r = serve(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.describe();
    EXPECT_NE(r.err.find(c.flag), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_EQ(r.signal, 0);
  }
}

// The training estimator does not cost MLA / DeepSeekMoE yet: `estimate` refuses DeepSeek-V3 (exit 2) and
// points to `serve`, rather than answering with dense-FFN shapes.
TEST(ServeCli, TrainingEstimateRefusesMlaModels) {
  const CliResult r = run_cli(split_args("estimate --model deepseek-v3 --cluster dgx-h200 --gpus 8 --plan tp=8"));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("serve"), std::string::npos) << r.err;
}

// Issue 20: `serve` answers in < 1 s for 8 to 64 GPUs (the whole process, search included).
TEST(ServeCli, AnswersWithinOneSecond) {
  for (const char* g : {"8", "16", "32", "64"}) {
    for (const char* model : {"llama3-70b", "deepseek-v3"}) {
      const auto t0 = std::chrono::steady_clock::now();
      const CliResult r = serve(std::string("--model ") + model + " --cluster dgx-h200 --gpus " + g +
                                " --prompt-tokens 2000 --output-tokens 500 --json");
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      EXPECT_EQ(r.exit_code, 0) << model << " " << g << "\n" << r.describe();
      EXPECT_LT(s, 1.0) << model << " on " << g << " GPUs took " << s << " s";
    }
  }
}

}  // namespace
