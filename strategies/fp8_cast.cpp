#include "strategies/fp8_cast.hpp"

#include "strategies/expert.hpp"

namespace scaleplan::strategies {

Fp8CastBytes& Fp8CastBytes::operator+=(const Fp8CastBytes& o) {
  fwd += o.fwd;
  fwd_saved += o.fwd_saved;
  bwd += o.bwd;
  weight += o.weight;
  fwd_kernels += o.fwd_kernels;
  bwd_kernels += o.bwd_kernels;
  weight_kernels += o.weight_kernels;
  return *this;
}

Fp8CastBytes fp8_cast_bytes(const Fp8Linear& l, double e) {
  Fp8CastBytes b;
  const double c = l.copies;
  // GEMM input (TE v1.8). LayerNormLinear: the norm writes its output in fp8 (1 B instead of e;
  // layernorm_linear.py `ln_out_dtype = torch.uint8 if fp8`), and the backward transposes the
  // (gathered) fp8 input for wgrad (`tex.fp8_transpose(ln_out_total)`: read 1 B, write 1 B).
  // te.Linear with sequence_parallel: `cast_to_fp8` (read e, write 1) in forward, `tex.fp8_transpose`
  // of the input in backward; without it `fp8_cast_transpose_fused` (read e, write 1 + 1) in forward.
  const double in_gemm = c * l.rows * l.k_in, in_cast = c * l.in_cast_rows * l.k_in;
  if (l.norm_fused) {
    b.fwd_saved += (e - 1) * in_cast;
    b.bwd += 2 * in_gemm, b.bwd_kernels += 1;
  } else if (l.sp) {
    b.fwd += (e + 1) * in_cast, b.fwd_kernels += 1;
    b.bwd += 2 * in_gemm, b.bwd_kernels += 1;
  } else {
    b.fwd += (e + 2) * in_gemm, b.fwd_kernels += 1;
  }
  // Output gradient (base.py grad_output_preprocess): gathered (row-parallel + SP) it is cast where it
  // lives (read e, write 1), gathered in fp8 and transposed (read 1, write 1); otherwise one
  // `fp8_cast_transpose(_bgrad)_fused` (read e, write 1 + 1).
  const double g_gemm = c * l.rows * l.n_out, g_cast = c * l.grad_cast_rows * l.n_out;
  if (g_cast < g_gemm) {
    b.bwd += (e + 1) * g_cast + 2 * g_gemm, b.bwd_kernels += 2;
  } else {
    b.bwd += (e + 2) * g_gemm, b.bwd_kernels += 1;
  }
  // Weight: cast + transpose into TE's fp8 workspace (linear.py get_fp8_workspace with_transpose:
  // read e, write 1 + 1); the transpose feeds dgrad.
  b.weight += (e + 2) * c * l.k_in * l.n_out, b.weight_kernels += 1;
  return b;
}

Fp8CastBytes fp8_layer_cast_bytes(const model::ModelSpec& m, const LayerShape& sh, bool norm_fused) {
  Fp8CastBytes r;
  if (sh.precision != Precision::fp8 || sh.tp_mode != TpMode::d1) return r;
  const double e = 2;  // the 16-bit activations, gradients and working weights (bytes_per_element(fp8))
  const double t = sh.tp, h = m.hidden;
  const double T = sh.b * sh.s;
  const double local = sh.sp ? T / t : T;  // rows a rank holds outside the TP region
  // Column-parallel (QKV, FC1): input gathered under SP, output gradient local.
  auto column = [&](double k, double n, bool fused) { return Fp8Linear{T, k, n, local, T, fused, sh.sp, 1}; };
  // Row-parallel (projection, FC2): input local (T x k/t), output gradient gathered under SP.
  auto row = [&](double k, double n) { return Fp8Linear{T, k, n, T, local, false, sh.sp, 1}; };
  const double q = static_cast<double>(m.q_dim());  // Q width, heads x head_dim (= h unless head_dim is decoupled)
  r += fp8_cast_bytes(column(h, (q + 2.0 * m.kv_dim()) / t, norm_fused), e);
  r += fp8_cast_bytes(row(q / t, h), e);
  if (!m.moe.enabled()) {
    const double up = static_cast<double>(m.ffn) * (m.gated() ? 2 : 1) / t;
    r += fp8_cast_bytes(column(h, up, norm_fused), e);
    r += fp8_cast_bytes(row(m.ffn / t, h), e);
    return r;
  }
  // Experts (strategies/expert.cpp shapes): the dispatched tokens per local expert at the expert width,
  // unfused casts; the shared experts as one dense column / row pair (the MoE layer's norm feeds the
  // router, so their input cast is not fused into it).
  const double w = expert_width(m), gate = m.gated() ? 2 : 1;
  const double local_experts = m.moe.experts / static_cast<double>(sh.ep);
  const double per_expert = T * m.moe.top_k * m.moe.capacity_factor * sh.ep / m.moe.experts;
  r += fp8_cast_bytes({per_expert, h, w * gate / t, per_expert, per_expert, false, false, local_experts}, e);
  r += fp8_cast_bytes({per_expert, w / t, h, per_expert, per_expert, false, false, local_experts}, e);
  const double sw = shared_experts_width(m);
  if (sw > 0) {
    r += fp8_cast_bytes(column(h, sw * gate / t, false), e);
    r += fp8_cast_bytes(row(sw / t, h), e);
  }
  return r;
}

Fp8CastTime fp8_cast_time(const hw::Device& d, const Fp8CastBytes& b) {
  const double bw = d.hbm_bw_Bps * d.eff.mem_bw;  // the streaming rate of Device::stream_time
  const double k = d.eff.kernel_overhead_s;
  Fp8CastTime r;
  r.fwd_s = b.fwd / bw + b.fwd_kernels * k - b.fwd_saved / bw;
  r.bwd_s = b.bwd / bw + b.bwd_kernels * k;
  r.weight_s = b.weight / bw + b.weight_kernels * k;
  return r;
}

}  // namespace scaleplan::strategies
