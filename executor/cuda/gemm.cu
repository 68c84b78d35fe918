// cuBLAS GEMM wrapper (see gemm.hpp). Row-major C = op(A) op(B) is computed as the column-major
// product C^T = op(B)^T op(A)^T, i.e. cublasGemmEx(opB, opA, n, m, k, B, A, C) (cuBLAS docs, "row-major"
// idiom): the stored row-major matrices are the column-major transposes, so no data moves.
#include "executor/cuda/gemm.hpp"

#include "executor/cuda/cuda_check.hpp"
#include "executor/cuda/kernels.cuh"

namespace scaleplan::executor::cuda {

const char* cublas_status_name(cublasStatus_t s) { return cublasGetStatusName(s); }

const char* gemm_mode_name(GemmMode m) {
  static const char* const names[] = {"fp32", "tf32", "bf16", "fp16"};
  return names[static_cast<int>(m)];
}
GemmMode parse_gemm_mode(const std::string& s) {
  for (int i = 0; i < 4; ++i)
    if (s == gemm_mode_name(static_cast<GemmMode>(i))) return static_cast<GemmMode>(i);
  throw BackendError("unknown GEMM precision '" + s + "' (known: fp32, tf32, bf16, fp16)");
}

namespace {
struct Types {
  cudaDataType ab, c;
  cublasComputeType_t compute;
};
Types types_for(GemmMode m, bool c_fp32) {
  switch (m) {
    case GemmMode::fp32: return {CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case GemmMode::tf32: return {CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32};
    case GemmMode::bf16: return {CUDA_R_16BF, c_fp32 ? CUDA_R_32F : CUDA_R_16BF, CUBLAS_COMPUTE_32F};
    case GemmMode::fp16: return {CUDA_R_16F, c_fp32 ? CUDA_R_32F : CUDA_R_16F, CUBLAS_COMPUTE_32F};
  }
  throw BackendError("invalid GemmMode");
}
// 32 MiB: cuBLAS recommends >= 32 MiB of workspace on Hopper (cuBLAS docs, cublasSetWorkspace).
constexpr std::size_t kWorkspaceBytes = 32ull << 20;
// k == 0: C = beta * C (BLAS semantics; the CPU backend does the same). cuBLAS is not asked: its
// leading-dimension rule lda >= max(1, k) rejects the row stride lda = k = 0 of an m x 0 A
// (CUBLAS_STATUS_INVALID_VALUE), and A, B are not read anyway.
void scale_c_only(const Types& t, int m, int n, float beta, void* C, int ldc, cudaStream_t st) {
  if (beta == 1.f) return;
  if (t.c != CUDA_R_32F && t.c != CUDA_R_16BF) throw BackendError("gemm with k = 0 and an fp16 C is not supported");
  const bool contiguous = ldc == n;
  for (int r = 0; r < (contiguous ? 1 : m); ++r) {
    const std::size_t off = static_cast<std::size_t>(r) * ldc, len = contiguous ? static_cast<std::size_t>(m) * n : n;
    if (t.c == CUDA_R_32F) {
      float* c = static_cast<float*>(C) + off;
      if (beta == 0.f) fill(c, 0.f, len, st);  // not 0 * C: C may hold NaN
      else scale(c, beta, len, st);
    } else {
      bf16* c = static_cast<bf16*>(C) + off;
      if (beta == 0.f) fill(c, 0.f, len, st);
      else scale(c, beta, len, st);
    }
  }
}
}  // namespace

Blas::Blas(cudaStream_t st) : st_(st) {
  SP_CUBLAS_CHECK(cublasCreate(&h_));
  SP_CUBLAS_CHECK(cublasSetStream(h_, st));
  if (cudaMalloc(&ws_, kWorkspaceBytes) == cudaSuccess) {
    ws_bytes_ = kWorkspaceBytes;
    SP_CUBLAS_CHECK(cublasSetWorkspace(h_, ws_, ws_bytes_));
  } else {
    (void)cudaGetLastError();
    ws_ = nullptr;
  }
}
Blas::~Blas() {
  if (h_) cublasDestroy(h_);
  if (ws_) cudaFree(ws_);
}

// Derivation (checked against executor/backend.hpp and cpu_backend.cpp): a row-major R x C matrix
// with row stride ld is, read column-major with leading dimension ld, its C x R transpose. So
//   C (row-major m x n, ldc)          = column-major C^T (n x m, ldc);
//   B, tb = N: stored k x n (ldb >= n) = column-major B^T (n x k)  -> op CUBLAS_OP_N gives op(B)^T;
//   B, tb = T: stored n x k (ldb >= k) = column-major B   (k x n)  -> op CUBLAS_OP_T gives B^T = op(B)^T;
//   A, ta = N: stored m x k (lda >= k) = column-major A^T (k x m)  -> op N gives op(A)^T;
//   A, ta = T: stored k x m (lda >= m) = column-major A   (m x k)  -> op T gives A^T = op(A)^T.
// cuBLAS computes C' (M' x N') = op1(X) (M' x K) op2(Y) (K x N') with M' = n, N' = m, K = k, X = B,
// Y = A: C^T = op(B)^T op(A)^T = (op(A) op(B))^T, i.e. row-major C = op(A) op(B). cuBLAS's
// leading-dimension rules (ld of X >= M' when op1 = N, >= K when T; of Y >= K when N, >= N' when T)
// are exactly the row-stride rules above. alpha/beta are float: the scale type of CUBLAS_COMPUTE_32F
// and CUBLAS_COMPUTE_32F_FAST_TF32 is CUDA_R_32F for every A/B/C type used here.
void gemm(const Blas& b, bool ta, bool tb, int m, int n, int k, float alpha, const void* A, int lda, const void* B,
          int ldb, float beta, void* C, int ldc, GemmMode mode, bool c_fp32) {
  if (m <= 0 || n <= 0) return;
  const Types t = types_for(mode, c_fp32);
  if (k <= 0) return scale_c_only(t, m, n, beta, C, ldc, b.stream());
  SP_CUBLAS_CHECK(cublasGemmEx(b.handle(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                               &alpha, B, t.ab, ldb, A, t.ab, lda, &beta, C, t.c, ldc, t.compute, CUBLAS_GEMM_DEFAULT));
}

void gemm_strided_batched(const Blas& b, bool ta, bool tb, int m, int n, int k, float alpha, const void* A, int lda,
                          long long stride_a, const void* B, int ldb, long long stride_b, float beta, void* C, int ldc,
                          long long stride_c, int batch, GemmMode mode, bool c_fp32) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  const Types t = types_for(mode, c_fp32);
  if (k <= 0) {
    const std::size_t esz = t.c == CUDA_R_32F ? 4 : 2;
    for (int i = 0; i < batch; ++i)
      scale_c_only(t, m, n, beta, static_cast<char*>(C) + static_cast<std::size_t>(i) * stride_c * esz, ldc, b.stream());
    return;
  }
  SP_CUBLAS_CHECK(cublasGemmStridedBatchedEx(b.handle(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                             n, m, k, &alpha, B, t.ab, ldb, stride_b, A, t.ab, lda, stride_a, &beta, C,
                                             t.c, ldc, stride_c, batch, t.compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace scaleplan::executor::cuda
