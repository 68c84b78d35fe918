#pragma once
// Optimizer-state offload (issue 9; ZeRO-Offload, Ren et al. 2021, keeps the fp32 optimizer state in
// host memory): the fp32 master weights and the two Adam moments live in pinned host memory; each
// step streams them through two device chunk buffers: H2D copy of chunk i+1 (side stream) overlaps
// the AdamW kernel on chunk i (compute stream) and the D2H copy of chunk i-1 (second side stream;
// PCIe is full duplex). The device keeps only 2 chunks x 3 arrays (counted as "optimizer").
// The updated weights are written straight into the device working copy (bf16 or fp32).
#include <cuda_runtime.h>

#include <cstddef>

#include "executor/cuda/device_memory.hpp"

namespace scaleplan::executor::cuda {

struct AdamHyper {
  float lr = 1e-4f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

class OffloadedAdam {
 public:
  // n parameters; `initial` (device, TW) gives the starting master weights (copied once).
  template <class TW>
  OffloadedAdam(DeviceMemory& mem, const TW* initial, std::size_t n, std::size_t chunk_elems, cudaStream_t compute);
  ~OffloadedAdam();
  OffloadedAdam(const OffloadedAdam&) = delete;
  OffloadedAdam& operator=(const OffloadedAdam&) = delete;

  // One AdamW step: g (device, TG) -> master/m/v on the host, updated weight into working (device, TW).
  // Asynchronous on the compute stream (it waits for the last D2H copy before returning control
  // of the host arrays, i.e. the next step() or host read is ordered after this one).
  template <class TG, class TW>
  void step(const TG* g, TW* working, const AdamHyper& h, int t, float grad_scale);
  double host_bytes() const { return 3.0 * n_ * sizeof(float); }
  double device_bytes() const { return 2.0 * 3.0 * chunk_ * sizeof(float); }
  std::size_t size() const { return n_; }
  const float* host_master() const { return master_.f(); }  // valid after synchronising the compute stream

 private:
  DeviceMemory& mem_;
  std::size_t n_, chunk_;
  cudaStream_t compute_, h2d_ = nullptr, d2h_ = nullptr;
  PinnedBuffer master_, m_, v_;
  float* dev_[2] = {nullptr, nullptr};  // each: master | m | v of one chunk
  cudaEvent_t in_[2]{}, done_[2]{}, out_[2]{};
};

}  // namespace scaleplan::executor::cuda
