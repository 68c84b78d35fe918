// `scaleplan simulate` (issue 7) through the real binary: the estimate contract keys plus the
// simulation and link sections, the Chrome trace file, and typed errors for bad input.
#include <gtest/gtest.h>

#include <cstdio>
#include <algorithm>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "support/run_cli.hpp"

namespace {

using nlohmann::json;
using scaleplan::testing::CliResult;
using scaleplan::testing::run_cli;
using scaleplan::testing::split_args;

const char* kArgs = "simulate --model gpt3-2.7b --cluster selene-a100 --gpus 64 --plan tp=2,pp=4,mbs=1,gbs=32";

TEST(SimulateCli, JsonHasTheEstimateKeysAndTheSimulation) {
  const CliResult r = run_cli(split_args(std::string(kArgs) + " --json"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const json j = json::parse(r.out);  // exactly one JSON document on stdout
  for (const char* k : {"feasible", "reason", "plan", "memory", "time", "comm_bytes_per_gpu", "throughput"}) EXPECT_TRUE(j.contains(k)) << k;
  for (const char* k : {"step_s", "compute_s", "comm_exposed_s", "bubble_s", "offload_exposed_s"}) {
    ASSERT_TRUE(j["time"].contains(k)) << k;
    EXPECT_GE(j["time"][k].get<double>(), 0) << k;
  }
  const double step = j["time"]["step_s"].get<double>();
  EXPECT_GT(step, 0);
  // The breakdown adds up to the step (bubble = step - compute - exposed communication).
  EXPECT_NEAR(j["time"]["compute_s"].get<double>() + j["time"]["comm_exposed_s"].get<double>() + j["time"]["bubble_s"].get<double>(), step,
              1e-9 * step);
  ASSERT_TRUE(j.contains("simulation"));
  EXPECT_EQ(j["simulation"]["total_ranks"].get<long long>(), 64);
  EXPECT_EQ(j["simulation"]["simulated_ranks"].get<long long>(), 4);  // one rank per pipeline stage
  EXPECT_NEAR(step / j["simulation"]["analytic_step_s"].get<double>(), 1.0, 0.05);
  ASSERT_TRUE(j.contains("links") && j["links"].is_array());
  bool nic = false;
  for (const auto& l : j["links"]) {
    EXPECT_GE(l["mean_utilization"].get<double>(), 0);
    EXPECT_LE(l["max_utilization"].get<double>(), 1.0 + 1e-9);
    EXPECT_LE(l["mean_utilization"].get<double>(), l["max_utilization"].get<double>() + 1e-12);
    nic = nic || l["tier"] == "nic";
  }
  EXPECT_TRUE(nic);
}

TEST(SimulateCli, WritesAChromeTrace) {
  const std::string path = ::testing::TempDir() + "scaleplan_sim_trace.json";
  std::remove(path.c_str());
  const CliResult r = run_cli(split_args(std::string(kArgs) + " --trace " + path));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("simulated"), std::string::npos);
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  const json t = json::parse(ss.str());
  ASSERT_TRUE(t.contains("traceEvents"));
  int x = 0;
  std::set<std::string> cats;
  for (const auto& e : t["traceEvents"])
    if (e["ph"] == "X") {
      ++x;
      cats.insert(e["cat"].get<std::string>());
    }
  EXPECT_GT(x, 4 * 8 * 2);  // 4 ranks x 8 microbatches x (F, B) at least
  EXPECT_TRUE(cats.count("compute"));
  EXPECT_TRUE(cats.count("idle"));
  EXPECT_TRUE(cats.count("comm"));
}

TEST(SimulateCli, BadInputIsExitTwoWithOneLine) {
  for (const char* args : {"simulate --model gpt3-2.7b --cluster selene-a100 --gpus 64 --plan tp=3,pp=4",
                           "simulate --model gpt3-2.7b --cluster selene-a100 --gpus 64 --plan tp=2,bogus=1",
                           "simulate --model no-such-model --cluster selene-a100 --gpus 64 --plan tp=2",
                           "simulate --model gpt3-2.7b --cluster selene-a100 --gpus 64 --plan tp=2,pp=4,vpp=2,schedule=interleaved,gbs=48"}) {
    const CliResult r = run_cli(split_args(args));
    EXPECT_EQ(r.signal, 0) << args << "\n" << r.describe();
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.describe();
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace

// Plans the rank programs do not model yet are refused with the key named, never timed as
// another plan: zero_bubble with all-gather CP, expert parallelism with ZeRO-3, offload.
TEST(SimulateCli, UnmodelledPlanPartsAreRefusedByKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"simulate --model gpt3-2.7b --cluster selene-a100 --gpus 64 --plan tp=8,cp=2,pp=4,schedule=zero_bubble,cp_algo=allgather,gbs=64", "'schedule'"},
      {"simulate --model mixtral-8x7b --cluster selene-a100 --gpus 64 --plan tp=2,pp=4,ep=2,zero=3,gbs=64", "'ep'"},
      {"simulate --model gpt3-2.7b --cluster selene-a100 --gpus 8 --plan tp=1,zero=2,offload=optimizer,gbs=64", "'offload'"}};
  for (const auto& [args, key] : cases) {
    const CliResult r = run_cli(split_args(args));
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.describe();
    EXPECT_NE(r.err.find(key), std::string::npos) << args << "\n" << r.err;
    EXPECT_NE(r.err.find("simulate does not model"), std::string::npos) << r.err;
  }
}

// Issue 17 (docs/reliability.md "Bounded work"): a step whose rank programs would hold more than
// 4e6 pipeline operations is refused up front with the figure (2 x pp 2 x vpp 1 x 2^21
// microbatches), instead of growing for minutes.
TEST(SimulateCli, TooManyPipelineOperationsAreRefusedWithTheFigure) {
  const CliResult r = run_cli(split_args("simulate --model gpt3-1.3b --cluster selene-a100 --gpus 16 --plan dp=8,pp=2,gbs=16777216"));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("plan key 'gbs': simulate would schedule 8388608 pipeline operations"), std::string::npos) << r.err;
}
