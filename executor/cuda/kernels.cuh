#pragma once
// CUDA kernels of the reference executor (issue 9). Every launcher is asynchronous on `st`.
// T is float or __nv_bfloat16 (storage type); arithmetic is fp32 inside every kernel (mixed
// precision as Micikevicius et al. 2018, "Mixed Precision Training": 16-bit storage, fp32 math).
// Semantics match executor/backend.hpp (the CPU backend is the reference); functions with an
// `accumulate` flag add into their output when it is true, overwrite otherwise.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace scaleplan::executor::cuda {

using bf16 = __nv_bfloat16;

// ---- elementwise ------------------------------------------------------------------------------
template <class T> void fill(T* x, float v, std::size_t n, cudaStream_t st);
template <class T> void scale(T* x, float a, std::size_t n, cudaStream_t st);           // x *= a
template <class T> void axpy(float a, const T* x, T* y, std::size_t n, cudaStream_t st);  // y += a x
template <class TS, class TD> void convert(const TS* x, TD* y, std::size_t n, cudaStream_t st);
// Deterministic N(0, stddev^2) from a counter hash (splitmix64 + Box-Muller): same values on every run.
template <class T> void init_normal(T* x, std::size_t n, float stddev, std::uint64_t seed, cudaStream_t st);
// sum x_i^2 accumulated in fp64 into *out (device scalar, overwritten).
template <class T> void sum_squares(const T* x, std::size_t n, double* out, cudaStream_t st);

// ---- bias ---------------------------------------------------------------------------------------
template <class T> void add_bias(T* y, const T* bias, int rows, int cols, cudaStream_t st);  // y[r,c] += b[c]
// dbias[c] (+)= sum_r dy[r,c]; deterministic column reduction (no atomics).
template <class T> void bias_grad(const T* dy, T* dbias, int rows, int cols, bool accumulate, cudaStream_t st);

// ---- LayerNorm (Ba et al. 2016) -------------------------------------------------------------------
template <class T>
void layernorm_fwd(const T* x, const T* gamma, const T* beta, T* y, float* mean, float* rstd, int rows, int cols,
                   float eps, cudaStream_t st);
// dx (+)= LayerNorm'(dy) [accumulate_dx]; dgamma (+)= sum_r dy*xhat, dbeta (+)= sum_r dy [accumulate_params].
template <class T>
void layernorm_bwd(const T* dy, const T* x, const T* gamma, const float* mean, const float* rstd, T* dx, T* dgamma,
                   T* dbeta, int rows, int cols, bool accumulate_dx, bool accumulate_params, cudaStream_t st);

// ---- activations ------------------------------------------------------------------------------------
template <class T> void gelu_fwd(const T* x, T* y, std::size_t n, cudaStream_t st);
template <class T> void gelu_bwd(const T* x, const T* dy, T* dx, std::size_t n, cudaStream_t st);
template <class T> void swiglu_fwd(const T* x, T* y, int rows, int f, cudaStream_t st);
template <class T> void swiglu_bwd(const T* x, const T* dy, T* dx, int rows, int f, cudaStream_t st);

// ---- attention pieces -----------------------------------------------------------------------------
template <class T> void split_heads(const T* in, int in_ld, T* out, int b, int s, int h, int d, cudaStream_t st);
template <class T> void merge_heads(const T* in, T* out, int out_ld, int b, int s, int h, int d, cudaStream_t st);
// Causal softmax over `batch` contiguous s x s matrices. May run in place.
template <class T> void softmax_causal_fwd(const T* x, T* p, int batch, int s, float scale, cudaStream_t st);
// dx = scale * p * (dp - sum_j p dp), 0 above the diagonal. May run in place (dx == dp).
template <class T>
void softmax_causal_bwd(const T* p, const T* dp, T* dx, int batch, int s, float scale, cudaStream_t st);

// ---- embeddings -------------------------------------------------------------------------------------
template <class T>
void embedding_fwd(const std::int32_t* ids, const T* table, T* out, int n, int dim, int vocab_begin, int vocab_end,
                   cudaStream_t st);
template <class T>
void embedding_bwd(const std::int32_t* ids, const T* dout, T* dtable, int n, int dim, int vocab_begin,
                   int vocab_end, cudaStream_t st);  // atomic +=
template <class T> void add_positions(T* out, const T* pos, int b, int s, int dim, cudaStream_t st);
template <class T> void positions_bwd(const T* dout, T* dpos, int b, int s, int dim, cudaStream_t st);  // +=

// ---- cross-entropy ----------------------------------------------------------------------------------
void ce_row_max(const float* logits, float* row_max, int rows, int cols, cudaStream_t st);
void ce_sum_exp(const float* logits, const float* row_max, float* sum_exp, int rows, int cols, cudaStream_t st);
void ce_target_logit(const float* logits, const std::int32_t* targets, float* tgt, int rows, int cols,
                     int vocab_begin, cudaStream_t st);
void ce_bwd(const float* logits, const float* row_max, const float* sum_exp, const std::int32_t* targets,
            float* dlogits, int rows, int cols, int vocab_begin, float scale, cudaStream_t st);
// Fused (one block per row): *loss_sum += sum_r -log softmax(logits_r)[target_r] (fp64), and
// logits are overwritten in place by scale * (softmax - onehot). Row stride ld >= cols.
template <class T>
void cross_entropy_fused(T* logits, const std::int32_t* targets, double* loss_sum, int rows, int cols, int ld,
                         float scale, cudaStream_t st);

// ---- optimizers -------------------------------------------------------------------------------------
// AdamW (Loshchilov & Hutter 2019, Alg. 2) on fp32 master weights p, gradient g*grad_scale;
// when `working` is non-null it also receives the updated weight in its storage type.
template <class TG, class TW>
void adamw_update(float* p, const TG* g, float* m, float* v, TW* working, std::size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int step, float grad_scale, cudaStream_t st);
void lamb_direction(const float* p, const float* g, float* m, float* v, float* u, std::size_t n, float beta1,
                    float beta2, float eps, float weight_decay, int step, cudaStream_t st);
void lars_update(float* p, const float* g, float* mom, std::size_t n, float local_lr, float momentum,
                 float weight_decay, cudaStream_t st);

}  // namespace scaleplan::executor::cuda
