// Loads the CUDA backend module (libscaleplan_cuda.so, executor/cuda/module.cpp) on first use, so
// that only `run --backend cuda` maps cudart, cuBLAS and NCCL: linked into every program they cost
// each `scaleplan estimate` ~0.1 s of start-up. Built only when executor/cuda is.
//
// Search order: $SCALEPLAN_CUDA_MODULE (only that file when set); the running program's folder
// (a bundle: validation/gpu/make_bundle.sh); <program folder>/../lib (an install); the build tree
// (SCALEPLAN_CUDA_MODULE_BUILD_PATH). The module stays loaded until the process exits.
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "executor/backend.hpp"

namespace scaleplan::executor {
namespace {

constexpr const char* kModuleFile = "libscaleplan_cuda.so";

struct Module {
  std::string path;
  Backend* (*make_backend)(const char*, char*, std::size_t) = nullptr;
};

std::vector<std::string> candidates() {
  if (const char* env = std::getenv("SCALEPLAN_CUDA_MODULE"); env && *env) return {env};
  std::vector<std::string> v;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    v.push_back((exe.parent_path() / kModuleFile).string());
    v.push_back((exe.parent_path().parent_path() / "lib" / kModuleFile).string());
  }
#ifdef SCALEPLAN_CUDA_MODULE_BUILD_PATH
  v.push_back(SCALEPLAN_CUDA_MODULE_BUILD_PATH);
#endif
  return v;
}

Module load() {
  std::string tried;
  for (const std::string& path : candidates()) {
    if (!std::filesystem::exists(path)) {
      tried += (tried.empty() ? " " : "; ") + path + ": not found";
      continue;
    }
    // RTLD_LOCAL: the module's symbols (cudart is linked into it statically) stay out of the
    // program's namespace; RTLD_NOW: a missing libcublas/libnccl fails here, with its name.
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      tried += (tried.empty() ? " " : "; ") + path + ": " + dlerror();
      continue;
    }
    auto abi = reinterpret_cast<int (*)()>(dlsym(h, "scaleplan_cuda_module_abi"));
    Module m{path, reinterpret_cast<Backend* (*)(const char*, char*, std::size_t)>(
                       dlsym(h, "scaleplan_cuda_make_backend"))};
    if (!abi || !m.make_backend) {
      tried += (tried.empty() ? " " : "; ") + path + ": not a scaleplan CUDA module (entry points missing)";
      continue;  // never dlclose: harmless, and objects of a closed module would dangle
    }
    if (abi() != kBackendAbi) {
      tried += (tried.empty() ? " " : "; ") + path + ": built from other sources (interface version " + std::to_string(abi()) +
               ", this program " + std::to_string(kBackendAbi) + ")";
      continue;
    }
    return m;
  }
  throw BackendError("the CUDA backend module " + std::string(kModuleFile) +
                     " could not be loaded (set SCALEPLAN_CUDA_MODULE to its path); tried:" + tried);
}

std::mutex g_mutex;
Module* g_module = nullptr;  // set once, never freed (the module is never unloaded)

const Module& module() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_module) g_module = new Module(load());  // a failed load is retried on the next call
  return *g_module;
}

}  // namespace

std::unique_ptr<Backend> load_cuda_backend(const std::string& gemm_precision) {
  const Module& m = module();
  char err[1024] = {0};
  Backend* b = m.make_backend(gemm_precision.c_str(), err, sizeof err);
  if (!b) throw BackendError(err);
  return std::unique_ptr<Backend>(b);
}

std::string cuda_module_path() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_module ? g_module->path : std::string();
}

}  // namespace scaleplan::executor
