#pragma once
// The communicator of the reference executor: one narrow interface, several implementations
// (DESIGN.md sec. 5, ASTRA-sim's network backend lesson): "self" (one process), "mpi" (OpenMPI,
// executor/mpi_comm.cpp, built with SCALEPLAN_WITH_MPI) and "nccl" (executor/cuda, issue 9).
// No MPI/NCCL type appears here.
//
// Byte counters follow DESIGN.md "comm_bytes_per_gpu": the buffer size of each all-reduce, the
// input size of each reduce-scatter, the output size of each all-gather, the bytes of each send
// (receives are recorded but not part of the contract total); broadcasts count their buffer.
// Every sub-communicator carries the parallel dimension (tp/pp/dp/cp/ep) its bytes count under.
// Calls on a communicator of size 1 are no-ops (copies) and count nothing.
//
// Failures: every blocking call has a deadline (set_timeout); a call that passes it throws
// CommError naming the call, the group and the peer, so the program can report on rank 0 and
// abort() the job instead of hanging. Only ADD to this interface (issue 9 compiles against it).
#include <array>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

namespace scaleplan::executor {

struct CommError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class CommDim : int { tp = 0, pp = 1, dp = 2, cp = 3, ep = 4, world = 5 };
inline constexpr int kCommDims = 6;
inline const char* name(CommDim d) {
  static const char* const names[kCommDims] = {"tp", "pp", "dp", "cp", "ep", "world"};
  return names[static_cast<int>(d)];
}
enum class CollKind : int { all_reduce = 0, reduce_scatter, all_gather, broadcast, send, recv };
inline constexpr int kCollKinds = 6;
inline const char* name(CollKind k) {
  static const char* const names[kCollKinds] = {"all_reduce", "reduce_scatter", "all_gather",
                                                "broadcast",  "send",           "recv"};
  return names[static_cast<int>(k)];
}
enum class ReduceOp : int { sum = 0, max = 1 };

struct CommCounters {
  std::array<std::array<double, kCollKinds>, kCommDims> bytes{};  // [dim][kind]
  std::array<std::array<long long, kCollKinds>, kCommDims> calls{};
  // Wall seconds spent waiting for each kind of call to complete (`run --profile`; 0 where the
  // implementation does not time), and in barriers and host-scalar all-reduces (synchronisation).
  std::array<std::array<double, kCollKinds>, kCommDims> seconds{};
  double sync_s = 0;
  void add(CommDim d, CollKind k, double b) {
    bytes[static_cast<int>(d)][static_cast<int>(k)] += b;
    calls[static_cast<int>(d)][static_cast<int>(k)] += 1;
  }
  // The DESIGN.md contract total of one dimension (receives excluded).
  double contract_bytes(CommDim d) const {
    const auto& r = bytes[static_cast<int>(d)];
    double t = 0;
    for (int k = 0; k < kCollKinds; ++k)
      if (k != static_cast<int>(CollKind::recv)) t += r[k];
    return t;
  }
  void reset() { *this = CommCounters{}; }
};

class Comm {
 public:
  virtual ~Comm() = default;
  virtual std::string name() const = 0;  // "self", "mpi", "nccl"
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // True when data pointers must be device memory (NCCL); false: host memory (MPI, self).
  virtual bool device_memory() const { return false; }
  // The ranks with the same `color`, ordered by `key`; their traffic counts under `dim`. The child
  // shares this communicator's counters and timeout. Collective over this communicator.
  // color < 0: this rank joins no group and gets nullptr.
  virtual std::unique_ptr<Comm> split(int color, int key, CommDim dim) = 0;

  virtual void all_reduce(float* data, std::size_t n, ReduceOp op = ReduceOp::sum) = 0;  // in place
  // in: size()*n_out elements (rank r receives the sum of block r); out: n_out elements.
  virtual void reduce_scatter(const float* in, float* out, std::size_t n_out) = 0;
  // in: n_in elements; out: size()*n_in elements, block r from rank r. In place when
  // in == out + rank()*n_in.
  virtual void all_gather(const float* in, float* out, std::size_t n_in) = 0;
  virtual void broadcast(float* data, std::size_t n, int root) = 0;
  // send() may return before the peer has received; the caller may reuse `data` at once.
  virtual void send(const float* data, std::size_t n, int dst, int tag) = 0;
  virtual void recv(float* data, std::size_t n, int src, int tag) = 0;
  virtual void barrier() = 0;
  // Host scalars (losses, norms, timings): host memory always, never counted in the contract.
  virtual void all_reduce_host(double* data, std::size_t n, ReduceOp op) = 0;
  // Ends every process of the job (MPI_Abort); the caller prints its message first.
  [[noreturn]] virtual void abort(int code) = 0;

  void set_timeout(double seconds) { *timeout_s_ = seconds; }
  double timeout() const { return *timeout_s_; }
  CommDim dim() const { return dim_; }
  CommCounters& counters() { return *counters_; }
  const CommCounters& counters() const { return *counters_; }

 protected:
  Comm() : counters_(std::make_shared<CommCounters>()), timeout_s_(std::make_shared<double>(60.0)) {}
  Comm(const Comm& parent, CommDim d) : counters_(parent.counters_), timeout_s_(parent.timeout_s_), dim_(d) {}
  void count(CollKind k, double bytes) { counters_->add(dim_, k, bytes); }

 private:
  std::shared_ptr<CommCounters> counters_;
  std::shared_ptr<double> timeout_s_;
  CommDim dim_ = CommDim::world;
};

// One process, no MPI: size 1, collectives are copies.
std::unique_ptr<Comm> make_self_comm();
// True when built with SCALEPLAN_WITH_MPI.
bool mpi_built();
// The world communicator: MPI_COMM_WORLD when built with MPI (MPI is initialised on first use
// and finalised when the returned object is destroyed), else make_self_comm().
std::unique_ptr<Comm> make_world_comm();

}  // namespace scaleplan::executor
