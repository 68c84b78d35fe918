// The CLI's own metadata commands (issue 18): `--version` and `presets`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/presets.hpp"
#include "support/run_cli.hpp"

namespace {

using scaleplan::testing::run_cli;
using scaleplan::testing::split_args;

TEST(CliMeta, VersionPrintsTheProjectVersion) {
  const auto r = run_cli(split_args("--version"));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out.rfind("scaleplan ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find('.'), std::string::npos) << "a dotted version: " << r.out;
}

TEST(CliMeta, PresetsJsonListsEveryEmbeddedKind) {
  const auto r = run_cli(split_args("presets --json"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const auto j = nlohmann::json::parse(r.out);
  for (const char* kind : {"models", "clusters", "devices", "plans"}) {
    ASSERT_TRUE(j.contains(kind)) << kind;
    EXPECT_EQ(j[kind].get<std::vector<std::string>>(), scaleplan::preset_names(kind)) << kind;
  }
  EXPECT_FALSE(j["models"].empty());
  // A model preset the README's examples use is listed.
  const auto models = j["models"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(models.begin(), models.end(), "gpt3-175b"), models.end());
}

TEST(CliMeta, PresetsKindFilterAndBadKind) {
  const auto r = run_cli(split_args("presets --kind clusters"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out.rfind("clusters (", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("models"), std::string::npos) << r.out;
  const auto bad = run_cli(split_args("presets --kind gpus"));
  EXPECT_EQ(bad.exit_code, 2) << bad.describe();
}

}  // namespace
