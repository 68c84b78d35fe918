// Golden-ish tests of the real binary (DESIGN.md sec. 3 CLI contract): `estimate --json` keys,
// model-state bytes to the byte, infeasible plans, `validate --json`. Fitted time values are not
// pinned (they change as the efficiency model is fitted); only their presence and sign.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "support/run_cli.hpp"

namespace {

using nlohmann::json;
using scaleplan::testing::CliResult;
using scaleplan::testing::run_cli;
using scaleplan::testing::split_args;

// Runs the binary and parses stdout as exactly one JSON object (nothing else on stdout).
json run_json(const std::string& args, int expected_exit, CliResult* out = nullptr) {
  const CliResult r = run_cli(split_args(args));
  if (out) *out = r;
  EXPECT_EQ(r.signal, 0) << "scaleplan " << args << "\n" << r.describe();
  EXPECT_EQ(r.exit_code, expected_exit) << "scaleplan " << args << "\n" << r.describe();
  json j;
  try {
    j = json::parse(r.out);  // throws on trailing garbage: one object, nothing else
  } catch (const std::exception& e) {
    ADD_FAILURE() << "stdout is not one JSON document: " << e.what() << "\nscaleplan " << args << "\n" << r.describe();
    return json::object();
  }
  EXPECT_TRUE(j.is_object()) << "scaleplan " << args;
  return j;
}

void expect_keys(const json& j, const char* section, std::initializer_list<const char*> keys, bool numbers = true) {
  ASSERT_TRUE(j.contains(section)) << "missing '" << section << "'";
  ASSERT_TRUE(j[section].is_object()) << "'" << section << "' is not an object";
  for (const char* k : keys) {
    ASSERT_TRUE(j[section].contains(k)) << "missing '" << section << "." << k << "'";
    if (numbers) {
      EXPECT_TRUE(j[section][k].is_number()) << section << "." << k << " is not a number";
      if (j[section][k].is_number()) {
        EXPECT_TRUE(std::isfinite(j[section][k].get<double>())) << section << "." << k;
        EXPECT_GE(j[section][k].get<double>(), 0.0) << section << "." << k;
      }
    }
  }
}

void expect_contract(const json& j) {
  ASSERT_TRUE(j.contains("feasible"));
  EXPECT_TRUE(j["feasible"].is_boolean());
  ASSERT_TRUE(j.contains("reason"));
  EXPECT_TRUE(j["reason"].is_string());
  expect_keys(j, "plan", {"dp", "tp", "pp", "vpp", "mbs", "gbs", "cp", "ep"});
  expect_keys(j, "plan", {"tp_mode", "sp", "cp_algo", "schedule", "recompute", "zero", "offload", "precision"}, false);
  expect_keys(j, "memory", {"params", "grads", "optimizer", "activations", "buffers", "total", "capacity", "host", "nvme"});
  expect_keys(j, "time", {"step_s", "compute_s", "comm_exposed_s", "bubble_s", "offload_exposed_s"});
  expect_keys(j, "comm_bytes_per_gpu", {"tp", "pp", "dp", "cp", "ep"});
  expect_keys(j, "throughput", {"tokens_per_s", "model_tflops_per_gpu", "hw_tflops_per_gpu", "mfu", "hfu"});
}

void expect_rel(double actual, double expected, double rel = 1e-12) {
  EXPECT_NEAR(actual, expected, std::fabs(expected) * rel) << "actual " << actual << " expected " << expected;
}

const char* kMegatron =
    "estimate --model gpt3-175b --cluster selene-a100 --gpus 1024 --plan tp=8,pp=16,mbs=1,gbs=1536,recompute=full --json";

TEST(EstimateJson, MegatronGpt3HasEveryContractKey) {
  const json j = run_json(kMegatron, 0);
  expect_contract(j);
  EXPECT_TRUE(j["feasible"].get<bool>());
  EXPECT_EQ(j["reason"], "");
  EXPECT_EQ(j["plan"]["dp"], 8);
  EXPECT_EQ(j["plan"]["tp"], 8);
  EXPECT_EQ(j["plan"]["pp"], 16);
  EXPECT_EQ(j["plan"]["mbs"], 1);
  EXPECT_EQ(j["plan"]["gbs"], 1536);
  EXPECT_EQ(j["plan"]["recompute"], "full");
  EXPECT_EQ(j["plan"]["precision"], "bf16");
  EXPECT_EQ(j["plan"]["zero"], 0);
}

// Params per GPU on pipeline stage 0 (GPT, Megatron sharding): each of the L/p layers holds
// (12h^2 + 7h)/t (QKV and FC1 weights and biases, proj and FC2 weights split by t) + 6h (proj and FC2
// biases, two LayerNorms: replicated); the first stage adds the word embedding V*h/t and the learned
// position embedding s*h. Bytes for zero=0 mixed precision: 2 (params), 2 (grads), 12 (optimizer).
TEST(EstimateJson, MegatronGpt3ModelStatesToTheByte) {
  const json j = run_json(kMegatron, 0);
  const double L = 96, h = 12288, V = 50257, s = 2048, t = 8, p = 16;
  const double P0 = (L / p) * ((12 * h * h + 7 * h) / t + 6 * h) + V * h / t + s * h;
  EXPECT_EQ(P0, 1461821952.0);
  const auto& m = j["memory"];
  expect_rel(m["params"].get<double>(), 2 * P0);
  expect_rel(m["grads"].get<double>(), 2 * P0);
  expect_rel(m["optimizer"].get<double>(), 12 * P0);
  // total is the sum of the categories; capacity is the A100 80GB HBM.
  expect_rel(m["total"].get<double>(), m["params"].get<double>() + m["grads"].get<double>() + m["optimizer"].get<double>() +
                                           m["activations"].get<double>() + m["buffers"].get<double>());
  EXPECT_EQ(m["capacity"].get<double>(), 80.0 * 1024 * 1024 * 1024);
  EXPECT_LE(m["total"].get<double>(), m["capacity"].get<double>());
}

TEST(EstimateJson, MegatronGpt3FlopsAndThroughputAreConsistent) {
  const json j = run_json(kMegatron, 0);
  const double L = 96, h = 12288, V = 50257, s = 2048, B = 1536, gpus = 1024;
  const double model_flops = 72 * B * L * s * h * h * (1 + s / (6 * h) + V / (12 * h * L));  // Korthikanti App. A
  const double step = j["time"]["step_s"].get<double>();
  ASSERT_GT(step, 0);
  expect_rel(j["throughput"]["model_tflops_per_gpu"].get<double>(), model_flops / step / gpus / 1e12, 1e-9);
  expect_rel(j["throughput"]["tokens_per_s"].get<double>(), B * s / step, 1e-9);
  expect_rel(j["throughput"]["mfu"].get<double>(), model_flops / step / gpus / 312e12, 1e-9);
  // Full recompute: hardware FLOPs add one forward of every layer (Korthikanti sec. 6).
  const double hw_flops = model_flops + B * L * (24 * s * h * h + 4 * s * s * h);
  expect_rel(j["throughput"]["hw_tflops_per_gpu"].get<double>(), hw_flops / step / gpus / 1e12, 1e-9);
  EXPECT_GE(j["throughput"]["hfu"].get<double>(), j["throughput"]["mfu"].get<double>());
  EXPECT_LE(j["throughput"]["hfu"].get<double>(), 1.0);
  // The step is at least its compute.
  EXPECT_GE(step, j["time"]["compute_s"].get<double>());
}

TEST(EstimateJson, MegatronGpt3CommBytes) {
  const json j = run_json(kMegatron, 0);
  const double h = 12288, s = 2048, b = 1, t = 8, m = 1536 / 8;
  // Pipeline: one activation send forward and one backward per microbatch (scatter/gather: /t), 2 bytes.
  expect_rel(j["comm_bytes_per_gpu"]["pp"].get<double>(), m * 2 * (2 * b * s * h / t));
  EXPECT_GT(j["comm_bytes_per_gpu"]["tp"].get<double>(), 0);
  EXPECT_GT(j["comm_bytes_per_gpu"]["dp"].get<double>(), 0);
  EXPECT_EQ(j["comm_bytes_per_gpu"]["cp"].get<double>(), 0);
  EXPECT_EQ(j["comm_bytes_per_gpu"]["ep"].get<double>(), 0);
}

TEST(EstimateJson, ZeroShardsTheOptimizerAcrossDp) {
  const json z0 = run_json("estimate --model gpt3-13b --cluster selene-a100 --gpus 64 --plan tp=8,zero=0 --json", 0);
  const json z1 = run_json("estimate --model gpt3-13b --cluster selene-a100 --gpus 64 --plan tp=8,zero=1 --json", 0);
  const json z3 = run_json("estimate --model gpt3-13b --cluster selene-a100 --gpus 64 --plan tp=8,zero=3 --json", 0);
  const double opt0 = z0["memory"]["optimizer"].get<double>();
  expect_rel(z1["memory"]["optimizer"].get<double>(), opt0 / 8);  // dp = 64 / 8
  expect_rel(z1["memory"]["params"].get<double>(), z0["memory"]["params"].get<double>());
  expect_rel(z3["memory"]["optimizer"].get<double>(), opt0 / 8);
  EXPECT_LT(z3["memory"]["params"].get<double>(), z0["memory"]["params"].get<double>());
}

TEST(EstimateJson, InfeasiblePlanExitsOneWithTheReason) {
  const json j = run_json("estimate --model gpt3-175b --cluster selene-a100 --gpus 1024 --plan tp=1,pp=1 --json", 1);
  expect_contract(j);
  EXPECT_FALSE(j["feasible"].get<bool>());
  const std::string reason = j["reason"].get<std::string>();
  EXPECT_NE(reason.find("out of memory"), std::string::npos) << reason;
  EXPECT_GT(j["memory"]["total"].get<double>(), j["memory"]["capacity"].get<double>());
  // Whole model states on one GPU: 16 bytes per parameter.
  const double P = 174604259328.0;
  expect_rel(j["memory"]["params"].get<double>() + j["memory"]["grads"].get<double>() + j["memory"]["optimizer"].get<double>(), 16 * P);
}

TEST(EstimateText, PrintsABreakdownAndExitsZero) {
  const CliResult r =
      run_cli(split_args("estimate --model gpt3-175b --cluster selene-a100 --gpus 1024 --plan tp=8,pp=16,mbs=1,gbs=1536,recompute=full"));
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("gpt3-175b"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("selene-a100"), std::string::npos) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST(EstimateText, InfeasibleSaysWhy) {
  const CliResult r = run_cli(split_args("estimate --model gpt3-175b --cluster selene-a100 --gpus 1024 --plan tp=1,pp=1"));
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.out.find("out of memory"), std::string::npos) << r.out;
}

TEST(EstimateJson, PlanPresetFileGivesTheSameAnswer) {
  const json a = run_json(kMegatron, 0);
  const json b = run_json("estimate --model gpt3-175b --cluster selene-a100 --gpus 1024 --plan megatron-gpt3-175b --json", 0);
  EXPECT_EQ(a["plan"], b["plan"]);
  EXPECT_EQ(a["memory"], b["memory"]);
}

TEST(EstimateJson, ModelAndClusterByPath) {
  const std::string dir = SCALEPLAN_SOURCE_DIR;
  const json a = run_json("estimate --model " + dir + "/configs/models/gpt3-175b.yaml --cluster " + dir +
                              "/configs/clusters/selene-a100.yaml --gpus 1024 --plan tp=8,pp=16,mbs=1,gbs=1536,recompute=full --json",
                          0);
  const json b = run_json(kMegatron, 0);
  EXPECT_EQ(a["memory"], b["memory"]);
}

TEST(EstimateJson, EveryRequiredClusterAnswers) {
  for (const char* c : {"dgx1-v100", "dgx2-v100", "dgx-a100-40gb", "selene-a100", "dgx-h100", "meta-h100-roce"}) {
    CliResult r;
    const json j = run_json(std::string("estimate --model gpt3-1.3b --cluster ") + c + " --gpus 16 --plan tp=2 --json", 0, &r);
    expect_contract(j);
    EXPECT_GT(j["time"]["step_s"].get<double>(), 0) << c;
  }
}

TEST(ValidateJson, HasRunsAndErrors) {
  const json j = run_json("validate --json", 0);
  ASSERT_TRUE(j.contains("mape_pct"));
  ASSERT_TRUE(j.contains("max_error_pct"));
  ASSERT_TRUE(j.contains("runs"));
  EXPECT_TRUE(j["mape_pct"].is_number());
  EXPECT_TRUE(j["max_error_pct"].is_number());
  ASSERT_TRUE(j["runs"].is_array());
  EXPECT_GE(j["runs"].size(), 20u);
  for (const auto& r : j["runs"]) {
    for (const char* k : {"id", "metric", "published", "predicted", "error_pct"}) EXPECT_TRUE(r.contains(k)) << k;
    EXPECT_TRUE(r["id"].is_string());
    EXPECT_TRUE(r["published"].is_number());
    EXPECT_TRUE(r["predicted"].is_number());
    if (r["published"].get<double>() != 0 && r["predicted"].is_number())
      expect_rel(std::fabs(r["error_pct"].get<double>()),
                 std::fabs(100.0 * (r["predicted"].get<double>() - r["published"].get<double>()) / r["published"].get<double>()), 1e-6);
  }
  EXPECT_GE(j["max_error_pct"].get<double>(), 0.0);
  EXPECT_LE(j["mape_pct"].get<double>(), j["max_error_pct"].get<double>());
}

// `estimate --compare tp_mode` (issue 5): one row per tensor-parallel mode at the same GPU count,
// each the contract report or the plan rule that mode breaks.
TEST(EstimateCompare, TpModeJsonAndText) {
  const std::string args =
      "estimate --model gpt3-175b --cluster selene-a100 --gpus 1024 --plan tp=8,pp=8,mbs=4,gbs=1536,recompute=full --compare tp_mode";
  const json j = run_json(args + " --json", 0);
  ASSERT_TRUE(j.contains("rows"));
  ASSERT_EQ(j["rows"].size(), 4u);
  const char* modes[] = {"1d", "2d", "2.5d", "3d"};
  for (int i = 0; i < 4; ++i) {
    const json& r = j["rows"][i];
    EXPECT_EQ(r["tp_mode"], modes[i]);
    if (i == 1) {  // tp = 8 is not a square
      EXPECT_FALSE(r["valid"].get<bool>());
      EXPECT_NE(r["reason"].get<std::string>().find("q^2"), std::string::npos);
      continue;
    }
    ASSERT_TRUE(r["valid"].get<bool>()) << r.dump();
    expect_contract(r["report"]);
    EXPECT_EQ(r["report"]["plan"]["tp_mode"], modes[i]);
    EXPECT_EQ(r["report"]["plan"]["dp"], 16);
    EXPECT_GT(r["report"]["comm_bytes_per_gpu"]["tp"].get<double>(), 0);
  }
  EXPECT_EQ(j["rows"][2]["tp_depth"], 2);  // 8 = 2 x 2^2
  EXPECT_EQ(j["rows"][3]["grid_q"], 2);    // 8 = 2^3
  // Grid modes split every activation over the 8 ranks: less activation memory than 1d without SP.
  EXPECT_LT(j["rows"][3]["report"]["memory"]["activations"].get<double>(), j["rows"][0]["report"]["memory"]["activations"].get<double>());
  const CliResult t = run_cli(split_args(args));
  EXPECT_EQ(t.exit_code, 0) << t.describe();
  for (const char* s : {"1d ", "2d    n/a", "2.5d ", "3d ", "q=2 (2^3)"}) EXPECT_NE(t.out.find(s), std::string::npos) << s << "\n" << t.out;
}

TEST(Usage, HelpExitsZero) {
  const CliResult r = run_cli({"--help"});
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("estimate"), std::string::npos);
}

// ---- capacity (issue 6; DESIGN.md sec. 3 "capacity --json") ----
TEST(CapacityJson, HasTheContractKeysForEveryStrategy) {
  const json j = run_json("capacity --cluster dgx2-v100 --gpus 16 --json", 0);
  EXPECT_EQ(j["cluster"], "dgx2-v100");
  EXPECT_EQ(j["gpus"], 16);
  ASSERT_TRUE(j["strategies"].is_array());
  const char* names[] = {"ddp", "zero1", "zero2", "zero3", "zero_offload", "zero3_offload", "zero_infinity", "chunked"};
  ASSERT_EQ(j["strategies"].size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    const json& e = j["strategies"][i];
    EXPECT_EQ(e["strategy"], names[i]);
    EXPECT_GT(e["max_params"].get<double>(), 0) << names[i];
    EXPECT_GT(e["model"]["layers"].get<long long>(), 0) << names[i];
    EXPECT_EQ(e["model"]["hidden"].get<long long>() % 128, 0) << names[i];
    EXPECT_GT(e["tokens_per_s"].get<double>(), 0) << names[i];
  }
  // Sharding more never shrinks the largest model; offloading the weights beats keeping them.
  EXPECT_LT(j["strategies"][0]["max_params"].get<double>(), j["strategies"][1]["max_params"].get<double>());
  EXPECT_LT(j["strategies"][1]["max_params"].get<double>(), j["strategies"][2]["max_params"].get<double>());
  EXPECT_LT(j["strategies"][3]["max_params"].get<double>(), j["strategies"][5]["max_params"].get<double>());
  // The largest model's own estimate agrees: offload plans report host memory.
  EXPECT_GT(j["strategies"][5]["memory"]["host"].get<double>(), 0);
  EXPECT_EQ(j["strategies"][5]["binding"], "host");
}

TEST(CapacityJson, UnavailableStrategySaysWhy) {
  const json j = run_json("capacity --cluster yard-v100 --gpus 8 --json", 0);
  const json& e = j["strategies"][6];
  EXPECT_EQ(e["strategy"], "zero_infinity");
  EXPECT_EQ(e["available"], false);
  EXPECT_EQ(e["max_params"], 0);
  EXPECT_NE(e["reason"].get<std::string>().find("needs NVMe"), std::string::npos);
}

TEST(CapacityText, PrintsOneRowPerStrategy) {
  const CliResult r = run_cli(split_args("capacity --cluster dgx2-v100 --gpus 1"));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  for (const char* s : {"ddp", "zero1", "zero2", "zero3", "zero_offload", "zero3_offload", "zero_infinity", "chunked"})
    EXPECT_NE(r.out.find(std::string("\n") + s + " "), std::string::npos) << s << "\n" << r.out;
  EXPECT_NE(r.out.find("next size refused by"), std::string::npos);
}

TEST(EstimateJson, OffloadPlanReportsHostAndExposedTime) {
  const json j = run_json("estimate --model gpt3-13b --cluster dgx2-v100 --gpus 1 --seq 1024 --plan zero=2,offload=optimizer,recompute=full --json", 0);
  expect_contract(j);
  EXPECT_EQ(j["plan"]["offload"], "optimizer");
  EXPECT_GT(j["memory"]["host"].get<double>(), 0);
  EXPECT_GT(j["time"]["offload_exposed_s"].get<double>(), 0);
  EXPECT_GT(j["offload"]["pcie_bytes"].get<double>(), 0);
  // 13B does not fit one V100 without offload (16 B/param).
  const json n = run_json("estimate --model gpt3-13b --cluster dgx2-v100 --gpus 1 --seq 1024 --plan zero=2,recompute=full --json", 1);
  EXPECT_FALSE(n["feasible"].get<bool>());
}

TEST(EstimateJson, HostOverflowExitsOneAndNamesTheHost) {
  const json j = run_json("estimate --model gpt3-175b --cluster yard-v100 --gpus 8 --plan zero=3,offload=params --json", 1);
  EXPECT_NE(j["reason"].get<std::string>().find("out of host memory"), std::string::npos) << j["reason"];
}

}  // namespace

// `validate --cv group --json` (DESIGN.md sec. 6): the cross-validated error beside the fitted one,
// per group; every row lists its inferred fields ("assumed") and the out-of-memory mark.
TEST(ValidateJson, CrossValidationByGroup) {
  const json j = run_json("validate --cv group --json", 0);
  for (const char* k : {"mape_pct", "cv_mape_pct", "cv_max_error_pct", "cv_groups", "mape_pct_without_oom", "oom", "refused"})
    EXPECT_TRUE(j.contains(k)) << k;
  ASSERT_TRUE(j["cv_groups"].is_array());
  ASSERT_GE(j["cv_groups"].size(), 3u);
  int runs = 0;
  for (const auto& g : j["cv_groups"]) {
    for (const char* k : {"group", "runs", "mape_pct"}) EXPECT_TRUE(g.contains(k)) << k;
    runs += g["runs"].get<int>();
  }
  EXPECT_EQ(runs, j["counted"].get<int>());
  EXPECT_GE(j["cv_max_error_pct"].get<double>(), j["cv_mape_pct"].get<double>());
  for (const auto& r : j["runs"]) {
    EXPECT_TRUE(r["assumed"].is_array()) << r["id"];
    EXPECT_TRUE(r.contains("oom")) << r["id"];
    EXPECT_TRUE(r.contains("cv_error_pct")) << r["id"];
  }
}
