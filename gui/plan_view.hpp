#pragma once
// Plain helpers behind the GUI's plan views (no Qt): the colour schemes of the scatter chart
// (strategy families) and the plan YAML file the GUI saves and strategies::load_plan reads back.
#include <string>
#include <vector>

#include "strategies/plan.hpp"

namespace scaleplan::gui {

// A way to colour the plans of the scatter chart: a fixed list of families and the family of a plan.
struct ColourScheme {
  const char* name;         // shown in the "Colour by" box
  const char* description;  // tooltip: how plans are sorted into families
  std::vector<std::string> families;
  int (*family_of)(const strategies::Plan& p);  // index into families
};

// Registry (docs/gui.md): "parallelism" (DP only / TP x DP / PP x DP / TP x PP x DP / with CP or EP),
// "ZeRO stage" (0..3), "recompute" (none / selective / full), "schedule" (1F1B / GPipe / interleaved /
// zero bubble), "tensor parallel" and "pipeline parallel" (degree buckets 1, 2-3, 4-7, 8-15, >= 16),
// "offload" (none / optimizer / params / NVMe / gemini). The first is the default.
const std::vector<ColourScheme>& colour_schemes();

// The plan as a YAML mapping with the keys of the plan string (DESIGN.md sec. 3), every key written,
// so strategies::load_plan(path) reads back the same plan. `comment` lines are written first as
// "# ..." lines. An uneven pipeline split is written as its key, `layers: "F/M/L"` (issue 16).
std::string plan_yaml(const strategies::Plan& p, const std::vector<std::string>& comment = {});
// Writes plan_yaml() to `path`; throws UsageError when the file cannot be written.
void save_plan_yaml(const std::string& path, const strategies::Plan& p, const std::vector<std::string>& comment = {});

}  // namespace scaleplan::gui

namespace scaleplan::gui {
// A short label for tables and titles: strategies::short_label, the same as the CLI's search and
// scale tables ("tp=8 pp=7 layers=13/14/13 vpp=7 dp=8 mbs=1 sp=on zero=1 rc=full interleaved").
std::string plan_label(const strategies::Plan& p);
}  // namespace scaleplan::gui
