#include "common/errors.hpp"

namespace scaleplan {

std::string SourceLocation::str() const {
  std::string s = file.empty() ? std::string("<input>") : file;
  if (line > 0) {
    s += ":" + std::to_string(line);
    if (column > 0) s += ":" + std::to_string(column);
  }
  return s;
}

ConfigError::ConfigError(SourceLocation where, std::string field, std::string rule)
    : std::runtime_error(where.str() + ": " + (field.empty() ? std::string() : "field '" + field + "': ") + rule),
      where_(std::move(where)),
      field_(std::move(field)),
      rule_(std::move(rule)) {}

PlanError::PlanError(std::string key, std::string rule)
    : std::runtime_error("plan key '" + key + "': " + rule), key_(std::move(key)), rule_(std::move(rule)) {}

}  // namespace scaleplan
