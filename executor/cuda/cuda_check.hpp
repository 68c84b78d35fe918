#pragma once
// Error checks for CUDA runtime, cuBLAS and NCCL calls inside executor/cuda: a failing call throws
// BackendError naming the call, file and line (never exit()/abort(), DESIGN.md sec. 4).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "executor/backend.hpp"

namespace scaleplan::executor::cuda {

[[noreturn]] inline void throw_cuda(const char* what, const char* err, const char* file, int line) {
  throw BackendError(std::string("CUDA: ") + what + " failed: " + err + " (" + file + ":" + std::to_string(line) + ")");
}
const char* cublas_status_name(cublasStatus_t s);

}  // namespace scaleplan::executor::cuda

#define SP_CUDA_CHECK(call)                                                                        \
  do {                                                                                             \
    cudaError_t sp_err_ = (call);                                                                  \
    if (sp_err_ != cudaSuccess)                                                                    \
      ::scaleplan::executor::cuda::throw_cuda(#call, cudaGetErrorString(sp_err_), __FILE__, __LINE__); \
  } while (0)

#define SP_CUBLAS_CHECK(call)                                                                      \
  do {                                                                                             \
    cublasStatus_t sp_st_ = (call);                                                                \
    if (sp_st_ != CUBLAS_STATUS_SUCCESS)                                                           \
      ::scaleplan::executor::cuda::throw_cuda(#call, ::scaleplan::executor::cuda::cublas_status_name(sp_st_), \
                                              __FILE__, __LINE__);                                 \
  } while (0)

// After a kernel launch: report launch-configuration errors at once (execution errors surface at
// the next synchronising call).
#define SP_CUDA_LAUNCH_CHECK() SP_CUDA_CHECK(cudaGetLastError())
