#pragma once
// A GPT decoder trained natively on one GPU in fp32 or bf16 mixed precision (issue 9). The
// executor's backend interface (executor/backend.hpp) is fp32; this class is what measures the
// 16-bit regime the analytic estimator predicts (bf16 weights, activations and gradients, fp32
// master weights and Adam moments: the ZeRO paper's 2 + 2 + 12 B/param recipe, Rajbhandari et al.
// 2020 sec. 3.1). Architecture as executor/gpt (GPT-2): learned positions, pre-LayerNorm, MHA with
// an unfused causal softmax (scores kept for backward), GeLU or SwiGLU MLP with biases, tied
// embeddings, cross-entropy. Row-major; linear weights stored [in, out] (y = x W + b).
//
// Memory categories (DeviceMemory): params = working weights; grads = working-precision gradient
// buffer; optimizer = fp32 master (16-bit only) + Adam m, v (or the offload chunk buffers);
// activations = what forward keeps for backward (per layer: input, LN outputs, QKV, softmax
// probabilities, context, post-attention residual, MLP pre- and post-activation; plus the logits);
// buffers = backward scratch (gradients of activations) and cuBLAS workspace.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "executor/cuda/device_memory.hpp"
#include "executor/cuda/gemm.hpp"
#include "executor/cuda/kernels.cuh"
#include "executor/cuda/offload.hpp"

namespace scaleplan::model {
struct ModelSpec;
}

namespace scaleplan::executor::cuda {

struct GptShape {
  int layers = 2, hidden = 64, heads = 4, ffn = 256, vocab = 256, seq = 64;
  bool swiglu = false;
};

struct GptOptions {
  GemmMode mode = GemmMode::bf16;  // fp32 | tf32 (T = float) or bf16 (T = bf16)
  int mbs = 1;                     // sequences per microbatch
  bool optimizer = true;           // false: no optimizer state (single-layer timing only)
  bool offload_optimizer = false;  // fp32 master + moments in pinned host memory (offload.hpp)
  std::size_t offload_chunk = 64ull << 20;  // parameters per streamed chunk
  AdamHyper adam;
  std::uint64_t seed = 1234;
  float init_std = 0.02f;  // GPT-2 initialisation N(0, 0.02^2)
};

template <class T>
class GptCuda {
 public:
  GptCuda(const GptShape& sh, const GptOptions& o, DeviceMemory& mem, cudaStream_t st);
  ~GptCuda();
  GptCuda(const GptCuda&) = delete;
  GptCuda& operator=(const GptCuda&) = delete;

  std::size_t num_params() const { return n_params_; }
  int tokens() const { return opt_.mbs * sh_.seq; }
  // ids/targets: device int32 [mbs * seq]. Adds this microbatch's gradients (scaled by
  // loss_scale, e.g. 1 / tokens per step) into grads() and its summed loss into the loss counter.
  void forward_backward(const std::int32_t* ids, const std::int32_t* targets, float loss_scale);
  void zero_grads();
  void optimizer_step(int t);   // AdamW step t >= 1 (on the GPU, or through host memory when offloading)
  double take_loss_sum();       // synchronises; returns and clears the summed token losses

  // Single-layer timing (GPT layer forward + backward on the current residual input).
  void randomize_layer_io(std::uint64_t seed);  // random layer-0 input and output gradient
  void layer_forward(int l);
  void layer_backward(int l);

  T* params() const { return params_; }
  T* grads() const { return grads_; }
  const GptShape& shape() const { return sh_; }

  // Parameter layout (offsets into params()/grads()), for tests and gradient checks.
  struct LayerOffsets {
    std::size_t ln1_g, ln1_b, w_qkv, b_qkv, w_o, b_o, ln2_g, ln2_b, w1, b1, w2, b2;
  };
  const LayerOffsets& layer_offsets(int l) const { return lo_[l]; }
  std::size_t wte_offset() const { return wte_; }
  std::size_t wpe_offset() const { return wpe_; }

 private:
  struct LayerActs {
    T *x, *a1, *qkv, *p, *ctx, *x2, *a2, *f1, *g;  // x = layer input (residual stream)
    float *mean1, *rstd1, *mean2, *rstd2;
  };
  void* alloc(std::size_t bytes, MemCategory c, bool zero = false) { return mem_.allocate(bytes, c, st_, zero); }
  void attention_forward(const LayerActs& a);
  void attention_backward(const LayerActs& a, const T* dctx, T* dqkv);

  GptShape sh_;
  GptOptions opt_;
  DeviceMemory& mem_;
  cudaStream_t st_;
  std::unique_ptr<Blas> blas_;
  int f1_ = 0;  // MLP first projection width (ffn or 2 ffn for SwiGLU)
  std::size_t n_params_ = 0;
  std::vector<LayerOffsets> lo_;
  std::size_t wte_ = 0, wpe_ = 0, lnf_g_ = 0, lnf_b_ = 0;

  T* params_ = nullptr;
  T* grads_ = nullptr;
  float *master_ = nullptr, *m_ = nullptr, *v_ = nullptr;
  std::unique_ptr<OffloadedAdam> offload_;

  std::vector<LayerActs> acts_;
  T* resid_out_ = nullptr;  // output of the last layer
  T *af_ = nullptr, *logits_ = nullptr;
  float *meanf_ = nullptr, *rstdf_ = nullptr;
  // Backward scratch.
  T *dres_ = nullptr, *dtmp_ = nullptr, *dctx_ = nullptr, *dqkv_ = nullptr, *dbig_ = nullptr, *dp_ = nullptr;
  T* ftmp_ = nullptr;  // forward scratch [tokens, hidden]
  double* loss_ = nullptr;
  std::vector<void*> owned_;
};

// Parameters of a GptShape (same count as model::ModelSpec::total_params for a GPT with biases,
// learned positions and tied embeddings).
std::size_t gpt_num_params(const GptShape& sh);
// The shape of a model spec (gpt_shape.cpp); throws std::runtime_error for what this GPT does not
// implement (grouped-query attention, positions other than learned).
GptShape shape_of(const model::ModelSpec& m);

}  // namespace scaleplan::executor::cuda
