// `scaleplan presets [--kind K] [--json]`: the embedded presets a user can name with --model,
// --cluster, a cluster's `device:` and (once present) --stack, one list per kind.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "common/presets.hpp"

namespace scaleplan::cli {

namespace {

// The preset kinds a user names on the command line, in the order they are listed.
constexpr const char* kPresetKinds[] = {"models", "clusters", "devices", "stacks", "plans"};

int print_presets(const std::string& only, bool json) {
  nlohmann::json out = nlohmann::json::object();
  for (const char* kind : kPresetKinds) {
    if (!only.empty() && only != kind) continue;
    const auto names = preset_names(kind);
    if (json) {
      out[kind] = names;
      continue;
    }
    std::cout << kind << " (" << names.size() << "):";
    for (const auto& n : names) std::cout << " " << n;
    std::cout << "\n";
  }
  if (json) std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

void add_presets(CLI::App& app, int& rc) {
  auto* cmd = app.add_subcommand("presets", "List the embedded presets (models, clusters, devices, stacks, plans)");
  auto kind = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--kind", *kind, "Only this kind")
      ->check(CLI::IsMember({"models", "clusters", "devices", "stacks", "plans"}));
  cmd->add_flag("--json", *json, "One JSON object {kind: [names]} on stdout");
  cmd->callback([&rc, kind, json] { rc = guarded([&] { return print_presets(*kind, *json); }); });
}

}  // namespace scaleplan::cli
