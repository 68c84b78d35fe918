#pragma once
// cuBLAS GEMMs for the executor (issue 9), row-major like executor/backend.hpp.
// Precision modes (cuBLAS "cublasGemmEx" compute types, CUDA 12/13 docs):
//   fp32: float in/out, CUBLAS_COMPUTE_32F (IEEE fp32 FMA)
//   tf32: float in/out, CUBLAS_COMPUTE_32F_FAST_TF32 (tensor cores, 10-bit mantissa inputs)
//   bf16: __nv_bfloat16 A/B, C bf16 (or fp32 when c_fp32), CUBLAS_COMPUTE_32F (fp32 accumulation)
//   fp16: __half A/B, C fp16 (or fp32), CUBLAS_COMPUTE_32F
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

namespace scaleplan::executor::cuda {

enum class GemmMode : int { fp32 = 0, tf32, bf16, fp16 };
const char* gemm_mode_name(GemmMode m);
// Parses "fp32" | "tf32" | "bf16" | "fp16"; throws BackendError otherwise.
GemmMode parse_gemm_mode(const std::string& s);
// Bytes of one A/B element in this mode.
inline int gemm_elem_bytes(GemmMode m) { return (m == GemmMode::bf16 || m == GemmMode::fp16) ? 2 : 4; }

// A cuBLAS handle bound to one stream, with its workspace (cublasSetWorkspace).
class Blas {
 public:
  explicit Blas(cudaStream_t st);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  cublasHandle_t handle() const { return h_; }
  cudaStream_t stream() const { return st_; }
  std::size_t workspace_bytes() const { return ws_bytes_; }

 private:
  cublasHandle_t h_ = nullptr;
  cudaStream_t st_ = nullptr;
  void* ws_ = nullptr;
  std::size_t ws_bytes_ = 0;
};

// Row-major C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C; ta/tb: transpose A/B as stored.
// lda/ldb/ldc: row strides in elements. c_fp32: C is float even in the 16-bit modes.
void gemm(const Blas& b, bool ta, bool tb, int m, int n, int k, float alpha, const void* A, int lda, const void* B,
          int ldb, float beta, void* C, int ldc, GemmMode mode, bool c_fp32 = false);
void gemm_strided_batched(const Blas& b, bool ta, bool tb, int m, int n, int k, float alpha, const void* A, int lda,
                          long long stride_a, const void* B, int ldb, long long stride_b, float beta, void* C, int ldc,
                          long long stride_c, int batch, GemmMode mode, bool c_fp32 = false);

}  // namespace scaleplan::executor::cuda
