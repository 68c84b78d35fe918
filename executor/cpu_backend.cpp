// The reference compute backend: host memory, Eigen GEMMs, plain loops for the rest (fp32).
#include <Eigen/Dense>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <unordered_map>

#include "executor/backend.hpp"

namespace scaleplan::executor {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using MMap = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

class CpuBackend final : public Backend {
 public:
  // A caching allocator, as PyTorch's keeps freed blocks: every buffer from the heap (no mmap per
  // large buffer) and the heap never trimmed, so a freed buffer's pages are reused instead of being
  // returned to the OS and faulted in again at the next allocation (measured on the 2-core VM: a
  // 256 KiB buffer allocated while 8 others live, zero-filled and freed took 27 us with glibc's
  // defaults, 3 us with these; issue 22). Process-wide: the executor owns its process.
  CpuBackend() {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  ~CpuBackend() override {
    for (auto& [p, a] : live_) std::free(p);
  }
  std::string name() const override { return "cpu-eigen"; }
  bool host_accessible() const override { return true; }

  void* allocate(std::size_t bytes, MemCategory c) override {
    if (bytes == 0) return nullptr;
    // 64-byte alignment for Eigen's vectorised loads; the counted size is the requested one.
    std::size_t padded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, padded);
    if (!p) throw BackendError("cpu backend: out of host memory allocating " + std::to_string(bytes) + " bytes");
    std::memset(p, 0, padded);
    live_[p] = {bytes, c};
    mem_.add(c, static_cast<double>(bytes));
    return p;
  }
  void deallocate(void* p) override {
    if (!p) return;
    auto it = live_.find(p);
    if (it == live_.end()) throw BackendError("cpu backend: deallocate of an unknown pointer");
    mem_.sub(it->second.cat, static_cast<double>(it->second.bytes));
    live_.erase(it);
    std::free(p);
  }
  MemStats memory_stats() const override { return mem_.stats(); }
  void reset_peaks() override { mem_.reset_peaks(); }
  void copy_to_device(void* dst, const void* src, std::size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_device(void* dst, const void* src, std::size_t bytes) override { std::memmove(dst, src, bytes); }
  void synchronize() override {}

  void gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb,
            float beta, float* C, int ldc) override {
    if (m == 0 || n == 0) return;
    MMap c(C, m, n, Eigen::OuterStride<>(ldc));
    if (k == 0) {
      if (beta == 0.f) c.setZero(); else c *= beta;
      return;
    }
    CMap a(A, ta == Trans::N ? m : k, ta == Trans::N ? k : m, Eigen::OuterStride<>(lda));
    CMap b(B, tb == Trans::N ? k : n, tb == Trans::N ? n : k, Eigen::OuterStride<>(ldb));
    if (beta == 0.f) {
      c.setZero();
    } else if (beta != 1.f) {
      c *= beta;
    }
    if (ta == Trans::N && tb == Trans::N) c.noalias() += alpha * (a * b);
    else if (ta == Trans::N) c.noalias() += alpha * (a * b.transpose());
    else if (tb == Trans::N) c.noalias() += alpha * (a.transpose() * b);
    else c.noalias() += alpha * (a.transpose() * b.transpose());
  }
  void gemm_strided_batched(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* A, int lda,
                            long long sa, const float* B, int ldb, long long sb, float beta, float* C, int ldc,
                            long long sc, int batch) override {
    for (int i = 0; i < batch; ++i) gemm(ta, tb, m, n, k, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, ldc);
  }

  void fill(float* x, float v, std::size_t n) override { std::fill(x, x + n, v); }
  void scale(float* x, float a, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) x[i] *= a;
  }
  void axpy(float a, const float* x, float* y, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) y[i] += a * x[i];
  }
  void copy(const float* x, float* y, std::size_t n) override { std::memmove(y, x, n * sizeof(float)); }
  double sum_squares(const float* x, std::size_t n) override {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
    return s;
  }
  void add_bias(float* y, const float* b, int rows, int cols) override {
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) y[(std::size_t)r * cols + c] += b[c];
  }
  void bias_grad(const float* dy, float* db, int rows, int cols) override {
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) db[c] += dy[(std::size_t)r * cols + c];
  }

  void layernorm_fwd(const float* x, const float* g, const float* b, float* y, float* mean, float* rstd, int rows,
                     int cols, float eps) override {
    for (int r = 0; r < rows; ++r) {
      const float* xr = x + (std::size_t)r * cols;
      double mu = 0, var = 0;
      for (int c = 0; c < cols; ++c) mu += xr[c];
      mu /= cols;
      for (int c = 0; c < cols; ++c) var += (xr[c] - mu) * (xr[c] - mu);
      var /= cols;
      float rs = static_cast<float>(1.0 / std::sqrt(var + eps));
      mean[r] = static_cast<float>(mu);
      rstd[r] = rs;
      float* yr = y + (std::size_t)r * cols;
      for (int c = 0; c < cols; ++c) yr[c] = (xr[c] - mean[r]) * rs * g[c] + b[c];
    }
  }
  void layernorm_bwd(const float* dy, const float* x, const float* g, const float* mean, const float* rstd, float* dx,
                     float* dg, float* db, int rows, int cols) override {
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma.
    for (int r = 0; r < rows; ++r) {
      const float* dyr = dy + (std::size_t)r * cols;
      const float* xr = x + (std::size_t)r * cols;
      float* dxr = dx + (std::size_t)r * cols;
      double s1 = 0, s2 = 0;
      for (int c = 0; c < cols; ++c) {
        float xh = (xr[c] - mean[r]) * rstd[r];
        float dxh = dyr[c] * g[c];
        s1 += dxh;
        s2 += dxh * xh;
        dg[c] += dyr[c] * xh;
        db[c] += dyr[c];
      }
      float m1 = static_cast<float>(s1 / cols), m2 = static_cast<float>(s2 / cols);
      for (int c = 0; c < cols; ++c) {
        float xh = (xr[c] - mean[r]) * rstd[r];
        dxr[c] = rstd[r] * (dyr[c] * g[c] - m1 - xh * m2);
      }
    }
  }
  static constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2/pi)
  // tanh(u) = 1 - 2 / (exp(2u) + 1): one expf, whose cost does not depend on u, where glibc's tanhf
  // takes a different path by magnitude (issue 22: GeLU on N(0, 0.1) inputs ran 2x faster than on
  // N(0, 1), so no calibrated per-element rate could describe both models). Exact limits (+-1) for
  // large |u|; absolute error < 1e-7 near 0, where GeLU adds it to 1.
  static float tanh_exp(float u) { return 1.f - 2.f / (std::exp(2.f * u) + 1.f); }
  void gelu_fwd(const float* x, float* y, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) {
      float v = x[i];
      y[i] = 0.5f * v * (1.f + tanh_exp(kGeluC * (v + 0.044715f * v * v * v)));
    }
  }
  void gelu_bwd(const float* x, const float* dy, float* dx, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) {
      float v = x[i];
      float t = tanh_exp(kGeluC * (v + 0.044715f * v * v * v));
      float d = 0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * kGeluC * (1.f + 3.f * 0.044715f * v * v);
      dx[i] = dy[i] * d;
    }
  }
  void swiglu_fwd(const float* x, float* y, int rows, int f) override {
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < f; ++c) {
        float a = x[(std::size_t)r * 2 * f + c], u = x[(std::size_t)r * 2 * f + f + c];
        float sg = 1.f / (1.f + std::exp(-a));
        y[(std::size_t)r * f + c] = a * sg * u;
      }
  }
  void swiglu_bwd(const float* x, const float* dy, float* dx, int rows, int f) override {
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < f; ++c) {
        float a = x[(std::size_t)r * 2 * f + c], u = x[(std::size_t)r * 2 * f + f + c];
        float sg = 1.f / (1.f + std::exp(-a));
        float g = dy[(std::size_t)r * f + c];
        dx[(std::size_t)r * 2 * f + c] = g * u * sg * (1.f + a * (1.f - sg));
        dx[(std::size_t)r * 2 * f + f + c] = g * a * sg;
      }
  }

  void split_heads(const float* in, int ld, float* out, int b, int s, int h, int d) override {
    for (int bi = 0; bi < b; ++bi)
      for (int hi = 0; hi < h; ++hi)
        for (int si = 0; si < s; ++si)
          std::memcpy(out + (((std::size_t)bi * h + hi) * s + si) * d, in + ((std::size_t)bi * s + si) * ld + hi * d,
                      d * sizeof(float));
  }
  void merge_heads(const float* in, float* out, int ld, int b, int s, int h, int d) override {
    for (int bi = 0; bi < b; ++bi)
      for (int hi = 0; hi < h; ++hi)
        for (int si = 0; si < s; ++si)
          std::memcpy(out + ((std::size_t)bi * s + si) * ld + hi * d, in + (((std::size_t)bi * h + hi) * s + si) * d,
                      d * sizeof(float));
  }
  void softmax_causal_fwd(const float* x, float* p, int batch, int s, float scale) override {
    for (int bi = 0; bi < batch; ++bi)
      for (int i = 0; i < s; ++i) {
        const float* xr = x + ((std::size_t)bi * s + i) * s;
        float* pr = p + ((std::size_t)bi * s + i) * s;
        float mx = -INFINITY;
        for (int j = 0; j <= i; ++j) mx = std::max(mx, scale * xr[j]);
        double sum = 0;
        for (int j = 0; j <= i; ++j) {
          pr[j] = std::exp(scale * xr[j] - mx);
          sum += pr[j];
        }
        float inv = static_cast<float>(1.0 / sum);
        for (int j = 0; j <= i; ++j) pr[j] *= inv;
        for (int j = i + 1; j < s; ++j) pr[j] = 0.f;
      }
  }
  void softmax_causal_bwd(const float* p, const float* dp, float* dx, int batch, int s, float scale) override {
    for (int bi = 0; bi < batch; ++bi)
      for (int i = 0; i < s; ++i) {
        std::size_t o = ((std::size_t)bi * s + i) * s;
        double dot = 0;
        for (int j = 0; j <= i; ++j) dot += p[o + j] * dp[o + j];
        for (int j = 0; j <= i; ++j) dx[o + j] = scale * p[o + j] * (dp[o + j] - static_cast<float>(dot));
        for (int j = i + 1; j < s; ++j) dx[o + j] = 0.f;
      }
  }

  void embedding_fwd(const std::int32_t* ids, const float* table, float* out, int n, int dim, int vb, int ve) override {
    for (int t = 0; t < n; ++t) {
      float* o = out + (std::size_t)t * dim;
      if (ids[t] >= vb && ids[t] < ve) std::memcpy(o, table + (std::size_t)(ids[t] - vb) * dim, dim * sizeof(float));
      else std::fill(o, o + dim, 0.f);
    }
  }
  void embedding_bwd(const std::int32_t* ids, const float* dout, float* dtable, int n, int dim, int vb, int ve) override {
    for (int t = 0; t < n; ++t) {
      if (ids[t] < vb || ids[t] >= ve) continue;
      float* dt = dtable + (std::size_t)(ids[t] - vb) * dim;
      const float* g = dout + (std::size_t)t * dim;
      for (int c = 0; c < dim; ++c) dt[c] += g[c];
    }
  }
  void add_positions(float* out, const float* pos, int b, int s, int dim) override {
    for (int bi = 0; bi < b; ++bi)
      for (int si = 0; si < s; ++si)
        for (int c = 0; c < dim; ++c) out[((std::size_t)bi * s + si) * dim + c] += pos[(std::size_t)si * dim + c];
  }
  void positions_bwd(const float* dout, float* dpos, int b, int s, int dim) override {
    for (int bi = 0; bi < b; ++bi)
      for (int si = 0; si < s; ++si)
        for (int c = 0; c < dim; ++c) dpos[(std::size_t)si * dim + c] += dout[((std::size_t)bi * s + si) * dim + c];
  }

  void ce_row_max(const float* l, float* mx, int rows, int cols) override {
    for (int r = 0; r < rows; ++r) {
      float m = -INFINITY;
      for (int c = 0; c < cols; ++c) m = std::max(m, l[(std::size_t)r * cols + c]);
      mx[r] = m;
    }
  }
  void ce_sum_exp(const float* l, const float* mx, float* se, int rows, int cols) override {
    for (int r = 0; r < rows; ++r) {
      double s = 0;
      for (int c = 0; c < cols; ++c) s += std::exp(l[(std::size_t)r * cols + c] - mx[r]);
      se[r] = static_cast<float>(s);
    }
  }
  void ce_target_logit(const float* l, const std::int32_t* tg, float* out, int rows, int cols, int vb) override {
    for (int r = 0; r < rows; ++r) {
      int c = tg[r] - vb;
      out[r] = (c >= 0 && c < cols) ? l[(std::size_t)r * cols + c] : 0.f;
    }
  }
  void ce_bwd(const float* l, const float* mx, const float* se, const std::int32_t* tg, float* dl, int rows, int cols,
              int vb, float scale) override {
    for (int r = 0; r < rows; ++r) {
      float inv = 1.f / se[r];
      for (int c = 0; c < cols; ++c) {
        std::size_t i = (std::size_t)r * cols + c;
        float p = std::exp(l[i] - mx[r]) * inv;
        dl[i] = scale * (p - (c + vb == tg[r] ? 1.f : 0.f));
      }
    }
  }

  void adamw_update(float* p, const float* g, float* m, float* v, std::size_t n, float lr, float b1, float b2,
                    float eps, float wd, int step) override {
    float c1 = 1.f - std::pow(b1, static_cast<float>(step)), c2 = 1.f - std::pow(b2, static_cast<float>(step));
    for (std::size_t i = 0; i < n; ++i) {
      m[i] = b1 * m[i] + (1.f - b1) * g[i];
      v[i] = b2 * v[i] + (1.f - b2) * g[i] * g[i];
      float mh = m[i] / c1, vh = v[i] / c2;
      p[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * p[i]);
    }
  }
  void lamb_direction(const float* p, const float* g, float* m, float* v, float* u, std::size_t n, float b1, float b2,
                      float eps, float wd, int step) override {
    float c1 = 1.f - std::pow(b1, static_cast<float>(step)), c2 = 1.f - std::pow(b2, static_cast<float>(step));
    for (std::size_t i = 0; i < n; ++i) {
      m[i] = b1 * m[i] + (1.f - b1) * g[i];
      v[i] = b2 * v[i] + (1.f - b2) * g[i] * g[i];
      u[i] = (m[i] / c1) / (std::sqrt(v[i] / c2) + eps) + wd * p[i];
    }
  }
  void lars_update(float* p, const float* g, float* mom, std::size_t n, float local_lr, float momentum,
                   float wd) override {
    for (std::size_t i = 0; i < n; ++i) {
      mom[i] = momentum * mom[i] + local_lr * (g[i] + wd * p[i]);
      p[i] -= mom[i];
    }
  }

 private:
  struct Alloc {
    std::size_t bytes;
    MemCategory cat;
  };
  std::unordered_map<void*, Alloc> live_;
  MemTracker mem_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace scaleplan::executor
