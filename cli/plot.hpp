#pragma once
// `--plot FILE.png|FILE.svg` (issue 18): a command describes its chart as a JSON spec (format in
// gui/plot_main.cpp) and scaleplan-plot, built with the GUI part, renders it offscreen with QtCharts.
// The CLI links no Qt: it writes the spec to a temporary file and runs the renderer.
#include <nlohmann/json.hpp>
#include <string>

#include "strategies/step_report.hpp"

namespace scaleplan::cli {

// Throws UsageError naming --plot when the file name does not end in .png or .svg (checked before
// any work is done).
void check_plot_path(const std::string& path);
// Renders `spec` to `path`; throws UsageError when scaleplan-plot is not built or fails.
void render_plot(const nlohmann::json& spec, const std::string& path);

// Chart specs of the commands' results.
// estimate: memory and step time of one plan as two stacked bars, each category's share in percent
// (the legend names each part; the category names carry the totals).
nlohmann::json breakdown_chart(const strategies::StepReport& r, const std::string& title);

}  // namespace scaleplan::cli
