// The CLI of issue 19: budget/scale's goodput block (DESIGN.md sec. 6), --failures none = the
// failure-free figures, search --objective time-to-train, plan-cluster's answers and exit codes.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/run_cli.hpp"

namespace {

using nlohmann::json;
using scaleplan::testing::CliResult;
using scaleplan::testing::run_cli;
using scaleplan::testing::split_args;

json run_json(const std::string& args, int expected_exit) {
  const CliResult r = run_cli(split_args(args));
  EXPECT_EQ(r.signal, 0) << "scaleplan " << args << "\n" << r.describe();
  EXPECT_EQ(r.exit_code, expected_exit) << "scaleplan " << args << "\n" << r.describe();
  try {
    return json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "stdout is not one JSON document: " << e.what() << "\n" << r.describe();
    return json::object();
  }
}

const char* kBudget = "budget --model gpt3-1.3b --cluster dgx-h100 --gpus 256 --tokens 300B --gbs 512 --json";

TEST(GoodputCli, BudgetBlock) {
  const json j = run_json(kBudget, 0);
  ASSERT_TRUE(j.contains("goodput"));
  const json& g = j["goodput"];
  EXPECT_EQ(g.size(), 7u);  // exactly DESIGN.md sec. 6's keys
  for (const char* k : {"fraction", "days", "interruptions", "checkpoint_s", "lost_s", "restart_s", "interval_s"}) {
    ASSERT_TRUE(g.contains(k)) << k;
    EXPECT_TRUE(g[k].is_number()) << k;
  }
  EXPECT_GT(g["fraction"].get<double>(), 0.0);
  EXPECT_LT(g["fraction"].get<double>(), 1.0);
  EXPECT_NEAR(g["days"].get<double>(), j["days"].get<double>() / g["fraction"].get<double>(), 1e-9 * g["days"].get<double>());
  EXPECT_GT(j["goodput_detail"]["usd"].get<double>(), j["usd"].get<double>());
}

TEST(GoodputCli, NoFailuresReproducesFailureFree) {
  json with = run_json(kBudget, 0);
  json none = run_json(std::string(kBudget) + " --failures none", 0);
  EXPECT_EQ(none["goodput"]["fraction"].get<double>(), 1.0);
  EXPECT_EQ(none["goodput"]["days"].get<double>(), none["days"].get<double>());  // exactly
  EXPECT_EQ(none["goodput"]["interruptions"].get<double>(), 0.0);
  EXPECT_EQ(none["goodput_detail"]["usd"].get<double>(), none["usd"].get<double>());
  // The failure-free keys do not depend on the failure model.
  for (json* x : {&with, &none}) {
    x->erase("goodput");
    x->erase("goodput_detail");
  }
  EXPECT_EQ(with, none);
}

TEST(GoodputCli, ScaleCostliestTerm) {
  const json j = run_json("scale --model gpt3-1.3b --cluster dgx-h100 --gpus 64,512 --gbs 512 --tokens 300B --json", 0);
  ASSERT_EQ(j["points"].size(), 2u);
  for (const json& p : j["points"]) {
    ASSERT_TRUE(p.contains("goodput"));
    ASSERT_TRUE(p.contains("costliest"));
    const std::string t = p["costliest"]["term"];
    EXPECT_TRUE(t == "batch" || t == "communication" || t == "bubble" || t == "goodput") << t;
    EXPECT_GE(p["costliest"]["shares"][t].get<double>(), p["costliest"]["shares"]["goodput"].get<double>());
  }
}

TEST(GoodputCli, SearchTimeToTrain) {
  const json j = run_json(
      "search --model gpt3-1.3b --cluster dgx-h100 --gpus 64 --gbs 512 --objective time-to-train --tokens 300B --top 3 --json", 0);
  EXPECT_EQ(j["objective"], "time-to-train");
  EXPECT_EQ(j["plans"].size(), 3u);
  const CliResult r = run_cli(split_args("search --model gpt3-1.3b --cluster dgx-h100 --gpus 64 --gbs 512 --objective time-to-train"));
  EXPECT_EQ(r.exit_code, 2) << r.describe();  // needs --tokens
}

const char* kPlan = "plan-cluster --model gpt3-1.3b --tokens 300B --devices dgx-h100,a100-80gb --networks native,ib-hdr200-fat-tree "
                    "--gpus 64,256 --gbs 512 --json";

TEST(GoodputCli, PlanClusterDeadline) {
  const json j = run_json(std::string(kPlan) + " --deadline-days 30", 0);
  EXPECT_TRUE(j["met"].get<bool>());
  EXPECT_EQ(j["options"].get<int>(), 8);
  ASSERT_TRUE(j.contains("chosen"));
  EXPECT_LE(j["chosen"]["days"].get<double>(), 30.0);
  // Cheapest within the deadline: no Pareto option within it is cheaper.
  for (const json& o : j["pareto"])
    if (o["days"].get<double>() <= 30.0) EXPECT_GE(o["usd"].get<double>(), j["chosen"]["usd"].get<double>());
  ASSERT_TRUE(j["chosen"].contains("goodput"));
}

TEST(GoodputCli, PlanClusterNoOptionMeetsIt) {
  const json j = run_json(std::string(kPlan) + " --deadline-days 0.001", 1);
  EXPECT_FALSE(j["met"].get<bool>());
  ASSERT_TRUE(j.contains("closest"));  // the fastest, said explicitly
  EXPECT_GT(j["closest"]["days"].get<double>(), 0.001);
  const json b = run_json(std::string(kPlan) + " --budget-usd 1", 1);
  ASSERT_TRUE(b.contains("closest"));
}

// A node type without a price (dgx-b200, gb200-nvl72: price_usd_per_gpu_hour unset) would cost $0 and win every
// deadline; it is never chosen nor on the front, and its options say why.
TEST(GoodputCli, PlanClusterSkipsUnpricedNodeTypes) {
  const json j = run_json("plan-cluster --model gpt3-1.3b --tokens 300B --gbs 512 --devices dgx-h100,gb200-nvl72 "
                          "--networks native --gpus 64,128 --deadline-days 3650 --json",
                          0);
  ASSERT_TRUE(j.contains("chosen"));
  EXPECT_EQ(j["chosen"]["cluster"].get<std::string>(), "dgx-h100");
  EXPECT_GT(j["chosen"]["usd"].get<double>(), 0);
  for (const json& o : j["pareto"]) EXPECT_NE(o["cluster"].get<std::string>(), "gb200-nvl72");
  EXPECT_EQ(j["options_with_plan"].get<int>(), 2);
}

// budget on an unpriced cluster says the cost is unknown instead of "$0 at $0.00 per GPU-hour"; --price fills it.
TEST(GoodputCli, BudgetWithoutAPriceSaysSo) {
  const CliResult r = run_cli(split_args("budget --model gpt3-1.3b --cluster gb200-nvl72 --gpus 64 --tokens 30B --gbs 512"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("cost         unknown: the cluster sets no price_usd_per_gpu_hour"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("$0 at"), std::string::npos) << r.out;
  const CliResult p = run_cli(split_args("budget --model gpt3-1.3b --cluster gb200-nvl72 --gpus 64 --tokens 30B --gbs 512 --price 6"));
  ASSERT_EQ(p.exit_code, 0) << p.describe();
  EXPECT_NE(p.out.find("at $6.00 per GPU-hour"), std::string::npos) << p.out;
}

TEST(GoodputCli, BadInput) {
  for (const std::string extra : {" --deadline-days 30 --budget-usd 5", "", " --deadline-days -2", " --deadline-days 30 --failures nope",
                                  " --deadline-days 30 --checkpoint sometimes", " --deadline-days 30 --networks nope"}) {
    const CliResult r = run_cli(split_args(std::string(kPlan) + extra));
    EXPECT_EQ(r.exit_code, 2) << extra << "\n" << r.describe();
    EXPECT_NE(r.err.find("error:"), std::string::npos) << extra;
  }
  // A cluster whose storage bandwidth is zero: exit 2 naming the field.
  const std::string path = ::testing::TempDir() + "zero_storage.yaml";
  std::ofstream(path) << "name: z\ndevice: h100-sxm-80gb\nnode: {gpus: 8, intra: {kind: nvswitch, bw_GBps: 450}}\n"
                         "network: {nic_Gbps_per_gpu: 400}\nstorage: {per_node_GBps: 0}\n";
  const CliResult r = run_cli(split_args("budget --model gpt3-1.3b --cluster " + path + " --gpus 64 --tokens 1B --gbs 64"));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("per_node_GBps"), std::string::npos) << r.err;
  std::remove(path.c_str());
}

}  // namespace
