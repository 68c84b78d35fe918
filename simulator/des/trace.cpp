// Chrome trace-event JSON (the "JSON Array/Object Format" of the Trace Event Format document, read by
// chrome://tracing and ui.perfetto.dev): complete events ("ph": "X") with microsecond timestamps.
#include <nlohmann/json.hpp>
#include <set>

#include "simulator/des/simulate.hpp"

namespace scaleplan::des {

std::string chrome_trace(const strategies::Timeline& t) {
  nlohmann::json ev = nlohmann::json::array();
  std::set<int> ranks;
  for (const auto& s : t.spans) {
    // Spans of the data-parallel stream carry the "dp:" prefix (simulate.cpp stream_main).
    const bool dp_stream = s.name.rfind("dp:", 0) == 0;
    ev.push_back({{"name", dp_stream ? s.name.substr(3) : s.name},
                  {"cat", strategies::name(s.kind)},
                  {"ph", "X"},
                  {"ts", s.start_s * 1e6},
                  {"dur", s.dur_s * 1e6},
                  {"pid", s.rank},
                  {"tid", dp_stream ? 1 : 0}});
    ranks.insert(s.rank);
  }
  for (int r : ranks) {
    ev.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", r}, {"args", {{"name", "rank " + std::to_string(r)}}}});
    ev.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", r}, {"tid", 0}, {"args", {{"name", "compute stream"}}}});
    ev.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", r}, {"tid", 1}, {"args", {{"name", "data-parallel stream"}}}});
  }
  nlohmann::json doc = {{"traceEvents", std::move(ev)}, {"displayTimeUnit", "ms"}};
  return doc.dump();
}

}  // namespace scaleplan::des
