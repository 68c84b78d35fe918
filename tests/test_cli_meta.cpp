// The CLI's own metadata commands (issue 18): `--version` and `presets`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
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

// --csv (issue 18): the --json rows as CSV: a header, one line per row, the same field count on every
// line (quoted fields may hold commas), identity columns first.
size_t csv_fields(const std::string& line) {
  size_t n = 1;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) ++n;
  }
  return n;
}

TEST(CliMeta, CsvHoldsTheJsonRows) {
  const auto csv = run_cli(split_args("validate --csv"));
  ASSERT_EQ(csv.exit_code, 0) << csv.describe();
  const auto js = run_cli(split_args("validate --json"));
  const auto j = nlohmann::json::parse(js.out);
  std::vector<std::string> lines;
  std::istringstream in(csv.out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), j["runs"].size() + 1) << csv.out.substr(0, 500);
  EXPECT_EQ(lines[0].rfind("id,", 0), 0u) << lines[0];
  for (const auto& l : lines) EXPECT_EQ(csv_fields(l), csv_fields(lines[0])) << l;
  const auto scale = run_cli(split_args("scale --model gpt3-1.3b --cluster selene-a100 --gpus 8,16 --gbs 256 --csv"));
  ASSERT_EQ(scale.exit_code, 0) << scale.describe();
  EXPECT_EQ(scale.out.rfind("gpus,gpus_used,", 0), 0u) << scale.out.substr(0, 200);
  const auto both = run_cli(split_args("budget --model gpt3-1.3b --cluster selene-a100 --gpus 8 --tokens 1e9 --csv --json"));
  EXPECT_EQ(both.exit_code, 2) << both.describe();
}

}  // namespace
