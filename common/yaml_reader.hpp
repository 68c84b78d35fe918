#pragma once
// Strict, located reading of YAML mappings: every error names file:line:column, the field and the rule.
// Used only from .cpp files of the config layers (yaml-cpp stays out of the public value types).
#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "common/errors.hpp"

namespace scaleplan {

enum class Bound { any, positive, non_negative, fraction /* (0,1] */ };

class YamlMap {
 public:
  // Parses text; a syntax error becomes a ConfigError at the parser's line/column.
  static YamlMap parse(const std::string& text, const std::string& file);
  YamlMap(YAML::Node node, std::string file, std::string path);

  bool has(const std::string& key) const;
  bool is_null(const std::string& key) const;  // absent or explicit null
  SourceLocation loc(const std::string& key = "") const;
  const std::string& file() const { return file_; }
  const YAML::Node& node() const { return node_; }

  double num(const std::string& key, Bound b = Bound::positive) const;
  double num_or(const std::string& key, double dflt, Bound b = Bound::positive) const;
  std::optional<double> opt_num(const std::string& key, Bound b = Bound::positive) const;
  long long integer(const std::string& key, Bound b = Bound::positive) const;
  long long integer_or(const std::string& key, long long dflt, Bound b = Bound::positive) const;
  std::optional<long long> opt_integer(const std::string& key, Bound b = Bound::positive) const;
  // Integers in a documented range [lo, hi] (common/limits.hpp): out of range names the range.
  std::optional<long long> opt_int_in(const std::string& key, long long lo, long long hi) const;
  long long int_in(const std::string& key, long long lo, long long hi) const;
  long long int_in_or(const std::string& key, long long dflt, long long lo, long long hi) const;
  std::string str(const std::string& key) const;
  std::string str_or(const std::string& key, const std::string& dflt) const;
  std::string choice(const std::string& key, std::initializer_list<const char*> allowed,
                     const std::string& dflt = "") const;
  bool boolean_or(const std::string& key, bool dflt) const;
  std::vector<std::string> str_list_or(const std::string& key) const;
  YamlMap map(const std::string& key) const;
  std::optional<YamlMap> opt_map(const std::string& key) const;
  // Unknown keys are errors (catches typos such as 'hiden').
  void check_keys(std::initializer_list<const char*> allowed) const;
  [[noreturn]] void fail(const std::string& key, const std::string& rule) const;

 private:
  YAML::Node get(const std::string& key) const;
  std::string field(const std::string& key) const;
  double check_bound(const std::string& key, double v, Bound b) const;

  YAML::Node node_;
  std::string file_;
  std::string path_;
};

}  // namespace scaleplan
