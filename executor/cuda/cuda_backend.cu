// CudaBackend: executor/backend.hpp on one GPU (see cuda_backend.hpp). One in-order stream; every
// operation is asynchronous except the ones the interface says return a value to the host.
#include "executor/cuda/cuda_backend.hpp"

#include "executor/cuda/cuda_check.hpp"
#include "executor/cuda/device_memory.hpp"
#include "executor/cuda/gemm.hpp"
#include "executor/cuda/kernels.cuh"
#include "executor/cuda/nccl_comm.hpp"

namespace scaleplan::executor {
namespace {

using namespace scaleplan::executor::cuda;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(GemmMode mode) : mode_(mode) {
    if (cuda::device_count() == 0) throw BackendError("cuda backend: no CUDA device visible (cudaGetDeviceCount = 0)");
    select_local_device(0);  // one GPU per local rank under mpirun
    SP_CUDA_CHECK(cudaStreamCreateWithFlags(&st_, cudaStreamNonBlocking));
    set_compute_stream(st_);
    blas_ = std::make_unique<Blas>(st_);
    scalar_ = static_cast<double*>(mem_.allocate(sizeof(double), MemCategory::buffers, st_));
  }
  ~CudaBackend() override {
    if (st_) cudaStreamSynchronize(st_);
    if (compute_stream() == st_) set_compute_stream(nullptr);
    blas_.reset();
    if (st_) cudaStreamDestroy(st_);
  }
  std::string name() const override { return std::string("cuda-") + gemm_mode_name(mode_); }
  bool host_accessible() const override { return false; }
  // NCCL (or a 1-rank device communicator): host communicators cannot read device pointers.
  std::unique_ptr<Comm> make_device_comm(Comm& host_world) override {
    return scaleplan::executor::make_device_comm(false, host_world);
  }

  void* allocate(std::size_t bytes, MemCategory c) override { return mem_.allocate(bytes, c, st_, true); }
  void deallocate(void* p) override {
    if (!p) return;
    // A cached block may be handed out again at once: order its reuse after queued kernels.
    // Not checked: deallocate() runs in Buffer destructors (noexcept, possibly while unwinding from
    // a CUDA error), where a throw would std::terminate the program instead of reporting the first
    // error; a failed sync means a sticky error, which the next checked call reports.
    if (cudaStreamSynchronize(st_) != cudaSuccess) (void)cudaGetLastError();
    mem_.deallocate(p);
  }
  MemStats memory_stats() const override {
    SP_CUDA_CHECK(cudaStreamSynchronize(st_));
    MemStats s = mem_.stats();
    // The backend's own scalar is bookkeeping, not the model's: leave it out.
    s.current[static_cast<int>(MemCategory::buffers)] -= sizeof(double);
    s.peak[static_cast<int>(MemCategory::buffers)] -= sizeof(double);
    s.total_current -= sizeof(double);
    s.total_peak -= sizeof(double);
    return s;
  }
  void reset_peaks() override { mem_.reset_peaks(); }
  void copy_to_device(void* dst, const void* src, std::size_t bytes) override {
    SP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st_));
    SP_CUDA_CHECK(cudaStreamSynchronize(st_));  // the host buffer may be reused on return
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    SP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st_));
    SP_CUDA_CHECK(cudaStreamSynchronize(st_));
  }
  void copy_device(void* dst, const void* src, std::size_t bytes) override {
    SP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st_));
  }
  void synchronize() override { SP_CUDA_CHECK(cudaStreamSynchronize(st_)); }

  void gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb,
            float beta, float* C, int ldc) override {
    cuda::gemm(*blas_, ta == Trans::T, tb == Trans::T, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, mode_);
  }
  void gemm_strided_batched(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* A, int lda,
                            long long sa, const float* B, int ldb, long long sb, float beta, float* C, int ldc,
                            long long sc, int batch) override {
    cuda::gemm_strided_batched(*blas_, ta == Trans::T, tb == Trans::T, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C,
                               ldc, sc, batch, mode_);
  }

  void fill(float* x, float v, std::size_t n) override { cuda::fill(x, v, n, st_); }
  void scale(float* x, float a, std::size_t n) override { cuda::scale(x, a, n, st_); }
  void axpy(float a, const float* x, float* y, std::size_t n) override { cuda::axpy(a, x, y, n, st_); }
  void copy(const float* x, float* y, std::size_t n) override {
    if (n) SP_CUDA_CHECK(cudaMemcpyAsync(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice, st_));
  }
  double sum_squares(const float* x, std::size_t n) override {
    cuda::sum_squares(x, n, scalar_, st_);
    double r = 0;
    SP_CUDA_CHECK(cudaMemcpyAsync(&r, scalar_, sizeof(double), cudaMemcpyDeviceToHost, st_));
    SP_CUDA_CHECK(cudaStreamSynchronize(st_));
    return r;
  }
  void add_bias(float* y, const float* b, int rows, int cols) override { cuda::add_bias(y, b, rows, cols, st_); }
  void bias_grad(const float* dy, float* db, int rows, int cols) override {
    cuda::bias_grad(dy, db, rows, cols, true, st_);
  }
  void layernorm_fwd(const float* x, const float* g, const float* b, float* y, float* mean, float* rstd, int rows,
                     int cols, float eps) override {
    cuda::layernorm_fwd(x, g, b, y, mean, rstd, rows, cols, eps, st_);
  }
  void layernorm_bwd(const float* dy, const float* x, const float* g, const float* mean, const float* rstd, float* dx,
                     float* dg, float* db, int rows, int cols) override {
    cuda::layernorm_bwd(dy, x, g, mean, rstd, dx, dg, db, rows, cols, false, true, st_);
  }
  void gelu_fwd(const float* x, float* y, std::size_t n) override { cuda::gelu_fwd(x, y, n, st_); }
  void gelu_bwd(const float* x, const float* dy, float* dx, std::size_t n) override { cuda::gelu_bwd(x, dy, dx, n, st_); }
  void swiglu_fwd(const float* x, float* y, int rows, int f) override { cuda::swiglu_fwd(x, y, rows, f, st_); }
  void swiglu_bwd(const float* x, const float* dy, float* dx, int rows, int f) override {
    cuda::swiglu_bwd(x, dy, dx, rows, f, st_);
  }
  void split_heads(const float* in, int in_ld, float* out, int b, int s, int h, int d) override {
    cuda::split_heads(in, in_ld, out, b, s, h, d, st_);
  }
  void merge_heads(const float* in, float* out, int out_ld, int b, int s, int h, int d) override {
    cuda::merge_heads(in, out, out_ld, b, s, h, d, st_);
  }
  void softmax_causal_fwd(const float* x, float* p, int batch, int s, float scale) override {
    cuda::softmax_causal_fwd(x, p, batch, s, scale, st_);
  }
  void softmax_causal_bwd(const float* p, const float* dp, float* dx, int batch, int s, float scale) override {
    cuda::softmax_causal_bwd(p, dp, dx, batch, s, scale, st_);
  }
  void embedding_fwd(const std::int32_t* ids, const float* table, float* out, int n, int dim, int vb, int ve) override {
    cuda::embedding_fwd(ids, table, out, n, dim, vb, ve, st_);
  }
  void embedding_bwd(const std::int32_t* ids, const float* dout, float* dtable, int n, int dim, int vb,
                     int ve) override {
    cuda::embedding_bwd(ids, dout, dtable, n, dim, vb, ve, st_);
  }
  void add_positions(float* out, const float* pos, int b, int s, int dim) override {
    cuda::add_positions(out, pos, b, s, dim, st_);
  }
  void positions_bwd(const float* dout, float* dpos, int b, int s, int dim) override {
    cuda::positions_bwd(dout, dpos, b, s, dim, st_);
  }
  void ce_row_max(const float* l, float* mx, int rows, int cols) override { cuda::ce_row_max(l, mx, rows, cols, st_); }
  void ce_sum_exp(const float* l, const float* mx, float* se, int rows, int cols) override {
    cuda::ce_sum_exp(l, mx, se, rows, cols, st_);
  }
  void ce_target_logit(const float* l, const std::int32_t* t, float* tgt, int rows, int cols, int vb) override {
    cuda::ce_target_logit(l, t, tgt, rows, cols, vb, st_);
  }
  void ce_bwd(const float* l, const float* mx, const float* se, const std::int32_t* t, float* dl, int rows, int cols,
              int vb, float scale) override {
    cuda::ce_bwd(l, mx, se, t, dl, rows, cols, vb, scale, st_);
  }
  void adamw_update(float* p, const float* g, float* m, float* v, std::size_t n, float lr, float b1, float b2, float eps,
                    float wd, int step) override {
    cuda::adamw_update<float, float>(p, g, m, v, nullptr, n, lr, b1, b2, eps, wd, step, 1.f, st_);
  }
  void lamb_direction(const float* p, const float* g, float* m, float* v, float* u, std::size_t n, float b1, float b2,
                      float eps, float wd, int step) override {
    cuda::lamb_direction(p, g, m, v, u, n, b1, b2, eps, wd, step, st_);
  }
  void lars_update(float* p, const float* g, float* mom, std::size_t n, float llr, float mu, float wd) override {
    cuda::lars_update(p, g, mom, n, llr, mu, wd, st_);
  }

 private:
  GemmMode mode_;
  cudaStream_t st_ = nullptr;
  std::unique_ptr<Blas> blas_;
  mutable DeviceMemory mem_;
  double* scalar_ = nullptr;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const std::string& gemm_precision) {
  const GemmMode m = parse_gemm_mode(gemm_precision);
  if (m != GemmMode::fp32 && m != GemmMode::tf32)
    throw BackendError("cuda backend: the executor interface is fp32; GEMM precision must be fp32 or tf32, not " +
                       gemm_precision);
  return std::make_unique<CudaBackend>(m);
}
int cuda_device_count() { return cuda::device_count(); }

}  // namespace scaleplan::executor
