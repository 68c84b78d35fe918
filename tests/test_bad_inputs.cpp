// Bad-input corpus (issue 2 "Bad input"; DESIGN.md sec. 3 exit codes): each row of
// tests/bad_inputs/expectations.txt runs the real binary and must end with exit code 2 and exactly
// one stderr line "error: ..." naming file:line:column (YAML) or the plan key, plus the rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "support/run_cli.hpp"

namespace {

using scaleplan::testing::CliResult;
using scaleplan::testing::run_cli;
using scaleplan::testing::split_args;

struct Row {
  int line = 0;
  std::string id, args, location, substring;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

std::string table_path() { return std::string(BAD_INPUTS_DIR) + "/expectations.txt"; }

std::vector<Row> load_rows() {
  std::vector<Row> rows;
  std::ifstream in(table_path());
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    std::vector<std::string> cols;
    std::size_t start = 0;
    // Split on " | " only, so a substring may contain a bare '|' (e.g. "none|selective|full").
    while (true) {
      const auto p = t.find(" | ", start);
      cols.push_back(trim(t.substr(start, p == std::string::npos ? std::string::npos : p - start)));
      if (p == std::string::npos) break;
      start = p + 3;
    }
    Row r;
    r.line = n;
    if (cols.size() == 4) {
      r.id = cols[0];
      r.args = cols[1];
      r.location = cols[2];
      r.substring = cols[3];
    } else {
      r.id = "malformed_row_line_" + std::to_string(n);  // reported by the test below
    }
    rows.push_back(r);
  }
  return rows;
}

// gtest prints parameters on failure; show the row, not its bytes.
void PrintTo(const Row& r, std::ostream* os) { *os << r.id << " (expectations.txt:" << r.line << ")"; }

const std::vector<Row>& rows() {
  static const std::vector<Row> r = load_rows();
  return r;
}

class BadInput : public ::testing::TestWithParam<Row> {};

TEST_P(BadInput, ExitsTwoWithOneLocatedErrorLine) {
  const Row& row = GetParam();
  ASSERT_FALSE(row.args.empty()) << "expectations.txt line " << row.line << " must have 4 columns: id | args | location | substring";
  const CliResult r = run_cli(split_args(row.args), BAD_INPUTS_DIR);
  const std::string ctx = "row '" + row.id + "' (expectations.txt:" + std::to_string(row.line) + "): scaleplan " + row.args + "\n" + r.describe();

  // No crash on any input.
  ASSERT_EQ(r.signal, 0) << "crashed with signal " << r.signal << "\n" << ctx;
  EXPECT_EQ(r.exit_code, 2) << ctx;
  EXPECT_TRUE(r.out.empty()) << "bad input must not print a report on stdout\n" << ctx;

  // Exactly one line on stderr, "error: ...".
  const auto newlines = std::count(r.err.begin(), r.err.end(), '\n');
  const bool one_line = !r.err.empty() && r.err.back() == '\n' && newlines == 1;
  EXPECT_TRUE(one_line) << "expected exactly one line on stderr\n" << ctx;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << "stderr must start with 'error: '\n" << ctx;

  // Where and what.
  if (row.location != "-") {
    EXPECT_NE(r.err.find(row.location), std::string::npos) << "location '" << row.location << "' not named\n" << ctx;
  }
  EXPECT_NE(r.err.find(row.substring), std::string::npos) << "rule '" << row.substring << "' not named\n" << ctx;
}

std::string row_name(const ::testing::TestParamInfo<Row>& info) {
  std::string s = info.param.id;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadInput, ::testing::ValuesIn(rows()), row_name);

// The table is well formed, large enough (issue 2: at least 20 bad inputs) and covers every file.
TEST(BadInputCorpus, TableCoversEveryFile) {
  std::set<std::string> ids;
  std::string text;
  for (const Row& r : rows()) {
    EXPECT_FALSE(r.args.empty()) << "expectations.txt line " << r.line << " must have 4 columns";
    EXPECT_TRUE(ids.insert(r.id).second) << "duplicate id " << r.id;
    text += r.args + " " + r.location + "\n";
  }
  EXPECT_GE(rows().size(), 24u);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(BAD_INPUTS_DIR)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".yaml") continue;
    ++files;
    EXPECT_NE(text.find(name), std::string::npos) << name << " is not used by any row of expectations.txt";
  }
  EXPECT_GE(files, 24);
}

}  // namespace
