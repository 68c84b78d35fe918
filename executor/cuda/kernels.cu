// CUDA kernels of the reference executor (see kernels.cuh). Simple, readable kernels: one block
// (or warp) per row for row-wise ops, grid-stride loops for elementwise ops, deterministic column
// reductions for parameter gradients. fp32 arithmetic throughout.
#include <cfloat>
#include <cmath>

#include "executor/cuda/cuda_check.hpp"
#include "executor/cuda/kernels.cuh"

namespace scaleplan::executor::cuda {
namespace {

__device__ __forceinline__ float ld(float x) { return x; }
__device__ __forceinline__ float ld(bf16 x) { return __bfloat162float(x); }
template <class T> __device__ __forceinline__ T st_as(float x);
template <> __device__ __forceinline__ float st_as<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 st_as<bf16>(float x) { return __float2bfloat16(x); }

constexpr int kThreads = 256;
inline unsigned blocks_for(std::size_t n, int per_block = kThreads) {
  std::size_t b = (n + per_block - 1) / per_block;
  if (b > 65535u * 8u) b = 65535u * 8u;  // grid-stride loops cover the rest
  return static_cast<unsigned>(b == 0 ? 1 : b);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Block-wide reductions (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
__device__ float block_sum(float v) {
  __shared__ float sh[32];
  __shared__ float total;
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  if (w == 0) {
    float t = lane < static_cast<int>(blockDim.x >> 5) ? sh[lane] : 0.f;
    t = warp_sum(t);
    if (lane == 0) total = t;
  }
  __syncthreads();
  return total;
}
__device__ float block_max(float v) {
  __shared__ float sh[32];
  __shared__ float total;
  v = warp_max(v);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  if (w == 0) {
    float t = lane < static_cast<int>(blockDim.x >> 5) ? sh[lane] : -FLT_MAX;
    t = warp_max(t);
    if (lane == 0) total = t;
  }
  __syncthreads();
  return total;
}

#define GRID_STRIDE(i, n) \
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)

template <class T> __global__ void k_fill(T* x, float v, std::size_t n) { GRID_STRIDE(i, n) x[i] = st_as<T>(v); }
template <class T> __global__ void k_scale(T* x, float a, std::size_t n) { GRID_STRIDE(i, n) x[i] = st_as<T>(a * ld(x[i])); }
template <class T> __global__ void k_axpy(float a, const T* x, T* y, std::size_t n) {
  GRID_STRIDE(i, n) y[i] = st_as<T>(ld(y[i]) + a * ld(x[i]));
}
template <class TS, class TD> __global__ void k_convert(const TS* x, TD* y, std::size_t n) {
  GRID_STRIDE(i, n) y[i] = st_as<TD>(ld(x[i]));
}
__device__ __forceinline__ unsigned long long splitmix64(unsigned long long z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
template <class T> __global__ void k_init_normal(T* x, std::size_t n, float stddev, unsigned long long seed) {
  GRID_STRIDE(i, n) {
    const unsigned long long r = splitmix64(seed * 0x100000001b3ull + i);
    const float u1 = (static_cast<float>(r >> 40) + 1.f) / 16777217.f;  // (0, 1]
    const float u2 = static_cast<float>((r >> 16) & 0xffffffull) / 16777216.f;
    x[i] = st_as<T>(stddev * sqrtf(-2.f * logf(u1)) * cospif(2.f * u2));  // Box-Muller
  }
}
// fp64 accumulation throughout (the interface's "sum x_i^2 (fp64 acc)"; the CPU backend sums in
// double): with a float accumulator each thread would add ~n / (4096 * 256) squares (1,300 for a
// 1.3B-parameter gradient) in fp32 before the fp64 atomic.
__device__ __forceinline__ double warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class T> __global__ void k_sum_squares(const T* x, std::size_t n, double* out) {
  __shared__ double sh[32];
  double acc = 0;
  GRID_STRIDE(i, n) {
    const double v = ld(x[i]);
    acc += v * v;
  }
  acc = warp_sum_d(acc);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) sh[w] = acc;
  __syncthreads();
  if (w == 0) {
    double t = lane < static_cast<int>(blockDim.x >> 5) ? sh[lane] : 0.0;
    t = warp_sum_d(t);
    if (lane == 0) atomicAdd(out, t);
  }
}

template <class T> __global__ void k_add_bias(T* y, const T* b, std::size_t rows, int cols) {
  GRID_STRIDE(i, rows * cols) y[i] = st_as<T>(ld(y[i]) + ld(b[i % cols]));
}
// Column reduction: block (32, 32) owns 32 columns and walks all rows with 32 row lanes.
template <class T> __global__ void k_col_sum(const T* dy, T* out, int rows, int cols, bool accumulate) {
  __shared__ float sh[32][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  float acc = 0;
  if (c < cols)
    for (int r = threadIdx.y; r < rows; r += 32) acc += ld(dy[static_cast<std::size_t>(r) * cols + c]);
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float t = 0;
    for (int k = 0; k < 32; ++k) t += sh[k][threadIdx.x];
    out[c] = st_as<T>((accumulate ? ld(out[c]) : 0.f) + t);
  }
}
// dgamma[c] (+)= sum_r dy*xhat, dbeta[c] (+)= sum_r dy.
template <class T>
__global__ void k_ln_param_grad(const T* dy, const T* x, const float* mean, const float* rstd, T* dg, T* db, int rows,
                                int cols, bool accumulate) {
  __shared__ float sg[32][33], sb[32][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  float ag = 0, ab = 0;
  if (c < cols)
    for (int r = threadIdx.y; r < rows; r += 32) {
      const std::size_t i = static_cast<std::size_t>(r) * cols + c;
      const float g = ld(dy[i]);
      ag += g * (ld(x[i]) - mean[r]) * rstd[r];
      ab += g;
    }
  sg[threadIdx.y][threadIdx.x] = ag;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float tg = 0, tb = 0;
    for (int k = 0; k < 32; ++k) {
      tg += sg[k][threadIdx.x];
      tb += sb[k][threadIdx.x];
    }
    dg[c] = st_as<T>((accumulate ? ld(dg[c]) : 0.f) + tg);
    db[c] = st_as<T>((accumulate ? ld(db[c]) : 0.f) + tb);
  }
}
// One block per row: mean, variance (two passes over the row held in registers/cache).
template <class T>
__global__ void k_ln_fwd(const T* x, const T* g, const T* b, T* y, float* mean, float* rstd, int cols, float eps) {
  const std::size_t r = blockIdx.x;
  const T* xr = x + r * cols;
  T* yr = y + r * cols;
  float s = 0;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) s += ld(xr[c]);
  const float mu = block_sum(s) / cols;
  float v = 0;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = ld(xr[c]) - mu;
    v += d * d;
  }
  const float rs = rsqrtf(block_sum(v) / cols + eps);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = st_as<T>((ld(xr[c]) - mu) * rs * ld(g[c]) + ld(b[c]));
  if (threadIdx.x == 0) {
    mean[r] = mu;
    rstd[r] = rs;
  }
}
// dx = rstd * (dyg - mean(dyg) - xhat * mean(dyg * xhat)), dyg = dy * gamma.
template <class T>
__global__ void k_ln_bwd_dx(const T* dy, const T* x, const T* g, const float* mean, const float* rstd, T* dx, int cols,
                            bool accumulate) {
  const std::size_t r = blockIdx.x;
  const T* dyr = dy + r * cols;
  const T* xr = x + r * cols;
  T* dxr = dx + r * cols;
  const float mu = mean[r], rs = rstd[r];
  float s1 = 0, s2 = 0;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float dyg = ld(dyr[c]) * ld(g[c]);
    s1 += dyg;
    s2 += dyg * (ld(xr[c]) - mu) * rs;
  }
  const float m1 = block_sum(s1) / cols;
  const float m2 = block_sum(s2) / cols;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float dyg = ld(dyr[c]) * ld(g[c]);
    const float xh = (ld(xr[c]) - mu) * rs;
    const float v = rs * (dyg - m1 - xh * m2);
    dxr[c] = st_as<T>(accumulate ? ld(dxr[c]) + v : v);
  }
}

// GeLU tanh approximation (Hendrycks & Gimpel 2016, eq. in sec. 2; GPT-2 `gelu`).
__device__ __forceinline__ float gelu_f(float x) {
  const float k = 0.7978845608f;  // sqrt(2/pi)
  return 0.5f * x * (1.f + tanhf(k * (x + 0.044715f * x * x * x)));
}
__device__ __forceinline__ float gelu_grad(float x) {
  const float k = 0.7978845608f;
  const float u = k * (x + 0.044715f * x * x * x);
  const float t = tanhf(u);
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * k * (1.f + 3.f * 0.044715f * x * x);
}
template <class T> __global__ void k_gelu_fwd(const T* x, T* y, std::size_t n) { GRID_STRIDE(i, n) y[i] = st_as<T>(gelu_f(ld(x[i]))); }
template <class T> __global__ void k_gelu_bwd(const T* x, const T* dy, T* dx, std::size_t n) {
  GRID_STRIDE(i, n) dx[i] = st_as<T>(ld(dy[i]) * gelu_grad(ld(x[i])));
}
// SwiGLU (Shazeer 2020): y = silu(gate) * up, silu(a) = a * sigmoid(a).
template <class T> __global__ void k_swiglu_fwd(const T* x, T* y, std::size_t rows, int f) {
  GRID_STRIDE(i, rows * f) {
    const std::size_t r = i / f, c = i % f;
    const float a = ld(x[r * 2 * f + c]), u = ld(x[r * 2 * f + f + c]);
    y[i] = st_as<T>(a / (1.f + expf(-a)) * u);
  }
}
template <class T> __global__ void k_swiglu_bwd(const T* x, const T* dy, T* dx, std::size_t rows, int f) {
  GRID_STRIDE(i, rows * f) {
    const std::size_t r = i / f, c = i % f;
    const float a = ld(x[r * 2 * f + c]), u = ld(x[r * 2 * f + f + c]), g = ld(dy[i]);
    const float sg = 1.f / (1.f + expf(-a));
    const float silu = a * sg;
    dx[r * 2 * f + c] = st_as<T>(g * u * (sg + silu * (1.f - sg)));
    dx[r * 2 * f + f + c] = st_as<T>(g * silu);
  }
}

template <class T> __global__ void k_split_heads(const T* in, int in_ld, T* out, int b, int s, int h, int d) {
  const std::size_t n = static_cast<std::size_t>(b) * h * s * d;
  GRID_STRIDE(i, n) {
    const std::size_t di = i % d, si = (i / d) % s, hi = (i / (static_cast<std::size_t>(d) * s)) % h,
                      bi = i / (static_cast<std::size_t>(d) * s * h);
    out[i] = in[(bi * s + si) * in_ld + hi * d + di];
  }
}
template <class T> __global__ void k_merge_heads(const T* in, T* out, int out_ld, int b, int s, int h, int d) {
  const std::size_t n = static_cast<std::size_t>(b) * h * s * d;
  GRID_STRIDE(i, n) {
    const std::size_t di = i % d, si = (i / d) % s, hi = (i / (static_cast<std::size_t>(d) * s)) % h,
                      bi = i / (static_cast<std::size_t>(d) * s * h);
    out[(bi * s + si) * out_ld + hi * d + di] = in[i];
  }
}
// One block per row (batch * s rows); row i of a matrix keeps columns 0..i.
template <class T> __global__ void k_softmax_causal_fwd(const T* x, T* p, int s, float scale) {
  const std::size_t row = blockIdx.x;
  const int i = static_cast<int>(row % s);
  const T* xr = x + row * s;
  T* pr = p + row * s;
  float mx = -FLT_MAX;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) mx = fmaxf(mx, scale * ld(xr[j]));
  mx = block_max(mx);
  float sum = 0;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) sum += expf(scale * ld(xr[j]) - mx);
  const float inv = 1.f / block_sum(sum);
  for (int j = threadIdx.x; j < s; j += blockDim.x) pr[j] = st_as<T>(j <= i ? expf(scale * ld(xr[j]) - mx) * inv : 0.f);
}
template <class T> __global__ void k_softmax_causal_bwd(const T* p, const T* dp, T* dx, int s, float scale) {
  const std::size_t row = blockIdx.x;
  const int i = static_cast<int>(row % s);
  const T* pr = p + row * s;
  const T* dpr = dp + row * s;
  T* dxr = dx + row * s;
  float dot = 0;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) dot += ld(pr[j]) * ld(dpr[j]);
  dot = block_sum(dot);
  for (int j = threadIdx.x; j < s; j += blockDim.x)
    dxr[j] = st_as<T>(j <= i ? scale * ld(pr[j]) * (ld(dpr[j]) - dot) : 0.f);
}

template <class T>
__global__ void k_embedding_fwd(const std::int32_t* ids, const T* table, T* out, int n, int dim, int vb, int ve) {
  GRID_STRIDE(i, static_cast<std::size_t>(n) * dim) {
    const std::size_t t = i / dim, c = i % dim;
    const int id = ids[t];
    out[i] = (id >= vb && id < ve) ? table[static_cast<std::size_t>(id - vb) * dim + c] : st_as<T>(0.f);
  }
}
template <class T>
__global__ void k_embedding_bwd(const std::int32_t* ids, const T* dout, T* dtable, int n, int dim, int vb, int ve) {
  GRID_STRIDE(i, static_cast<std::size_t>(n) * dim) {
    const std::size_t t = i / dim, c = i % dim;
    const int id = ids[t];
    if (id >= vb && id < ve) atomicAdd(dtable + static_cast<std::size_t>(id - vb) * dim + c, dout[i]);
  }
}
template <class T> __global__ void k_add_positions(T* out, const T* pos, int b, int s, int dim) {
  GRID_STRIDE(i, static_cast<std::size_t>(b) * s * dim) {
    const std::size_t c = i % dim, si = (i / dim) % s;
    out[i] = st_as<T>(ld(out[i]) + ld(pos[si * dim + c]));
  }
}
template <class T> __global__ void k_positions_bwd(const T* dout, T* dpos, int b, int s, int dim) {
  GRID_STRIDE(i, static_cast<std::size_t>(s) * dim) {
    float acc = ld(dpos[i]);
    for (int bi = 0; bi < b; ++bi) acc += ld(dout[static_cast<std::size_t>(bi) * s * dim + i]);
    dpos[i] = st_as<T>(acc);
  }
}

__global__ void k_ce_row_max(const float* logits, float* row_max, int cols) {
  const float* lr = logits + static_cast<std::size_t>(blockIdx.x) * cols;
  float m = -FLT_MAX;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, lr[c]);
  m = block_max(m);
  if (threadIdx.x == 0) row_max[blockIdx.x] = m;
}
__global__ void k_ce_sum_exp(const float* logits, const float* row_max, float* sum_exp, int cols) {
  const float* lr = logits + static_cast<std::size_t>(blockIdx.x) * cols;
  const float m = row_max[blockIdx.x];
  float s = 0;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) s += expf(lr[c] - m);
  s = block_sum(s);
  if (threadIdx.x == 0) sum_exp[blockIdx.x] = s;
}
__global__ void k_ce_target(const float* logits, const std::int32_t* targets, float* tgt, int rows, int cols, int vb) {
  GRID_STRIDE(r, static_cast<std::size_t>(rows)) {
    const int c = targets[r] - vb;
    tgt[r] = (c >= 0 && c < cols) ? logits[r * cols + c] : 0.f;
  }
}
__global__ void k_ce_bwd(const float* logits, const float* row_max, const float* sum_exp, const std::int32_t* targets,
                         float* dl, int rows, int cols, int vb, float scale) {
  GRID_STRIDE(i, static_cast<std::size_t>(rows) * cols) {
    const std::size_t r = i / cols;
    const int c = static_cast<int>(i % cols);
    const float p = expf(logits[i] - row_max[r]) / sum_exp[r];
    dl[i] = scale * (p - (c + vb == targets[r] ? 1.f : 0.f));
  }
}
template <class T>
__global__ void k_ce_fused(T* logits, const std::int32_t* targets, double* loss_sum, int cols, int ldl, float scale) {
  const std::size_t r = blockIdx.x;
  T* lr = logits + r * ldl;
  float m = -FLT_MAX;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, ld(lr[c]));
  m = block_max(m);
  float s = 0;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) s += expf(ld(lr[c]) - m);
  s = block_sum(s);
  const int t = targets[r];
  // Every thread reads the target logit before any thread overwrites the row.
  const float lt = ld(lr[t]);
  __syncthreads();
  if (threadIdx.x == 0) atomicAdd(loss_sum, static_cast<double>(logf(s) + m - lt));
  const float inv = 1.f / s;
  for (int c = threadIdx.x; c < cols; c += blockDim.x)
    lr[c] = st_as<T>(scale * (expf(ld(lr[c]) - m) * inv - (c == t ? 1.f : 0.f)));
}

template <class TG, class TW>
__global__ void k_adamw(float* p, const TG* g, float* m, float* v, TW* w, std::size_t n, float lr, float b1, float b2,
                        float eps, float wd, float bc1, float bc2, float gs) {
  GRID_STRIDE(i, n) {
    const float gi = gs * ld(g[i]);
    const float mi = b1 * m[i] + (1.f - b1) * gi;
    const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float pi = p[i] - lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p[i]);
    p[i] = pi;
    if (w) w[i] = st_as<TW>(pi);
  }
}
__global__ void k_lamb_dir(const float* p, const float* g, float* m, float* v, float* u, std::size_t n, float b1,
                           float b2, float eps, float wd, float bc1, float bc2) {
  GRID_STRIDE(i, n) {
    const float mi = b1 * m[i] + (1.f - b1) * g[i];
    const float vi = b2 * v[i] + (1.f - b2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    u[i] = (mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p[i];
  }
}
__global__ void k_lars(float* p, const float* g, float* mom, std::size_t n, float llr, float mu, float wd) {
  GRID_STRIDE(i, n) {
    const float mi = mu * mom[i] + llr * (g[i] + wd * p[i]);
    mom[i] = mi;
    p[i] -= mi;
  }
}

// Threads per row for row-wise kernels: enough to cover the row in a few strides.
inline int row_threads(int cols) { return cols >= 4096 ? 1024 : cols >= 1024 ? 512 : cols >= 256 ? 256 : 128; }

}  // namespace

template <class T> void fill(T* x, float v, std::size_t n, cudaStream_t st) {
  if (!n) return;
  k_fill<<<blocks_for(n), kThreads, 0, st>>>(x, v, n);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void scale(T* x, float a, std::size_t n, cudaStream_t st) {
  if (!n) return;
  k_scale<<<blocks_for(n), kThreads, 0, st>>>(x, a, n);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void axpy(float a, const T* x, T* y, std::size_t n, cudaStream_t st) {
  if (!n) return;
  k_axpy<<<blocks_for(n), kThreads, 0, st>>>(a, x, y, n);
  SP_CUDA_LAUNCH_CHECK();
}
template <class TS, class TD> void convert(const TS* x, TD* y, std::size_t n, cudaStream_t st) {
  if (!n) return;
  k_convert<<<blocks_for(n), kThreads, 0, st>>>(x, y, n);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void init_normal(T* x, std::size_t n, float stddev, std::uint64_t seed, cudaStream_t st) {
  if (!n) return;
  k_init_normal<<<blocks_for(n), kThreads, 0, st>>>(x, n, stddev, seed);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void sum_squares(const T* x, std::size_t n, double* out, cudaStream_t st) {
  SP_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(double), st));
  if (!n) return;
  k_sum_squares<<<std::min(blocks_for(n), 4096u), kThreads, 0, st>>>(x, n, out);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void add_bias(T* y, const T* bias, int rows, int cols, cudaStream_t st) {
  const std::size_t n = static_cast<std::size_t>(rows) * cols;
  if (!n) return;
  k_add_bias<<<blocks_for(n), kThreads, 0, st>>>(y, bias, static_cast<std::size_t>(rows), cols);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void bias_grad(const T* dy, T* dbias, int rows, int cols, bool accumulate, cudaStream_t st) {
  if (cols <= 0) return;
  k_col_sum<<<(cols + 31) / 32, dim3(32, 32), 0, st>>>(dy, dbias, rows, cols, accumulate);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T>
void layernorm_fwd(const T* x, const T* gamma, const T* beta, T* y, float* mean, float* rstd, int rows, int cols,
                   float eps, cudaStream_t st) {
  if (rows <= 0) return;
  k_ln_fwd<<<rows, row_threads(cols), 0, st>>>(x, gamma, beta, y, mean, rstd, cols, eps);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T>
void layernorm_bwd(const T* dy, const T* x, const T* gamma, const float* mean, const float* rstd, T* dx, T* dgamma,
                   T* dbeta, int rows, int cols, bool accumulate_dx, bool accumulate_params, cudaStream_t st) {
  if (rows <= 0) return;
  // Parameter gradients first: dx may alias nothing it reads, but keep the order independent of aliasing.
  k_ln_param_grad<<<(cols + 31) / 32, dim3(32, 32), 0, st>>>(dy, x, mean, rstd, dgamma, dbeta, rows, cols,
                                                             accumulate_params);
  SP_CUDA_LAUNCH_CHECK();
  k_ln_bwd_dx<<<rows, row_threads(cols), 0, st>>>(dy, x, gamma, mean, rstd, dx, cols, accumulate_dx);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void gelu_fwd(const T* x, T* y, std::size_t n, cudaStream_t st) {
  if (!n) return;
  k_gelu_fwd<<<blocks_for(n), kThreads, 0, st>>>(x, y, n);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void gelu_bwd(const T* x, const T* dy, T* dx, std::size_t n, cudaStream_t st) {
  if (!n) return;
  k_gelu_bwd<<<blocks_for(n), kThreads, 0, st>>>(x, dy, dx, n);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void swiglu_fwd(const T* x, T* y, int rows, int f, cudaStream_t st) {
  const std::size_t n = static_cast<std::size_t>(rows) * f;
  if (!n) return;
  k_swiglu_fwd<<<blocks_for(n), kThreads, 0, st>>>(x, y, static_cast<std::size_t>(rows), f);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void swiglu_bwd(const T* x, const T* dy, T* dx, int rows, int f, cudaStream_t st) {
  const std::size_t n = static_cast<std::size_t>(rows) * f;
  if (!n) return;
  k_swiglu_bwd<<<blocks_for(n), kThreads, 0, st>>>(x, dy, dx, static_cast<std::size_t>(rows), f);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void split_heads(const T* in, int in_ld, T* out, int b, int s, int h, int d, cudaStream_t st) {
  const std::size_t n = static_cast<std::size_t>(b) * h * s * d;
  if (!n) return;
  k_split_heads<<<blocks_for(n), kThreads, 0, st>>>(in, in_ld, out, b, s, h, d);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void merge_heads(const T* in, T* out, int out_ld, int b, int s, int h, int d, cudaStream_t st) {
  const std::size_t n = static_cast<std::size_t>(b) * h * s * d;
  if (!n) return;
  k_merge_heads<<<blocks_for(n), kThreads, 0, st>>>(in, out, out_ld, b, s, h, d);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void softmax_causal_fwd(const T* x, T* p, int batch, int s, float scale, cudaStream_t st) {
  const std::size_t rows = static_cast<std::size_t>(batch) * s;
  if (!rows) return;
  k_softmax_causal_fwd<<<static_cast<unsigned>(rows), row_threads(s), 0, st>>>(x, p, s, scale);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T>
void softmax_causal_bwd(const T* p, const T* dp, T* dx, int batch, int s, float scale, cudaStream_t st) {
  const std::size_t rows = static_cast<std::size_t>(batch) * s;
  if (!rows) return;
  k_softmax_causal_bwd<<<static_cast<unsigned>(rows), row_threads(s), 0, st>>>(p, dp, dx, s, scale);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T>
void embedding_fwd(const std::int32_t* ids, const T* table, T* out, int n, int dim, int vb, int ve, cudaStream_t st) {
  if (n <= 0) return;
  k_embedding_fwd<<<blocks_for(static_cast<std::size_t>(n) * dim), kThreads, 0, st>>>(ids, table, out, n, dim, vb, ve);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T>
void embedding_bwd(const std::int32_t* ids, const T* dout, T* dtable, int n, int dim, int vb, int ve, cudaStream_t st) {
  if (n <= 0) return;
  k_embedding_bwd<<<blocks_for(static_cast<std::size_t>(n) * dim), kThreads, 0, st>>>(ids, dout, dtable, n, dim, vb, ve);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void add_positions(T* out, const T* pos, int b, int s, int dim, cudaStream_t st) {
  const std::size_t n = static_cast<std::size_t>(b) * s * dim;
  if (!n) return;
  k_add_positions<<<blocks_for(n), kThreads, 0, st>>>(out, pos, b, s, dim);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T> void positions_bwd(const T* dout, T* dpos, int b, int s, int dim, cudaStream_t st) {
  const std::size_t n = static_cast<std::size_t>(s) * dim;
  if (!n) return;
  k_positions_bwd<<<blocks_for(n), kThreads, 0, st>>>(dout, dpos, b, s, dim);
  SP_CUDA_LAUNCH_CHECK();
}
void ce_row_max(const float* logits, float* row_max, int rows, int cols, cudaStream_t st) {
  if (rows <= 0) return;
  k_ce_row_max<<<rows, row_threads(cols), 0, st>>>(logits, row_max, cols);
  SP_CUDA_LAUNCH_CHECK();
}
void ce_sum_exp(const float* logits, const float* row_max, float* sum_exp, int rows, int cols, cudaStream_t st) {
  if (rows <= 0) return;
  k_ce_sum_exp<<<rows, row_threads(cols), 0, st>>>(logits, row_max, sum_exp, cols);
  SP_CUDA_LAUNCH_CHECK();
}
void ce_target_logit(const float* logits, const std::int32_t* targets, float* tgt, int rows, int cols, int vb,
                     cudaStream_t st) {
  if (rows <= 0) return;
  k_ce_target<<<blocks_for(rows), kThreads, 0, st>>>(logits, targets, tgt, rows, cols, vb);
  SP_CUDA_LAUNCH_CHECK();
}
void ce_bwd(const float* logits, const float* row_max, const float* sum_exp, const std::int32_t* targets,
            float* dlogits, int rows, int cols, int vb, float scale, cudaStream_t st) {
  const std::size_t n = static_cast<std::size_t>(rows) * cols;
  if (!n) return;
  k_ce_bwd<<<blocks_for(n), kThreads, 0, st>>>(logits, row_max, sum_exp, targets, dlogits, rows, cols, vb, scale);
  SP_CUDA_LAUNCH_CHECK();
}
template <class T>
void cross_entropy_fused(T* logits, const std::int32_t* targets, double* loss_sum, int rows, int cols, int ldl,
                         float scale, cudaStream_t st) {
  if (rows <= 0) return;
  k_ce_fused<<<rows, 1024, 0, st>>>(logits, targets, loss_sum, cols, ldl, scale);
  SP_CUDA_LAUNCH_CHECK();
}
template <class TG, class TW>
void adamw_update(float* p, const TG* g, float* m, float* v, TW* working, std::size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int step, float grad_scale, cudaStream_t st) {
  if (!n) return;
  const float bc1 = 1.f - std::pow(beta1, static_cast<float>(step));
  const float bc2 = 1.f - std::pow(beta2, static_cast<float>(step));
  k_adamw<<<blocks_for(n), kThreads, 0, st>>>(p, g, m, v, working, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2,
                                              grad_scale);
  SP_CUDA_LAUNCH_CHECK();
}
void lamb_direction(const float* p, const float* g, float* m, float* v, float* u, std::size_t n, float beta1,
                    float beta2, float eps, float weight_decay, int step, cudaStream_t st) {
  if (!n) return;
  const float bc1 = 1.f - std::pow(beta1, static_cast<float>(step));
  const float bc2 = 1.f - std::pow(beta2, static_cast<float>(step));
  k_lamb_dir<<<blocks_for(n), kThreads, 0, st>>>(p, g, m, v, u, n, beta1, beta2, eps, weight_decay, bc1, bc2);
  SP_CUDA_LAUNCH_CHECK();
}
void lars_update(float* p, const float* g, float* mom, std::size_t n, float local_lr, float momentum,
                 float weight_decay, cudaStream_t st) {
  if (!n) return;
  k_lars<<<blocks_for(n), kThreads, 0, st>>>(p, g, mom, n, local_lr, momentum, weight_decay);
  SP_CUDA_LAUNCH_CHECK();
}

// ---- explicit instantiations (float and bf16 storage) ------------------------------------------------
#define SP_INST(T)                                                                                              \
  template void fill<T>(T*, float, std::size_t, cudaStream_t);                                                  \
  template void scale<T>(T*, float, std::size_t, cudaStream_t);                                                 \
  template void axpy<T>(float, const T*, T*, std::size_t, cudaStream_t);                                        \
  template void init_normal<T>(T*, std::size_t, float, std::uint64_t, cudaStream_t);                            \
  template void sum_squares<T>(const T*, std::size_t, double*, cudaStream_t);                                   \
  template void add_bias<T>(T*, const T*, int, int, cudaStream_t);                                              \
  template void bias_grad<T>(const T*, T*, int, int, bool, cudaStream_t);                                       \
  template void layernorm_fwd<T>(const T*, const T*, const T*, T*, float*, float*, int, int, float, cudaStream_t); \
  template void layernorm_bwd<T>(const T*, const T*, const T*, const float*, const float*, T*, T*, T*, int, int,  \
                                 bool, bool, cudaStream_t);                                                     \
  template void gelu_fwd<T>(const T*, T*, std::size_t, cudaStream_t);                                           \
  template void gelu_bwd<T>(const T*, const T*, T*, std::size_t, cudaStream_t);                                 \
  template void swiglu_fwd<T>(const T*, T*, int, int, cudaStream_t);                                            \
  template void swiglu_bwd<T>(const T*, const T*, T*, int, int, cudaStream_t);                                  \
  template void split_heads<T>(const T*, int, T*, int, int, int, int, cudaStream_t);                            \
  template void merge_heads<T>(const T*, T*, int, int, int, int, int, cudaStream_t);                            \
  template void softmax_causal_fwd<T>(const T*, T*, int, int, float, cudaStream_t);                             \
  template void softmax_causal_bwd<T>(const T*, const T*, T*, int, int, float, cudaStream_t);                   \
  template void embedding_fwd<T>(const std::int32_t*, const T*, T*, int, int, int, int, cudaStream_t);          \
  template void embedding_bwd<T>(const std::int32_t*, const T*, T*, int, int, int, int, cudaStream_t);          \
  template void add_positions<T>(T*, const T*, int, int, int, cudaStream_t);                                    \
  template void positions_bwd<T>(const T*, T*, int, int, int, cudaStream_t);                                    \
  template void cross_entropy_fused<T>(T*, const std::int32_t*, double*, int, int, int, float, cudaStream_t);
SP_INST(float)
SP_INST(bf16)
#undef SP_INST
template void convert<float, bf16>(const float*, bf16*, std::size_t, cudaStream_t);
template void convert<bf16, float>(const bf16*, float*, std::size_t, cudaStream_t);
template void convert<float, float>(const float*, float*, std::size_t, cudaStream_t);
template void adamw_update<float, float>(float*, const float*, float*, float*, float*, std::size_t, float, float, float,
                                         float, float, int, float, cudaStream_t);
template void adamw_update<bf16, bf16>(float*, const bf16*, float*, float*, bf16*, std::size_t, float, float, float,
                                       float, float, int, float, cudaStream_t);
template void adamw_update<float, bf16>(float*, const float*, float*, float*, bf16*, std::size_t, float, float, float,
                                        float, float, int, float, cudaStream_t);

}  // namespace scaleplan::executor::cuda
