#pragma once
// Goodput (issue 19): the wall-clock time a training run takes on a machine that fails, from the
// failure-free time, the job's failure rate (hw::FailureProfile), its checkpoint (size from the plan,
// bandwidth from the cluster's storage) and the time to detect, restart and reload.
//
//   M      = 1 / (sum of the causes' rates x GPUs or nodes)          mean time between failures
//   delta  = blocking time of one checkpoint (write, or the device->host snapshot when async)
//   tau    = Daly's optimal interval of useful work between checkpoints
//   R      = detect + restart + reload (+ the write when async: the last durable checkpoint lags)
//   T_wall = M e^{R/M} (e^{(tau+delta)/M} - 1) T_useful / tau      (Daly 2006, expected wall time)
// Planned interruptions (maintenance) cost a restart and a reload each, no lost work.
// goodput = T_useful / T_wall. No failures (rate 0): T_wall = T_useful exactly, no checkpoints.
#include <string>

#include "hardware/cluster.hpp"
#include "hardware/failures.hpp"
#include "strategies/step_report.hpp"

namespace scaleplan::search {

enum class CheckpointMode { blocking, async };
const char* name(CheckpointMode m);
CheckpointMode parse_checkpoint_mode(const std::string& s);  // blocking|async; throws UsageError

// Young 1974 ("A first order approximation to the optimum checkpoint interval", CACM 17(9)):
// tau = sqrt(2 delta M).
double young_interval_s(double delta_s, double mtbf_s);
// Daly 2006 ("A higher order estimate of the optimum checkpoint interval for restart dumps", Future
// Generation Computer Systems 22(3), the higher-order optimum): tau = sqrt(2 delta M) [1 + (1/3) sqrt(delta/(2M)) + delta/(18M)] - delta for delta < 2M,
// else tau = M.
double daly_interval_s(double delta_s, double mtbf_s);
// Daly 2006's expected wall time (exponential failures, failures also during restart and checkpoint):
// T_wall = M e^{R/M} (e^{(tau+delta)/M} - 1) T_useful / tau. Infinite if it overflows.
double daly_wall_s(double useful_s, double tau_s, double delta_s, double restart_s, double mtbf_s);

// The failure and storage side of one job size (no allocation: usable in the search's hot path).
struct GoodputModel {
  double unplanned_per_s = 0, planned_per_s = 0;  // job interruption rates
  double detect_s = 0, restart_s = 0;
  double write_Bps = 0, read_Bps = 0;  // for the whole job: min(aggregate, nodes x per node)
  double snapshot_Bps = 0;             // per GPU, device -> host (PCIe), async checkpoints
  CheckpointMode mode = CheckpointMode::blocking;
  double gpus = 0;
  bool none() const { return unplanned_per_s <= 0 && planned_per_s <= 0; }
};
GoodputModel goodput_model(const hw::FailureProfile& f, const hw::Cluster& c, long long gpus, CheckpointMode mode);

// Bytes of one checkpoint of the whole job: the working weights and the optimizer states (incl. those
// offloaded to host or NVMe), each once: a GPU's share times the GPUs, divided by the ranks that
// hold a copy (dp*cp unless ZeRO shards it over dp: zero>=1 the optimizer; strategies/memory.hpp
// model_states); under ZeRO-3 the weights follow from the optimizer states (see the .cpp). From the
// most-loaded GPU: an upper bound when stages differ.
double checkpoint_bytes(const strategies::Plan& p, const strategies::MemoryBreakdown& m);

struct Goodput {
  double useful_s = 0, wall_s = 0, fraction = 1;
  double interruptions = 0;          // unexpected, expected over the whole run (rate x wall time)
  double planned_interruptions = 0;  // planned, over the whole run
  double checkpoint_s = 0, lost_s = 0, restart_s = 0;  // wall_s - useful_s, split (planned stops in restart_s)
  double interval_s = 0;        // useful work between checkpoints (0: none taken)
  double young_interval_s = 0;  // for comparison
  double mtbf_s = 0;            // 0: no failures
  double checkpoint_bytes = 0, write_s = 0, read_s = 0, blocking_s = 0;
  bool finishes = true;  // false: restarts outpace the work (wall time infinite)
};
// step_s > 0: checkpoints fall between optimizer steps (the interval is a whole number of steps).
// interval_s > 0 forces the interval; 0 takes Daly's optimum (async: at least the write time).
Goodput goodput(const GoodputModel& g, double useful_s, double ckpt_bytes, double step_s = 0, double interval_s = 0);
// The wall time only (the search's time-to-train objective).
double goodput_wall_s(const GoodputModel& g, double useful_s, double ckpt_bytes, double step_s = 0);

}  // namespace scaleplan::search
