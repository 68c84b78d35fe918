#include "common/errors.hpp"

#include <algorithm>

namespace scaleplan {

std::string printable(const std::string& s, std::size_t max_chars) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(s.size(), max_chars) + 8);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= max_chars) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string SourceLocation::str() const {
  std::string s = file.empty() ? std::string("<input>") : file;
  if (line > 0) {
    s += ':';
    s += std::to_string(line);
    if (column > 0) {
      s += ':';
      s += std::to_string(column);
    }
  }
  return s;
}

ConfigError::ConfigError(SourceLocation where, std::string field, std::string rule)
    : std::runtime_error(printable(where.str() + ": " + (field.empty() ? std::string() : "field '" + field + "': ") + rule)),
      where_(std::move(where)),
      field_(std::move(field)),
      rule_(std::move(rule)) {}

PlanError::PlanError(std::string key, std::string rule)
    : std::runtime_error(printable("plan key '" + key + "': " + rule)), key_(std::move(key)), rule_(std::move(rule)) {}

}  // namespace scaleplan
