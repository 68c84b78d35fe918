#include "simulator/analytic/executor_ops.hpp"

#include <algorithm>

namespace scaleplan::analytic {

namespace {
// A running sum of the executor's kernel calls (fp32: 4 bytes per element).
struct Ops {
  const hw::Device& d;
  double t = 0, tg = 0;  // all, GEMMs
  int n = 0;
  // A host kernel of class c moving `bytes` (read + write).
  void k(hw::KernelClass c, double bytes) {
    t += d.kernel_time(c, bytes);
    ++n;
  }
  // make_floats: aligned_alloc + memset of `floats` elements (cpu_backend.cpp allocate), at the
  // measured rate of allocating while other buffers are live (KernelClass::alloc).
  void alloc(double floats) { k(hw::KernelClass::alloc, 4 * floats); }
  // `count` row-major GEMMs of m x n x k (Device::gemm_time, fp32).
  void gemm(double m, double nn, double kk, double count = 1) {
    const double g = count * d.gemm_time(2 * m * nn * kk, 4 * (m * kk + kk * nn + m * nn), hw::Dtype::fp32);
    t += g;
    tg += g;
    n += static_cast<int>(count);
  }
};
}  // namespace

// The op lists follow executor/gpt.cpp line by line (layer_fwd, layer_bwd, attention_scores,
// embed_fwd, embed_bwd, head); "bytes" are the elements each loop reads and writes x 4.
ExecutorOpTimes executor_op_times(const model::ModelSpec& m, const hw::Device& dev, const strategies::LayerShape& sh) {
  ExecutorOpTimes r;
  const double t = sh.tp;
  const bool sp = sh.sp && sh.tp > 1;
  const double b = sh.b, s = sh.s, h = m.hidden;
  const double T = b * s, Tl = sp ? T / t : T;
  const double hl = m.heads / t, dh = m.head_dim();
  const double qw = 3 * hl * dh;
  const bool gated = m.gated();
  const double Fl = m.ffn / t, F1l = gated ? 2 * Fl : Fl;
  const double bh = b * hl, hn = bh * s * dh, sn = bh * s * s;
  const bool bias = m.bias;
  const double Vl = m.vocab / t;

  auto scores = [&](Ops& o) {  // attention_scores: S = Q K^T per head, causal softmax into P
    o.alloc(sn);
    o.gemm(s, s, dh, bh);
    o.alloc(sn);
    o.k(hw::KernelClass::softmax, 8 * sn);  // causal softmax
  };
  auto residual = [&](Ops& o) {  // row-parallel output: [SP reduce-scatter buffer], bias, y = x + out
    if (sp) o.alloc(Tl * h);
    if (bias) o.k(hw::KernelClass::simple, 8 * Tl * h);
    o.alloc(Tl * h);
    o.k(hw::KernelClass::copy, 8 * Tl * h);   // copy
    o.k(hw::KernelClass::simple, 12 * Tl * h);  // axpy
  };
  Ops f{dev};
  {
    f.alloc(Tl * h + 2 * Tl);  // LN1 output, mean, rstd
    f.k(hw::KernelClass::layernorm, 8 * Tl * h);  // LN1
    if (sp) f.alloc(T * h);  // all-gather buffer
    f.alloc(T * qw);
    f.gemm(T, qw, h);
    if (bias) f.k(hw::KernelClass::simple, 8 * T * qw);
    f.alloc(3 * hn);  // q, k, v
    for (int i = 0; i < 3; ++i) f.k(hw::KernelClass::simple, 8 * hn);  // split_heads
    scores(f);
    f.alloc(hn);
    f.gemm(s, dh, s, bh);  // P V per head
    f.alloc(hn);
    f.k(hw::KernelClass::simple, 8 * hn);  // merge_heads
    f.alloc(T * h);
    f.gemm(T, h, hl * dh);
    residual(f);
    f.alloc(Tl * h + 2 * Tl);  // LN2
    f.k(hw::KernelClass::layernorm, 8 * Tl * h);  // LN2
    if (sp) f.alloc(T * h);
    f.alloc(T * F1l);
    f.gemm(T, F1l, h);
    if (bias) f.k(hw::KernelClass::simple, 8 * T * F1l);
    f.alloc(T * Fl);
    f.k(hw::KernelClass::gelu, 8 * T * Fl);  // GeLU / SwiGLU: a tanh (exp) per output element
    f.alloc(T * h);
    f.gemm(T, h, Fl);
    residual(f);
  }
  Ops bw{dev};
  double wg = 0;  // weight-gradient GEMMs (the part of the backward that TP collectives could hide under)
  auto wgemm = [&](double mm, double nn, double kk) {
    const double before = bw.t;
    bw.gemm(mm, nn, kk);
    wg += bw.t - before;
  };
  {
    if (bias) bw.k(hw::KernelClass::simple, 4 * Tl * h);  // bias_grad b2
    if (sp) bw.alloc(T * h);
    bw.alloc(T * Fl);
    bw.gemm(T, Fl, h);
    wgemm(Fl, h, T);
    bw.alloc(T * F1l);
    bw.k(hw::KernelClass::gelu_bwd, 12 * T * Fl);  // GeLU / SwiGLU backward: reads x and dy, writes dx
    if (bias) bw.k(hw::KernelClass::simple, 4 * T * F1l);
    if (sp) bw.alloc(T * h);
    wgemm(h, F1l, T);
    bw.alloc(T * h);
    bw.gemm(T, h, F1l);
    if (sp) bw.alloc(Tl * h);
    bw.alloc(Tl * h);
    bw.k(hw::KernelClass::layernorm_bwd, 12 * Tl * h);  // LN2 backward: reads dy and x, writes dx
    bw.k(hw::KernelClass::simple, 12 * Tl * h);  // axpy (residual)
    if (bias) bw.k(hw::KernelClass::simple, 4 * Tl * h);
    bw.alloc(T * qw);
    if (sp) bw.alloc(T * h);
    bw.alloc(T * hl * dh);
    bw.gemm(T, hl * dh, h);
    wgemm(hl * dh, h, T);
    bw.alloc(hn);
    bw.k(hw::KernelClass::simple, 8 * hn);  // split_heads
    if (sh.recompute == strategies::Recompute::selective) scores(bw);
    bw.alloc(sn + hn);
    bw.gemm(s, s, dh, bh);  // dP
    bw.gemm(s, dh, s, bh);  // dV
    bw.alloc(sn);
    bw.k(hw::KernelClass::softmax_bwd, 12 * sn);  // softmax backward: reads p and dp, writes dx
    bw.alloc(2 * hn);
    bw.gemm(s, dh, s, bh);  // dQ
    bw.gemm(s, dh, s, bh);  // dK
    for (int i = 0; i < 3; ++i) bw.k(hw::KernelClass::simple, 8 * hn);  // merge_heads
    if (bias) bw.k(hw::KernelClass::simple, 4 * T * qw);
    if (sp) bw.alloc(T * h);
    wgemm(h, qw, T);
    bw.alloc(T * h);
    bw.gemm(T, h, qw);
    if (sp) bw.alloc(Tl * h);
    bw.alloc(Tl * h);
    bw.k(hw::KernelClass::layernorm_bwd, 12 * Tl * h);  // LN1 backward
    bw.k(hw::KernelClass::simple, 12 * Tl * h);  // axpy
  }
  r.layer_fwd_s = f.t;
  r.layer_bwd_s = bw.t;
  r.layer_wgrad_s = wg;
  r.layer_kernels = f.n + bw.n;
  r.layer_gemm_s = f.tg + bw.tg;
  if (sh.recompute == strategies::Recompute::full) {
    r.layer_recompute_s = f.t;
  } else if (sh.recompute == strategies::Recompute::selective) {
    Ops sc{dev};
    scores(sc);
    r.layer_recompute_s = sc.t;
    r.layer_bwd_s -= sc.t;  // counted above inside the backward's op list; reported as recompute
  }

  // Embedding (first stage): lookup, positions (TP rank 0), [TP reduce], copy into the stored input.
  Ops ef{dev}, eb{dev};
  ef.alloc(T * h);
  ef.k(hw::KernelClass::simple, 8 * T * h);
  if (m.position == model::Position::learned) ef.k(hw::KernelClass::simple, 12 * T * h);
  if (sp) ef.alloc(Tl * h);
  ef.alloc(Tl * h);
  ef.k(hw::KernelClass::copy, 8 * Tl * h);  // copy into the stored input
  if (sp) eb.alloc(T * h);
  eb.k(hw::KernelClass::simple, 12 * T * h);  // scatter-add into the table rows
  if (m.position == model::Position::learned) eb.k(hw::KernelClass::simple, 12 * T * h);
  r.emb_fwd_s = ef.t;
  r.emb_bwd_s = eb.t;

  // Head (last stage): final LayerNorm, logits, vocab-parallel cross-entropy, its gradient in place;
  // then the logits' input and weight gradients and the LayerNorm backward.
  Ops hf{dev}, hb{dev};
  hf.alloc(Tl * h + 2 * Tl);
  hf.k(hw::KernelClass::layernorm, 8 * Tl * h);  // final LayerNorm
  if (sp) hf.alloc(T * h);
  hf.alloc(T * Vl);
  hf.gemm(T, Vl, h);
  hf.alloc(3 * T);
  hf.k(hw::KernelClass::simple, 4 * T * Vl);  // row max
  hf.k(hw::KernelClass::cross_entropy, 4 * T * Vl);  // sum of exp: reads the logits, an exp per element
  hf.k(hw::KernelClass::simple, 4 * T);             // target logit
  hf.k(hw::KernelClass::cross_entropy, 8 * T * Vl);  // softmax - one-hot, in place: an exp per element
  hb.alloc(T * h);
  hb.gemm(T, h, Vl);
  const double before = hb.t;
  hb.gemm(Vl, h, T);
  r.head_wgrad_s = hb.t - before;
  if (sp) hb.alloc(Tl * h);
  hb.alloc(Tl * h);
  hb.k(hw::KernelClass::layernorm_bwd, 12 * Tl * h);  // final LayerNorm backward
  r.head_fwd_s = hf.t;
  r.head_bwd_s = hb.t;
  return r;
}

double executor_buffer_bytes(const model::ModelSpec& m, const strategies::LayerShape& sh, int zero, bool sends) {
  const double t = sh.tp;
  const bool sp = sh.sp && sh.tp > 1;
  const double b = sh.b, s = sh.s, h = m.hidden;
  const double T = b * s, Tl = sp ? T / t : T;
  const double hl = m.heads / t, dh = m.head_dim(), qw = 3 * hl * dh;
  const double Fl = m.ffn / t, F1l = m.gated() ? 2 * Fl : Fl;
  const double hn = b * hl * s * dh, sn = b * hl * s * s;
  const bool selective = sh.recompute == strategies::Recompute::selective;
  // layer_bwd, attention core: at the allocation of dS.
  const double attn_bwd = Tl * h + T * qw + 2 * sn + hn + (selective ? sn : 0);
  // layer_bwd, MLP: at df1 (SP: at da, while the gathered dy is alive).
  const double mlp_bwd = std::max(Tl * h + T * Fl + T * F1l, sp ? Tl * h + T * h + T * Fl : 0.0);
  double peak = std::max(attn_bwd, mlp_bwd);
  if (sh.recompute == strategies::Recompute::full) {
    // layer_fwd(keep=false) at f2: ln1, mu1, rs1, q, k, v, probs, ctx, x2, ln2, mu2, rs2, f1, a, f2
    // (SP: and f2's reduce-scatter output; a sending stage: the output y, a buffer).
    const double fwd = 2 * (Tl * h + 2 * Tl) + 3 * hn + sn + T * hl * dh + Tl * h + T * F1l + T * Fl + T * h + (sp ? Tl * h : 0) +
                       (sends ? Tl * h : 0);
    peak = std::max(peak, fwd);
  }
  if (zero == 2) {  // one layer's gradient bucket, the TP shard (executor/gpt.cpp LayerInfo order)
    const double bias = m.bias ? qw + h + F1l + h : 0;
    peak += h * qw + hl * dh * h + h * F1l + Fl * h + 4 * h + bias;
  }
  return 4 * peak;
}

}  // namespace scaleplan::analytic

