#pragma once
// `scaleplan export` (issue 18): a resolved plan written as the launch arguments / config file of a
// training framework, at one named framework version. Each format is a registered Exporter; what it
// writes uses only the flag / key names that version defines (tests/data/export/ holds those lists,
// taken from the framework's own argument definitions, and a test checks every export against them).
// A plan the framework cannot express is refused with an ExportRefused naming the plan dimension.
#include <stdexcept>
#include <string>
#include <vector>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::cli {

// The plan dimension (a plan key) a framework cannot express, and why; the CLI exits 1.
class ExportRefused : public std::runtime_error {
 public:
  ExportRefused(std::string key, const std::string& why) : std::runtime_error(key + ": " + why), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

struct ExportInput {
  const model::ModelSpec& model;
  const hw::Cluster& cluster;
  const strategies::Plan& plan;  // resolved (strategies::resolve_plan)
};

struct ExportResult {
  std::string format;             // e.g. "megatron"
  std::string framework_version;  // the version whose flag/key names are used
  std::string text;               // what to paste / save
  std::vector<std::string> keys;  // every flag or dotted key the text sets (for the name check)
};

struct Exporter {
  const char* format;
  const char* framework_version;
  ExportResult (*write)(const ExportInput&);
};

// The registry, in the order `--help` lists it.
const std::vector<Exporter>& exporters();
// Throws UsageError for an unknown format, ExportRefused for a plan the format cannot express.
ExportResult export_plan(const std::string& format, const ExportInput& in);

}  // namespace scaleplan::cli
