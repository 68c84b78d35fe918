// The backend registry (DESIGN.md sec. 4: name -> factory).
#include "executor/backend.hpp"

#include <map>
#include <mutex>

namespace scaleplan::executor {
namespace {
std::map<std::string, BackendFactory>& registry() {
  static std::map<std::string, BackendFactory> r;
  static std::once_flag once;
  std::call_once(once, [] {
    r["cpu"] = [] { return make_cpu_backend(); };
#ifdef SCALEPLAN_HAVE_CUDA_BACKEND
    // Through the dlopen'd CUDA module (executor/cuda_module.cpp): IEEE fp32 or TF32 GEMMs.
    r["cuda"] = [] { return load_cuda_backend("fp32"); };
    r["cuda-tf32"] = [] { return load_cuda_backend("tf32"); };
#endif
  });
  return r;
}
}  // namespace

void register_backend(const std::string& name, BackendFactory f) { registry()[name] = std::move(f); }

std::vector<std::string> backend_names() {
  std::vector<std::string> v;
  for (const auto& [k, f] : registry()) v.push_back(k);
  return v;
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  auto& r = registry();
  auto it = r.find(name);
  if (it == r.end()) {
    std::string known;
    for (const auto& [k, f] : r) known += (known.empty() ? "" : ", ") + k;
    throw BackendError("unknown backend '" + name + "' (built: " + known + ")");
  }
  return it->second();
}

}  // namespace scaleplan::executor
