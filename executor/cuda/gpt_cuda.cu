// GPT decoder on one GPU (see gpt_cuda.hpp). Forward and backward written out GEMM by GEMM so the
// FLOPs match the estimator's op list (Korthikanti et al. 2022 sec. 4 / Narayanan et al. SC21 eq. 3):
// QKV, scores, context, output projection, two (or, SwiGLU, the fused gate+up and down) MLP GEMMs,
// and the tied LM head.
#include "executor/cuda/gpt_cuda.hpp"

#include <cmath>
#include <type_traits>

#include "executor/cuda/cuda_check.hpp"

namespace scaleplan::executor::cuda {

std::size_t gpt_num_params(const GptShape& sh) {
  const std::size_t h = sh.hidden, f = sh.ffn, f1 = sh.swiglu ? 2 * f : f;
  const std::size_t layer = 2 * h + h * 3 * h + 3 * h + h * h + h + 2 * h + h * f1 + f1 + f * h + h;
  return sh.layers * layer + static_cast<std::size_t>(sh.vocab) * h + static_cast<std::size_t>(sh.seq) * h + 2 * h;
}

namespace {
// Logit rows padded to a multiple of 64 elements so 16-bit GEMMs see aligned leading dimensions
// (cuBLAS tensor-core kernels want 16-byte aligned rows; Megatron pads the vocabulary for the same reason).
int padded(int v) { return (v + 63) / 64 * 64; }
}  // namespace

template <class T>
GptCuda<T>::GptCuda(const GptShape& sh, const GptOptions& o, DeviceMemory& mem, cudaStream_t st)
    : sh_(sh), opt_(o), mem_(mem), st_(st) {
  constexpr bool is16 = std::is_same_v<T, bf16>;
  // fp16 is refused for both storage types: with T = float it would pass the test below and cuBLAS
  // would read the fp32 tensors as CUDA_R_16F (garbage, no error).
  if (is16 != (o.mode == GemmMode::bf16) || o.mode == GemmMode::fp16)
    throw BackendError(std::string("GptCuda: GEMM mode ") + gemm_mode_name(o.mode) + " does not match the storage type");
  if (sh.hidden % sh.heads) throw BackendError("GptCuda: hidden must divide by heads");
  blas_ = std::make_unique<Blas>(st_);
  f1_ = sh.swiglu ? 2 * sh.ffn : sh.ffn;
  const std::size_t h = sh.hidden;
  // Parameter layout.
  std::size_t off = 0;
  auto take = [&](std::size_t n) {
    const std::size_t r = off;
    off += n;
    return r;
  };
  lo_.resize(sh.layers);
  for (auto& L : lo_) {
    L.ln1_g = take(h);
    L.ln1_b = take(h);
    L.w_qkv = take(h * 3 * h);
    L.b_qkv = take(3 * h);
    L.w_o = take(h * h);
    L.b_o = take(h);
    L.ln2_g = take(h);
    L.ln2_b = take(h);
    L.w1 = take(h * f1_);
    L.b1 = take(f1_);
    L.w2 = take(static_cast<std::size_t>(sh.ffn) * h);
    L.b2 = take(h);
  }
  wte_ = take(static_cast<std::size_t>(sh.vocab) * h);
  wpe_ = take(static_cast<std::size_t>(sh.seq) * h);
  lnf_g_ = take(h);
  lnf_b_ = take(h);
  n_params_ = off;

  params_ = static_cast<T*>(alloc(n_params_ * sizeof(T), MemCategory::params));
  grads_ = static_cast<T*>(alloc(n_params_ * sizeof(T), MemCategory::grads, true));
  // Initialisation: N(0, init_std^2) weights, unit LayerNorm gains, zero biases and LayerNorm shifts.
  init_normal(params_, n_params_, o.init_std, o.seed, st_);
  for (const auto& L : lo_) {
    fill(params_ + L.ln1_g, 1.f, h, st_);
    fill(params_ + L.ln1_b, 0.f, h, st_);
    fill(params_ + L.b_qkv, 0.f, 3 * h, st_);
    fill(params_ + L.b_o, 0.f, h, st_);
    fill(params_ + L.ln2_g, 1.f, h, st_);
    fill(params_ + L.ln2_b, 0.f, h, st_);
    fill(params_ + L.b1, 0.f, f1_, st_);
    fill(params_ + L.b2, 0.f, h, st_);
  }
  fill(params_ + lnf_g_, 1.f, h, st_);
  fill(params_ + lnf_b_, 0.f, h, st_);

  if (!o.optimizer) {
    // single-layer timing: no optimizer state
  } else if (o.offload_optimizer) {
    offload_ = std::make_unique<OffloadedAdam>(mem_, params_, n_params_, o.offload_chunk, st_);
  } else {
    if (is16) {
      master_ = static_cast<float*>(alloc(n_params_ * sizeof(float), MemCategory::optimizer));
      convert<T, float>(params_, master_, n_params_, st_);
    }
    m_ = static_cast<float*>(alloc(n_params_ * sizeof(float), MemCategory::optimizer, true));
    v_ = static_cast<float*>(alloc(n_params_ * sizeof(float), MemCategory::optimizer, true));
  }

  // Activations kept for backward.
  const std::size_t tok = static_cast<std::size_t>(tokens());
  const std::size_t scores = static_cast<std::size_t>(o.mbs) * sh.heads * sh.seq * sh.seq;
  auto act = [&](std::size_t n) { return static_cast<T*>(alloc(n * sizeof(T), MemCategory::activations)); };
  auto actf = [&](std::size_t n) { return static_cast<float*>(alloc(n * sizeof(float), MemCategory::activations)); };
  acts_.resize(sh.layers);
  for (auto& a : acts_) {
    a.x = act(tok * h);
    a.a1 = act(tok * h);
    a.qkv = act(tok * 3 * h);
    a.p = act(scores);
    a.ctx = act(tok * h);
    a.x2 = act(tok * h);
    a.a2 = act(tok * h);
    a.f1 = act(tok * f1_);
    a.g = act(tok * sh.ffn);
    a.mean1 = actf(tok);
    a.rstd1 = actf(tok);
    a.mean2 = actf(tok);
    a.rstd2 = actf(tok);
  }
  resid_out_ = act(tok * h);
  af_ = act(tok * h);
  meanf_ = actf(tok);
  rstdf_ = actf(tok);
  logits_ = act(tok * padded(sh.vocab));
  // Backward scratch (buffers).
  auto buf = [&](std::size_t n) { return static_cast<T*>(alloc(n * sizeof(T), MemCategory::buffers)); };
  dres_ = buf(tok * h);
  dtmp_ = buf(tok * h);
  dctx_ = buf(tok * h);
  dqkv_ = buf(tok * 3 * h);
  dbig_ = buf(tok * (f1_ + sh.ffn));  // dg [tok, ffn] | df1 [tok, f1]
  dp_ = buf(scores);
  ftmp_ = buf(tok * h);
  loss_ = static_cast<double*>(alloc(sizeof(double), MemCategory::buffers, true));
  SP_CUDA_CHECK(cudaStreamSynchronize(st_));
}

template <class T>
GptCuda<T>::~GptCuda() {
  cudaStreamSynchronize(st_);
  offload_.reset();
  auto rel = [&](void* p) {
    try {
      mem_.deallocate(p);
    } catch (...) {
    }
  };
  for (auto& a : acts_)
    for (void* p : {(void*)a.x, (void*)a.a1, (void*)a.qkv, (void*)a.p, (void*)a.ctx, (void*)a.x2, (void*)a.a2,
                    (void*)a.f1, (void*)a.g, (void*)a.mean1, (void*)a.rstd1, (void*)a.mean2, (void*)a.rstd2})
      rel(p);
  for (void* p : {(void*)params_, (void*)grads_, (void*)master_, (void*)m_, (void*)v_, (void*)resid_out_, (void*)af_,
                  (void*)meanf_, (void*)rstdf_, (void*)logits_, (void*)dres_, (void*)dtmp_, (void*)dctx_,
                  (void*)dqkv_, (void*)dbig_, (void*)dp_, (void*)ftmp_, (void*)loss_})
    rel(p);
}

template <class T>
void GptCuda<T>::attention_forward(const LayerActs& a) {
  const int s = sh_.seq, H = sh_.heads, h = sh_.hidden, d = h / H;
  const long long ss = static_cast<long long>(s) * s;
  for (int bi = 0; bi < opt_.mbs; ++bi) {
    const T* q = a.qkv + static_cast<std::size_t>(bi) * s * 3 * h;
    T* pb = a.p + static_cast<std::size_t>(bi) * H * ss;
    // scores_h = Q_h K_h^T (s x s per head; heads are column blocks of width d in the QKV rows)
    gemm_strided_batched(*blas_, false, true, s, s, d, 1.f, q, 3 * h, d, q + h, 3 * h, d, 0.f, pb, s, ss, H, opt_.mode);
  }
  softmax_causal_fwd(a.p, a.p, opt_.mbs * H, s, 1.f / std::sqrt(static_cast<float>(d)), st_);
  for (int bi = 0; bi < opt_.mbs; ++bi) {
    const T* v = a.qkv + static_cast<std::size_t>(bi) * s * 3 * h + 2 * h;
    const T* pb = a.p + static_cast<std::size_t>(bi) * H * ss;
    // ctx_h = P_h V_h, written straight into the [tokens, hidden] layout
    gemm_strided_batched(*blas_, false, false, s, d, s, 1.f, pb, s, ss, v, 3 * h, d, 0.f,
                         a.ctx + static_cast<std::size_t>(bi) * s * h, h, d, H, opt_.mode);
  }
}

template <class T>
void GptCuda<T>::attention_backward(const LayerActs& a, const T* dctx, T* dqkv) {
  const int s = sh_.seq, H = sh_.heads, h = sh_.hidden, d = h / H;
  const long long ss = static_cast<long long>(s) * s;
  for (int bi = 0; bi < opt_.mbs; ++bi) {
    const std::size_t row = static_cast<std::size_t>(bi) * s;
    const T* v = a.qkv + row * 3 * h + 2 * h;
    const T* pb = a.p + static_cast<std::size_t>(bi) * H * ss;
    T* dpb = dp_ + static_cast<std::size_t>(bi) * H * ss;
    const T* dc = dctx + row * h;
    // dP = dctx V^T; dV = P^T dctx
    gemm_strided_batched(*blas_, false, true, s, s, d, 1.f, dc, h, d, v, 3 * h, d, 0.f, dpb, s, ss, H, opt_.mode);
    gemm_strided_batched(*blas_, true, false, s, d, s, 1.f, pb, s, ss, dc, h, d, 0.f, dqkv + row * 3 * h + 2 * h,
                         3 * h, d, H, opt_.mode);
  }
  softmax_causal_bwd(a.p, dp_, dp_, opt_.mbs * H, s, 1.f / std::sqrt(static_cast<float>(d)), st_);
  for (int bi = 0; bi < opt_.mbs; ++bi) {
    const std::size_t row = static_cast<std::size_t>(bi) * s;
    const T* q = a.qkv + row * 3 * h;
    const T* dsb = dp_ + static_cast<std::size_t>(bi) * H * ss;
    // dQ = dS K; dK = dS^T Q
    gemm_strided_batched(*blas_, false, false, s, d, s, 1.f, dsb, s, ss, q + h, 3 * h, d, 0.f, dqkv + row * 3 * h,
                         3 * h, d, H, opt_.mode);
    gemm_strided_batched(*blas_, true, false, s, d, s, 1.f, dsb, s, ss, q, 3 * h, d, 0.f, dqkv + row * 3 * h + h,
                         3 * h, d, H, opt_.mode);
  }
}

template <class T>
void GptCuda<T>::layer_forward(int l) {
  const LayerActs& a = acts_[l];
  const LayerOffsets& L = lo_[l];
  const int n = tokens(), h = sh_.hidden, f = sh_.ffn;
  const T* P = params_;
  T* out = l + 1 < sh_.layers ? acts_[l + 1].x : resid_out_;
  const GemmMode md = opt_.mode;
  layernorm_fwd(a.x, P + L.ln1_g, P + L.ln1_b, a.a1, a.mean1, a.rstd1, n, h, 1e-5f, st_);
  gemm(*blas_, false, false, n, 3 * h, h, 1.f, a.a1, h, P + L.w_qkv, 3 * h, 0.f, a.qkv, 3 * h, md);
  add_bias(a.qkv, P + L.b_qkv, n, 3 * h, st_);
  attention_forward(a);
  gemm(*blas_, false, false, n, h, h, 1.f, a.ctx, h, P + L.w_o, h, 0.f, ftmp_, h, md);
  add_bias(ftmp_, P + L.b_o, n, h, st_);
  SP_CUDA_CHECK(cudaMemcpyAsync(a.x2, a.x, sizeof(T) * n * h, cudaMemcpyDeviceToDevice, st_));
  axpy(1.f, ftmp_, a.x2, static_cast<std::size_t>(n) * h, st_);
  layernorm_fwd(a.x2, P + L.ln2_g, P + L.ln2_b, a.a2, a.mean2, a.rstd2, n, h, 1e-5f, st_);
  gemm(*blas_, false, false, n, f1_, h, 1.f, a.a2, h, P + L.w1, f1_, 0.f, a.f1, f1_, md);
  add_bias(a.f1, P + L.b1, n, f1_, st_);
  if (sh_.swiglu) swiglu_fwd(a.f1, a.g, n, f, st_);
  else gelu_fwd(a.f1, a.g, static_cast<std::size_t>(n) * f, st_);
  gemm(*blas_, false, false, n, h, f, 1.f, a.g, f, P + L.w2, h, 0.f, ftmp_, h, md);
  add_bias(ftmp_, P + L.b2, n, h, st_);
  SP_CUDA_CHECK(cudaMemcpyAsync(out, a.x2, sizeof(T) * n * h, cudaMemcpyDeviceToDevice, st_));
  axpy(1.f, ftmp_, out, static_cast<std::size_t>(n) * h, st_);
}

template <class T>
void GptCuda<T>::layer_backward(int l) {
  const LayerActs& a = acts_[l];
  const LayerOffsets& L = lo_[l];
  const int n = tokens(), h = sh_.hidden, f = sh_.ffn;
  const T* P = params_;
  T* G = grads_;
  const GemmMode md = opt_.mode;
  T* dg = dbig_;
  T* df1 = dbig_ + static_cast<std::size_t>(n) * f;
  // MLP: y = g W2 + b2 (dres = dy)
  gemm(*blas_, true, false, f, h, n, 1.f, a.g, f, dres_, h, 1.f, G + L.w2, h, md);
  bias_grad(dres_, G + L.b2, n, h, true, st_);
  gemm(*blas_, false, true, n, f, h, 1.f, dres_, h, P + L.w2, h, 0.f, dg, f, md);
  if (sh_.swiglu) swiglu_bwd(a.f1, dg, df1, n, f, st_);
  else gelu_bwd(a.f1, dg, df1, static_cast<std::size_t>(n) * f, st_);
  gemm(*blas_, true, false, h, f1_, n, 1.f, a.a2, h, df1, f1_, 1.f, G + L.w1, f1_, md);
  bias_grad(df1, G + L.b1, n, f1_, true, st_);
  gemm(*blas_, false, true, n, h, f1_, 1.f, df1, f1_, P + L.w1, f1_, 0.f, dtmp_, h, md);
  // x3 = x2 + MLP(LN2(x2)): dres becomes d x2
  layernorm_bwd(dtmp_, a.x2, P + L.ln2_g, a.mean2, a.rstd2, dres_, G + L.ln2_g, G + L.ln2_b, n, h, true, true, st_);
  // Attention output projection.
  gemm(*blas_, true, false, h, h, n, 1.f, a.ctx, h, dres_, h, 1.f, G + L.w_o, h, md);
  bias_grad(dres_, G + L.b_o, n, h, true, st_);
  gemm(*blas_, false, true, n, h, h, 1.f, dres_, h, P + L.w_o, h, 0.f, dctx_, h, md);
  attention_backward(a, dctx_, dqkv_);
  gemm(*blas_, true, false, h, 3 * h, n, 1.f, a.a1, h, dqkv_, 3 * h, 1.f, G + L.w_qkv, 3 * h, md);
  bias_grad(dqkv_, G + L.b_qkv, n, 3 * h, true, st_);
  gemm(*blas_, false, true, n, h, 3 * h, 1.f, dqkv_, 3 * h, P + L.w_qkv, 3 * h, 0.f, dtmp_, h, md);
  // x2 = x + Attn(LN1(x)): dres becomes d x
  layernorm_bwd(dtmp_, a.x, P + L.ln1_g, a.mean1, a.rstd1, dres_, G + L.ln1_g, G + L.ln1_b, n, h, true, true, st_);
}

template <class T>
void GptCuda<T>::forward_backward(const std::int32_t* ids, const std::int32_t* targets, float loss_scale) {
  const int n = tokens(), h = sh_.hidden, V = sh_.vocab, Vp = padded(V);
  const GemmMode md = opt_.mode;
  const T* P = params_;
  T* G = grads_;
  T* x0 = acts_.empty() ? resid_out_ : acts_[0].x;
  embedding_fwd(ids, P + wte_, x0, n, h, 0, V, st_);
  add_positions(x0, P + wpe_, opt_.mbs, sh_.seq, h, st_);
  for (int l = 0; l < sh_.layers; ++l) layer_forward(l);
  layernorm_fwd(resid_out_, P + lnf_g_, P + lnf_b_, af_, meanf_, rstdf_, n, h, 1e-5f, st_);
  // Tied LM head: logits = af wte^T.
  gemm(*blas_, false, true, n, V, h, 1.f, af_, h, P + wte_, h, 0.f, logits_, Vp, md);
  cross_entropy_fused(logits_, targets, loss_, n, V, Vp, loss_scale, st_);  // logits <- dlogits
  gemm(*blas_, false, false, n, h, V, 1.f, logits_, Vp, P + wte_, h, 0.f, dtmp_, h, md);
  gemm(*blas_, true, false, V, h, n, 1.f, logits_, Vp, af_, h, 1.f, G + wte_, h, md);
  layernorm_bwd(dtmp_, resid_out_, P + lnf_g_, meanf_, rstdf_, dres_, G + lnf_g_, G + lnf_b_, n, h, false, true, st_);
  for (int l = sh_.layers - 1; l >= 0; --l) layer_backward(l);
  embedding_bwd(ids, dres_, G + wte_, n, h, 0, V, st_);
  positions_bwd(dres_, G + wpe_, opt_.mbs, sh_.seq, h, st_);
}

template <class T>
void GptCuda<T>::zero_grads() {
  SP_CUDA_CHECK(cudaMemsetAsync(grads_, 0, n_params_ * sizeof(T), st_));
}

template <class T>
void GptCuda<T>::optimizer_step(int t) {
  const AdamHyper& a = opt_.adam;
  if (!opt_.optimizer) throw BackendError("GptCuda: built without optimizer state (GptOptions::optimizer = false)");
  if (offload_) {
    offload_->step<T, T>(grads_, params_, a, t, 1.f);
  } else if constexpr (std::is_same_v<T, bf16>) {
    adamw_update<bf16, bf16>(master_, grads_, m_, v_, params_, n_params_, a.lr, a.beta1, a.beta2, a.eps,
                             a.weight_decay, t, 1.f, st_);
  } else {
    adamw_update<float, float>(params_, grads_, m_, v_, nullptr, n_params_, a.lr, a.beta1, a.beta2, a.eps,
                               a.weight_decay, t, 1.f, st_);
  }
}

template <class T>
double GptCuda<T>::take_loss_sum() {
  double r = 0;
  SP_CUDA_CHECK(cudaMemcpyAsync(&r, loss_, sizeof(double), cudaMemcpyDeviceToHost, st_));
  SP_CUDA_CHECK(cudaMemsetAsync(loss_, 0, sizeof(double), st_));
  SP_CUDA_CHECK(cudaStreamSynchronize(st_));
  return r;
}

template <class T>
void GptCuda<T>::randomize_layer_io(std::uint64_t seed) {
  const std::size_t n = static_cast<std::size_t>(tokens()) * sh_.hidden;
  init_normal(acts_.empty() ? resid_out_ : acts_[0].x, n, 1.f, seed, st_);
  init_normal(dres_, n, 1e-3f, seed + 1, st_);
}

template class GptCuda<float>;
template class GptCuda<bf16>;

}  // namespace scaleplan::executor::cuda
