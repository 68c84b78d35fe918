#pragma once
// StepReport -> contract JSON (DESIGN.md sec. 3) and a readable text breakdown.
#include <nlohmann/json.hpp>
#include <string>

#include "strategies/step_report.hpp"

namespace scaleplan::cli {

nlohmann::json plan_json(const strategies::Plan& p);
nlohmann::json report_json(const strategies::StepReport& r);
std::string report_text(const strategies::StepReport& r, const std::string& title);
// "tp=8 pp=16 vpp=2 dp=8 mbs=1 sp=on zero=1 rc=full interleaved": the fields that vary in a search.
std::string short_plan(const strategies::Plan& p, long long layers);
std::string fmt_bytes(double b);   // "12.34 GiB"
std::string fmt_time(double s);    // "1.234 s" / "12.3 ms"

}  // namespace scaleplan::cli

namespace scaleplan::cli {
// `--csv` (issue 18): rows of a command's JSON as CSV (RFC 4180 quoting). `rows` is an array of
// objects (or one object: one row); nested objects become dotted columns ("time.step_s"), arrays
// are joined with ';'. Columns are the union of the rows' keys in first-seen order, so the CSV
// holds exactly what --json holds, and both are SI.
std::string csv_table(const nlohmann::json& rows);
}  // namespace scaleplan::cli
