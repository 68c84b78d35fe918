// `--plot FILE.png|FILE.svg` (issue 18): the chart file is written through scaleplan-plot when the
// GUI part is built (skipped otherwise), and a bad file name is refused before any work.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "support/run_cli.hpp"

namespace {

using scaleplan::testing::run_cli;
using scaleplan::testing::split_args;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(Plot, BadFileNameIsRefusedWithTheFlag) {
  const auto r = run_cli(split_args("estimate --model gpt3-1.3b --cluster selene-a100 --gpus 8 --plan tp=1,gbs=64 --plot out.jpg"));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("--plot"), std::string::npos) << r.err;
}

TEST(Plot, EstimateAndScaleWritePngAndSvg) {
#ifndef SCALEPLAN_HAVE_PLOT
  GTEST_SKIP() << "scaleplan-plot is built with the GUI part";
#else
  const std::string png = ::testing::TempDir() + "scaleplan_test_estimate.png";
  const std::string svg = ::testing::TempDir() + "scaleplan_test_scale.svg";
  std::remove(png.c_str());
  std::remove(svg.c_str());
  const auto e = run_cli(split_args("estimate --model gpt3-1.3b --cluster selene-a100 --gpus 8 --plan tp=1,gbs=64 --plot " + png));
  ASSERT_EQ(e.exit_code, 0) << e.describe();
  const std::string p = slurp(png);
  ASSERT_GT(p.size(), 5000u) << "a 1000x620 chart";
  EXPECT_EQ(p.substr(1, 3), "PNG");
  const auto s = run_cli(split_args("scale --model gpt3-1.3b --cluster selene-a100 --gpus 8,16,32 --gbs 256 --plot " + svg));
  ASSERT_EQ(s.exit_code, 0) << s.describe();
  const std::string v = slurp(svg);
  EXPECT_NE(v.find("<svg"), std::string::npos);
  EXPECT_NE(v.find("<title>gpt3-1.3b on selene-a100: scaling</title>"), std::string::npos) << "the chart title";
  // search (plans and the Pareto front) and budget (wall-clock days, split).
  for (const std::string cmd : {"search --model gpt3-1.3b --cluster selene-a100 --gpus 8 --gbs 256 --plot ",
                                "budget --model gpt3-1.3b --cluster selene-a100 --gpus 8 --tokens 1e9 --plot "}) {
    const std::string out = ::testing::TempDir() + "scaleplan_test_" + cmd.substr(0, cmd.find(' ')) + ".png";
    std::remove(out.c_str());
    const auto r = run_cli(split_args(cmd + out));
    ASSERT_EQ(r.exit_code, 0) << cmd << r.describe();
    EXPECT_GT(slurp(out).size(), 5000u) << cmd;
  }
#endif
}

}  // namespace
