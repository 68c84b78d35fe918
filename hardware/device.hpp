#pragma once
// A GPU: dense peak FLOP/s per precision, HBM capacity and bandwidth, and the compute-efficiency model.
#include <array>
#include <string>
#include <vector>

namespace scaleplan::hw {

enum class Dtype { fp32 = 0, tf32, fp16, bf16, fp8 };
inline constexpr int kNumDtypes = 5;
const char* dtype_name(Dtype d);

// Compute-efficiency model (README "Time model"; fitted once per device, never per run):
//  GEMM time   = max(F / (peak * gemm_max * F/(F + gemm_half_flop)), bytes / (hbm_bw * mem_bw)) + overhead
//  streaming   = bytes / (hbm_bw * mem_bw) + overhead
//  flash attn  = F / (peak * flash_attention) + overhead
// The saturating F/(F+F_half) form is the shape of cuBLAS throughput vs problem size (small GEMMs
// cannot fill all SMs; cf. NVIDIA "Matrix Multiplication Background" guide, wave quantization).
// Classes of the reference executor's host kernels (executor/cpu_backend.cpp), each with its own
// measured rate: on a CPU these loops run at very different speeds (memset vs tanh vs exp), where a
// GPU streams them all at HBM bandwidth. Written by `scaleplan calibrate`; GPU presets leave them 0.
enum class KernelClass {
  copy = 0,   // memmove / memset (buffer zero-fill)
  simple,     // axpy, bias add and bias gradient, head split/merge, embedding rows, row max
  gelu,       // GeLU / SwiGLU forward and backward (tanh / exp per element)
  layernorm,  // LayerNorm forward and backward
  softmax,    // causal softmax forward and backward, cross-entropy exp passes
  optimizer,  // AdamW / LAMB / LARS update loops
  // The backward loops (issue 22: measured 1.2x the forward per element for GeLU on a CPU; their
  // own rates, each falling back to its forward class's when not measured):
  gelu_bwd,       // GeLU / SwiGLU backward
  layernorm_bwd,  // LayerNorm backward
  softmax_bwd,    // causal softmax backward
  alloc,          // a buffer's allocation + zero-fill + free while others are live (falls back to copy)
  cross_entropy,  // the loss's exp passes over full rows (sum of exp, softmax - one-hot; falls back to softmax)
};
inline constexpr int kNumKernelClasses = 11;
const char* kernel_class_name(KernelClass k);

struct Efficiency {
  double gemm_max = 0.8;
  double gemm_half_flop = 1e9;
  double mem_bw = 0.8;
  double flash_attention = 0.5;
  // FlashAttention-2's fraction of peak where the device's file gives it apart (0: flash_attention), read
  // for a stack whose kernel is FlashAttention-2 (hw::Software::flash2_attention).
  double flash2_attention = 0;
  // FlashAttention-2's backward where the device's file gives it apart (0: flash2_attention); FA2's backward
  // runs below its forward on Hopper (YAML `flash2_attention_bwd`).
  double flash2_attention_bwd = 0;
  // Time of the Triton FlashAttention kernel (llm-foundry attn_impl: triton; hw::Software::flash_triton)
  // over FlashAttention-2's on this device, forward and backward (YAML `flash_triton_fwd_vs_flash2`,
  // `flash_triton_bwd_vs_flash2`; 1 = as FA2, where no measurement is known).
  double flash_triton_fwd_vs_flash2 = 1;
  double flash_triton_bwd_vs_flash2 = 1;
  double kernel_overhead_s = 4e-6;
  double overlap_slowdown = 0.2;  // share of overlapped communication time still lost to compute
  // Bytes (read + written) per second of each KernelClass; 0: not measured (the streaming rate).
  std::array<double, kNumKernelClasses> kernel_Bps{};
};

struct Device {
  std::string name;
  std::vector<std::string> aliases;
  std::array<double, kNumDtypes> peak_flops{};  // FLOP/s, dense, indexed by Dtype
  double hbm_bytes = 0;
  double hbm_bw_Bps = 0;
  double tdp_W = 0;
  Efficiency eff;

  double peak(Dtype d) const { return peak_flops[static_cast<int>(d)]; }
  // Seconds for one GEMM of F FLOPs touching `bytes` of HBM, on precision d.
  double gemm_time(double flops, double bytes, Dtype d) const;
  // Seconds for a memory-bound kernel moving `bytes`.
  double stream_time(double bytes) const {
    if (bytes <= 0) return 0;
    return bytes / (hbm_bw_Bps * eff.mem_bw) + eff.kernel_overhead_s;
  }
  // Seconds for one host kernel of class k moving `bytes` (kernel_Bps[k], or the streaming rate
  // when not measured) + overhead; a kernel with no bytes still costs the overhead.
  double kernel_time(KernelClass k, double bytes) const;
  // Seconds for a fused (flash) attention of F FLOPs; `backward`: the backward kernel (flash2_attention_bwd).
  double flash_time(double flops, Dtype d, bool flash2 = false, bool backward = false) const;
};

// Parse a device from YAML text (file names the origin for errors).
Device parse_device(const std::string& text, const std::string& file);
// A preset name/alias or a path.
Device load_device(const std::string& spec);
// The device preset a free-text GPU name means ("NVIDIA A100-SXM4-80GB", "H100 96GB HBM2e", "b200"): a preset
// name or alias as is; else the GPU family it names as a word (gb200, b200, h200, h100, a100, v100) and, among
// that family's presets, the one whose HBM is nearest the "<N>GB" it gives (none given: the family's own
// alias, e.g. a100 -> a100-80gb). "" when it names no known family.
std::string device_named_in(const std::string& text);

}  // namespace scaleplan::hw
