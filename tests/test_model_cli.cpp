// `scaleplan model --model M [--json]` through the real binary (issue 18.2): every dimension,
// params and active_params, hf: paths, and exit 2 naming the key for a bad config.json.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/run_cli.hpp"

namespace {

using nlohmann::json;
using scaleplan::testing::CliResult;
using scaleplan::testing::run_cli;
using scaleplan::testing::split_args;

const std::string kData = std::string(SCALEPLAN_SOURCE_DIR) + "/tests/data/hf/";

TEST(ModelCli, JsonHasEveryDimensionAndCounts) {
  const CliResult r = run_cli(split_args("model --model hf:" + kData + "mixtral-8x7b-v0.1.json --json"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const json j = json::parse(r.out);
  for (const char* k : {"layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "seq", "activation", "norm",
                        "position", "tied_embeddings", "bias", "params", "active_params"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["layers"], 32);
  EXPECT_EQ(j["kv_heads"], 8);
  EXPECT_EQ(j["activation"], "swiglu");
  EXPECT_EQ(j["moe"]["experts"], 8);
  EXPECT_EQ(j["moe"]["top_k"], 2);
  // mistral.ai: 46.7B total, 12.9B per token.
  EXPECT_NEAR(j["params"].get<double>(), 46.7e9, 46.7e9 * 0.005);
  EXPECT_NEAR(j["active_params"].get<double>(), 12.9e9, 12.9e9 * 0.005);
}

TEST(ModelCli, DenseActiveEqualsTotalAndPresetsWork) {
  const CliResult r = run_cli(split_args("model --model gpt3-175b --json"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const json j = json::parse(r.out);
  EXPECT_EQ(j["params"].get<double>(), 174604259328.0);  // SC21 eq. 2 + final LayerNorm (test_model.cpp)
  EXPECT_EQ(j["active_params"].get<double>(), j["params"].get<double>());
  const CliResult t = run_cli(split_args("model --model hf:" + kData + "deepseek-v3.json"));
  ASSERT_EQ(t.exit_code, 0) << t.describe();
  for (const char* k : {"params", "active_params", "kv_lora_rank", "first_dense_layers", "shared_experts"})
    EXPECT_NE(t.out.find(k), std::string::npos) << k;
}

TEST(ModelCli, BadConfigExitsTwoNamingTheKey) {
  const std::string path = ::testing::TempDir() + "/bad_model_type.json";
  std::ofstream(path) << "{\n  \"model_type\": \"t5\",\n  \"d_model\": 512\n}\n";
  const CliResult r = run_cli(split_args("model --model hf:" + path));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("model_type"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":2:"), std::string::npos) << r.err;
  const std::string missing = ::testing::TempDir() + "/missing_key.json";
  std::ofstream(missing) << R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "vocab_size": 10, "n_positions": 32})";
  const CliResult m = run_cli(split_args("model --model hf:" + missing));
  EXPECT_EQ(m.exit_code, 2) << m.describe();
  EXPECT_NE(m.err.find("n_layer"), std::string::npos) << m.err;
  // Other commands take hf: too (model::load_model).
  const CliResult e = run_cli(split_args("estimate --model hf:" + kData + "gpt2-large.json --cluster dgx-h100 --gpus 8 --plan tp=1 --json"));
  EXPECT_EQ(e.exit_code, 0) << e.describe();
}

}  // namespace
