#include "simulator/search/goodput.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/errors.hpp"

namespace scaleplan::search {

const char* name(CheckpointMode m) { return m == CheckpointMode::async ? "async" : "blocking"; }

CheckpointMode parse_checkpoint_mode(const std::string& s) {
  if (s == "blocking") return CheckpointMode::blocking;
  if (s == "async") return CheckpointMode::async;
  throw UsageError("--checkpoint must be blocking|async (got '" + s + "')");
}

double young_interval_s(double delta_s, double mtbf_s) { return std::sqrt(2.0 * delta_s * mtbf_s); }

double daly_interval_s(double delta_s, double mtbf_s) {
  if (delta_s >= 2.0 * mtbf_s) return mtbf_s;  // Daly 2006: tau = M once delta >= 2M
  const double x = delta_s / (2.0 * mtbf_s);
  // Daly 2006 higher-order optimum: sqrt(2 delta M) [1 + sqrt(x)/3 + x/9] - delta, x = delta/(2M).
  return std::sqrt(2.0 * delta_s * mtbf_s) * (1.0 + std::sqrt(x) / 3.0 + x / 9.0) - delta_s;
}

double daly_wall_s(double useful_s, double tau_s, double delta_s, double restart_s, double mtbf_s) {
  // Daly 2006: T_w = M e^{R/M} (e^{(tau+delta)/M} - 1) T_s / tau.
  const double w = mtbf_s * std::exp(restart_s / mtbf_s) * std::expm1((tau_s + delta_s) / mtbf_s) * useful_s / tau_s;
  return std::isfinite(w) ? w : std::numeric_limits<double>::infinity();
}

GoodputModel goodput_model(const hw::FailureProfile& f, const hw::Cluster& c, long long gpus, CheckpointMode mode) {
  GoodputModel g;
  g.gpus = static_cast<double>(gpus);
  g.unplanned_per_s = f.unplanned_rate_per_s(gpus, c.gpus_per_node);
  g.planned_per_s = f.planned_rate_per_s(gpus, c.gpus_per_node);
  g.detect_s = f.detect_s;
  g.restart_s = f.restart_s;
  const double nodes = std::ceil(g.gpus / static_cast<double>(std::max(1, c.gpus_per_node)));
  // Every node writes its ranks' shards at once (Megatron dist_checkpointing's fully parallel save):
  // the job moves a checkpoint at min(file system aggregate, nodes x per-node link).
  const double links = nodes * c.storage.per_node_Bps;
  g.write_Bps = c.storage.write_Bps > 0 ? std::min(c.storage.write_Bps, links) : links;
  g.read_Bps = c.storage.read_Bps > 0 ? std::min(c.storage.read_Bps, links) : links;
  // Async: training stops only for the device -> host copy (CheckFreq, Mohan et al. FAST'21,
  // "snapshot" then background "persist"; PyTorch DCP async_save stages to CPU first).
  g.snapshot_Bps = c.host.pcie_Bps;
  g.mode = mode;
  if (!g.none() && !(g.write_Bps > 0 && g.read_Bps > 0 && (mode == CheckpointMode::blocking || g.snapshot_Bps > 0)))
    throw UsageError("cluster '" + c.name + "': checkpoint bandwidth must be > 0 (storage: per_node_GBps, write_GBps, read_GBps" +
                     (mode == CheckpointMode::async ? "; node: pcie_GBps" : "") + ") when failures are modelled (--failures none skips them)");
  return g;
}

double checkpoint_bytes(const strategies::Plan& p, const strategies::MemoryBreakdown& m) {
  const double n = static_cast<double>(p.gpus());
  const double copies = static_cast<double>(p.dp) * static_cast<double>(p.cp);
  const double cp = static_cast<double>(p.cp);
  const double states = n * (m.optimizer + m.host + m.nvme) / (p.zero >= 1 ? cp : copies);
  // ZeRO-3's `params` also holds the gathered largest layer (strategies/memory.hpp model_states), so
  // its unique weights come from the optimizer states instead: 2 B of weights per 12 B of fp32 master
  // + Adam moments in mixed precision, 4 per 8 in fp32 (ZeRO paper, Rajbhandari et al. 2020, sec. 3.1).
  const double weights_per_state = p.precision == strategies::Precision::fp32 ? 4.0 / 8.0 : 2.0 / 12.0;
  const double weights = p.zero >= 3 ? states * weights_per_state : n * m.params / copies;
  return weights + states;
}

namespace {

struct Costs {
  double write_s, read_s, delta_s, restart_s, planned_s;
};

Costs costs(const GoodputModel& g, double bytes) {
  Costs k{};
  k.write_s = bytes / g.write_Bps;
  k.read_s = bytes / g.read_Bps;
  const bool async = g.mode == CheckpointMode::async;
  k.delta_s = async ? bytes / g.gpus / g.snapshot_Bps : k.write_s;
  // Per failure: detect, relaunch, reload; async also loses the write in flight (the last durable
  // checkpoint is one write older than the last snapshot).
  k.restart_s = g.detect_s + g.restart_s + k.read_s + (async ? k.write_s - k.delta_s : 0.0);
  // Per planned stop: a checkpoint first, then relaunch and reload (no detection, no lost work).
  k.planned_s = k.delta_s + g.restart_s + k.read_s;
  return k;
}

double interval(const GoodputModel& g, const Costs& k, double mtbf_s, double step_s) {
  double tau = daly_interval_s(k.delta_s, mtbf_s);
  // Async: a new snapshot cannot start before the previous one is persisted.
  if (g.mode == CheckpointMode::async) tau = std::max(tau, k.write_s);
  // A checkpoint is taken between optimizer steps: a whole number of steps, at least one (Benoit et
  // al., "Robustness of the Young/Daly formula for stochastic iterative applications", 2020: the
  // period rounded to iterations stays first-order optimal).
  if (step_s > 0) tau = step_s * std::max(1.0, std::round(tau / step_s));
  return tau;
}

}  // namespace

double goodput_wall_s(const GoodputModel& g, double useful_s, double ckpt_bytes, double step_s) {
  if (g.none()) return useful_s;
  const Costs k = costs(g, ckpt_bytes);
  double w = useful_s;
  if (g.unplanned_per_s > 0) {
    const double M = 1.0 / g.unplanned_per_s;
    w = daly_wall_s(useful_s, interval(g, k, M, step_s), k.delta_s, k.restart_s, M);
  }
  const double busy = g.planned_per_s * k.planned_s;  // share of the wall time in planned stops
  return busy < 1 ? w / (1.0 - busy) : std::numeric_limits<double>::infinity();
}

Goodput goodput(const GoodputModel& g, double useful_s, double ckpt_bytes, double step_s, double interval_s) {
  Goodput r;
  r.useful_s = useful_s;
  r.wall_s = useful_s;
  r.checkpoint_bytes = ckpt_bytes;
  if (g.none()) return r;
  const Costs k = costs(g, ckpt_bytes);
  r.write_s = k.write_s;
  r.read_s = k.read_s;
  r.blocking_s = k.delta_s;
  double w = useful_s;
  if (g.unplanned_per_s > 0) {
    const double M = 1.0 / g.unplanned_per_s;
    r.mtbf_s = M;
    r.young_interval_s = young_interval_s(k.delta_s, M);
    r.interval_s = interval_s > 0 ? interval_s : interval(g, k, M, step_s);
    w = daly_wall_s(useful_s, r.interval_s, k.delta_s, k.restart_s, M);
    // Daly's wall time, term by term (segment s = tau + delta, failures per segment e^{s/M} - 1, each
    // losing M - s/(e^{s/M} - 1) of the segment and M (e^{R/M} - 1) to the restart, which failures may
    // also hit): checkpoints, lost work, restarts; they sum to w - useful exactly.
    const double seg = r.interval_s + k.delta_s, segments = useful_s / r.interval_s;
    const double fails = std::expm1(seg / M);
    r.checkpoint_s = segments * k.delta_s;
    const double stop = g.detect_s + g.restart_s + k.read_s;  // async's lag (k.restart_s - stop) is lost work
    const double restart_all = segments * fails * M * std::expm1(k.restart_s / M);
    r.restart_s = k.restart_s > 0 ? restart_all * stop / k.restart_s : 0.0;
    r.lost_s = segments * (M * fails - seg) + (restart_all - r.restart_s);
  }
  const double busy = g.planned_per_s * k.planned_s;
  const double wall = busy < 1 ? w / (1.0 - busy) : std::numeric_limits<double>::infinity();
  if (!std::isfinite(wall)) {
    r.finishes = false;
    r.wall_s = wall;
    r.fraction = 0;
    return r;
  }
  r.restart_s += wall - w;  // planned stops: a checkpoint, relaunch and reload each
  r.wall_s = wall;
  r.fraction = useful_s / wall;
  // Expected counts over the whole run: rate x wall time (Poisson).
  r.interruptions = g.unplanned_per_s * wall;
  r.planned_interruptions = g.planned_per_s * wall;
  return r;
}

}  // namespace scaleplan::search
