#pragma once
// A tracked device allocator (issue 9): counts the bytes asked for by category (params, grads,
// optimizer, activations, buffers; executor/backend.hpp MemTracker) with current and peak values,
// and caches freed blocks by size so a training loop does not call cudaMalloc/cudaFree per step
// (cudaFree synchronises the device). The counted bytes are exactly the requested sizes; what the
// cache holds beyond them is reported separately (reserved_bytes()).
#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <unordered_map>

#include "executor/backend.hpp"

namespace scaleplan::executor::cuda {

class DeviceMemory {
 public:
  DeviceMemory() = default;
  ~DeviceMemory();
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  // Zero-filled on `st` when `zero` (asynchronously). Throws BackendError when the device is full.
  void* allocate(std::size_t bytes, MemCategory c, cudaStream_t st = nullptr, bool zero = true);
  void deallocate(void* p);  // nullptr: no-op
  const MemStats& stats() const { return tracker_.stats(); }
  void reset_peaks() { tracker_.reset_peaks(); }
  // Bytes held from the driver (live + cached blocks).
  std::size_t reserved_bytes() const { return reserved_; }
  std::size_t peak_reserved_bytes() const { return peak_reserved_; }
  // Returns cached blocks to the driver.
  void release_cache();

 private:
  struct Live {
    std::size_t bytes, rounded;
    MemCategory cat;
  };
  MemTracker tracker_;
  std::unordered_map<void*, Live> live_;
  std::multimap<std::size_t, void*> cache_;  // rounded size -> block
  std::size_t reserved_ = 0, peak_reserved_ = 0;
};

// Host memory page-locked for async copies (cudaMallocHost); counted separately ("host" in the
// memory contract).
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& o) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void* data() const { return p_; }
  float* f() const { return static_cast<float*>(p_); }
  std::size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
};

// Number of CUDA devices visible; 0 when there is no driver or no GPU (never throws).
int device_count();
// Makes the process use GPU (local rank % visible GPUs), the local rank read from the launcher's
// environment (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID, LOCAL_RANK), else
// `fallback_rank`; returns the device chosen. So every rank of `mpirun -np N` on one node gets its
// own GPU whatever order the backend and the communicator are created in.
int select_local_device(int fallback_rank = 0);
// The stream the CUDA backend of this process computes on (nullptr: none registered). The NCCL
// communicator orders its work after it (an event, no host wait) instead of synchronising the
// whole device, which could block on another communicator's pending point-to-point transfer.
void set_compute_stream(cudaStream_t st);
cudaStream_t compute_stream();
// "NVIDIA H100 80GB HBM3" etc. of the current device.
std::string device_name();

}  // namespace scaleplan::executor::cuda
