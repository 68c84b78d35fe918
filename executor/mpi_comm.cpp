// The MPI communicator (OpenMPI). Every call is non-blocking underneath (MPI_I*) and polled
// against a deadline, so a dead or stuck peer becomes a CommError naming the call instead of a
// hang; the program reports it on rank 0 and calls abort() (MPI_Abort ends every rank).
#include <mpi.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <optional>
#include <thread>
#include <vector>

#include "executor/comm.hpp"

namespace scaleplan::executor {
namespace {

struct MpiRuntime {  // initialises MPI once per process, finalises at exit of the last world comm
  static void ensure() {
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
      // Pipeline activations and gradients go eagerly: at or below the eager limit OpenMPI's
      // shared-memory transport (vader) copies a message into the receiver's queue at the send,
      // above it the receiver waits until the sender calls into MPI again (rendezvous), i.e. a
      // whole microbatch later: GPipe measured 19 ms against 1F1B's 15 ms for gpt-tiny at pp=2,
      // both 15 ms with this (issue 22). 1 MiB covers the executor's models' stage messages.
      // A value given by the user (mpirun --mca or the environment) wins (overwrite = 0).
      ::setenv("OMPI_MCA_btl_vader_eager_limit", "1048576", 0);
      ::setenv("OMPI_MCA_btl_vader_max_send_size", "1048576", 0);
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SINGLE, &provided);
      owned() = true;
    }
  }
  static bool& owned() {
    static bool o = false;
    return o;
  }
  // More ranks on this host than online cores (mpirun --oversubscribe): then a waiting rank
  // sleeps between polls instead of spinning (MpiComm::wait). Set once, by the first world
  // communicator (a collective over MPI_COMM_WORLD, which every rank creates first).
  static bool& shares_cores() {
    static bool s = false;
    return s;
  }
  static void detect_shared_cores() {
    static bool done = false;
    if (done) return;
    done = true;
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    int ranks_here = 1;
    MPI_Comm_size(local, &ranks_here);
    MPI_Comm_free(&local);
    // The host's online cores, as calibrate's host_cores and the estimator count them (not this
    // process's affinity mask: mpirun binds each of 2 ranks on 2 cores to one core by default).
    const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    shares_cores() = ranks_here > cores;
    // Sleeps of tens of microseconds need a timer slack below Linux's default 50 us.
    if (shares_cores()) ::prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  }
};

class MpiComm final : public Comm {
 public:
  MpiComm(MPI_Comm c, bool world) : comm_(c), world_(world) { init(); }
  MpiComm(const MpiComm& parent, MPI_Comm c, CommDim d) : Comm(parent, d), comm_(c) { init(); }
  ~MpiComm() override {
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) return;
    // Drain outstanding sends (bounded by the timeout; on failure just free).
    try {
      for (auto& p : pending_) wait(p.req, "send (drain)", p.peer);
    } catch (...) {
    }
    pending_.clear();
    if (!world_) {
      MPI_Comm_free(&comm_);
    } else if (MpiRuntime::owned()) {
      MPI_Finalize();
    }
  }
  std::string name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::unique_ptr<Comm> split(int color, int key, CommDim d) override {
    MPI_Comm c;
    MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &c);
    if (c == MPI_COMM_NULL) return nullptr;
    return std::make_unique<MpiComm>(*this, c, d);
  }
  void all_reduce(float* data, std::size_t n, ReduceOp op) override {
    if (size_ == 1 || n == 0) return;
    count(CollKind::all_reduce, n * sizeof(float));
    MPI_Request r;
    MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_FLOAT, mop(op), comm_, &r);
    wait(r, "all_reduce", -1, CollKind::all_reduce);
  }
  void reduce_scatter(const float* in, float* out, std::size_t n) override {
    if (size_ == 1) {
      if (in != out) std::memmove(out, in, n * sizeof(float));
      return;
    }
    count(CollKind::reduce_scatter, static_cast<double>(n) * size_ * sizeof(float));
    MPI_Request r;
    MPI_Ireduce_scatter_block(in, out, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_, &r);
    wait(r, "reduce_scatter", -1, CollKind::reduce_scatter);
  }
  void all_gather(const float* in, float* out, std::size_t n) override {
    if (size_ == 1) {
      if (in != out) std::memmove(out, in, n * sizeof(float));
      return;
    }
    count(CollKind::all_gather, static_cast<double>(n) * size_ * sizeof(float));
    MPI_Request r;
    const bool in_place = in == out + static_cast<std::size_t>(rank_) * n;
    MPI_Iallgather(in_place ? MPI_IN_PLACE : in, static_cast<int>(n), MPI_FLOAT, out, static_cast<int>(n), MPI_FLOAT, comm_, &r);
    wait(r, "all_gather", -1, CollKind::all_gather);
  }
  void broadcast(float* data, std::size_t n, int root) override {
    if (size_ == 1) return;
    count(CollKind::broadcast, n * sizeof(float));
    MPI_Request r;
    MPI_Ibcast(data, static_cast<int>(n), MPI_FLOAT, root, comm_, &r);
    wait(r, "broadcast", root, CollKind::broadcast);
  }
  void send(const float* data, std::size_t n, int dst, int tag) override {
    count(CollKind::send, n * sizeof(float));
    progress();
    pending_.emplace_back();
    Pending& p = pending_.back();
    p.buf.assign(data, data + n);
    p.peer = dst;
    MPI_Isend(p.buf.data(), static_cast<int>(n), MPI_FLOAT, dst, tag, comm_, &p.req);
  }
  void recv(float* data, std::size_t n, int src, int tag) override {
    count(CollKind::recv, n * sizeof(float));
    MPI_Request r;
    MPI_Irecv(data, static_cast<int>(n), MPI_FLOAT, src, tag, comm_, &r);
    wait(r, "recv", src, CollKind::recv);
    progress();
  }
  void barrier() override {
    if (size_ == 1) return;
    MPI_Request r;
    MPI_Ibarrier(comm_, &r);
    wait(r, "barrier", -1);
  }
  void all_reduce_host(double* data, std::size_t n, ReduceOp op) override {
    if (size_ == 1 || n == 0) return;
    MPI_Request r;
    MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_DOUBLE, mop(op), comm_, &r);
    wait(r, "all_reduce (host scalars)", -1);
  }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  struct Pending {
    std::vector<float> buf;
    MPI_Request req;
    int peer = -1;
  };
  void init() {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    int wr = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &wr);
    world_rank_ = wr;
  }
  static std::string seconds(double s) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", s);
    return b;
  }
  static MPI_Op mop(ReduceOp op) { return op == ReduceOp::max ? MPI_MAX : MPI_SUM; }
  void progress() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      int done = 0;
      MPI_Test(&it->req, &done, MPI_STATUS_IGNORE);
      it = done ? pending_.erase(it) : std::next(it);
    }
  }
  // Polls `r` until it completes or the deadline passes (then CommError; the request is left
  // pending: the caller aborts the job).
  // `kind`: the call's kind for counters().seconds; none (barrier, host scalars): counters().sync_s.
  void wait(MPI_Request& r, const char* what, int peer, std::optional<CollKind> kind = std::nullopt) {
    auto t0 = std::chrono::steady_clock::now();
    int done = 0;
    long spins = 0, nap_us = 20;
    while (true) {
      MPI_Test(&r, &done, MPI_STATUS_IGNORE);
      if (done) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (kind) counters().seconds[static_cast<int>(dim())][static_cast<int>(*kind)] += el;
        else counters().sync_s += el;
        return;
      }
      double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (el > timeout()) {
        std::string msg = std::string("communication timeout: ") + what + " on the " + scaleplan::executor::name(dim()) +
                          " group (size " + std::to_string(size_) + ", world rank " + std::to_string(world_rank_) +
                          ")" + (peer >= 0 ? " with peer " + std::to_string(peer) : std::string()) +
                          " did not complete within " + seconds(timeout()) +
                          " s: a rank died, hangs, or the ranks disagree on the plan";
        throw CommError(msg);
      }
      // Spin, yielding the core between polls. When ranks share cores, sleep between polls after a
      // short spin: a spinning rank stays runnable, so the scheduler keeps balancing four "busy"
      // ranks over two cores instead of moving the ranks that compute onto the core the waiting ones
      // leave (issue 22: gpt-small dp=2,pp=2 on 4 ranks / 2 cores measured 210-224 ms or 331-345 ms
      // from run to run with spinning, as two ranks of one stage happened to share a core).
      // A collective's ring steps need every rank polling, so the first 200 us of a wait spin.
      // The sleep doubles from 20 us up to 0.5 ms: every wake-up preempts a computing rank on that core.
      if (++spins > 1000) {
        if (MpiRuntime::shares_cores() && el > 200e-6) {
          std::this_thread::sleep_for(std::chrono::microseconds(nap_us));
          nap_us = std::min(2 * nap_us, 500L);
        } else {
          std::this_thread::yield();
        }
      }
    }
  }

  MPI_Comm comm_;
  bool world_ = false;
  int rank_ = 0, size_ = 1, world_rank_ = 0;
  std::list<Pending> pending_;
};

}  // namespace

bool mpi_built() { return true; }

std::unique_ptr<Comm> make_world_comm() {
  MpiRuntime::ensure();
  MpiRuntime::detect_shared_cores();
  return std::make_unique<MpiComm>(MPI_COMM_WORLD, true);
}

}  // namespace scaleplan::executor
