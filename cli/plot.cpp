#include "cli/plot.hpp"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/errors.hpp"

extern char** environ;

namespace scaleplan::cli {

namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i]) return false;
  return true;
}

// scaleplan-plot beside this program (build tree: build/cli/, install: bin/), else on PATH.
std::string find_renderer() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path beside = self.parent_path() / "scaleplan-plot";
    if (fs::exists(beside)) return beside.string();
  }
  if (const char* path = std::getenv("PATH")) {
    std::string dirs = path;
    for (size_t start = 0; start <= dirs.size();) {
      const size_t end = dirs.find(':', start);
      const std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (!dir.empty() && fs::exists(fs::path(dir) / "scaleplan-plot")) return (fs::path(dir) / "scaleplan-plot").string();
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  return "";
}

}  // namespace

void check_plot_path(const std::string& path) {
  if (!ends_with(path, ".png") && !ends_with(path, ".svg"))
    throw UsageError("--plot: the file name must end in .png or .svg (got '" + path + "')");
}

void render_plot(const nlohmann::json& spec, const std::string& path) {
  check_plot_path(path);
  const std::string renderer = find_renderer();
  if (renderer.empty())
    throw UsageError("--plot: scaleplan-plot was not found beside scaleplan or on PATH (it is built with the GUI part: make deps && make build)");
  char tmpl[] = "/tmp/scaleplan-plot-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) throw UsageError("--plot: cannot create a temporary file");
  close(fd);
  {
    std::ofstream f(tmpl);
    f << spec.dump();
  }
  const std::string spec_path = tmpl;
  char* argv[] = {const_cast<char*>(renderer.c_str()), const_cast<char*>(spec_path.c_str()), const_cast<char*>(path.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, renderer.c_str(), nullptr, nullptr, argv, environ);
  int status = 0;
  if (rc == 0) waitpid(pid, &status, 0);
  std::remove(spec_path.c_str());
  if (rc != 0) throw UsageError("--plot: cannot run " + renderer);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw UsageError("--plot: " + renderer + " could not write '" + path + "'");
}

nlohmann::json breakdown_chart(const strategies::StepReport& r, const std::string& title) {
  const auto& m = r.memory;
  const auto& t = r.time;
  const double mem = m.total(), step = t.step_s;
  const auto pct = [](double part, double total) { return total > 0 ? 100.0 * part / total : 0.0; };
  const std::string mem_cat = fmt::format("memory per GPU ({:.1f} GiB)", mem / (1024.0 * 1024.0 * 1024.0));
  const std::string time_cat = fmt::format("step time ({:.3g} s)", step);
  nlohmann::json series = nlohmann::json::array();
  const auto add = [&](const std::string& name, const char* color, double mem_part, double time_part) {
    series.push_back({{"name", name}, {"color", color}, {"values", {pct(mem_part, mem), pct(time_part, step)}}});
  };
  add("params", "#1f77b4", m.params, 0);
  add("grads", "#2ca02c", m.grads, 0);
  add("optimizer", "#ff7f0e", m.optimizer, 0);
  add("activations", "#9467bd", m.activations, 0);
  add("buffers", "#8c564b", m.buffers, 0);
  add("compute", "#17becf", 0, t.compute_s);
  add("exposed communication", "#d62728", 0, t.comm_exposed_s);
  add("pipeline bubble", "#bcbd22", 0, t.bubble_s);
  add("exposed offload", "#7f7f7f", 0, t.offload_exposed_s);
  return {{"title", title}, {"kind", "bar"}, {"x_label", ""}, {"y_label", "share of the total, %"},
          {"categories", {mem_cat, time_cat}}, {"series", series}};
}

}  // namespace scaleplan::cli
