#include "strategies/offload.hpp"

#include <algorithm>
#include <string>

#include "common/errors.hpp"

namespace scaleplan::strategies {

void check_offload(const Plan& p, const hw::Cluster& c) {
  const std::string z = " (got zero=" + std::to_string(p.zero) + ")";
  switch (p.offload) {
    case Offload::none:
      return;
    case Offload::optimizer:
      if (p.zero < 1)
        throw PlanError("offload", "offload=optimizer (ZeRO-Offload) partitions the optimizer states as ZeRO does: needs zero=1 or 2" + z);
      if (p.zero > 2)
        throw PlanError("offload", "offload=optimizer with zero=3: use offload=params (ZeRO-3-Offload moves weights and optimizer)");
      return;
    case Offload::params:
      if (p.zero != 3) throw PlanError("offload", "offload=params (ZeRO-3-Offload) partitions the weights: needs zero=3" + z);
      return;
    case Offload::nvme:
      if (p.zero != 3) throw PlanError("offload", "offload=nvme (ZeRO-Infinity) partitions the weights: needs zero=3" + z);
      if (c.host.nvme_bytes <= 0 || c.host.nvme_Bps <= 0)
        throw PlanError("offload", "offload=nvme needs NVMe on the nodes: cluster " + c.name + " has node.nvme_TB = 0");
      return;
    case Offload::gemini:
      if (p.zero != 3)
        throw PlanError("offload", "offload=gemini shards its chunks over the data-parallel ranks as ZeRO-3 does: needs zero=3" + z);
      return;
  }
}

HostShare host_share(const hw::Host& h, int ranks) {
  const double k = ranks > 0 ? ranks : 1;
  HostShare s;
  s.flops = h.flops_fp32 / k;
  s.mem_bw = h.mem_bw_Bps / k;
  // Every GPU has its own PCIe link, but concurrent copies of all GPUs of a node end in the same
  // DRAM: a GPU's host<->device rate is its link or its share of DRAM bandwidth, whichever is less.
  s.pcie = std::min(h.pcie_Bps, s.mem_bw);
  s.nvme_bw = h.nvme_Bps / k;
  s.memory = h.memory_bytes / k;
  s.nvme = h.nvme_bytes / k;
  return s;
}

double cpu_adam_time(double params, const HostShare& s, const OffloadOptions& o) {
  if (params <= 0) return 0;
  const double t_flop = s.flops > 0 ? o.cpu_adam_flops_per_param * params / s.flops : 0;
  const double t_mem = s.mem_bw > 0 ? o.cpu_adam_bytes_per_param * params / s.mem_bw : 0;
  return std::max(t_flop, t_mem);
}

OffloadStep offload_step(Offload mode, const HostShare& s, const OffloadStepInput& in, const OffloadOptions& o) {
  OffloadStep r;
  const double U = in.params_shard, m = static_cast<double>(in.microbatches);
  const double pcie = s.pcie > 0 ? s.pcie : 1;
  const double nvme_bw = s.nvme_bw > 0 ? s.nvme_bw : 1;
  switch (mode) {
    case Offload::none:
    case Offload::gemini:
      return r;
    case Offload::optimizer: {
      // ZeRO-Offload sec. 4.2 schedule: every microbatch's gradient partition goes to the host
      // during backward (overlapped with it); after the last one the CPU runs Adam and the updated
      // 16-bit weights return, copied chunk by chunk while the CPU updates the next chunk, so the
      // step waits for the longer of the two (no one-step delayed update, the paper's default).
      const double d2h_mb = in.grad_bytes * U / pcie;
      const double h2d = in.param_bytes * U / pcie;
      r.cpu_adam_s = cpu_adam_time(U, s, o);
      r.pcie_bytes = m * in.grad_bytes * U + in.param_bytes * U;
      r.pcie_s = m * d2h_mb + h2d;
      r.exposed_s = m * std::max(0.0, d2h_mb - in.backward_per_mb_s) + std::max(r.cpu_adam_s, h2d);
      return r;
    }
    case Offload::params: {
      // ZeRO-3-Offload: per microbatch each layer's shard is fetched for forward and again for
      // backward, and its gradient shard goes back; prefetching overlaps the copies with compute.
      // The CPU writes the updated 16-bit weights in host memory (no copy back after Adam).
      const double mb_bytes = (2 * in.param_bytes + in.grad_bytes) * U;
      const double t_mb = mb_bytes / pcie;
      r.cpu_adam_s = cpu_adam_time(U, s, o);
      r.pcie_bytes = m * mb_bytes;
      r.pcie_s = m * t_mb;
      r.exposed_s = m * std::max(0.0, t_mb - in.compute_per_mb_s) + r.cpu_adam_s;
      return r;
    }
    case Offload::nvme: {
      // ZeRO-Infinity: as params, with the weights read from NVMe for forward and backward; the
      // optimizer step swaps the states in and out of NVMe (read 12 B, write 12 + 2 B per parameter),
      // overlapped with CPU Adam by the overlap-centric engine (sec. 6.2): the longer of the two.
      const double mb_pcie = (2 * in.param_bytes + in.grad_bytes) * U;
      const double mb_nvme = 2 * in.param_bytes * U;
      const double t_mb = std::max(mb_pcie / pcie, mb_nvme / nvme_bw);
      const double opt_nvme = (2 * in.optimizer_bytes + in.param_bytes) * U;
      r.cpu_adam_s = cpu_adam_time(U, s, o);
      r.pcie_bytes = m * mb_pcie;
      r.nvme_bytes = m * mb_nvme + opt_nvme;
      r.pcie_s = m * mb_pcie / pcie;
      r.nvme_s = (m * mb_nvme + opt_nvme) / nvme_bw;
      r.exposed_s = m * std::max(0.0, t_mb - in.compute_per_mb_s) + std::max(r.cpu_adam_s, opt_nvme / nvme_bw);
      return r;
    }
  }
  return r;
}

}  // namespace scaleplan::strategies
