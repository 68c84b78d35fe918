// Optimizer-state offload through pinned host memory (see offload.hpp).
#include "executor/cuda/offload.hpp"

#include <algorithm>
#include <cstring>

#include "executor/cuda/cuda_check.hpp"
#include "executor/cuda/kernels.cuh"

namespace scaleplan::executor::cuda {

template <class TW>
OffloadedAdam::OffloadedAdam(DeviceMemory& mem, const TW* initial, std::size_t n, std::size_t chunk_elems,
                             cudaStream_t compute)
    : mem_(mem), n_(n), chunk_(std::max<std::size_t>(1, std::min(chunk_elems, n))), compute_(compute),
      master_(n * sizeof(float)), m_(n * sizeof(float)), v_(n * sizeof(float)) {
  SP_CUDA_CHECK(cudaStreamCreateWithFlags(&h2d_, cudaStreamNonBlocking));
  SP_CUDA_CHECK(cudaStreamCreateWithFlags(&d2h_, cudaStreamNonBlocking));
  for (int b = 0; b < 2; ++b) {
    dev_[b] = static_cast<float*>(mem_.allocate(3 * chunk_ * sizeof(float), MemCategory::optimizer, compute_));
    SP_CUDA_CHECK(cudaEventCreateWithFlags(&in_[b], cudaEventDisableTiming));
    SP_CUDA_CHECK(cudaEventCreateWithFlags(&done_[b], cudaEventDisableTiming));
    SP_CUDA_CHECK(cudaEventCreateWithFlags(&out_[b], cudaEventDisableTiming));
  }
  std::memset(m_.data(), 0, m_.bytes());
  std::memset(v_.data(), 0, v_.bytes());
  // Master weights from the working copy, chunk by chunk through device buffer 0.
  for (std::size_t off = 0; off < n_; off += chunk_) {
    const std::size_t len = std::min(chunk_, n_ - off);
    convert<TW, float>(initial + off, dev_[0], len, compute_);
    SP_CUDA_CHECK(cudaMemcpyAsync(master_.f() + off, dev_[0], len * sizeof(float), cudaMemcpyDeviceToHost, compute_));
  }
  SP_CUDA_CHECK(cudaStreamSynchronize(compute_));
}

OffloadedAdam::~OffloadedAdam() {
  if (compute_) cudaStreamSynchronize(compute_);
  for (int b = 0; b < 2; ++b) {
    cudaEventDestroy(in_[b]);
    cudaEventDestroy(done_[b]);
    cudaEventDestroy(out_[b]);
    try {
      mem_.deallocate(dev_[b]);
    } catch (...) {
    }
  }
  if (h2d_) cudaStreamDestroy(h2d_);
  if (d2h_) cudaStreamDestroy(d2h_);
}

template <class TG, class TW>
void OffloadedAdam::step(const TG* g, TW* working, const AdamHyper& h, int t, float grad_scale) {
  // The previous step's last D2H copies must be complete before we read the host arrays again:
  // each buffer's out_ event orders that (recorded on d2h_, waited on h2d_).
  // Start: the gradient is produced on the compute stream; the h2d stream does not read it.
  int c = 0;
  for (std::size_t off = 0; off < n_; off += chunk_, ++c) {
    const int b = c & 1;
    const std::size_t len = std::min(chunk_, n_ - off);
    float* dm = dev_[b];
    float* dmm = dm + chunk_;
    float* dv = dm + 2 * chunk_;
    // H2D: wait until the buffer's previous contents went back to the host.
    SP_CUDA_CHECK(cudaStreamWaitEvent(h2d_, out_[b], 0));
    SP_CUDA_CHECK(cudaMemcpyAsync(dm, master_.f() + off, len * sizeof(float), cudaMemcpyHostToDevice, h2d_));
    SP_CUDA_CHECK(cudaMemcpyAsync(dmm, m_.f() + off, len * sizeof(float), cudaMemcpyHostToDevice, h2d_));
    SP_CUDA_CHECK(cudaMemcpyAsync(dv, v_.f() + off, len * sizeof(float), cudaMemcpyHostToDevice, h2d_));
    SP_CUDA_CHECK(cudaEventRecord(in_[b], h2d_));
    // Update on the compute stream.
    SP_CUDA_CHECK(cudaStreamWaitEvent(compute_, in_[b], 0));
    adamw_update<TG, TW>(dm, g + off, dmm, dv, working + off, len, h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, t,
                         grad_scale, compute_);
    SP_CUDA_CHECK(cudaEventRecord(done_[b], compute_));
    // D2H of the updated state.
    SP_CUDA_CHECK(cudaStreamWaitEvent(d2h_, done_[b], 0));
    SP_CUDA_CHECK(cudaMemcpyAsync(master_.f() + off, dm, len * sizeof(float), cudaMemcpyDeviceToHost, d2h_));
    SP_CUDA_CHECK(cudaMemcpyAsync(m_.f() + off, dmm, len * sizeof(float), cudaMemcpyDeviceToHost, d2h_));
    SP_CUDA_CHECK(cudaMemcpyAsync(v_.f() + off, dv, len * sizeof(float), cudaMemcpyDeviceToHost, d2h_));
    SP_CUDA_CHECK(cudaEventRecord(out_[b], d2h_));
  }
  // The compute stream (and so the caller's timing events) completes only after the state is home.
  for (int b = 0; b < 2; ++b) SP_CUDA_CHECK(cudaStreamWaitEvent(compute_, out_[b], 0));
}

template OffloadedAdam::OffloadedAdam(DeviceMemory&, const float*, std::size_t, std::size_t, cudaStream_t);
template OffloadedAdam::OffloadedAdam(DeviceMemory&, const bf16*, std::size_t, std::size_t, cudaStream_t);
template void OffloadedAdam::step<float, float>(const float*, float*, const AdamHyper&, int, float);
template void OffloadedAdam::step<bf16, bf16>(const bf16*, bf16*, const AdamHyper&, int, float);

}  // namespace scaleplan::executor::cuda
