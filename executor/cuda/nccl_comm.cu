// NCCL communicator (see nccl_comm.hpp).
#include "executor/cuda/nccl_comm.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "executor/cuda/cuda_check.hpp"
#include "executor/cuda/device_memory.hpp"

#ifdef SCALEPLAN_HAVE_NCCL
#include <nccl.h>
#endif

namespace scaleplan::executor {

namespace {
// One rank on one GPU without NCCL: collectives of size 1 are device copies, counted as nothing
// (comm.hpp: "Calls on a communicator of size 1 are no-ops (copies) and count nothing").
class DeviceSelfComm final : public Comm {
 public:
  explicit DeviceSelfComm(Comm& host) : host_(host) {}
  DeviceSelfComm(const DeviceSelfComm& parent, CommDim d) : Comm(parent, d), host_(parent.host_) {}
  std::string name() const override { return "cuda-self"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  bool device_memory() const override { return true; }
  // color < 0: no group, nullptr (comm.hpp; as SelfComm and MPI_UNDEFINED). gpt.cpp's tied-embedding
  // split passes -1 on a 1-stage pipeline and tests `tie` for null.
  std::unique_ptr<Comm> split(int color, int, CommDim dim) override {
    if (color < 0) return nullptr;
    return std::make_unique<DeviceSelfComm>(*this, dim);
  }
  void all_reduce(float*, std::size_t, ReduceOp) override {}
  void reduce_scatter(const float* in, float* out, std::size_t n) override { copy(in, out, n); }
  void all_gather(const float* in, float* out, std::size_t n) override { copy(in, out, n); }
  void broadcast(float*, std::size_t, int) override {}
  void send(const float*, std::size_t, int dst, int) override {
    throw CommError("cuda-self communicator: send to rank " + std::to_string(dst) + " in a 1-rank job");
  }
  void recv(float*, std::size_t, int src, int) override {
    throw CommError("cuda-self communicator: recv from rank " + std::to_string(src) + " in a 1-rank job");
  }
  void barrier() override {}
  void all_reduce_host(double*, std::size_t, ReduceOp) override {}
  [[noreturn]] void abort(int code) override {
    host_.abort(code);
    __builtin_unreachable();
  }

 private:
  // On the backend's compute stream, in its order. (cudaMemcpy would run on the legacy default stream,
  // which does NOT synchronise with the backend's cudaStreamNonBlocking stream: the copy could read
  // `in` before the kernels producing it ran, and later kernels could read `out` before it landed.)
  static void copy(const float* in, float* out, std::size_t n) {
    if (in == out || !n) return;
    if (cudaStream_t cs = cuda::compute_stream()) {
      SP_CUDA_CHECK(cudaMemcpyAsync(out, in, n * sizeof(float), cudaMemcpyDeviceToDevice, cs));
    } else {
      SP_CUDA_CHECK(cudaDeviceSynchronize());
      SP_CUDA_CHECK(cudaMemcpy(out, in, n * sizeof(float), cudaMemcpyDeviceToDevice));
      SP_CUDA_CHECK(cudaDeviceSynchronize());
    }
  }
  Comm& host_;
};
}  // namespace

std::unique_ptr<Comm> make_device_comm(bool backend_host_accessible, Comm& host_world) {
  if (backend_host_accessible) return nullptr;
  if (nccl_built()) return make_nccl_comm(host_world);
  if (host_world.size() == 1) return std::make_unique<DeviceSelfComm>(host_world);
  throw CommError("the cuda backend on " + std::to_string(host_world.size()) +
                  " ranks needs NCCL, and this build has no NCCL (libnccl was not found when configuring)");
}

#ifndef SCALEPLAN_HAVE_NCCL
bool nccl_built() { return false; }
std::unique_ptr<Comm> make_nccl_comm(Comm&) {
  throw CommError("nccl communicator: this build has no NCCL (libnccl was not found when configuring)");
}
#else
bool nccl_built() { return true; }

namespace {

class NcclComm;
// The communicators split from one root: a blocking call on any of them first launches the
// deferred sends of all of them, so a rank never waits in one group while a peer waits for a send
// this rank still holds back in another.
struct Family {
  std::vector<NcclComm*> members;
};

class NcclComm final : public Comm {
 public:
  // Root communicator.
  NcclComm(Comm& host, ncclComm_t c) : host_(host), c_(c), family_(std::make_shared<Family>()) { init_common(); }
  // Child (split) communicator: shares counters, timeout and the family with the parent.
  NcclComm(const NcclComm& parent, ncclComm_t c, CommDim d)
      : Comm(parent, d), host_(parent.host_), c_(c), family_(parent.family_) {
    init_common();
  }
  ~NcclComm() override {
    try {
      flush_sends();
    } catch (...) {
    }
    if (st_) cudaStreamSynchronize(st_);
    auto& v = family_->members;
    v.erase(std::remove(v.begin(), v.end(), this), v.end());
    if (scratch_) cudaFreeAsync(scratch_, st_);
    if (st_) cudaStreamSynchronize(st_);
    if (host_scratch_) cudaFreeHost(host_scratch_);
    if (c_) ncclCommDestroy(c_);
    if (st_) cudaStreamDestroy(st_);
    if (ready_) cudaEventDestroy(ready_);
  }
  std::string name() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool device_memory() const override { return true; }

  std::unique_ptr<Comm> split(int color, int key, CommDim dim) override {
    flush_family();
    ncclComm_t child = nullptr;
    // Ranks that belong to no group pass NCCL_SPLIT_NOCOLOR and get no communicator (as MPI_UNDEFINED).
    check(ncclCommSplit(c_, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &child, nullptr), "ncclCommSplit");
    if (color < 0 || child == nullptr) return nullptr;
    return std::make_unique<NcclComm>(*this, child, dim);
  }

  void all_reduce(float* data, std::size_t n, ReduceOp op) override {
    if (size_ == 1 || n == 0) return;
    count(CollKind::all_reduce, 4.0 * n);
    before();
    check(ncclAllReduce(data, data, n, ncclFloat32, op == ReduceOp::sum ? ncclSum : ncclMax, c_, st_), "ncclAllReduce");
    wait("all_reduce");
  }
  void reduce_scatter(const float* in, float* out, std::size_t n_out) override {
    if (size_ == 1) {
      copy(in, out, n_out);
      return;
    }
    count(CollKind::reduce_scatter, 4.0 * n_out * size_);
    before();
    check(ncclReduceScatter(in, out, n_out, ncclFloat32, ncclSum, c_, st_), "ncclReduceScatter");
    wait("reduce_scatter");
  }
  void all_gather(const float* in, float* out, std::size_t n_in) override {
    if (size_ == 1) {
      copy(in, out, n_in);
      return;
    }
    count(CollKind::all_gather, 4.0 * n_in * size_);
    before();
    check(ncclAllGather(in, out, n_in, ncclFloat32, c_, st_), "ncclAllGather");
    wait("all_gather");
  }
  void broadcast(float* data, std::size_t n, int root) override {
    if (size_ == 1 || n == 0) return;
    count(CollKind::broadcast, 4.0 * n);
    before();
    check(ncclBroadcast(data, data, n, ncclFloat32, root, c_, st_), "ncclBroadcast");
    wait("broadcast");
  }
  // Deferred: the data is copied to a staging buffer (so the caller may reuse `data` at once, as the
  // interface allows) and handed to NCCL together with this rank's next receive in one
  // ncclGroupStart/End (NCCL's way to run a send and a receive concurrently: two stages that send
  // to each other before receiving would otherwise wait for each other), or before any other
  // blocking call of this communicator family.
  void send(const float* data, std::size_t n, int dst, int /*tag*/) override {
    if (dst < 0 || dst >= size_) throw CommError("nccl: send to rank " + std::to_string(dst) + " of " + std::to_string(size_));
    count(CollKind::send, 4.0 * n);
    float* staged = nullptr;
    // The staging copy runs on the backend's compute stream: the caller may overwrite or free `data`
    // (a cached block handed out again) with its next kernel, and only the compute stream's own order
    // puts the copy before that kernel. (On the NCCL stream the copy would wait for `data` to be
    // produced but nothing would make the caller's next write wait for the copy.) The NCCL stream
    // then waits for the copy (order_after_compute) before the deferred ncclSend reads `staged`.
    // Stream-ordered allocation and free (cudaMallocAsync/cudaFreeAsync): cudaFree would wait for
    // the whole device, i.e. for other communicators' transfers that wait for a peer. Freeing on st_
    // (after the send) memory allocated on the compute stream is allowed: st_ is ordered after it.
    cudaStream_t cs = cuda::compute_stream();
    if (!cs) order_after_compute();  // no backend stream registered: a device-wide sync
    cudaStream_t cp = cs ? cs : st_;
    SP_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&staged), std::max<std::size_t>(1, n) * sizeof(float), cp));
    if (n) SP_CUDA_CHECK(cudaMemcpyAsync(staged, data, n * sizeof(float), cudaMemcpyDeviceToDevice, cp));
    if (cs) order_after_compute();
    pending_.push_back({staged, n, dst});
  }
  void recv(float* data, std::size_t n, int src, int /*tag*/) override {
    if (src < 0 || src >= size_) throw CommError("nccl: recv from rank " + std::to_string(src) + " of " + std::to_string(size_));
    count(CollKind::recv, 4.0 * n);
    flush_family(this);  // the other communicators' sends; ours go into the group below
    order_after_compute();
    check(ncclGroupStart(), "ncclGroupStart");
    for (const auto& p : pending_) check(ncclSend(p.buf, p.n, ncclFloat32, p.peer, c_, st_), "ncclSend");
    check(ncclRecv(data, n, ncclFloat32, src, c_, st_), "ncclRecv");
    check(ncclGroupEnd(), "ncclGroupEnd");
    for (const auto& p : pending_) SP_CUDA_CHECK(cudaFreeAsync(p.buf, st_));
    pending_.clear();
    wait("recv from rank " + std::to_string(src));
  }
  void barrier() override {
    if (size_ == 1) return;
    before();
    check(ncclAllReduce(scratch_, scratch_, 1, ncclFloat64, ncclSum, c_, st_), "ncclAllReduce(barrier)");
    wait("barrier");
  }
  void all_reduce_host(double* data, std::size_t n, ReduceOp op) override {
    if (size_ == 1 || n == 0) return;
    flush_family();
    ensure_scratch(n);
    // Through pinned host memory, so the copies are truly asynchronous and wait() keeps its deadline.
    std::copy(data, data + n, host_scratch_);
    SP_CUDA_CHECK(cudaMemcpyAsync(scratch_, host_scratch_, n * sizeof(double), cudaMemcpyHostToDevice, st_));
    check(ncclAllReduce(scratch_, scratch_, n, ncclFloat64, op == ReduceOp::sum ? ncclSum : ncclMax, c_, st_),
          "ncclAllReduce(host)");
    SP_CUDA_CHECK(cudaMemcpyAsync(host_scratch_, scratch_, n * sizeof(double), cudaMemcpyDeviceToHost, st_));
    wait("all_reduce_host");
    std::copy(host_scratch_, host_scratch_ + n, data);
  }
  [[noreturn]] void abort(int code) override {
    if (c_) ncclCommAbort(c_);
    c_ = nullptr;
    host_.abort(code);
    __builtin_unreachable();  // Comm::abort never returns
  }

 private:
  struct Pending {
    float* buf;
    std::size_t n;
    int peer;
  };
  void init_common() {
    check(ncclCommCount(c_, &size_), "ncclCommCount");
    check(ncclCommUserRank(c_, &rank_), "ncclCommUserRank");
    SP_CUDA_CHECK(cudaStreamCreateWithFlags(&st_, cudaStreamNonBlocking));
    SP_CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    ensure_scratch(16);
    family_->members.push_back(this);
  }
  void ensure_scratch(std::size_t n) {
    if (n <= scratch_n_) return;
    if (scratch_) SP_CUDA_CHECK(cudaFreeAsync(scratch_, st_));
    if (host_scratch_) {
      SP_CUDA_CHECK(cudaStreamSynchronize(st_));  // only ever called between completed operations
      SP_CUDA_CHECK(cudaFreeHost(host_scratch_));
    }
    SP_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_scratch_), n * sizeof(double)));
    SP_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&scratch_), n * sizeof(double), st_));
    SP_CUDA_CHECK(cudaMemsetAsync(scratch_, 0, n * sizeof(double), st_));
    scratch_n_ = n;
  }
  void copy(const float* in, float* out, std::size_t n) {
    if (in != out && n) {
      order_after_compute();
      SP_CUDA_CHECK(cudaMemcpyAsync(out, in, n * sizeof(float), cudaMemcpyDeviceToDevice, st_));
      SP_CUDA_CHECK(cudaStreamSynchronize(st_));
    }
  }
  // Work on st_ starts after what the backend queued so far (no host wait; see compute_stream()).
  void order_after_compute() {
    if (cudaStream_t cs = cuda::compute_stream()) {
      SP_CUDA_CHECK(cudaEventRecord(ready_, cs));
      SP_CUDA_CHECK(cudaStreamWaitEvent(st_, ready_, 0));
    } else {
      SP_CUDA_CHECK(cudaDeviceSynchronize());
    }
  }
  void before() {
    flush_family();
    order_after_compute();
  }
  // Launch this communicator's deferred sends as one group (no wait; completion is ordered on st_).
  void flush_sends() {
    if (pending_.empty() || !c_) return;
    check(ncclGroupStart(), "ncclGroupStart");
    for (const auto& p : pending_) check(ncclSend(p.buf, p.n, ncclFloat32, p.peer, c_, st_), "ncclSend");
    check(ncclGroupEnd(), "ncclGroupEnd");
    for (const auto& p : pending_) SP_CUDA_CHECK(cudaFreeAsync(p.buf, st_));  // after the send, in stream order
    pending_.clear();
  }
  void flush_family(NcclComm* except = nullptr) {
    for (NcclComm* m : family_->members)
      if (m != except) m->flush_sends();
  }
  void check(ncclResult_t r, const char* what) {
    if (r != ncclSuccess && r != ncclInProgress)
      throw CommError(std::string("nccl: ") + what + " failed: " + ncclGetErrorString(r) + " (rank " +
                      std::to_string(rank_) + " of " + std::to_string(size_) + ", group " +
                      ::scaleplan::executor::name(dim()) + ")");
  }
  void wait(const std::string& what) {
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t e = cudaStreamQuery(st_);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) cuda::throw_cuda(what.c_str(), cudaGetErrorString(e), __FILE__, __LINE__);
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(c_, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        ncclCommAbort(c_);
        c_ = nullptr;
        throw CommError("nccl: " + what + " failed asynchronously: " + ncclGetErrorString(async) + " (rank " +
                        std::to_string(rank_) + ", group " + ::scaleplan::executor::name(dim()) + ")");
      }
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (el > timeout()) {
        ncclCommAbort(c_);
        c_ = nullptr;
        throw CommError("nccl: " + what + " timed out after " + std::to_string(timeout()) + " s (rank " +
                        std::to_string(rank_) + " of " + std::to_string(size_) + ", group " +
                        ::scaleplan::executor::name(dim()) + "): a peer is not answering");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  Comm& host_;
  ncclComm_t c_ = nullptr;
  std::shared_ptr<Family> family_;
  int rank_ = 0, size_ = 1;
  cudaStream_t st_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  double* scratch_ = nullptr;
  double* host_scratch_ = nullptr;
  std::size_t scratch_n_ = 0;
  std::vector<Pending> pending_;
};

}  // namespace

std::unique_ptr<Comm> make_nccl_comm(Comm& host) {
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    (void)cudaGetLastError();
    throw CommError("nccl communicator: no CUDA device visible on rank " + std::to_string(host.rank()));
  }
  // Same GPU as the CUDA backend of this rank. When the backend exists already (it registered its
  // stream), keep the device it selected: a different fallback here (rank % GPUs vs the backend's 0
  // when no launcher variable is set) would put the communicator on another GPU than the data and
  // make the backend's later launches fail ("invalid resource handle").
  if (!cuda::compute_stream()) cuda::select_local_device(host.rank());
  ncclUniqueId id{};
  if (host.rank() == 0) {
    const ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) throw CommError(std::string("nccl: ncclGetUniqueId failed: ") + ncclGetErrorString(r));
  }
  // The id's bytes as small integers in doubles: a sum over ranks (others contribute 0) is exact.
  std::vector<double> bytes(sizeof(id.internal), 0.0);
  if (host.rank() == 0)
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(id.internal[i]);
  host.all_reduce_host(bytes.data(), bytes.size(), ReduceOp::sum);
  for (std::size_t i = 0; i < bytes.size(); ++i) id.internal[i] = static_cast<char>(static_cast<unsigned char>(bytes[i]));
  ncclComm_t c = nullptr;
  const ncclResult_t r = ncclCommInitRank(&c, host.size(), id, host.rank());
  if (r != ncclSuccess)
    throw CommError(std::string("nccl: ncclCommInitRank failed on rank ") + std::to_string(host.rank()) + ": " +
                    ncclGetErrorString(r));
  auto comm = std::make_unique<NcclComm>(host, c);
  comm->set_timeout(host.timeout());
  return comm;
}
#endif

}  // namespace scaleplan::executor
