// Tracked caching device allocator and pinned host buffers (see device_memory.hpp).
#include "executor/cuda/device_memory.hpp"

#include <cstdlib>
#include <string>
#include <utility>

#include "executor/cuda/cuda_check.hpp"

namespace scaleplan::executor::cuda {
namespace {
// Blocks are rounded to 512 B (the alignment cudaMalloc guarantees is 256 B) so reuse by size
// class works for nearby sizes.
std::size_t round_up(std::size_t b) { return (b + 511) / 512 * 512; }
}  // namespace

DeviceMemory::~DeviceMemory() {
  for (auto& [p, l] : live_) cudaFree(p);
  for (auto& [s, p] : cache_) cudaFree(p);
}

void* DeviceMemory::allocate(std::size_t bytes, MemCategory c, cudaStream_t st, bool zero) {
  if (bytes == 0) return nullptr;
  const std::size_t r = round_up(bytes);
  void* p = nullptr;
  auto it = cache_.find(r);
  if (it != cache_.end()) {
    p = it->second;
    cache_.erase(it);
  } else {
    cudaError_t e = cudaMalloc(&p, r);
    if (e == cudaErrorMemoryAllocation && !cache_.empty()) {  // give the cache back and retry once
      (void)cudaGetLastError();
      release_cache();
      e = cudaMalloc(&p, r);
    }
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      const MemStats& s = tracker_.stats();
      throw BackendError("CUDA: cannot allocate " + std::to_string(bytes) + " B for " + name(c) + " (" +
                         cudaGetErrorString(e) + "; tracked live " + std::to_string(static_cast<long long>(s.total_current)) +
                         " B, reserved " + std::to_string(reserved_) + " B)");
    }
    reserved_ += r;
    if (reserved_ > peak_reserved_) peak_reserved_ = reserved_;
  }
  if (zero) SP_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, st));
  live_.emplace(p, Live{bytes, r, c});
  tracker_.add(c, static_cast<double>(bytes));
  return p;
}

void DeviceMemory::deallocate(void* p) {
  if (!p) return;
  auto it = live_.find(p);
  if (it == live_.end()) throw BackendError("CUDA: deallocate of a pointer this allocator did not hand out");
  tracker_.sub(it->second.cat, static_cast<double>(it->second.bytes));
  cache_.emplace(it->second.rounded, p);
  live_.erase(it);
}

void DeviceMemory::release_cache() {
  if (cache_.empty()) return;
  cudaDeviceSynchronize();  // blocks may still be in use by queued kernels
  for (auto& [s, p] : cache_) {
    cudaFree(p);
    reserved_ -= s;
  }
  cache_.clear();
}

PinnedBuffer::PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes) SP_CUDA_CHECK(cudaMallocHost(&p_, bytes));
}
PinnedBuffer::~PinnedBuffer() {
  if (p_) cudaFreeHost(p_);
}
PinnedBuffer::PinnedBuffer(PinnedBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) cudaFreeHost(p_);
    p_ = std::exchange(o.p_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

int select_local_device(int fallback_rank) {
  const int n = device_count();
  if (n == 0) return -1;
  int local = fallback_rank;
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"})
    if (const char* v = std::getenv(var)) {
      local = std::atoi(v);
      break;
    }
  const int dev = (local % n + n) % n;
  SP_CUDA_CHECK(cudaSetDevice(dev));
  return dev;
}

namespace {
cudaStream_t g_compute_stream = nullptr;
}
void set_compute_stream(cudaStream_t st) { g_compute_stream = st; }
cudaStream_t compute_stream() { return g_compute_stream; }

std::string device_name() {
  int dev = 0;
  SP_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  SP_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  return prop.name;
}

}  // namespace scaleplan::executor::cuda
