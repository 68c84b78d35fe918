#pragma once
// The reference executor's own kernel list (executor/gpt.cpp on the CPU backend), timed with the
// device's efficiency model: what EstimatorOptions::executor_op_time uses in place of the GPU op
// model of strategies/layer_cost. Every kernel call is Device::kernel_time(its class, bytes it reads
// and writes) (bytes / the class's measured rate + kernel_overhead_s); every buffer the executor allocates is
// zero-filled (cpu_backend.cpp allocate: memset), streamed as one more kernel; a GEMM is
// Device::gemm_time in fp32 and a strided-batched GEMM is `batch` GEMMs (the CPU backend loops).
#include "hardware/device.hpp"
#include "model/model.hpp"
#include "strategies/layer_cost.hpp"

namespace scaleplan::analytic {

struct ExecutorOpTimes {
  double layer_fwd_s = 0, layer_bwd_s = 0, layer_wgrad_s = 0;
  double layer_recompute_s = 0;  // full: the forward again; selective: the attention scores again
  double emb_fwd_s = 0, emb_bwd_s = 0;
  double head_fwd_s = 0, head_bwd_s = 0, head_wgrad_s = 0;  // final norm, logits, cross-entropy
  int layer_kernels = 0;
  double layer_gemm_s = 0;  // the GEMM part of one layer's forward + backward  // kernel calls of one layer's forward + backward (for the README/tests)
};

// The peak of the executor's workspace (MemCategory::buffers) on one rank, in bytes: the largest
// set of buffers alive at once in executor/gpt.cpp, over the points where it peaks (fp32):
//  - layer_bwd's attention core at `dS`: dx2 [Tl,h], dqkv [T,3h/t], dP and dS [b,h/t,s,s], dv, and under
//    selective recompute the re-created probabilities;
//  - layer_bwd's MLP at `df1`: dy [Tl,h], da [T,f/t], df1 [T,f1/t] (SP: dy, the gathered dy, da);
//  - full recompute's first forward (keep=false): every intermediate of the layer is workspace, and
//    on a stage that sends its output (`sends`) the output itself (a p2p buffer, forward());
//  - ZeRO-2: plus one layer's gradient bucket (acquire_grads; a layer at a time).
double executor_buffer_bytes(const model::ModelSpec& m, const strategies::LayerShape& sh, int zero, bool sends);

// One microbatch on one rank (the shape's b, s, tp, sp, recompute; fp32).
ExecutorOpTimes executor_op_times(const model::ModelSpec& m, const hw::Device& d, const strategies::LayerShape& sh);

}  // namespace scaleplan::analytic
