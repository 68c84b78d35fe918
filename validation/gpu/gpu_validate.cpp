// scaleplan GPU validation (issue 9): one section per invocation (run.sh runs them as separate
// processes, each with its own time limit, so a crash or a sticky CUDA error in one section does not
// lose the others). Each section writes <out>/<section>.json and <out>/<section>.md and rewrites them
// after every row, so a section cut short still leaves its partial table.
//
//   gpu_validate --section info|numerics|gemm|layer|step|offload --out DIR [--device PRESET]
//                [--budget-s SECONDS] [--quick]
//
// Measured numbers come from CUDA events around the work (after warm-up); predicted numbers from
// the analytic estimator (simulator/analytic) and the device model (hardware/device.hpp) for the
// device preset matching the GPU's name (configs/devices). Nothing here is fitted.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "executor/backend.hpp"
#include "executor/cuda/cuda_backend.hpp"
#include "executor/cuda/cuda_check.hpp"
#include "executor/cuda/device_memory.hpp"
#include "executor/cuda/gemm.hpp"
#include "executor/cuda/gpt_cuda.hpp"
#include "executor/cuda/kernels.cuh"
#include "hardware/cluster.hpp"
#include "hardware/device.hpp"
#include "model/model.hpp"
#include "simulator/analytic/estimator.hpp"
#include "strategies/plan.hpp"

namespace sp = scaleplan;
namespace ex = scaleplan::executor;
namespace cu = scaleplan::executor::cuda;
using json = nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Options, clock, report
// ---------------------------------------------------------------------------------------------
struct Options {
  std::string section, out = ".", device_preset;
  double budget_s = 60;
  bool quick = false;
};

double now_s() {
  using clk = std::chrono::steady_clock;
  static const auto t0 = clk::now();
  return std::chrono::duration<double>(clk::now() - t0).count();
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
std::string pct(double measured, double predicted) {
  if (!(predicted > 0) || !(measured > 0)) return "-";
  return fmt("%+.1f%%", 100.0 * (predicted - measured) / measured);
}
std::string gib(double bytes) { return fmt("%.2f", bytes / (1024.0 * 1024.0 * 1024.0)); }

// One section's results: a markdown table (plus notes) and the same rows in JSON.
class Report {
 public:
  Report(const Options& o, std::string title, std::vector<std::string> cols)
      : o_(o), title_(std::move(title)), cols_(std::move(cols)) {
    j_["section"] = o.section;
    j_["title"] = title_;
    j_["status"] = "running";
    j_["rows"] = json::array();
    j_["notes"] = json::array();
    flush();
  }
  void row(const std::vector<std::string>& cells, json data) {
    cells_.push_back(cells);
    j_["rows"].push_back(std::move(data));
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) line += (i ? " | " : "") + cells[i];
    std::printf("  %s\n", line.c_str());
    std::fflush(stdout);
    flush();
  }
  void note(const std::string& n) {
    j_["notes"].push_back(n);
    std::printf("  note: %s\n", n.c_str());
    std::fflush(stdout);
    flush();
  }
  void set(const std::string& k, json v) {
    j_[k] = std::move(v);
    flush();
  }
  void finish(const std::string& status, const std::string& error = "") {
    j_["status"] = status;
    if (!error.empty()) j_["error"] = error;
    flush();
  }
  json& data() { return j_; }

 private:
  void flush() {
    {
      std::ofstream f(o_.out + "/" + o_.section + ".json.tmp");
      f << j_.dump(2) << "\n";
    }
    std::rename((o_.out + "/" + o_.section + ".json.tmp").c_str(), (o_.out + "/" + o_.section + ".json").c_str());
    std::ostringstream md;
    md << "## " << title_ << "\n\n";
    if (!cols_.empty()) {
      md << "|";
      for (auto& c : cols_) md << " " << c << " |";
      md << "\n|";
      for (std::size_t i = 0; i < cols_.size(); ++i) md << "---|";
      md << "\n";
      for (auto& r : cells_) {
        md << "|";
        for (auto& c : r) md << " " << c << " |";
        md << "\n";
      }
    }
    for (auto& n : j_["notes"]) md << "\n- " << n.get<std::string>();
    md << "\n\nstatus: " << j_["status"].get<std::string>();
    if (j_.contains("error")) md << " -- " << j_["error"].get<std::string>();
    md << "\n";
    std::ofstream f(o_.out + "/" + o_.section + ".md.tmp");
    f << md.str();
    f.close();
    std::rename((o_.out + "/" + o_.section + ".md.tmp").c_str(), (o_.out + "/" + o_.section + ".md").c_str());
  }
  const Options& o_;
  std::string title_;
  std::vector<std::string> cols_;
  std::vector<std::vector<std::string>> cells_;
  json j_;
};

// ---------------------------------------------------------------------------------------------
// Device and predictions
// ---------------------------------------------------------------------------------------------
// The configs/devices preset for this GPU: by its CUDA name (H200 before H100: "H200" names never
// contain "H100"), or --device.
std::string preset_for(const std::string& cuda_name, const std::string& forced, std::string& why) {
  if (!forced.empty()) {
    why = "--device " + forced;
    return forced;
  }
  std::string n = cuda_name;
  std::transform(n.begin(), n.end(), n.begin(), ::tolower);
  if (n.find("h200") != std::string::npos) {
    why = "CUDA name contains H200";
    return "h200-141gb";
  }
  if (n.find("h100") != std::string::npos) {
    why = "CUDA name contains H100";
    if (n.find("pcie") != std::string::npos) why += " (PCIe card: the SXM preset over-predicts it)";
    return "h100-sxm-80gb";
  }
  if (n.find("a100") != std::string::npos) {
    why = "CUDA name contains A100";
    return n.find("40gb") != std::string::npos ? "a100-40gb" : "a100-80gb";
  }
  why = "unknown GPU: defaulting to the H100 SXM preset";
  return "h100-sxm-80gb";
}

// A one-GPU cluster around the device: the DGX H100 node (host, PCIe) with this device and the
// stack the GPU executor runs: unfused attention (scores kept, Korthikanti 2022 5as/h term).
sp::hw::Cluster one_gpu_cluster(const sp::hw::Device& dev) {
  sp::hw::Cluster c = sp::hw::load_cluster("dgx-h100");
  c.name = "1x " + dev.name;
  c.device = dev;
  c.sw.flash_attention = false;
  c.sw.dp_overlap = false;
  c.sw.step_overhead_s = 0;
  return c;
}
// The executor's GPT has no dropout: predictions use the same model without dropout masks.
sp::model::ModelSpec executor_model(const std::string& preset) {
  sp::model::ModelSpec m = sp::model::load_model(preset);
  m.dropout = false;
  return m;
}

struct Device {
  std::string cuda_name, preset, why;
  sp::hw::Device model;
  cudaDeviceProp prop{};
};
Device open_device(const Options& o) {
  Device d;
  if (cu::device_count() == 0) throw std::runtime_error("no CUDA device visible (cudaGetDeviceCount = 0)");
  SP_CUDA_CHECK(cudaSetDevice(0));
  SP_CUDA_CHECK(cudaGetDeviceProperties(&d.prop, 0));
  d.cuda_name = d.prop.name;
  d.preset = preset_for(d.cuda_name, o.device_preset, d.why);
  d.model = sp::hw::load_device(d.preset);
  return d;
}

// CUDA-event timing of `fn` (warm-up, then iterations until min_s of device time or max_iters).
double time_it(cudaStream_t st, const std::function<void()>& fn, int warmup, int min_iters, int max_iters,
               double min_s, double deadline_s) {
  for (int i = 0; i < warmup; ++i) fn();
  SP_CUDA_CHECK(cudaStreamSynchronize(st));
  cudaEvent_t a, b;
  SP_CUDA_CHECK(cudaEventCreate(&a));
  SP_CUDA_CHECK(cudaEventCreate(&b));
  double total = 0;
  int n = 0;
  while (n < max_iters) {
    SP_CUDA_CHECK(cudaEventRecord(a, st));
    fn();
    SP_CUDA_CHECK(cudaEventRecord(b, st));
    SP_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    SP_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    total += ms * 1e-3;
    ++n;
    if (n >= min_iters && (total >= min_s || now_s() > deadline_s)) break;
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return total / n;
}

// ---------------------------------------------------------------------------------------------
// Section: info
// ---------------------------------------------------------------------------------------------
void section_info(const Options& o) {
  Report r(o, "Device", {"field", "value"});
  const Device d = open_device(o);
  auto add = [&](const std::string& k, const std::string& v) { r.row({k, v}, json{{"field", k}, {"value", v}}); };
  add("CUDA device", d.cuda_name);
  add("compute capability", std::to_string(d.prop.major) + "." + std::to_string(d.prop.minor));
  add("SMs", std::to_string(d.prop.multiProcessorCount));
  add("memory (GiB)", gib(static_cast<double>(d.prop.totalGlobalMem)));
  int clk = 0, mclk = 0;
  cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, 0);
  cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, 0);
  add("max SM clock (MHz)", fmt("%.0f", clk / 1000.0));
  add("memory clock (MHz)", fmt("%.0f", mclk / 1000.0));
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  add("CUDA runtime / driver", std::to_string(rt) + " / " + std::to_string(drv));
  add("device preset", d.preset + " (" + d.why + ")");
  add("preset bf16 peak (TFLOP/s)", fmt("%.1f", d.model.peak(sp::hw::Dtype::bf16) / 1e12));
  add("preset HBM (GiB) / bandwidth (GB/s)", gib(d.model.hbm_bytes) + " / " + fmt("%.0f", d.model.hbm_bw_Bps / 1e9));
  add("preset efficiency gemm_max / gemm_half_flop / mem_bw", fmt("%.2f", d.model.eff.gemm_max) + " / " +
                                                                  fmt("%.2g", d.model.eff.gemm_half_flop) + " / " +
                                                                  fmt("%.2f", d.model.eff.mem_bw));
  r.set("device", d.cuda_name);
  r.set("preset", d.preset);
  r.finish("ok");
}

// ---------------------------------------------------------------------------------------------
// Section: numerics (CUDA backend vs the CPU backend; bf16 kernels vs the CPU on rounded inputs)
// ---------------------------------------------------------------------------------------------
float round_bf16(float x) {  // round to nearest even, as __float2bfloat16
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  const std::uint32_t lsb = (u >> 16) & 1u;
  u += 0x7fffu + lsb;
  u &= 0xffff0000u;
  std::memcpy(&x, &u, 4);
  return x;
}
double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// A test case: named host inputs, an int32 id vector, output sizes, and how to run it on a Backend.
struct Case {
  std::string name;
  std::vector<std::vector<float>> in;
  std::vector<std::int32_t> ids;
  std::vector<std::size_t> out_sizes;
  std::vector<std::vector<float>> out_init;  // optional initial contents of outputs (accumulating ops)
  std::function<void(ex::Backend&, std::vector<float*>&, const std::int32_t*, std::vector<float*>&)> run;
  // bf16 path (raw kernels on 16-bit storage); null when the op has no 16-bit use in training.
  std::function<void(cudaStream_t, const cu::Blas&, std::vector<cu::bf16*>&, const std::int32_t*,
                     std::vector<cu::bf16*>&)>
      run16;
};

std::vector<std::vector<float>> run_case(ex::Backend& be, const Case& c, const std::vector<std::vector<float>>& in) {
  std::vector<float*> din, dout;
  std::vector<ex::Buffer> bufs;
  for (auto& v : in) {
    bufs.emplace_back(be, v.size() * 4, ex::MemCategory::buffers);
    be.copy_to_device(bufs.back().data(), v.data(), v.size() * 4);
    din.push_back(bufs.back().f());
  }
  ex::Buffer ids;
  if (!c.ids.empty()) {
    ids = ex::Buffer(be, c.ids.size() * 4, ex::MemCategory::buffers);
    be.copy_to_device(ids.data(), c.ids.data(), c.ids.size() * 4);
  }
  for (std::size_t i = 0; i < c.out_sizes.size(); ++i) {
    bufs.emplace_back(be, c.out_sizes[i] * 4, ex::MemCategory::buffers);
    if (i < c.out_init.size() && !c.out_init[i].empty())
      be.copy_to_device(bufs.back().data(), c.out_init[i].data(), c.out_sizes[i] * 4);
    dout.push_back(bufs.back().f());
  }
  c.run(be, din, ids.i32(), dout);
  be.synchronize();
  std::vector<std::vector<float>> res;
  for (std::size_t i = 0; i < dout.size(); ++i) {
    res.emplace_back(c.out_sizes[i]);
    be.copy_to_host(res.back().data(), dout[i], c.out_sizes[i] * 4);
  }
  return res;
}

std::vector<std::vector<float>> run_case16(const Case& c, const std::vector<std::vector<float>>& in) {
  cudaStream_t st;
  SP_CUDA_CHECK(cudaStreamCreate(&st));
  cu::Blas blas(st);
  std::vector<void*> all;
  auto up = [&](const std::vector<float>& v) {
    std::vector<cu::bf16> h(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) h[i] = __float2bfloat16(v[i]);
    void* p = nullptr;
    SP_CUDA_CHECK(cudaMalloc(&p, std::max<std::size_t>(2, v.size() * 2)));
    SP_CUDA_CHECK(cudaMemcpy(p, h.data(), v.size() * 2, cudaMemcpyHostToDevice));
    all.push_back(p);
    return static_cast<cu::bf16*>(p);
  };
  std::vector<cu::bf16*> din, dout;
  for (auto& v : in) din.push_back(up(v));
  std::int32_t* ids = nullptr;
  if (!c.ids.empty()) {
    SP_CUDA_CHECK(cudaMalloc(&ids, c.ids.size() * 4));
    SP_CUDA_CHECK(cudaMemcpy(ids, c.ids.data(), c.ids.size() * 4, cudaMemcpyHostToDevice));
    all.push_back(ids);
  }
  for (std::size_t i = 0; i < c.out_sizes.size(); ++i)
    dout.push_back(up(i < c.out_init.size() && !c.out_init[i].empty() ? c.out_init[i]
                                                                      : std::vector<float>(c.out_sizes[i], 0.f)));
  c.run16(st, blas, din, ids, dout);
  SP_CUDA_CHECK(cudaStreamSynchronize(st));
  std::vector<std::vector<float>> res;
  for (std::size_t i = 0; i < dout.size(); ++i) {
    std::vector<cu::bf16> h(c.out_sizes[i]);
    SP_CUDA_CHECK(cudaMemcpy(h.data(), dout[i], h.size() * 2, cudaMemcpyDeviceToHost));
    res.emplace_back(h.size());
    for (std::size_t k = 0; k < h.size(); ++k) res.back()[k] = __bfloat162float(h[k]);
  }
  for (void* p : all) cudaFree(p);
  cudaStreamDestroy(st);
  return res;
}

std::vector<float> randv(std::mt19937& g, std::size_t n, float sd, float mean = 0) {
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::vector<Case> make_cases() {
  std::mt19937 g(7);
  std::vector<Case> cs;
  using B = ex::Backend;
  using V = std::vector<float*>;
  using V16 = std::vector<cu::bf16*>;
  const ex::Trans N = ex::Trans::N, T = ex::Trans::T;
  {  // GEMM NN / NT / TN (the three forms a linear layer's forward, dgrad and wgrad use)
    const int m = 192, n = 320, k = 256;
    for (int form = 0; form < 3; ++form) {
      Case c;
      const bool ta = form == 2, tb = form == 1;
      c.name = std::string("gemm ") + (ta ? "T" : "N") + (tb ? "T" : "N") + " 192x320x256";
      c.in = {randv(g, static_cast<std::size_t>(m) * k, 1), randv(g, static_cast<std::size_t>(k) * n, 1)};
      c.out_sizes = {static_cast<std::size_t>(m) * n};
      const int lda = ta ? m : k, ldb = tb ? k : n;
      c.run = [=](B& be, V& i, const std::int32_t*, V& o) {
        be.gemm(ta ? T : N, tb ? T : N, m, n, k, 1.f, i[0], lda, i[1], ldb, 0.f, o[0], n);
      };
      c.run16 = [=](cudaStream_t, const cu::Blas& bl, V16& i, const std::int32_t*, V16& o) {
        cu::gemm(bl, ta, tb, m, n, k, 1.f, i[0], lda, i[1], ldb, 0.f, o[0], n, cu::GemmMode::bf16);
      };
      cs.push_back(std::move(c));
    }
  }
  {  // batched scores GEMM: Q K^T per head
    Case c;
    const int s = 64, d = 32, H = 4;
    c.name = "batched gemm NT (4 heads, 64x64x32)";
    c.in = {randv(g, static_cast<std::size_t>(H) * s * d, 1), randv(g, static_cast<std::size_t>(H) * s * d, 1)};
    c.out_sizes = {static_cast<std::size_t>(H) * s * s};
    c.run = [=](B& be, V& i, const std::int32_t*, V& o) {
      be.gemm_strided_batched(N, T, s, s, d, 1.f, i[0], d, s * d, i[1], d, s * d, 0.f, o[0], s, s * s, H);
    };
    c.run16 = [=](cudaStream_t, const cu::Blas& bl, V16& i, const std::int32_t*, V16& o) {
      cu::gemm_strided_batched(bl, false, true, s, s, d, 1.f, i[0], d, s * d, i[1], d, s * d, 0.f, o[0], s, s * s, H,
                               cu::GemmMode::bf16);
    };
    cs.push_back(std::move(c));
  }
  {  // LayerNorm forward + backward
    Case c;
    const int rows = 64, cols = 512;
    c.name = "layernorm fwd+bwd (64x512)";
    c.in = {randv(g, rows * cols, 1, 0.5f), randv(g, cols, 0.2f, 1), randv(g, cols, 0.2f), randv(g, rows * cols, 1)};
    c.out_sizes = {static_cast<std::size_t>(rows) * cols, static_cast<std::size_t>(rows) * cols, cols, cols};
    c.run = [=](B& be, V& i, const std::int32_t*, V& o) {
      ex::Buffer mean = ex::make_floats(be, rows, ex::MemCategory::buffers), rstd = ex::make_floats(be, rows, ex::MemCategory::buffers);
      be.layernorm_fwd(i[0], i[1], i[2], o[0], mean.f(), rstd.f(), rows, cols, 1e-5f);
      be.layernorm_bwd(i[3], i[0], i[1], mean.f(), rstd.f(), o[1], o[2], o[3], rows, cols);
      be.synchronize();
    };
    c.run16 = [=](cudaStream_t st, const cu::Blas&, V16& i, const std::int32_t*, V16& o) {
      float *mean, *rstd;
      SP_CUDA_CHECK(cudaMalloc(&mean, rows * 4));
      SP_CUDA_CHECK(cudaMalloc(&rstd, rows * 4));
      cu::layernorm_fwd(i[0], i[1], i[2], o[0], mean, rstd, rows, cols, 1e-5f, st);
      cu::layernorm_bwd(i[3], i[0], i[1], mean, rstd, o[1], o[2], o[3], rows, cols, false, true, st);
      SP_CUDA_CHECK(cudaStreamSynchronize(st));
      cudaFree(mean);
      cudaFree(rstd);
    };
    cs.push_back(std::move(c));
  }
  {  // GeLU forward + backward
    Case c;
    const std::size_t n = 8192;
    c.name = "gelu fwd+bwd (8192)";
    c.in = {randv(g, n, 2), randv(g, n, 1)};
    c.out_sizes = {n, n};
    c.run = [=](B& be, V& i, const std::int32_t*, V& o) {
      be.gelu_fwd(i[0], o[0], n);
      be.gelu_bwd(i[0], i[1], o[1], n);
    };
    c.run16 = [=](cudaStream_t st, const cu::Blas&, V16& i, const std::int32_t*, V16& o) {
      cu::gelu_fwd(i[0], o[0], n, st);
      cu::gelu_bwd(i[0], i[1], o[1], n, st);
    };
    cs.push_back(std::move(c));
  }
  {  // SwiGLU forward + backward
    Case c;
    const int rows = 32, f = 256;
    c.name = "swiglu fwd+bwd (32x256)";
    c.in = {randv(g, rows * 2 * f, 2), randv(g, rows * f, 1)};
    c.out_sizes = {static_cast<std::size_t>(rows) * f, static_cast<std::size_t>(rows) * 2 * f};
    c.run = [=](B& be, V& i, const std::int32_t*, V& o) {
      be.swiglu_fwd(i[0], o[0], rows, f);
      be.swiglu_bwd(i[0], i[1], o[1], rows, f);
    };
    c.run16 = [=](cudaStream_t st, const cu::Blas&, V16& i, const std::int32_t*, V16& o) {
      cu::swiglu_fwd(i[0], o[0], rows, f, st);
      cu::swiglu_bwd(i[0], i[1], o[1], rows, f, st);
    };
    cs.push_back(std::move(c));
  }
  {  // causal softmax forward + backward
    Case c;
    const int batch = 4, s = 96;
    const float sc = 0.125f;
    c.name = "causal softmax fwd+bwd (4x96x96)";
    c.in = {randv(g, batch * s * s, 3), randv(g, batch * s * s, 1)};
    c.out_sizes = {static_cast<std::size_t>(batch) * s * s, static_cast<std::size_t>(batch) * s * s};
    c.run = [=](B& be, V& i, const std::int32_t*, V& o) {
      be.softmax_causal_fwd(i[0], o[0], batch, s, sc);
      be.softmax_causal_bwd(o[0], i[1], o[1], batch, s, sc);
    };
    c.run16 = [=](cudaStream_t st, const cu::Blas&, V16& i, const std::int32_t*, V16& o) {
      cu::softmax_causal_fwd(i[0], o[0], batch, s, sc, st);
      cu::softmax_causal_bwd(o[0], i[1], o[1], batch, s, sc, st);
    };
    cs.push_back(std::move(c));
  }
  {  // head split/merge
    Case c;
    const int b = 2, s = 16, H = 4, d = 8, ld = 3 * H * d;
    c.name = "split/merge heads";
    c.in = {randv(g, static_cast<std::size_t>(b) * s * ld, 1)};
    c.out_sizes = {static_cast<std::size_t>(b) * H * s * d, static_cast<std::size_t>(b) * s * H * d};
    c.run = [=](B& be, V& i, const std::int32_t*, V& o) {
      be.split_heads(i[0] + H * d, ld, o[0], b, s, H, d);
      be.merge_heads(o[0], o[1], H * d, b, s, H, d);
    };
    cs.push_back(std::move(c));
  }
  {  // embedding + positions forward and backward
    Case c;
    const int b = 2, s = 16, V_ = 50, dim = 32, n = b * s;
    c.name = "embedding + positions fwd+bwd";
    c.in = {randv(g, V_ * dim, 1), randv(g, s * dim, 1), randv(g, n * dim, 1)};
    std::uniform_int_distribution<int> u(0, V_ - 1);
    for (int t = 0; t < n; ++t) c.ids.push_back(u(g));
    c.out_sizes = {static_cast<std::size_t>(n) * dim, static_cast<std::size_t>(V_) * dim,
                   static_cast<std::size_t>(s) * dim};
    c.run = [=](B& be, V& i, const std::int32_t* ids, V& o) {
      be.embedding_fwd(ids, i[0], o[0], n, dim, 0, V_);
      be.add_positions(o[0], i[1], b, s, dim);
      be.embedding_bwd(ids, i[2], o[1], n, dim, 0, V_);
      be.positions_bwd(i[2], o[2], b, s, dim);
    };
    cs.push_back(std::move(c));
  }
  {  // cross-entropy pieces
    Case c;
    const int rows = 32, cols = 1000;
    c.name = "cross-entropy (32x1000)";
    c.in = {randv(g, rows * cols, 2)};
    std::uniform_int_distribution<int> u(0, cols - 1);
    for (int t = 0; t < rows; ++t) c.ids.push_back(u(g));
    c.out_sizes = {static_cast<std::size_t>(rows), static_cast<std::size_t>(rows), static_cast<std::size_t>(rows),
                   static_cast<std::size_t>(rows) * cols};
    c.run = [=](B& be, V& i, const std::int32_t* ids, V& o) {
      be.ce_row_max(i[0], o[0], rows, cols);
      be.ce_sum_exp(i[0], o[0], o[1], rows, cols);
      be.ce_target_logit(i[0], ids, o[2], rows, cols, 0);
      be.ce_bwd(i[0], o[0], o[1], ids, o[3], rows, cols, 0, 1.f / rows);
    };
    cs.push_back(std::move(c));
  }
  {  // optimizers: two AdamW steps, LAMB direction, LARS step
    Case c;
    const std::size_t n = 4096;
    c.name = "adamw x2 + lamb direction + lars";
    c.in = {randv(g, n, 1), randv(g, n, 0.1f)};
    c.out_sizes = {n, n, n, n, n, n, n, n, n};
    c.out_init = {c.in[0], {}, {}, c.in[0], {}, {}, {}, c.in[0], {}};
    c.run = [=](B& be, V& i, const std::int32_t*, V& o) {
      be.adamw_update(o[0], i[1], o[1], o[2], n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1);
      be.adamw_update(o[0], i[1], o[1], o[2], n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 2);
      be.lamb_direction(o[3], i[1], o[4], o[5], o[6], n, 0.9f, 0.999f, 1e-6f, 0.01f, 1);
      be.lars_update(o[7], i[1], o[8], n, 0.01f, 0.9f, 1e-4f);
    };
    cs.push_back(std::move(c));
  }
  return cs;
}

// GPT-level numerics: the same tiny model (same initial weights) in fp32, TF32 and bf16 on the GPU:
// loss and gradients against fp32, and a central finite-difference check of fp32 gradients.
void gpt_numerics(Report& r, double deadline) {
  cu::GptShape sh;
  sh.layers = 2;
  sh.hidden = 128;
  sh.heads = 4;
  sh.ffn = 512;
  sh.vocab = 512;
  sh.seq = 64;
  const int mbs = 2, n = mbs * sh.seq;
  std::mt19937 g(11);
  std::uniform_int_distribution<int> u(0, sh.vocab - 1);
  std::vector<std::int32_t> ids(n + 1);
  for (auto& t : ids) t = u(g);
  cudaStream_t st;
  SP_CUDA_CHECK(cudaStreamCreate(&st));
  std::int32_t* dids;
  SP_CUDA_CHECK(cudaMalloc(&dids, (n + 1) * 4));
  SP_CUDA_CHECK(cudaMemcpy(dids, ids.data(), (n + 1) * 4, cudaMemcpyHostToDevice));
  const float scale = 1.f / n;
  auto grads_of = [&](auto& model) {
    using T = std::remove_reference_t<decltype(*model.grads())>;
    std::vector<T> h(model.num_params());
    SP_CUDA_CHECK(cudaMemcpy(h.data(), model.grads(), h.size() * sizeof(T), cudaMemcpyDeviceToHost));
    std::vector<float> f(h.size());
    for (std::size_t i = 0; i < h.size(); ++i) {
      if constexpr (std::is_same_v<T, float>) f[i] = h[i];
      else f[i] = __bfloat162float(h[i]);
    }
    return f;
  };
  cu::DeviceMemory mem;
  cu::GptOptions o32;
  o32.mbs = mbs;
  o32.mode = cu::GemmMode::fp32;
  cu::GptCuda<float> m32(sh, o32, mem, st);
  m32.zero_grads();
  m32.forward_backward(dids, dids + 1, scale);
  const double loss32 = m32.take_loss_sum() * scale;
  const std::vector<float> g32 = grads_of(m32);
  r.row({"GPT tiny: fp32 loss (ln V = " + fmt("%.4f", std::log(sh.vocab)) + ")", "fp32", fmt("%.6f", loss32), "-", "-"},
        json{{"op", "gpt_loss_fp32"}, {"value", loss32}});

  auto compare = [&](auto& model, const char* prec, double tol_loss, double tol_grad) {
    model.zero_grads();
    model.forward_backward(dids, dids + 1, scale);
    const double loss = model.take_loss_sum() * scale;
    const std::vector<float> gg = grads_of(model);
    const double el = std::abs(loss - loss32) / std::abs(loss32), eg = rel_err(gg, g32);
    r.row({"GPT tiny: loss vs fp32", prec, fmt("%.2e", el), fmt("%.0e", tol_loss), el <= tol_loss ? "pass" : "FAIL"},
          json{{"op", "gpt_loss"}, {"precision", prec}, {"rel_err", el}, {"tol", tol_loss}, {"pass", el <= tol_loss}});
    r.row({"GPT tiny: all gradients vs fp32", prec, fmt("%.2e", eg), fmt("%.0e", tol_grad), eg <= tol_grad ? "pass" : "FAIL"},
          json{{"op", "gpt_grads"}, {"precision", prec}, {"rel_err", eg}, {"tol", tol_grad}, {"pass", eg <= tol_grad}});
  };
  {
    cu::GptOptions o = o32;
    o.mode = cu::GemmMode::tf32;
    cu::GptCuda<float> m(sh, o, mem, st);
    compare(m, "tf32", 1e-3, 2e-2);
  }
  {
    cu::GptOptions o = o32;
    o.mode = cu::GemmMode::bf16;
    cu::GptCuda<cu::bf16> m(sh, o, mem, st);
    compare(m, "bf16", 1e-2, 1e-1);
  }
  // Finite differences on fp32: the largest-gradient entry of several tensors.
  if (now_s() < deadline) {
    const auto& L0 = m32.layer_offsets(0);
    const auto& L1 = m32.layer_offsets(1);
    struct Range {
      const char* name;
      std::size_t begin, len;
    };
    const std::size_t h = sh.hidden;
    const std::vector<Range> ranges = {{"wte", m32.wte_offset(), static_cast<std::size_t>(sh.vocab) * h},
                                       {"wpe", m32.wpe_offset(), static_cast<std::size_t>(sh.seq) * h},
                                       {"L0 w_qkv", L0.w_qkv, h * 3 * h},
                                       {"L0 ln1_g", L0.ln1_g, h},
                                       {"L1 w_o", L1.w_o, h * h},
                                       {"L1 w1", L1.w1, h * sh.ffn},
                                       {"L1 b2", L1.b2, h}};
    double worst = 0;
    std::string worst_name;
    const float eps = 1e-2f;
    for (const auto& rg : ranges) {
      std::size_t best = rg.begin;
      for (std::size_t i = rg.begin; i < rg.begin + rg.len; ++i)
        if (std::abs(g32[i]) > std::abs(g32[best])) best = i;
      float w = 0;
      SP_CUDA_CHECK(cudaMemcpy(&w, m32.params() + best, 4, cudaMemcpyDeviceToHost));
      auto loss_at = [&](float val) {
        SP_CUDA_CHECK(cudaMemcpy(m32.params() + best, &val, 4, cudaMemcpyHostToDevice));
        m32.forward_backward(dids, dids + 1, scale);
        return m32.take_loss_sum() * scale;
      };
      const double lp = loss_at(w + eps), lm = loss_at(w - eps);
      loss_at(w);
      const double fd = (lp - lm) / (2.0 * eps);
      const double e = std::abs(fd - g32[best]) / std::max({std::abs(fd), std::abs(static_cast<double>(g32[best])), 1e-12});
      if (e > worst) {
        worst = e;
        worst_name = rg.name;
      }
    }
    const double tol = 2e-2;
    r.row({"GPT tiny: backward vs finite differences (worst of 7 tensors: " + worst_name + ")", "fp32",
           fmt("%.2e", worst), fmt("%.0e", tol), worst <= tol ? "pass" : "FAIL"},
          json{{"op", "gpt_finite_difference"}, {"rel_err", worst}, {"tol", tol}, {"pass", worst <= tol}});
  }
  cudaFree(dids);  // the stream lives until exit: the models still reference it
}

void section_numerics(const Options& o) {
  Report r(o, "Numerics: CUDA backend vs CPU backend (relative L2 error)", {"op", "precision", "rel. error", "tolerance", "result"});
  const double deadline = now_s() + o.budget_s;
  const Device d = open_device(o);
  r.set("device", d.cuda_name);
  auto cpu = ex::make_cpu_backend();
  auto g32 = ex::make_cuda_backend("fp32");
  auto g_tf = ex::make_cuda_backend("tf32");
  // Tolerances: fp32 ~ accumulation-order differences (1e-5); TF32 rounds GEMM inputs to 10-bit
  // mantissas (unit roundoff 2^-11 ~ 4.9e-4); bf16 stores 8-bit mantissas (2^-9 ~ 2e-3 per value).
  const std::map<std::string, double> tol = {{"fp32", 1e-5}, {"tf32", 5e-3}, {"bf16", 1.5e-2}};
  int fails = 0;
  for (const Case& c : make_cases()) {
    if (now_s() > deadline) {
      r.note("time budget reached: remaining cases skipped");
      break;
    }
    try {
      const auto ref = run_case(*cpu, c, c.in);
      std::vector<std::pair<std::string, std::vector<std::vector<float>>>> got;
      got.emplace_back("fp32", run_case(*g32, c, c.in));
      const bool has_gemm = c.name.find("gemm") != std::string::npos;
      if (has_gemm) got.emplace_back("tf32", run_case(*g_tf, c, c.in));
      for (auto& [prec, out] : got) {
        double e = 0;
        for (std::size_t k = 0; k < out.size(); ++k) e = std::max(e, rel_err(out[k], ref[k]));
        const bool ok = e <= tol.at(prec);
        fails += !ok;
        r.row({c.name, prec, fmt("%.2e", e), fmt("%.1e", tol.at(prec)), ok ? "pass" : "FAIL"},
              json{{"op", c.name}, {"precision", prec}, {"rel_err", e}, {"tol", tol.at(prec)}, {"pass", ok}});
      }
      if (c.run16) {
        // Reference: the CPU backend on the bf16-rounded inputs (and initial outputs).
        auto in16 = c.in;
        for (auto& v : in16)
          for (auto& x : v) x = round_bf16(x);
        const auto ref16 = run_case(*cpu, c, in16);
        const auto out16 = run_case16(c, in16);
        double e = 0;
        for (std::size_t k = 0; k < out16.size(); ++k) e = std::max(e, rel_err(out16[k], ref16[k]));
        const bool ok = e <= tol.at("bf16");
        fails += !ok;
        r.row({c.name, "bf16", fmt("%.2e", e), fmt("%.1e", tol.at("bf16")), ok ? "pass" : "FAIL"},
              json{{"op", c.name}, {"precision", "bf16"}, {"rel_err", e}, {"tol", tol.at("bf16")}, {"pass", ok}});
      }
    } catch (const std::exception& e) {
      ++fails;
      r.row({c.name, "-", "-", "-", std::string("ERROR: ") + e.what()}, json{{"op", c.name}, {"error", e.what()}});
    }
  }
  // sum_squares (a scalar, fp64 accumulation on both)
  {
    std::mt19937 gg(3);
    const auto v = randv(gg, 100000, 1);
    double s[2];
    ex::Backend* bes[2] = {cpu.get(), g32.get()};
    for (int k = 0; k < 2; ++k) {
      ex::Buffer b = ex::make_floats(*bes[k], v.size(), ex::MemCategory::buffers);
      bes[k]->copy_to_device(b.data(), v.data(), v.size() * 4);
      s[k] = bes[k]->sum_squares(b.f(), v.size());
    }
    const double e = std::abs(s[1] - s[0]) / s[0];
    const bool ok = e <= 1e-6;
    fails += !ok;
    r.row({"sum_squares (1e5)", "fp32", fmt("%.2e", e), "1.0e-06", ok ? "pass" : "FAIL"},
          json{{"op", "sum_squares"}, {"precision", "fp32"}, {"rel_err", e}, {"tol", 1e-6}, {"pass", ok}});
  }
  try {
    gpt_numerics(r, deadline);
  } catch (const std::exception& e) {
    ++fails;
    r.note(std::string("GPT-level numerics failed: ") + e.what());
  }
  r.set("failures", fails);
  r.finish(fails ? "failed" : "ok", fails ? std::to_string(fails) + " check(s) failed" : "");
}

// ---------------------------------------------------------------------------------------------
// Section: gemm (bf16 TFLOP/s over transformer shapes vs Device::gemm_time)
// ---------------------------------------------------------------------------------------------
void section_gemm(const Options& o) {
  Report r(o, "GEMM throughput over transformer shapes vs the device model (gemm_time)",
           {"GEMM", "dtype", "M (tokens)", "N", "K", "measured ms", "measured TFLOP/s", "predicted ms",
            "predicted TFLOP/s", "pred. error"});
  const double deadline = now_s() + o.budget_s;
  const Device d = open_device(o);
  r.set("device", d.cuda_name);
  r.set("preset", d.preset);
  cudaStream_t st;
  SP_CUDA_CHECK(cudaStreamCreate(&st));
  cu::Blas blas(st);
  struct Shape {
    std::string name;
    long long m, n, k;
    cu::GemmMode mode;
  };
  std::vector<Shape> shapes;
  const std::vector<long long> hs = o.quick ? std::vector<long long>{2048, 4096} : std::vector<long long>{2048, 4096, 8192};
  const std::vector<long long> ts = o.quick ? std::vector<long long>{4096} : std::vector<long long>{4096, 8192, 16384};
  for (long long h : hs)
    for (long long t : ts) {
      // Forward GEMMs of a GPT layer (Megatron: QKV [h,3h], attention output [h,h], FC1 [h,4h], FC2 [4h,h]).
      shapes.push_back({"QKV h=" + std::to_string(h), t, 3 * h, h, cu::GemmMode::bf16});
      shapes.push_back({"attn-out h=" + std::to_string(h), t, h, h, cu::GemmMode::bf16});
      shapes.push_back({"FC1 h=" + std::to_string(h), t, 4 * h, h, cu::GemmMode::bf16});
      shapes.push_back({"FC2 h=" + std::to_string(h), t, h, 4 * h, cu::GemmMode::bf16});
    }
  // Weight-gradient form (K = tokens) and the other precisions on one shape.
  shapes.push_back({"FC1 wgrad h=4096 (K=tokens)", 4096, 4 * 4096, 8192, cu::GemmMode::bf16});
  shapes.push_back({"FC1 h=4096", 8192, 4 * 4096, 4096, cu::GemmMode::fp16});
  shapes.push_back({"FC1 h=4096", 8192, 4 * 4096, 4096, cu::GemmMode::tf32});
  shapes.push_back({"FC1 h=4096", 8192, 4 * 4096, 4096, cu::GemmMode::fp32});
  // Largest buffers: A, B, C of the biggest shape.
  std::size_t max_a = 0, max_b = 0, max_c = 0;
  for (auto& s : shapes) {
    const std::size_t e = cu::gemm_elem_bytes(s.mode);
    max_a = std::max<std::size_t>(max_a, s.m * s.k * e);
    max_b = std::max<std::size_t>(max_b, s.k * s.n * e);
    max_c = std::max<std::size_t>(max_c, s.m * s.n * e);
  }
  cu::DeviceMemory mem;
  void* A = mem.allocate(max_a, ex::MemCategory::buffers, st, false);
  void* B = mem.allocate(max_b, ex::MemCategory::buffers, st, false);
  void* C = mem.allocate(max_c, ex::MemCategory::buffers, st, false);
  // Finite inputs: N(0,1) bf16 / fp16 / fp32 values (random bits could be NaN/Inf and slow nothing,
  // but keep the inputs realistic).
  cu::init_normal(static_cast<cu::bf16*>(A), max_a / 2, 1.f, 1, st);
  cu::init_normal(static_cast<cu::bf16*>(B), max_b / 2, 1.f, 2, st);
  auto dtype_of = [](cu::GemmMode m) {
    switch (m) {
      case cu::GemmMode::fp32: return sp::hw::Dtype::fp32;
      case cu::GemmMode::tf32: return sp::hw::Dtype::tf32;
      case cu::GemmMode::fp16: return sp::hw::Dtype::fp16;
      default: return sp::hw::Dtype::bf16;
    }
  };
  for (auto& s : shapes) {
    if (now_s() > deadline) {
      r.note("time budget reached: remaining shapes skipped");
      break;
    }
    try {
      if (s.mode == cu::GemmMode::fp32 || s.mode == cu::GemmMode::tf32) {
        cu::init_normal(static_cast<float*>(A), s.m * s.k, 1.f, 3, st);
        cu::init_normal(static_cast<float*>(B), s.k * s.n, 1.f, 4, st);
      } else if (s.mode == cu::GemmMode::fp16) {
        // bf16 bit patterns of N(0,1) values read as fp16 are finite values of magnitude ~0.5-4
        // (the top exponent bits of |x| < 8 in bf16 map into fp16's normal range): realistic operands.
        cu::init_normal(static_cast<cu::bf16*>(A), s.m * s.k, 1.f, 5, st);
        cu::init_normal(static_cast<cu::bf16*>(B), s.k * s.n, 1.f, 6, st);
      }
      const bool wgrad = s.name.find("wgrad") != std::string::npos;
      auto fn = [&] {
        if (wgrad)  // dW[K_in x N] = X^T dY: A stored [tokens x m]... here M = rows of dW
          cu::gemm(blas, true, false, static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k), 1.f, A,
                   static_cast<int>(s.m), B, static_cast<int>(s.n), 0.f, C, static_cast<int>(s.n), s.mode);
        else
          cu::gemm(blas, false, false, static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k), 1.f, A,
                   static_cast<int>(s.k), B, static_cast<int>(s.n), 0.f, C, static_cast<int>(s.n), s.mode);
      };
      const double t = time_it(st, fn, 3, 5, 50, 0.15, deadline);
      const double flops = 2.0 * s.m * s.n * s.k;
      const double e = cu::gemm_elem_bytes(s.mode);
      const double bytes = e * (s.m * s.k + s.k * s.n + s.m * s.n);
      const double tp = d.model.gemm_time(flops, bytes, dtype_of(s.mode));
      r.row({s.name, cu::gemm_mode_name(s.mode), std::to_string(s.m), std::to_string(s.n), std::to_string(s.k),
             fmt("%.3f", t * 1e3), fmt("%.1f", flops / t / 1e12), fmt("%.3f", tp * 1e3), fmt("%.1f", flops / tp / 1e12),
             pct(t, tp)},
            json{{"gemm", s.name},
                 {"dtype", cu::gemm_mode_name(s.mode)},
                 {"m", s.m},
                 {"n", s.n},
                 {"k", s.k},
                 {"flops", flops},
                 {"measured_s", t},
                 {"measured_tflops", flops / t / 1e12},
                 {"predicted_s", tp},
                 {"predicted_tflops", flops / tp / 1e12}});
    } catch (const std::exception& ex_) {
      r.row({s.name, cu::gemm_mode_name(s.mode), std::to_string(s.m), std::to_string(s.n), std::to_string(s.k), "ERROR",
             ex_.what(), "-", "-", "-"},
            json{{"gemm", s.name}, {"error", ex_.what()}});
    }
  }
  r.note("pred. error = (predicted - measured) / measured; prediction = hardware/device.hpp gemm_time(2MNK, "
         "bytes of A+B+C, dtype) with the preset's efficiency (gemm_max, gemm_half_flop).");
  r.note("bf16/fp16 inputs with fp32 accumulation (cublasGemmEx, CUBLAS_COMPUTE_32F); tf32: CUBLAS_COMPUTE_32F_FAST_TF32.");
  r.finish("ok");
}

// ---------------------------------------------------------------------------------------------
// Section: layer (one GPT layer forward + backward, 3 widths)
// ---------------------------------------------------------------------------------------------
struct Predicted {
  sp::strategies::StepReport rep;
  sp::analytic::LayerTable table;
};
Predicted predict(const sp::model::ModelSpec& m, const sp::hw::Cluster& c, const std::string& plan) {
  sp::strategies::Plan p = sp::strategies::resolve_plan(sp::strategies::parse_plan(plan), m, c, 1);
  sp::analytic::Estimator est(m, c);
  return {est.evaluate(p), est.prepare(p)};
}

void section_layer(const Options& o) {
  Report r(o, "One GPT layer, forward + backward (bf16, mbs 1, unfused attention)",
           {"model (width)", "seq", "measured fwd ms", "measured fwd+bwd ms", "predicted fwd ms",
            "predicted fwd+bwd ms", "pred. error", "achieved TFLOP/s", "layer activations GiB (measured / predicted)"});
  const double deadline = now_s() + o.budget_s;
  const Device d = open_device(o);
  r.set("device", d.cuda_name);
  const sp::hw::Cluster cl = one_gpu_cluster(d.model);
  cudaStream_t st;
  SP_CUDA_CHECK(cudaStreamCreate(&st));
  const std::vector<std::string> models =
      o.quick ? std::vector<std::string>{"gpt3-1.3b"} : std::vector<std::string>{"gpt3-1.3b", "gpt3-6.7b", "gpt3-175b"};
  for (const std::string& name : models) {
    if (now_s() > deadline) {
      r.note("time budget reached: remaining widths skipped");
      break;
    }
    try {
      const sp::model::ModelSpec m = executor_model(name);
      cu::GptShape sh = cu::shape_of(m);
      sh.layers = 1;
      sh.vocab = 64;  // no embedding/head in this measurement
      cu::GptOptions go;
      go.mode = cu::GemmMode::bf16;
      go.mbs = 1;
      go.optimizer = false;
      // Activation bytes one layer keeps, from the allocator: a 2-layer model minus a 1-layer model.
      double act1 = 0;
      {
        cu::DeviceMemory m1;
        cu::GptCuda<cu::bf16> one(sh, go, m1, st);
        act1 = m1.stats().current[static_cast<int>(ex::MemCategory::activations)];
      }
      sh.layers = 2;
      cu::DeviceMemory mem;
      cu::GptCuda<cu::bf16> model(sh, go, mem, st);
      const double layer_act = mem.stats().current[static_cast<int>(ex::MemCategory::activations)] - act1;
      model.randomize_layer_io(42);
      const double tf = time_it(st, [&] { model.layer_forward(0); }, 2, 3, 20, 0.1, deadline);
      const double tfb = time_it(
          st,
          [&] {
            model.layer_forward(0);
            model.layer_backward(0);
          },
          2, 3, 20, 0.2, deadline);
      const Predicted pr = predict(m, cl, "dp=1,tp=1,pp=1,mbs=1,gbs=1,precision=bf16,recompute=none");
      const double pf = pr.table.lc.fwd_s, pfb = pr.table.lc.fwd_s + pr.table.lc.bwd_s;
      const double flops = pr.table.lc.model_flops;
      r.row({name + " (h=" + std::to_string(m.hidden) + ")", std::to_string(m.seq), fmt("%.3f", tf * 1e3),
             fmt("%.3f", tfb * 1e3), fmt("%.3f", pf * 1e3), fmt("%.3f", pfb * 1e3), pct(tfb, pfb),
             fmt("%.1f", flops / tfb / 1e12), gib(layer_act) + " / " + gib(pr.table.layer_act)},
            json{{"model", name},
                 {"hidden", m.hidden},
                 {"seq", m.seq},
                 {"measured_fwd_s", tf},
                 {"measured_fwd_bwd_s", tfb},
                 {"predicted_fwd_s", pf},
                 {"predicted_fwd_bwd_s", pfb},
                 {"model_flops", flops},
                 {"measured_layer_activation_bytes", layer_act},
                 {"predicted_layer_activation_bytes", pr.table.layer_act}});
    } catch (const std::exception& e) {
      r.row({name, "-", "ERROR", e.what(), "-", "-", "-", "-", "-"}, json{{"model", name}, {"error", e.what()}});
    }
  }
  r.note("predicted = the estimator's per-layer PhaseCost (strategies/layer_cost) for the model without dropout on a "
         "1-GPU cluster with this device and unfused attention; TFLOP/s uses the model FLOPs of that PhaseCost.");
  r.note("layer activations: measured = tracked activation bytes of a 2-layer minus a 1-layer model (what one layer "
         "keeps for backward: input, 2 LayerNorm outputs, QKV, softmax probabilities, context, residual, 2 MLP "
         "activations, 4 row statistics); predicted = the estimator's per-layer activation bytes (Korthikanti 2022 "
         "Table 2 without dropout, unfused attention).");
  r.finish("ok");
}

// ---------------------------------------------------------------------------------------------
// Sections: step and offload (a full training step of gpt3-1.3b)
// ---------------------------------------------------------------------------------------------
void run_step(const Options& o, bool offload) {
  const std::string model_name = "gpt3-1.3b";
  const int mbs = o.quick ? 1 : 2, gbs = o.quick ? 2 : 8;
  Report r(o,
           std::string("Full training step, ") + model_name + " bf16 AdamW" + (offload ? " with optimizer offload" : "") +
               " (mbs " + std::to_string(mbs) + ", gbs " + std::to_string(gbs) + ", seq 2048, 1 GPU)",
           {"quantity", "measured", "predicted", "pred. error"});
  const double deadline = now_s() + o.budget_s;
  const Device d = open_device(o);
  r.set("device", d.cuda_name);
  const sp::hw::Cluster cl = one_gpu_cluster(d.model);
  const sp::model::ModelSpec m = executor_model(model_name);
  const cu::GptShape sh = cu::shape_of(m);
  const std::string plan = "dp=1,tp=1,pp=1,mbs=" + std::to_string(mbs) + ",gbs=" + std::to_string(gbs) +
                           ",precision=bf16,recompute=none,zero=0";
  const Predicted pr = predict(m, cl, plan);
  r.set("plan", plan);
  cudaStream_t st;
  SP_CUDA_CHECK(cudaStreamCreate(&st));
  cu::DeviceMemory mem;
  cu::GptOptions go;
  go.mode = cu::GemmMode::bf16;
  go.mbs = mbs;
  go.offload_optimizer = offload;
  go.adam.lr = 3e-4f;
  cu::GptCuda<cu::bf16> model(sh, go, mem, st);
  const double n_params = static_cast<double>(model.num_params());
  r.row({"parameters", fmt("%.0f", n_params), fmt("%.0f", m.total_params()), pct(n_params, m.total_params())},
        json{{"quantity", "parameters"}, {"measured", n_params}, {"predicted", m.total_params()}});
  // Data: a fixed random token sequence per microbatch (next-token targets), repeated every step,
  // so the loss must fall.
  const int micro = gbs / mbs, n = mbs * sh.seq;
  std::vector<std::int32_t> ids(static_cast<std::size_t>(micro) * n + 1);
  std::mt19937 g(5);
  std::uniform_int_distribution<int> u(0, sh.vocab - 1);
  for (auto& t : ids) t = u(g);
  std::int32_t* dids = static_cast<std::int32_t*>(mem.allocate(ids.size() * 4, ex::MemCategory::buffers, st, false));
  SP_CUDA_CHECK(cudaMemcpyAsync(dids, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice, st));
  const float scale = 1.f / (static_cast<float>(micro) * n);
  int t = 0;
  std::vector<double> losses;
  auto step = [&] {
    model.zero_grads();
    for (int k = 0; k < micro; ++k) model.forward_backward(dids + static_cast<std::size_t>(k) * n, dids + static_cast<std::size_t>(k) * n + 1, scale);
    model.optimizer_step(++t);
  };
  // Warm-up step (cuBLAS heuristics, caches), then peaks from a clean reset.
  mem.reset_peaks();
  step();
  losses.push_back(model.take_loss_sum() * scale);
  const int steps = o.quick ? 2 : 5;
  double total = 0;
  int done = 0;
  cudaEvent_t a, b;
  SP_CUDA_CHECK(cudaEventCreate(&a));
  SP_CUDA_CHECK(cudaEventCreate(&b));
  for (int s = 0; s < steps && now_s() < deadline; ++s) {
    SP_CUDA_CHECK(cudaEventRecord(a, st));
    step();
    SP_CUDA_CHECK(cudaEventRecord(b, st));
    SP_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    SP_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    total += ms * 1e-3;
    ++done;
    losses.push_back(model.take_loss_sum() * scale);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  if (!done) throw std::runtime_error("no timed step finished inside the time budget");
  const double step_s = total / done;
  const auto& pt = pr.rep.time;
  // Offload prediction (the estimator rejects offload plans; documented assumption of this script):
  // the GPU step without its optimizer kernel, plus streaming the 12 B/param fp32 state
  // (offload.hpp) through PCIe once each way; H2D and D2H overlap (PCIe is full duplex) and the AdamW
  // kernel hides under the copies, so the transfer is 12 B/param / host.pcie_GBps of the cluster.
  const double opt_state_bytes = 12.0 * n_params;
  const double pred_step = offload ? pt.step_s - pt.optimizer_s + opt_state_bytes / cl.host.pcie_Bps : pt.step_s;
  r.row({"step time (s)", fmt("%.4f", step_s), fmt("%.4f", pred_step), pct(step_s, pred_step)},
        json{{"quantity", "step_s"}, {"measured", step_s}, {"predicted", pred_step}, {"steps_timed", done}});
  const double tokens = static_cast<double>(gbs) * sh.seq;
  r.row({"tokens/s", fmt("%.0f", tokens / step_s), fmt("%.0f", tokens / pred_step), pct(tokens / step_s, tokens / pred_step)},
        json{{"quantity", "tokens_per_s"}, {"measured", tokens / step_s}, {"predicted", tokens / pred_step}});
  const double mf = pr.rep.model_flops_per_step;
  r.row({"model TFLOP/s (MFU)", fmt("%.1f", mf / step_s / 1e12) + " (" + fmt("%.1f%%", 100 * mf / step_s / d.model.peak(sp::hw::Dtype::bf16)) + ")",
         fmt("%.1f", mf / pred_step / 1e12), "-"},
        json{{"quantity", "model_tflops"}, {"measured", mf / step_s / 1e12}, {"predicted", mf / pred_step / 1e12}});
  // Memory by category: peaks of the tracked allocator vs the estimator's breakdown.
  const ex::MemStats ms = mem.stats();
  const auto& pm = pr.rep.memory;
  const double pred_opt = offload ? 2.0 * 3.0 * 4.0 * static_cast<double>(std::min<std::size_t>(go.offload_chunk, model.num_params()))
                                  : pm.optimizer;
  struct MemRow {
    const char* name;
    double measured, predicted;
  };
  const std::vector<MemRow> rows = {{"params", ms.at(ex::MemCategory::params), pm.params},
                                    {"grads", ms.at(ex::MemCategory::grads), pm.grads},
                                    {"optimizer", ms.at(ex::MemCategory::optimizer), pred_opt},
                                    {"activations", ms.at(ex::MemCategory::activations), pm.activations},
                                    {"buffers", ms.at(ex::MemCategory::buffers), pm.buffers}};
  for (const auto& mr : rows)
    r.row({std::string("peak ") + mr.name + " (GiB)", gib(mr.measured), gib(mr.predicted), pct(mr.measured, mr.predicted)},
          json{{"quantity", std::string("memory_") + mr.name}, {"measured", mr.measured}, {"predicted", mr.predicted}});
  const double pred_total = pm.params + pm.grads + pred_opt + pm.activations + pm.buffers;
  r.row({"peak total tracked (GiB)", gib(ms.total_peak), gib(pred_total), pct(ms.total_peak, pred_total)},
        json{{"quantity", "memory_total"}, {"measured", ms.total_peak}, {"predicted", pred_total}});
  std::size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  r.row({"device memory in use now, cudaMemGetInfo (GiB)", gib(static_cast<double>(total_b - free_b)), "-", "-"},
        json{{"quantity", "memory_device_used"}, {"measured", static_cast<double>(total_b - free_b)}});
  if (offload)
    r.row({"host pinned optimizer state (GiB)", gib(opt_state_bytes), gib(opt_state_bytes), "-"},
          json{{"quantity", "memory_host"}, {"measured", opt_state_bytes}, {"predicted", opt_state_bytes}});
  std::string ls;
  for (double l : losses) ls += (ls.empty() ? "" : " ") + fmt("%.4f", l);
  r.row({"loss per step (same batch each step)", ls, "starts at ln V = " + fmt("%.4f", std::log(sh.vocab)), "-"},
        json{{"quantity", "loss"}, {"measured", losses}});
  r.note("predicted = analytic estimator for plan " + plan + " on a 1-GPU cluster with this device, unfused attention, "
         "no dropout (the executor's model); memory: params 2 B, grads 2 B, optimizer 12 B per parameter (ZeRO paper recipe).");
  r.note("activations: the executor keeps per layer its input, both LayerNorm outputs, QKV, the softmax probabilities, "
         "the context, the post-attention residual and both MLP activations, plus the logits; the estimator's "
         "Korthikanti-style count differs in what it keeps (no attention-score gradients, no logits).");
  if (offload)
    r.note("offload prediction: estimator step - estimator optimizer time + 12 B/param / host PCIe bandwidth (" +
           fmt("%.0f", cl.host.pcie_Bps / 1e9) + " GB/s); the estimator itself does not model offload yet.");
  r.finish(losses.back() < losses.front() ? "ok" : "failed", losses.back() < losses.front() ? "" : "loss did not fall");
}

// Section: predict (no GPU needed): the estimator's numbers the other sections compare against,
// for the preset given by --device (default h100-sxm-80gb). Lets the prediction side be checked
// anywhere, and keeps the predictions in the results even when a GPU section fails.
void section_predict(const Options& o) {
  Report r(o, "Predictions used by the GPU sections (analytic estimator, no GPU)", {"what", "predicted"});
  std::string preset = o.device_preset.empty() ? "h100-sxm-80gb" : o.device_preset;
  if (o.device_preset.empty() && cu::device_count() > 0) preset = open_device(o).preset;  // the GPU at hand
  const sp::hw::Device dev = sp::hw::load_device(preset);
  const sp::hw::Cluster cl = one_gpu_cluster(dev);
  r.set("preset", preset);
  for (const std::string name : {"gpt3-1.3b", "gpt3-6.7b", "gpt3-175b"}) {
    const sp::model::ModelSpec m = executor_model(name);
    const Predicted pr = predict(m, cl, "dp=1,tp=1,pp=1,mbs=1,gbs=1,precision=bf16,recompute=none");
    r.row({name + " layer fwd+bwd ms", fmt("%.3f", 1e3 * (pr.table.lc.fwd_s + pr.table.lc.bwd_s))},
          json{{"what", name + " layer fwd+bwd"}, {"predicted_s", pr.table.lc.fwd_s + pr.table.lc.bwd_s}});
  }
  const sp::model::ModelSpec m = executor_model("gpt3-1.3b");
  const Predicted pr = predict(m, cl, "dp=1,tp=1,pp=1,mbs=2,gbs=8,precision=bf16,recompute=none,zero=0");
  r.row({"gpt3-1.3b step s (mbs 2, gbs 8)", fmt("%.4f", pr.rep.time.step_s)},
        json{{"what", "step_s"}, {"predicted", pr.rep.time.step_s}});
  r.row({"gpt3-1.3b optimizer s", fmt("%.4f", pr.rep.time.optimizer_s)},
        json{{"what", "optimizer_s"}, {"predicted", pr.rep.time.optimizer_s}});
  const auto& pm = pr.rep.memory;
  for (auto [k, v] : std::vector<std::pair<std::string, double>>{{"params", pm.params}, {"grads", pm.grads},
                                                                  {"optimizer", pm.optimizer}, {"activations", pm.activations},
                                                                  {"buffers", pm.buffers}})
    r.row({"gpt3-1.3b memory " + k + " GiB", gib(v)}, json{{"what", "memory_" + k}, {"predicted", v}});
  r.row({"gpt3-1.3b parameters", fmt("%.0f", m.total_params())}, json{{"what", "parameters"}, {"predicted", m.total_params()}});
  r.row({"GEMM bf16 8192x16384x4096 TFLOP/s",
         fmt("%.1f", 2.0 * 8192 * 16384 * 4096 / dev.gemm_time(2.0 * 8192 * 16384 * 4096, 2.0 * (8192.0 * 4096 + 4096.0 * 16384 + 8192.0 * 16384), sp::hw::Dtype::bf16) / 1e12)},
        json{{"what", "gemm_fc1_h4096_t8192_tflops"}});
  r.finish("ok");
}

int usage(const char* msg) {
  std::fprintf(stderr,
               "error: %s\nusage: gpu_validate --section info|predict|numerics|gemm|layer|step|offload --out DIR "
               "[--device PRESET] [--budget-s S] [--quick]\n",
               msg);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--section") o.section = next();
      else if (a == "--out") o.out = next();
      else if (a == "--device") o.device_preset = next();
      else if (a == "--budget-s") o.budget_s = std::stod(next());
      else if (a == "--quick") o.quick = true;
      else return usage(("unknown argument " + a).c_str());
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  const std::map<std::string, std::function<void(const Options&)>> sections = {
      {"info", section_info},     {"numerics", section_numerics}, {"predict", section_predict},
      {"gemm", section_gemm},     {"layer", section_layer},
      {"step", [](const Options& op) { run_step(op, false); }},
      {"offload", [](const Options& op) { run_step(op, true); }}};
  auto it = sections.find(o.section);
  if (it == sections.end()) return usage(("unknown section '" + o.section + "'").c_str());
  std::printf("== section %s (budget %.0f s)\n", o.section.c_str(), o.budget_s);
  std::fflush(stdout);
  try {
    it->second(o);
  } catch (const std::exception& e) {
    // Record the failure in the section's files (keeping any rows already written).
    std::fprintf(stderr, "section %s failed: %s\n", o.section.c_str(), e.what());
    std::ifstream f(o.out + "/" + o.section + ".json");
    json j;
    if (f) {
      try {
        f >> j;
      } catch (...) {
        j = json::object();
      }
    }
    j["section"] = o.section;
    j["status"] = "failed";
    j["error"] = e.what();
    std::ofstream(o.out + "/" + o.section + ".json") << j.dump(2) << "\n";
    std::string md;
    {
      std::ifstream in(o.out + "/" + o.section + ".md");
      std::stringstream ss;
      ss << in.rdbuf();
      md = ss.str();
    }
    const std::string running = "status: running";
    if (auto pos = md.rfind(running); pos != std::string::npos) md.replace(pos, running.size(), "status: failed");
    md += std::string("\n**section failed:** ") + e.what() + "\n";
    std::ofstream(o.out + "/" + o.section + ".md") << md;
    return 1;
  }
  return 0;
}
