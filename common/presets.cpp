#include "common/presets.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "common/embedded_configs.hpp"
#include "common/errors.hpp"
#include "common/limits.hpp"

namespace scaleplan {

namespace {
std::string norm(std::string s) {
  for (char& c : s) c = (c == '_') ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
bool is_regular_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
}  // namespace

std::vector<std::string> preset_names(const std::string& kind) {
  std::vector<std::string> out;
  for (const auto& e : embedded::configs()) {
    if (e.kind == kind) out.emplace_back(e.name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool has_preset(const std::string& kind, const std::string& name) {
  const std::string n = norm(name);
  for (const auto& e : embedded::configs())
    if (e.kind == kind && norm(std::string(e.name)) == n) return true;
  return false;
}

// Bounded (issue 17): only regular files (a FIFO would block in open(), /dev/zero never ends), at
// most limits::kMaxFileBytes, read in blocks so a file that grows while read is cut there too.
std::string read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw UsageError("cannot read file '" + path + "'");
  if (!S_ISREG(st.st_mode)) throw UsageError("cannot read file '" + path + "': not a regular file (a device, FIFO or folder)");
  if (st.st_size > limits::kMaxFileBytes)
    throw UsageError("cannot read file '" + path + "': larger than " + std::to_string(limits::kMaxFileBytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read file '" + path + "'");
  std::string out;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<std::size_t>(in.gcount()));
    if (static_cast<long long>(out.size()) > limits::kMaxFileBytes)
      throw UsageError("cannot read file '" + path + "': larger than " + std::to_string(limits::kMaxFileBytes) + " bytes");
  }
  return out;
}

ConfigText load_config_text(const std::string& kind, const std::string& spec) {
  if (spec.empty()) throw UsageError("empty " + kind + " name");
  const auto ends_with = [&](const char* suf) {
    const std::string x(suf);
    return spec.size() > x.size() && spec.compare(spec.size() - x.size(), x.size(), x) == 0;
  };
  const bool looks_like_path = spec.find('/') != std::string::npos || ends_with(".yaml") || ends_with(".yml");
  if (is_regular_file(spec)) return {read_file(spec), spec};
  const std::string n = norm(spec);
  // SCALEPLAN_CONFIG_DIR/<kind>/<name>.yaml overrides the embedded preset (edit without rebuilding).
  if (const char* dir = std::getenv("SCALEPLAN_CONFIG_DIR"); dir && *dir) {
    for (const auto& e : embedded::configs()) {
      if (e.kind != kind || norm(std::string(e.name)) != n) continue;
      const std::string path = std::string(dir) + "/" + kind + "/" + std::string(e.name) + ".yaml";
      if (is_regular_file(path)) return {read_file(path), path};
    }
    const std::string path = std::string(dir) + "/" + kind + "/" + spec + ".yaml";
    if (is_regular_file(path)) return {read_file(path), path};
  }
  for (const auto& e : embedded::configs()) {
    if (e.kind == kind && norm(std::string(e.name)) == n)
      return {std::string(e.text), "configs/" + kind + "/" + std::string(e.name) + ".yaml"};
  }
  if (looks_like_path) throw UsageError("cannot read " + kind + " file '" + spec + "'");
  std::string list;
  for (const auto& name : preset_names(kind)) list += (list.empty() ? "" : ", ") + name;
  std::string singular = kind.substr(0, kind.size() - 1);
  throw UsageError("unknown " + singular + " preset '" + spec + "' (known: " + list + "; or give a path to a YAML file)");
}

}  // namespace scaleplan
