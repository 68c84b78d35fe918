#include "common/yaml_reader.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string_view>

#include "common/limits.hpp"

namespace scaleplan {

namespace {
SourceLocation mark_loc(const std::string& file, const YAML::Mark& m) {
  if (m.is_null()) return {file, 0, 0};
  return {file, m.line + 1, m.column + 1};
}
std::string num_str(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

// The line (1-based) of the document marker that starts a second document, or 0. A '---' or '...'
// at column 0 followed by a blank or the line end is always a document marker in YAML (no scalar
// may hold one), so a scan of the lines finds them. Not YAML::LoadAll: yaml-cpp 0.7's loops
// forever on some malformed second documents (found by tests/fuzz, issue 17).
int second_document_line(const std::string& text) {
  const auto has_node = [](std::string_view rest) {  // anything but blanks and a comment
    const auto b = rest.find_first_not_of(" \t\r");
    return b != std::string_view::npos && rest[b] != '#';
  };
  bool content = false;  // a node of the first document was seen
  int marker = 0;        // the line of the marker that ended the first document
  int line = 0;
  for (std::size_t at = 0; at <= text.size();) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    const std::string_view l(text.data() + at, end - at);
    ++line;
    at = end + 1;
    const bool dashes = l.substr(0, 3) == "---", dots = l.substr(0, 3) == "...";
    if ((dashes || dots) && (l.size() == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r')) {
      if (marker > 0 && dashes) return marker;  // a second document starts
      if (content && marker == 0) marker = line;
      if (has_node(l.substr(3))) {              // "--- {a: 1}": a node on the marker line
        if (marker > 0) return marker;
        content = true;
      }
      continue;
    }
    if (!has_node(l) || (l[0] == '%' && !content)) continue;  // blank, comment, directive
    if (marker > 0) return marker;
    content = true;
  }
  return 0;
}
}  // namespace

YamlMap YamlMap::parse(const std::string& text, const std::string& file) {
  YAML::Node root;
  if (static_cast<long long>(text.size()) > limits::kMaxFileBytes)
    throw ConfigError({file, 0, 0}, "", "the file is larger than " + std::to_string(limits::kMaxFileBytes) + " bytes");
  // A second document is refused, never silently dropped (YAML::Load reads the first only).
  if (const int line = second_document_line(text); line > 0)
    throw ConfigError({file, line, 1}, "", "a second YAML document ('---' or '...' then more): one document per file");
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(mark_loc(file, e.mark), "", "malformed YAML: " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) throw ConfigError({file, 1, 1}, "", "the file is empty");
  if (!root.IsMap()) throw ConfigError(mark_loc(file, root.Mark()), "", "expected a mapping of key: value at the top level");
  return YamlMap(root, file, "");
}

YamlMap::YamlMap(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {}

std::string YamlMap::field(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

YAML::Node YamlMap::get(const std::string& key) const {
  // operator[] on a const node does not insert.
  const YAML::Node& n = node_;
  return n[key];
}

bool YamlMap::has(const std::string& key) const { return static_cast<bool>(get(key)); }

bool YamlMap::is_null(const std::string& key) const {
  YAML::Node n = get(key);
  return !n || n.IsNull();
}

SourceLocation YamlMap::loc(const std::string& key) const {
  if (!key.empty()) {
    YAML::Node n = get(key);
    if (n) return mark_loc(file_, n.Mark());
  }
  return mark_loc(file_, node_.Mark());
}

void YamlMap::fail(const std::string& key, const std::string& rule) const {
  throw ConfigError(loc(key), field(key), rule);
}

double YamlMap::check_bound(const std::string& key, double v, Bound b) const {
  if (!std::isfinite(v)) fail(key, "must be a finite number");
  switch (b) {
    case Bound::positive:
      if (!(v > 0)) fail(key, "must be > 0 (got " + num_str(v) + ")");
      break;
    case Bound::non_negative:
      if (v < 0) fail(key, "must be >= 0 (got " + num_str(v) + ")");
      break;
    case Bound::fraction:
      if (!(v > 0 && v <= 1)) fail(key, "must be in (0, 1] (got " + num_str(v) + ")");
      break;
    case Bound::any:
      break;
  }
  return v;
}

std::optional<double> YamlMap::opt_num(const std::string& key, Bound b) const {
  YAML::Node n = get(key);
  if (!n || n.IsNull()) return std::nullopt;
  if (!n.IsScalar()) fail(key, "must be a number");
  double v = 0;
  try {
    v = n.as<double>();
  } catch (const YAML::Exception&) {
    fail(key, "must be a number (got '" + n.Scalar() + "')");
  }
  return check_bound(key, v, b);
}

double YamlMap::num(const std::string& key, Bound b) const {
  auto v = opt_num(key, b);
  if (!v) fail(key, has(key) ? "must not be null" : "is required but missing");
  return *v;
}

double YamlMap::num_or(const std::string& key, double dflt, Bound b) const {
  auto v = opt_num(key, b);
  return v ? *v : dflt;
}

std::optional<long long> YamlMap::opt_integer(const std::string& key, Bound b) const {
  auto v = opt_num(key, b);
  if (!v) return std::nullopt;
  if (std::floor(*v) != *v || std::fabs(*v) > 9.0e15) fail(key, "must be an integer");
  return static_cast<long long>(*v);
}

long long YamlMap::integer(const std::string& key, Bound b) const {
  auto v = opt_integer(key, b);
  if (!v) fail(key, has(key) ? "must not be null" : "is required but missing");
  return *v;
}

long long YamlMap::integer_or(const std::string& key, long long dflt, Bound b) const {
  auto v = opt_integer(key, b);
  return v ? *v : dflt;
}

std::optional<long long> YamlMap::opt_int_in(const std::string& key, long long lo, long long hi) const {
  auto v = opt_num(key, Bound::any);
  if (!v) return std::nullopt;
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (std::floor(*v) != *v) fail(key, "must be an integer in " + range);
  if (*v < static_cast<double>(lo) || *v > static_cast<double>(hi)) {
    const std::string got = get(key).Scalar();  // as written: 4294967296, not 4.29497e+09
    if (lo == 1 && *v <= 0) fail(key, "must be > 0 (got " + got + ")");
    fail(key, "must be in " + range + " (got " + got + ")");
  }
  return static_cast<long long>(*v);
}

long long YamlMap::int_in(const std::string& key, long long lo, long long hi) const {
  auto v = opt_int_in(key, lo, hi);
  if (!v) fail(key, has(key) ? "must not be null" : "is required but missing");
  return *v;
}

long long YamlMap::int_in_or(const std::string& key, long long dflt, long long lo, long long hi) const {
  auto v = opt_int_in(key, lo, hi);
  return v ? *v : dflt;
}

std::string YamlMap::str(const std::string& key) const {
  YAML::Node n = get(key);
  if (!n || n.IsNull()) fail(key, "is required but missing");
  if (!n.IsScalar()) fail(key, "must be a string");
  return n.Scalar();
}

std::string YamlMap::str_or(const std::string& key, const std::string& dflt) const {
  return is_null(key) ? dflt : str(key);
}

std::string YamlMap::choice(const std::string& key, std::initializer_list<const char*> allowed,
                            const std::string& dflt) const {
  if (is_null(key)) {
    if (dflt.empty()) fail(key, "is required but missing");
    return dflt;
  }
  std::string v = str(key);
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return v;
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  fail(key, "must be one of " + list + " (got '" + v + "')");
}

bool YamlMap::boolean_or(const std::string& key, bool dflt) const {
  YAML::Node n = get(key);
  if (!n || n.IsNull()) return dflt;
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    fail(key, "must be true or false");
  }
}

std::vector<std::string> YamlMap::str_list_or(const std::string& key) const {
  std::vector<std::string> out;
  YAML::Node n = get(key);
  if (!n || n.IsNull()) return out;
  if (!n.IsSequence()) fail(key, "must be a list");
  for (const auto& e : n) {
    if (!e.IsScalar()) throw ConfigError(mark_loc(file_, e.Mark()), field(key), "must be a list of strings");
    out.push_back(e.Scalar());
  }
  return out;
}

YamlMap YamlMap::map(const std::string& key) const {
  auto m = opt_map(key);
  if (!m) fail(key, "is required but missing");
  return *m;
}

std::optional<YamlMap> YamlMap::opt_map(const std::string& key) const {
  YAML::Node n = get(key);
  if (!n || n.IsNull()) return std::nullopt;
  if (!n.IsMap()) fail(key, "must be a mapping of key: value");
  return YamlMap(n, file_, field(key));
}

void YamlMap::check_keys(std::initializer_list<const char*> allowed) const {
  for (const auto& kv : node_) {
    std::string k = kv.first.Scalar();
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw ConfigError(mark_loc(file_, kv.first.Mark()), field(k), "unknown field (allowed: " + list + ")");
    }
  }
}

}  // namespace scaleplan
