#pragma once
// Transformer Engine's FP8 casts around the linears' GEMMs (docs/accuracy-acc9.md): with fp8 the
// GEMMs read fp8 operands, so every GEMM input is quantized from its 16-bit tensor by a
// memory-bound kernel, and on Hopper the wgrad / dgrad GEMMs need the fp8 operands transposed
// (TE docs, features/low_precision_training/performance_considerations: "Hopper: cannot efficiently
// access elements in columnwise fashion, so columnwise tensors need to be physically transposed").
// The kernels follow TE v1.8 (NeMo 24.07's Transformer Engine): module/linear.py,
// module/layernorm_linear.py and module/base.py grad_output_preprocess.
#include "hardware/device.hpp"
#include "model/model.hpp"
#include "strategies/layer_cost.hpp"

namespace scaleplan::strategies {

// One TE linear on this rank for one microbatch: its GEMM reads `rows` x k_in and writes rows x n_out.
struct Fp8Linear {
  double rows = 0;          // tokens the GEMM sees (the SP-gathered count for a column-parallel linear)
  double k_in = 0;          // local input features
  double n_out = 0;         // local output features
  double in_cast_rows = 0;  // rows where TE casts the input (before the SP all-gather: rows / tp)
  double grad_cast_rows = 0;  // rows where TE casts the output gradient (row-parallel + SP: rows / tp)
  bool norm_fused = false;  // input made by a TE LayerNormLinear: the norm kernel writes it in fp8
  bool sp = false;          // TE's sequence_parallel flag on this module
  double copies = 1;        // identical linears (the local experts of a grouped GEMM)
};

// Bytes moved by the cast kernels of one linear. fwd: input casts (the fused norm's saving, which is
// negative, in fwd_saved); bwd: output-gradient casts and fp8 transposes; weight: one cast +
// transpose of the local weight (per microbatch without TE's weight cache, per step with it).
struct Fp8CastBytes {
  double fwd = 0, fwd_saved = 0, bwd = 0, weight = 0;
  int fwd_kernels = 0, bwd_kernels = 0, weight_kernels = 0;
  Fp8CastBytes& operator+=(const Fp8CastBytes& o);
};
// `e`: bytes per element of the 16-bit tensors the casts read (activations, gradients, weights).
Fp8CastBytes fp8_cast_bytes(const Fp8Linear& l, double e);

// The casts of one transformer layer (1d tensor parallelism: QKV and FC1 as TE LayerNormLinear when
// `norm_fused`, the projection and FC2 as row-parallel te.Linear; an MoE layer's experts as
// unfused grouped linears; the router stays 16-bit). Grid TP modes: none (no stack runs TE there).
Fp8CastBytes fp8_layer_cast_bytes(const model::ModelSpec& m, const LayerShape& sh, bool norm_fused);

// Seconds of those kernels on `d` at its streaming rate, each kernel paying the launch overhead;
// the fused norm's saving is taken off the forward.
struct Fp8CastTime {
  double fwd_s = 0, bwd_s = 0, weight_s = 0;
};
Fp8CastTime fp8_cast_time(const hw::Device& d, const Fp8CastBytes& b);

}  // namespace scaleplan::strategies
