// The entry points of the CUDA module (libscaleplan_cuda.so), loaded with dlopen by
// executor/cuda_module.cpp the first time `make_backend("cuda")` is called. C linkage, no exception
// crosses them: errors come back as text and the loader rethrows them as BackendError. The objects
// they return are used through Backend's and Comm's virtual functions (executor/backend.hpp,
// executor/comm.hpp; all inline, so both sides agree as long as kBackendAbi matches).
#include <cstdio>
#include <exception>

#include "executor/backend.hpp"
#include "executor/cuda/cuda_backend.hpp"

namespace ex = scaleplan::executor;

extern "C" {

__attribute__((visibility("default"))) int scaleplan_cuda_module_abi() { return ex::kBackendAbi; }

// A new Backend (owned by the caller, deleted through its virtual destructor), or nullptr with the
// reason in err[0..err_len).
__attribute__((visibility("default"))) ex::Backend* scaleplan_cuda_make_backend(const char* gemm_precision,
                                                                                  char* err, std::size_t err_len) {
  try {
    return ex::make_cuda_backend(gemm_precision).release();
  } catch (const std::exception& e) {
    std::snprintf(err, err_len, "%s", e.what());
  } catch (...) {
    std::snprintf(err, err_len, "cuda backend: unknown error");
  }
  return nullptr;
}

}  // extern "C"
