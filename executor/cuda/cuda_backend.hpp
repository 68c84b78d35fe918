#pragma once
// The CUDA backend of the reference executor (issue 9): executor/backend.hpp on one GPU with cuBLAS
// GEMMs (fp32 or TF32 compute; the interface is fp32) and the kernels of kernels.cuh. No CUDA type
// appears here, so CPU-only code can include it.
#include <memory>

#include "executor/backend.hpp"

namespace scaleplan::executor {

// GEMM compute type of the CUDA backend: "fp32" (IEEE, the default: matches the CPU reference to
// ~1e-6) or "tf32" (tensor cores, ~1e-3 relative).
std::unique_ptr<Backend> make_cuda_backend(const std::string& gemm_precision);
// Number of visible CUDA devices (0 without a driver or GPU).
int cuda_device_count();

}  // namespace scaleplan::executor
