// `scaleplan run` and `scaleplan calibrate` as users run them, under mpirun: the JSON contract, and
// the faults of issue 8 (a plan that does not match the rank count, a model that does not divide,
// a missing or corrupt checkpoint, a rank that dies or hangs) end the job with a clear error on
// rank 0 and a non-zero exit, never a hang.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/run_cli.hpp"

using scaleplan::testing::CliResult;
using scaleplan::testing::run_cli;

namespace {
CliResult mpirun(int np, std::vector<std::string> args) {
  std::vector<std::string> a = {"--oversubscribe", "--allow-run-as-root", "--mca", "btl_vader_single_copy_mechanism",
                                "none", "-np", std::to_string(np), SCALEPLAN_BIN};
  a.insert(a.end(), args.begin(), args.end());
  return run_cli(a, "", MPIRUN_BIN);
}
std::string tmpdir(const std::string& tag) {
  auto d = std::filesystem::temp_directory_path() / ("scaleplan_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d.string();
}
}  // namespace

TEST(ExecutorCli, RunJsonContractOnTwoRanks) {
  auto r = mpirun(2, {"run", "--model", "gpt-tiny", "--plan", "dp=2,gbs=2,zero=1", "--steps", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const auto j = nlohmann::json::parse(r.out);  // one object, from rank 0 only
  EXPECT_EQ(j["backend"], "cpu");
  EXPECT_EQ(j["ranks"], 2);
  EXPECT_EQ(j["steps"], 2);
  EXPECT_EQ(j["loss"].size(), 2u);
  for (const char* k : {"params", "grads", "optimizer", "activations", "buffers"}) {
    EXPECT_TRUE(j["measured"]["memory"].contains(k)) << k;
    EXPECT_TRUE(j["predicted"]["memory"].contains(k)) << k;
  }
  for (const char* k : {"params", "grads", "optimizer"})
    EXPECT_EQ(j["measured"]["memory"][k].get<double>(), j["predicted"]["memory"][k].get<double>()) << k;
  EXPECT_EQ(j["measured"]["comm_bytes_per_gpu"]["dp"].get<double>(), j["predicted"]["comm_bytes_per_gpu"]["dp"].get<double>());
  EXPECT_GT(j["measured"]["time"]["step_s"].get<double>(), 0);
  EXPECT_TRUE(j["predicted"]["time"]["step_s"].is_null());  // no --cluster given
}

// --profile: every backend call and every collective timed, per rank, per step (issue 22).
TEST(ExecutorCli, RunProfileTimesKernelsAndCollectives) {
  auto r = mpirun(2, {"run", "--model", "gpt-tiny", "--plan", "tp=2,gbs=2", "--steps", "3", "--json", "--profile"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const auto j = nlohmann::json::parse(r.out);
  const auto& ranks = j["measured"]["profile"]["ranks"];
  ASSERT_EQ(ranks.size(), 2u);
  for (const auto& rk : ranks) {
    EXPECT_GT(rk["kernel"]["gemm"].get<double>(), 0);
    EXPECT_GT(rk["kernel"]["gelu_bwd"].get<double>(), 0);
    EXPECT_GT(rk["comm"]["tp.all_reduce"].get<double>(), 0);  // Megatron TP: all-reduces per layer
    double sum = 0;
    for (auto& [k, v] : rk["kernel"].items()) sum += v.get<double>();
    EXPECT_LT(sum, 1.05 * j["measured"]["time"]["step_s"].get<double>());  // per step, inside the step
  }
}

TEST(ExecutorCli, CalibrateWritesALoadableCluster) {
  const std::string out = tmpdir("cal") + ".yaml";
  auto r = mpirun(2, {"calibrate", "--out", out, "--budget", "0.005"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto e = run_cli({"run", "--model", "gpt-tiny", "--plan", "mbs=1,gbs=1", "--steps", "2", "--cluster", out, "--json"});
  ASSERT_EQ(e.exit_code, 0) << e.describe();
  const auto j = nlohmann::json::parse(e.out);
  EXPECT_GT(j["predicted"]["time"]["step_s"].get<double>(), 0);
  std::filesystem::remove(out);
}

TEST(ExecutorCli, PlanThatDoesNotMatchTheRanks) {
  auto r = mpirun(2, {"run", "--model", "gpt-tiny", "--plan", "dp=4", "--steps", "1"});
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.err.find("does not match --gpus 2"), std::string::npos) << r.err;
}

TEST(ExecutorCli, ModelThatDoesNotDivide) {
  const std::string m = tmpdir("model") + ".yaml";
  {
    std::ifstream in(SCALEPLAN_SOURCE_DIR "/configs/models/gpt-tiny.yaml");
    std::ofstream o(m);
    std::string line;
    while (std::getline(in, line)) o << (line.rfind("layers:", 0) == 0 ? "layers: 3" : line) << "\n";
  }
  auto r = mpirun(2, {"run", "--model", m, "--plan", "pp=2", "--steps", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("does not divide layers=3"), std::string::npos) << r.err;
  std::filesystem::remove(m);
}

TEST(ExecutorCli, MissingAndCorruptCheckpoint) {
  auto r = run_cli({"run", "--model", "gpt-tiny", "--plan", "gbs=1", "--resume", "/nonexistent/ckpt"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("no manifest"), std::string::npos) << r.err;
  const std::string dir = tmpdir("ckpt");
  auto s = mpirun(2, {"run", "--model", "gpt-tiny", "--plan", "dp=2,gbs=2", "--steps", "1", "--save", dir, "--json"});
  ASSERT_EQ(s.exit_code, 0) << s.describe();
  {
    std::fstream f(dir + "/rank-1.step-1.ckpt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(300);
    f.put('\x11');
  }
  auto c = mpirun(2, {"run", "--model", "gpt-tiny", "--plan", "dp=2,gbs=2", "--steps", "1", "--resume", dir});
  EXPECT_NE(c.exit_code, 0) << c.describe();
  EXPECT_NE(c.err.find("rank 1"), std::string::npos) << c.err;
  std::filesystem::remove_all(dir);
}

TEST(ExecutorCli, RankThatHangsTimesOutWithAClearError) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = mpirun(2, {"run", "--model", "gpt-tiny", "--plan", "dp=2,gbs=2", "--steps", "4", "--timeout", "3", "--fault", "hang:1:1"});
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.err.find("error: communication timeout"), std::string::npos) << r.err;  // rank 0's message
  EXPECT_LT(el, 30);
}

TEST(ExecutorCli, RankThatDiesEndsTheJob) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = mpirun(2, {"run", "--model", "gpt-tiny", "--plan", "dp=2,gbs=2", "--steps", "4", "--timeout", "3", "--fault", "die:1:1"});
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_LT(el, 30);
}

TEST(ExecutorCli, ResumeOnTwoRanksContinuesBitIdentical) {
  const std::string dir = tmpdir("resume");
  const std::vector<std::string> base = {"run", "--model", "gpt-tiny", "--plan", "dp=2,gbs=4,zero=1", "--json"};
  auto with = [&](std::vector<std::string> extra) {
    auto v = base;
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  auto straight = mpirun(2, with({"--steps", "4"}));
  ASSERT_EQ(straight.exit_code, 0) << straight.describe();
  auto first = mpirun(2, with({"--steps", "2", "--save", dir}));
  ASSERT_EQ(first.exit_code, 0) << first.describe();
  auto second = mpirun(2, with({"--steps", "2", "--resume", dir}));
  ASSERT_EQ(second.exit_code, 0) << second.describe();
  const auto a = nlohmann::json::parse(straight.out)["loss"], b = nlohmann::json::parse(second.out)["loss"];
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(a[2].get<double>(), b[0].get<double>());  // bit-identical (JSON round-trips doubles exactly)
  EXPECT_EQ(a[3].get<double>(), b[1].get<double>());
  std::filesystem::remove_all(dir);
}

TEST(ExecutorCli, TraceHasEveryRanksOps) {
  const std::string out = tmpdir("trace") + ".json";
  auto r = mpirun(2, {"run", "--model", "gpt-tiny", "--plan", "pp=2,gbs=4", "--steps", "1", "--trace", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  std::ifstream f(out);
  const auto j = nlohmann::json::parse(f);
  int per_rank[2] = {0, 0};
  for (const auto& e : j["traceEvents"]) per_rank[e["tid"].get<int>()]++;
  // 4 microbatches: 4 forwards + 4 backwards + grad reduction + optimizer on each stage.
  EXPECT_EQ(per_rank[0], 10);
  EXPECT_EQ(per_rank[1], 10);
  std::filesystem::remove(out);
}
