#pragma once
// Typed errors of scaleplan. Bad input throws one of these; the CLI maps them to exit code 2.
// An infeasible plan is never an exception: it is a result (StepReport::feasible == false).
#include <stdexcept>
#include <string>

namespace scaleplan {

// `s` made safe for a one-line message (issue 17): bytes outside printable ASCII are written as
// \n, \t, \r or \xNN (a block literal, a binary file, a terminal escape are never echoed raw), and
// text beyond `max_chars` is cut with "...".
std::string printable(const std::string& s, std::size_t max_chars = 600);

// Where in an input a problem is: a file (or "<plan>", "<embedded:...>") and a 1-based line/column.
struct SourceLocation {
  std::string file;
  int line = 0;    // 0 = unknown
  int column = 0;  // 0 = unknown
  std::string str() const;
};

// Bad input in a config file: names the file, line, column, field and the rule that was broken.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(SourceLocation where, std::string field, std::string rule);
  const SourceLocation& where() const { return where_; }
  const std::string& field() const { return field_; }
  const std::string& rule() const { return rule_; }

 private:
  SourceLocation where_;
  std::string field_;
  std::string rule_;
};

// Bad plan: names the plan key and the rule.
class PlanError : public std::runtime_error {
 public:
  PlanError(std::string key, std::string rule);
  const std::string& key() const { return key_; }
  const std::string& rule() const { return rule_; }

 private:
  std::string key_;
  std::string rule_;
};

// Bad command-line usage that is neither a config nor a plan problem (e.g. an unknown preset name).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace scaleplan
