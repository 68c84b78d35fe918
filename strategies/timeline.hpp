#pragma once
// Per-rank spans of one training step (DESIGN.md sec. 1: "a Timeline (per-rank spans)"), produced
// by the simulator and the executor, drawn by the GUI and written as a Chrome trace / Perfetto file.
#include <string>
#include <vector>

namespace scaleplan::strategies {

enum class SpanKind { compute, recompute, comm, idle, optimizer, offload };

struct Span {
  int rank = 0;          // global rank (or a representative rank of a symmetry class)
  SpanKind kind = SpanKind::compute;
  std::string name;      // e.g. "F mb3 chunk1", "allreduce dp bucket2", "send pp"
  double start_s = 0;    // seconds from the start of the step
  double dur_s = 0;
};

struct Timeline {
  std::vector<Span> spans;
  double end_s() const {
    double e = 0;
    for (const auto& s : spans) e = s.start_s + s.dur_s > e ? s.start_s + s.dur_s : e;
    return e;
  }
};

inline const char* name(SpanKind k) {
  switch (k) {
    case SpanKind::compute: return "compute";
    case SpanKind::recompute: return "recompute";
    case SpanKind::comm: return "comm";
    case SpanKind::idle: return "idle";
    case SpanKind::optimizer: return "optimizer";
    case SpanKind::offload: return "offload";
  }
  return "?";
}

}  // namespace scaleplan::strategies
