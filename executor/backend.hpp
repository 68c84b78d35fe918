#pragma once
// ============================================================================================
// CONTRACT for executor/cuda (issue 9) and any other compute backend of the reference executor.
//
// The GPT model (executor/gpt.{hpp,cpp}) is written ONCE against this narrow interface: tracked
// memory by category, host<->device copies, and the few kernels a GPT decoder needs. No Eigen,
// CUDA or MPI type appears here. The CPU backend (executor/cpu_backend.cpp, Eigen) is the
// reference; executor/cuda implements the same functions on the GPU (cuBLAS + kernels).
//
// Rules for implementers:
//  - All tensors are fp32, row-major, contiguous unless a leading dimension says otherwise.
//    A backend may choose its GEMM compute type internally (e.g. TF32 on the GPU) and says so
//    in name() (e.g. "cuda-tf32").
//  - Pointers passed to kernels are device pointers obtained from allocate(); host pointers only
//    where the argument says "host". Kernels are asynchronous on a single in-order stream;
//    functions that return a value to the host (sum_squares, memory_stats) synchronize first.
//  - "+=" in a comment means the kernel ACCUMULATES into its output; otherwise it overwrites.
//  - allocate() counts the bytes in its category (current and peak); deallocate() subtracts.
//    The executor compares these peaks with the analytic estimator, so allocate exactly what is
//    asked (padding / caching is allowed but must not change the counted bytes).
//  - Errors: throw BackendError (std::runtime_error) with a message; never exit()/abort().
//  - Only ADD to this interface; existing signatures are frozen (issue 8 / issue 9 contract).
//
// Registration: make_backend("cpu") always works; make_backend("cuda") / ("cuda-tf32") work when
// the project is built with SCALEPLAN_WITH_CUDA: executor/cuda is then a module
// (libscaleplan_cuda.so, executor/cuda/module.cpp) that executor/cuda_module.cpp dlopens the first
// time a CUDA backend is asked for, so programs that never use a GPU do not map cuBLAS or NCCL.
// The module shares no code with the program: everything in this header and in comm.hpp that
// both sides use is inline, and kBackendAbi below guards against a module from another build.
// ============================================================================================
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "executor/comm.hpp"

namespace scaleplan::executor {

// Bumped whenever Backend, Comm or the module entry points (executor/cuda/module.cpp) change in a
// way that a module built from other sources would not match.
inline constexpr int kBackendAbi = 2;

struct BackendError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The memory categories of the DESIGN.md "memory" contract.
enum class MemCategory : int { params = 0, grads = 1, optimizer = 2, activations = 3, buffers = 4 };
inline constexpr int kMemCategories = 5;
inline const char* name(MemCategory c) {
  static const char* const names[kMemCategories] = {"params", "grads", "optimizer", "activations", "buffers"};
  return names[static_cast<int>(c)];
}

struct MemStats {  // bytes, as counted by allocate()/deallocate()
  std::array<double, kMemCategories> current{};
  std::array<double, kMemCategories> peak{};  // per category, since the last reset_peaks()
  double total_current = 0;
  double total_peak = 0;  // peak of the sum (not the sum of the peaks)
  double at(MemCategory c) const { return peak[static_cast<int>(c)]; }
};

// Book-keeping shared by every backend (header-only, so executor/cuda can use it without linking
// scaleplan_executor). Not thread-safe: one backend is driven by one thread.
class MemTracker {
 public:
  void add(MemCategory c, double bytes) {
    int i = static_cast<int>(c);
    s_.current[i] += bytes;
    s_.total_current += bytes;
    if (s_.current[i] > s_.peak[i]) s_.peak[i] = s_.current[i];
    if (s_.total_current > s_.total_peak) s_.total_peak = s_.total_current;
  }
  void sub(MemCategory c, double bytes) {
    s_.current[static_cast<int>(c)] -= bytes;
    s_.total_current -= bytes;
  }
  void reset_peaks() {
    s_.peak = s_.current;
    s_.total_peak = s_.total_current;
  }
  const MemStats& stats() const { return s_; }

 private:
  MemStats s_;
};

enum class Trans : int { N = 0, T = 1 };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu-eigen", "cuda-fp32", "cuda-tf32", ...
  // True when device pointers can be read and written by the host (CPU backend): the executor then
  // hands them straight to a host communicator (MPI) instead of staging through host buffers.
  virtual bool host_accessible() const = 0;
  // The communicator the trainer hands this backend's tensors to: nullptr when host_accessible()
  // (the host communicator, e.g. MPI, reads them directly); a device communicator otherwise (NCCL
  // for the CUDA backend), bootstrapped through `host_world`, which must outlive it.
  virtual std::unique_ptr<Comm> make_device_comm(Comm& host_world) {
    (void)host_world;
    return nullptr;
  }

  // ---- memory ------------------------------------------------------------------------------
  virtual void* allocate(std::size_t bytes, MemCategory c) = 0;  // zero-filled
  virtual void deallocate(void* p) = 0;                            // nullptr is a no-op
  virtual MemStats memory_stats() const = 0;
  virtual void reset_peaks() = 0;
  virtual void copy_to_device(void* dst, const void* host_src, std::size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, std::size_t bytes) = 0;
  virtual void copy_device(void* dst, const void* src, std::size_t bytes) = 0;  // device -> device
  virtual void synchronize() = 0;

  // ---- BLAS ----------------------------------------------------------------------------------
  // Row-major C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C. lda/ldb/ldc are the row
  // strides (elements) of A, B, C as stored (A is m x k if ta == N, k x m if ta == T).
  virtual void gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* A, int lda,
                    const float* B, int ldb, float beta, float* C, int ldc) = 0;
  // `batch` independent GEMMs; matrix i uses A + i*stride_a, B + i*stride_b, C + i*stride_c.
  virtual void gemm_strided_batched(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* A,
                                    int lda, long long stride_a, const float* B, int ldb, long long stride_b,
                                    float beta, float* C, int ldc, long long stride_c, int batch) = 0;

  // ---- elementwise / reductions ---------------------------------------------------------------
  virtual void fill(float* x, float value, std::size_t n) = 0;
  virtual void scale(float* x, float alpha, std::size_t n) = 0;                   // x *= alpha
  virtual void axpy(float alpha, const float* x, float* y, std::size_t n) = 0;    // y += alpha x
  virtual void copy(const float* x, float* y, std::size_t n) = 0;                 // y = x
  virtual double sum_squares(const float* x, std::size_t n) = 0;                  // sum x_i^2 (fp64 acc), syncs
  // y[r, c] += bias[c] for a rows x cols matrix.
  virtual void add_bias(float* y, const float* bias, int rows, int cols) = 0;
  // dbias[c] += sum_r dy[r, c].
  virtual void bias_grad(const float* dy, float* dbias, int rows, int cols) = 0;

  // ---- normalisation and activations ---------------------------------------------------------
  // y = (x - mean) * rstd * gamma + beta per row; writes mean[rows] and rstd[rows] for backward.
  virtual void layernorm_fwd(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                             float* rstd, int rows, int cols, float eps) = 0;
  // dx = LayerNorm'(dy) (overwrites); dgamma += sum_r dy*xhat; dbeta += sum_r dy.
  virtual void layernorm_bwd(const float* dy, const float* x, const float* gamma, const float* mean,
                             const float* rstd, float* dx, float* dgamma, float* dbeta, int rows, int cols) = 0;
  // GeLU, tanh approximation (GPT-2 / Megatron `gelu_impl`): y = 0.5x(1+tanh(0.79788456(x+0.044715x^3))).
  virtual void gelu_fwd(const float* x, float* y, std::size_t n) = 0;
  virtual void gelu_bwd(const float* x, const float* dy, float* dx, std::size_t n) = 0;  // dx = dy*gelu'(x)
  // SwiGLU (Shazeer 2020): x is rows x 2f, gate = x[:, :f], up = x[:, f:]; y (rows x f) = silu(gate)*up.
  virtual void swiglu_fwd(const float* x, float* y, int rows, int f) = 0;
  virtual void swiglu_bwd(const float* x, const float* dy, float* dx, int rows, int f) = 0;  // dx rows x 2f

  // ---- attention pieces ----------------------------------------------------------------------
  // Head split: in is [b, s, *] with row stride in_ld (elements), the h*d columns of interest
  // starting at `in`; out is [b, h, s, d] contiguous. out[bi,hi,si,di] = in[(bi*s+si)*in_ld + hi*d+di].
  virtual void split_heads(const float* in, int in_ld, float* out, int b, int s, int h, int d) = 0;
  // Inverse: out[(bi*s+si)*out_ld + hi*d+di] = in[bi,hi,si,di] (overwrites only those columns).
  virtual void merge_heads(const float* in, float* out, int out_ld, int b, int s, int h, int d) = 0;
  // Causal softmax over `batch` s x s score matrices: p[i, j] = softmax_j(scale * x[i, j]) for j <= i,
  // 0 for j > i.
  virtual void softmax_causal_fwd(const float* x, float* p, int batch, int s, float scale) = 0;
  // dx = scale * p * (dp - sum_j p*dp) (overwrites), 0 above the diagonal.
  virtual void softmax_causal_bwd(const float* p, const float* dp, float* dx, int batch, int s, float scale) = 0;

  // ---- embedding -----------------------------------------------------------------------------
  // out[t, :] = table[ids[t] - vocab_begin, :] if vocab_begin <= ids[t] < vocab_end, else 0
  // (vocab-parallel embedding: each TP rank holds rows [vocab_begin, vocab_end)).
  virtual void embedding_fwd(const std::int32_t* ids, const float* table, float* out, int n, int dim,
                             int vocab_begin, int vocab_end) = 0;
  // dtable[ids[t] - vocab_begin, :] += dout[t, :] for the ids in range.
  virtual void embedding_bwd(const std::int32_t* ids, const float* dout, float* dtable, int n, int dim,
                             int vocab_begin, int vocab_end) = 0;
  // Position embedding: out[bi*s + si, :] += pos[si, :] (rows = b*s).
  virtual void add_positions(float* out, const float* pos, int b, int s, int dim) = 0;
  // dpos[si, :] += sum_bi dout[bi*s + si, :].
  virtual void positions_bwd(const float* dout, float* dpos, int b, int s, int dim) = 0;

  // ---- cross-entropy (vocab-parallel pieces; a single rank uses them with the whole vocab) ----
  // logits: rows x cols (the local vocabulary slice [vocab_begin, vocab_begin+cols)).
  virtual void ce_row_max(const float* logits, float* row_max, int rows, int cols) = 0;
  // sum_exp[r] = sum_c exp(logits[r, c] - row_max[r]).
  virtual void ce_sum_exp(const float* logits, const float* row_max, float* sum_exp, int rows, int cols) = 0;
  // tgt[r] = logits[r, targets[r] - vocab_begin] if that column is local, else 0.
  virtual void ce_target_logit(const float* logits, const std::int32_t* targets, float* tgt, int rows, int cols,
                               int vocab_begin) = 0;
  // dlogits[r, c] = scale * (exp(logits[r,c] - row_max[r]) / sum_exp[r] - [c + vocab_begin == targets[r]]).
  // dlogits may be the same buffer as logits (the executor computes it in place).
  virtual void ce_bwd(const float* logits, const float* row_max, const float* sum_exp, const std::int32_t* targets,
                      float* dlogits, int rows, int cols, int vocab_begin, float scale) = 0;

  // ---- optimizers (elementwise pieces; norms come from sum_squares + the communicator) --------
  // AdamW (Loshchilov & Hutter 2019, Alg. 2) with bias correction at step t >= 1:
  //   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; mh = m/(1-b1^t); vh = v/(1-b2^t);
  //   p -= lr * (mh / (sqrt(vh) + eps) + wd * p).
  virtual void adamw_update(float* p, const float* g, float* m, float* v, std::size_t n, float lr, float beta1,
                            float beta2, float eps, float weight_decay, int step) = 0;
  // LAMB direction (You et al. 2020, Alg. 2): updates m, v as Adam and writes
  //   u = mh / (sqrt(vh) + eps) + wd * p   (the trust ratio ||p||/||u|| is applied by the caller via axpy).
  virtual void lamb_direction(const float* p, const float* g, float* m, float* v, float* u, std::size_t n,
                              float beta1, float beta2, float eps, float weight_decay, int step) = 0;
  // LARS momentum step (You et al. 2017, Alg. 1): mom = momentum*mom + local_lr*(g + wd*p); p -= mom.
  virtual void lars_update(float* p, const float* g, float* mom, std::size_t n, float local_lr, float momentum,
                           float weight_decay) = 0;
};

// A tracked, move-only allocation on a backend (RAII). Element type is chosen at access.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Backend& be, std::size_t bytes, MemCategory c) : be_(&be), bytes_(bytes), cat_(c) {
    p_ = bytes ? be.allocate(bytes, c) : nullptr;
  }
  ~Buffer() { reset(); }
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = std::exchange(o.be_, nullptr);
      p_ = std::exchange(o.p_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
      cat_ = o.cat_;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void reset() {
    if (be_ && p_) be_->deallocate(p_);
    p_ = nullptr;
    bytes_ = 0;
  }
  float* f() const { return static_cast<float*>(p_); }
  std::int32_t* i32() const { return static_cast<std::int32_t*>(p_); }
  void* data() const { return p_; }
  std::size_t bytes() const { return bytes_; }
  std::size_t floats() const { return bytes_ / sizeof(float); }
  MemCategory category() const { return cat_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  Backend* be_ = nullptr;
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
  MemCategory cat_ = MemCategory::buffers;
};
inline Buffer make_floats(Backend& be, std::size_t n, MemCategory c) { return Buffer(be, n * sizeof(float), c); }

// ---- registry (DESIGN.md sec. 4: registries, not if/else chains) --------------------------------
using BackendFactory = std::function<std::unique_ptr<Backend>()>;
// Throws BackendError listing the known names when `name` is not registered.
std::unique_ptr<Backend> make_backend(const std::string& name);
std::vector<std::string> backend_names();
void register_backend(const std::string& name, BackendFactory f);

std::unique_ptr<Backend> make_cpu_backend();
#ifdef SCALEPLAN_HAVE_CUDA_BACKEND
// Through the CUDA module (executor/cuda_module.cpp): "fp32" or "tf32" GEMMs. Throws BackendError
// naming the paths tried when the module cannot be loaded, or the module's own error (no GPU, ...).
std::unique_ptr<Backend> load_cuda_backend(const std::string& gemm_precision);
// Where the module was found (empty before the first successful load_cuda_backend()).
std::string cuda_module_path();
#endif

}  // namespace scaleplan::executor
