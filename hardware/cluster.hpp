#pragma once
// A cluster: nodes of GPUs (intra-node link), the scale-out network (NIC per GPU, topology,
// oversubscription above a pod), host memory / PCIe / NVMe, prices and power, and the training
// software stack its runs use. All quantities SI.
#include <string>

#include "hardware/device.hpp"

namespace scaleplan::hw {

enum class IntraKind { nvswitch, nvlink_mesh, pcie };
enum class Topology { fat_tree, rail_optimized, clos };
const char* topology_name(Topology t);

struct IntraLink {
  IntraKind kind = IntraKind::nvswitch;
  double bw_Bps = 0;          // per GPU, per direction
  double latency_s = 0;       // per algorithm step
  double bus_efficiency = 1;  // achieved / line rate (NCCL bus bandwidth)
};

struct Network {
  Topology topology = Topology::fat_tree;
  double nic_bw_Bps = 0;  // per GPU, per direction
  double latency_s = 0;   // per algorithm step across the fabric
  double bus_efficiency = 1;
  int levels = 3;
  int pod_gpus = 0;            // 0 = one full-bisection fabric
  double oversubscription = 1; // above the pod
  // NICs of a node for application traffic (0: one per GPU). nic_bw_Bps stays the per-GPU share of
  // the node's NIC capacity (nic_Gbps_per_gpu), so one NIC's rate is nic_bw_Bps x gpus / nics
  // (e.g. DGX A100: 8 x HDR 200 Gb/s for 8 GPUs; 4 NICs for 8 GPUs: two GPUs share each NIC).
  int nics_per_node = 0;
};

struct Host {
  double memory_bytes = 0;  // per node (host DRAM for offloaded states)
  double mem_bw_Bps = 0;    // per node, host DRAM bandwidth (CPU Adam, concurrent PCIe copies)
  double flops_fp32 = 0;    // CPU, per node (CPU Adam)
  double pcie_Bps = 0;      // per GPU, host<->device
  double nvme_bytes = 0;    // per node (ZeRO-Infinity; 0 = none)
  double nvme_Bps = 0;      // per node, aggregate read/write
  int cores = 0;            // CPU cores the node's ranks share (`calibrate`: the CPU executor's ranks); 0 = not stated
};

// What a software stack can run (configs/stacks/*.yaml `capabilities`, hardware/stack.hpp). Each
// mask has bit i set when the stack offers value i of the matching strategies enum (the order is
// pinned by static_asserts in strategies/stack_caps.cpp). Defaults: everything scaleplan models
// (the `unrestricted` stack). Query them through strategies/stack_caps.hpp.
struct Capabilities {
  unsigned tp_modes = 0xF;    // strategies::TpMode {1d, 2d, 2.5d, 3d}; 0 = no tensor parallelism
  unsigned schedules = 0xF;   // strategies::Schedule {gpipe, 1f1b, interleaved, zero_bubble}; 0 = no pipeline parallelism
  unsigned recompute = 0x7;   // strategies::Recompute {none, selective, full}
  unsigned cp_algos = 0xF;    // strategies::CpAlgo {ring, ulysses, ring_self_attn, allgather}; 0 = no context parallelism
  unsigned zero_stages = 0xF; // ZeRO stage z = bit z (1 = distributed optimizer / optimizer sharding)
  unsigned offloads = 0x1F;   // strategies::Offload {none, optimizer, params, nvme, gemini}
  unsigned precisions = 0xF;  // strategies::Precision {fp32, fp16, bf16, fp8}
  bool sequence_parallel = true;  // Megatron sequence parallelism (Korthikanti et al. 2022)
  bool expert_parallel = true;    // MoE expert parallelism (ep > 1)
  // The sequence-parallel collectives run under the GEMMs next to them (TE userbuffers, torch async TP):
  // strategies/tensor_nd overlap_sp_collectives, when sp is on and the TP group is inside a node.
  bool tp_comm_overlap = false;
};

// How the stack the cluster runs trains (the published runs on it used this stack).
struct Software {
  bool flash_attention = true;  // false: unfused scaled-masked softmax + dropout (Megatron 2021-22)
  // The fused kernel is FlashAttention-2 (YAML `attention: flash2`): its own device efficiency where the
  // device file gives one (Efficiency::flash2_attention; FA2 reaches 35 % of H100's peak, Shah et al. 2024).
  bool flash2_attention = false;
  // The fused kernel is llm-foundry's Triton FlashAttention (YAML `attention: flash_triton`,
  // llmfoundry/models/layers/flash_attn_triton.py): timed as FlashAttention-2 (flash2_attention is set
  // too) times the device's Efficiency::flash_triton_fwd/bwd_vs_flash2.
  bool flash_triton = false;
  bool dp_overlap = true;       // DP gradient reduction overlapped with backward (bucketed)
  // ZeRO-1/2: the updated parameters' all-gather runs under the next step's first forward
  // (Megatron-Core --overlap-param-gather; YAML `dp_param_gather_overlap`); false: it waits with the
  // gradient reduce-scatter on the backward window.
  bool dp_param_gather_overlap = false;
  double step_overhead_s = 0;   // fixed per-iteration host-side cost
  // Rank order, innermost first: tp, cp, then dp before pp (Megatron default) or pp before dp
  // (Llama 3 sec. 3.3.2: [TP, CP, PP, DP]). Decides which tier DP and PP groups span.
  bool pp_inside_dp = false;
  // Chunk manager policy (offload=gemini, strategies/chunks.hpp): share of the GPU chunks may use in
  // steady state and during the warm-up iteration, and share of host memory they may use.
  // Defaults: Colossal-AI Gemini (steady_cuda_cap_ratio 0.9; warm-up non-model share 0.8; all of the host).
  double chunk_cap_ratio = 0.9;
  double chunk_warmup_ratio = 0.2;
  double chunk_host_ratio = 1.0;
  // The stack these values came from (configs/stacks/<stack>.yaml; hardware/stack.hpp) and what it
  // can run. "unrestricted" (the default) offers every technique scaleplan models.
  std::string stack = "unrestricted";
  Capabilities caps;
  // ZeRO-3 / FSDP parameter prefetch (docs/zero3.md). Units (layers) whose all-gather may be in
  // flight ahead of the compute that needs them: PyTorch FSDP backward_prefetch=BACKWARD_PRE and
  // FSDP2's default prefetch one unit ahead (torch/distributed/fsdp/_runtime_utils.py
  // _prefetch_handle; torch/distributed/_composable/fsdp/_fsdp_state.py). 0: no prefetch, every
  // gather is exposed.
  int zero3_prefetch_depth = 1;
  // Bytes fetched ahead at most (DeepSpeed stage3_prefetch_bucket_size, default 5e7 parameters
  // = 1e8 bytes in 16-bit; deepspeed/runtime/zero/config.py). The first fetch of each pass
  // (min(one layer, bucket)) cannot hide under compute.
  double zero3_prefetch_bucket_bytes = 1e8;
  // Whether recompute re-gathers the parameters a second time in backward (true: the checkpoint
  // wraps the sharded unit, as CheckpointWrapper(FSDP(block))). false (default): the backward's one
  // gather serves the recomputed forward too -- DeepSpeed keeps parameters reused within
  // stage3_max_reuse_distance (default 1e9 parameters; deepspeed/runtime/zero/config.py) and
  // FSDP(CheckpointWrapper(block)) unshards once in its pre-backward hook.
  bool zero3_regather_recompute = false;
  // How the stack's data-parallel / ZeRO collectives (gradient reduce-scatter, parameter all-gather,
  // all-reduce over the DP group) use a node's NICs across nodes (issue 15; docs/zero3.md):
  // false (default, YAML `dp_collective_nics: per_gpu`): each GPU at its own NIC share, as the SC21
  // ZeRO-3 runs behave (DeepSpeed); true (`node`): a ring with per_node members on a node moves
  // per_node NIC shares, as NCCL's rings do (each channel enters and leaves the node once on its own
  // NIC: NVIDIA/nccl#687; 192 GB/s all-reduce bus bandwidth over a DGX A100's 8 NICs: NVIDIA/nccl#812).
  bool dp_nics_aggregate = false;
  // Element-wise ops as separate eager PyTorch kernels (YAML `elementwise: eager`; default `fused`),
  // as the 2019 Megatron-LM code runs them (NVIDIA/Megatron-LM mpu/transformer.py @a1d04b79): the causal
  // mask as `torch.mul(scores, mask) - 10000.0 * (1.0 - mask)` (two passes over the scores before the
  // softmax), the row-parallel bias added after the all-reduce, then dropout, then the residual add
  // (three kernels where a fused bias-dropout-add is one). strategies/layer_cost.cpp charges the passes.
  bool eager_elementwise = false;
  // ZeRO / FSDP collectives per FSDP unit (YAML `fsdp_unit: layer`; default `stage`, one collective per
  // pass over the whole stage). PyTorch FSDP wraps each transformer block as its own unit (llm-foundry
  // llmfoundry/models/mpt/modeling_mpt.py `fsdp_wrap_fn`: isinstance(module, MPTBlock); the root unit
  // holds the rest) and issues one all-gather / reduce-scatter per unit and pass, each paying the ring's
  // latency (NCCL src/graph/tuning.cc: (nRanks - 1) steps per ring all-gather / reduce-scatter). With it,
  // ZeRO-2 is FSDP SHARD_GRAD_OP: a per-unit gather before the forward and a per-unit reduce-scatter in the
  // backward, overlapped as ZeRO-3's are (torch/distributed/fsdp/api.py ShardingStrategy docs).
  bool fsdp_per_layer = false;
  // Bytes per gradient element in the DP / ZeRO reduction (YAML `grad_reduce_dtype: fp32`; default
  // `param`: the precision's gradient bytes). Composer's FSDP mixed_precision DEFAULT reduces in fp32
  // (composer/trainer/mosaic_fsdp_utils.py get_mixed_precision: reduce_dtype = torch.float32).
  double grad_reduce_bytes = 0;
  // Bytes of the CUDA RNG state that each torch.cuda.get_rng_state / set_rng_state copies between
  // device and host with a synchronous cudaMemcpy (YAML `rng_state_bytes`; default 0 = none): PyTorch
  // <= 1.1 keeps 200 MTGP32 generator states on the device (aten/src/THC/THCTensorRandom.cu
  // THCRandom_getRNGState / setRNGState: cudaMemcpy of MAX_NUM_BLOCKS x sizeof(curandStateMtgp32);
  // 824016-byte state, pytorch/pytorch#20843), removed by pytorch/pytorch#20886 (May 2019). The 2019
  // Megatron-LM RNG tracker and checkpoint copy it 4 + 4 times per layer (strategies/layer_cost.cpp).
  double rng_state_bytes = 0;
  // Bytes the stack's optimizer step moves per parameter of the GPU's shard (YAML
  // `optimizer_bytes_per_param`; 0 = the estimator's fused default, EstimatorOptions, 32 B). The 2019
  // Megatron-LM fp16 path runs one unfused pass per check and copy (fp16/fp16.py, fp16/loss_scaler.py,
  // mpu/grads.py @a1d04b79; the count is in configs/stacks/megatron-lm-2019.yaml).
  double optimizer_bytes_per_param = 0;
  // Extra memory-bound passes per transformer layer over activation-sized tensors (b x s x h elements of
  // the compute dtype; each pass reads or writes one such tensor once), beyond the fused element-wise
  // model of strategies/layer_cost.cpp, in forward (`activation_passes_fwd`) and backward
  // (`activation_passes_bwd`); 0 = none. llm-foundry's flash_attn_fn unpads Q, K, V and pads the output
  // around the varlen FlashAttention kernel (llmfoundry/models/layers/attention.py @5e85bd62; the count is
  // in configs/stacks/llm-foundry-fsdp.yaml).
  double activation_passes_fwd = 0;
  double activation_passes_bwd = 0;
  // Bytes moved per logit element (b x s x vocab/tp) and microbatch by the stack's training metrics,
  // computed on the forward's logits outside autograd after each microbatch's backward (0 = none).
  // Composer + llm-foundry compute LanguageCrossEntropy and LanguagePerplexity every microbatch
  // (composer/trainer/trainer.py v0.17.2 _train_microbatch -> _eval_train_metrics; the count is in
  // configs/stacks/llm-foundry-fsdp.yaml).
  double metric_logit_bytes = 0;
  // Full recompute stops once every tensor the backward needs is recomputed (torch.utils.checkpoint
  // non-reentrant "early stop", the default since PyTorch 2.1: pytorch/pytorch#96866): a block whose
  // last saved tensor is the MLP output projection's input skips that GEMM and the residual add after
  // it (strategies/layer_cost.cpp). false = the whole forward is recomputed (reentrant checkpoint,
  // Megatron's CheckpointFunction).
  bool recompute_early_stop = false;
  // What "selective" recompute keeps (YAML `selective_recompute`): `attention` (default) is Korthikanti
  // et al. 2022's selective recompute, which reruns only the attention core (nothing with flash attention);
  // `op_every_second_mm` is torchtitan's op-level selective AC (torchtitan/parallelisms/parallelize_llama.py
  // @d4c86e37 `_custom_policy`: "Saves output of all compute ops, except every second mm"): of a block's
  // seven matmuls (wq, wk, wv, wo, w1, w3, w2) the outputs of wk, wo and w3 are recomputed, and every op
  // outside the save list (norms, rotary, SwiGLU, residual adds, the TP all-gathers) reruns too; the block
  // keeps its input and the outputs of wq, wv, SDPA, w1 and w2 (strategies/layer_cost, strategies/memory).
  bool selective_op_sac = false;
  // ZeRO-3 under pipeline parallelism keeps the gathered parameters for the whole step and syncs gradients
  // once (YAML `pp_fsdp_unsharded`): torchtitan's apply_fsdp (parallelize_llama.py @d4c86e37) "For PP, do not
  // reshard after forward to avoid per-microbatch all-gathers" (reshard_after_forward=False), and
  // torch.distributed.pipelining defers gradient sync and reshard to the last microbatch; costed as ZeRO-1.
  bool pp_fsdp_unsharded = false;
  // Under fp8 the LM head (output projection) runs fp8 too (YAML `fp8_lm_head`, default true). Both known
  // fp8 recipes leave it 16-bit: Megatron-Core's output_layer is tensor_parallel.ColumnParallelLinear, not a
  // Transformer Engine module (gpt_model.py), and torchtitan swaps to Float8Linear with
  // module_filter_fn=lambda mod, fqn: fqn != "output" (torchtitan/float8.py @d4c86e37).
  bool fp8_lm_head = true;
  // Scalar metric states synchronized over all ranks at the end of every step (0 = none), each with a
  // barrier (an all-reduce of one element) and an all-gather of one element per rank: torchmetrics'
  // Metric.compute -> _sync_dist -> gather_all_tensors (src/torchmetrics/utilities/distributed.py
  // v1.0.3), which Composer calls for every train metric after every batch (strategies::metric_sync_s).
  double metric_sync_states = 0;
  // Host (CPU) time per parameter tensor of the stack's per-tensor optimizer loops (YAML
  // `optimizer_host_us_per_tensor`; default 0 = none): eager Python loops that dispatch one op after
  // another on each tensor (the 2019 Megatron-LM fp16 path: fp16/fp16.py, fp16/loss_scaler.py,
  // mpu/grads.py @a1d04b79; the count is in configs/stacks/megatron-lm-2019.yaml). The optimizer step
  // takes the longer of this host time and the device's stream time (Estimator::optimizer_time).
  double optimizer_host_s_per_tensor = 0;
  // Parameter tensors per transformer layer in the stack's modules (YAML `param_tensors_per_layer`;
  // read only with optimizer_host_us_per_tensor), e.g. 12 in 2019 Megatron-LM's GPT2ParallelTransformerLayer.
  double param_tensors_per_layer = 0;
  // FP8 through Transformer Engine (docs/accuracy-acc9.md, strategies/fp8_cast.hpp). The norm before
  // QKV and FC1 is TE's LayerNormLinear, whose norm kernel writes the GEMM input in fp8 (YAML
  // `fp8_norm_fused_cast`; Megatron-Core's TELayerNormColumnParallelLinear); false = a separate cast.
  bool fp8_norm_fused_cast = false;
  // The fp8 weights (and their transposes) are cast once per step and reused by the other
  // microbatches (YAML `fp8_weight_cache`; TE `is_first_microbatch`, which Megatron-Core sets on the
  // first microbatch of every step); false = TE's default `is_first_microbatch=None`, a cast per microbatch.
  bool fp8_weight_cache = false;
  // Megatron-Core DDP bucket size in parameters: max(dp_bucket_min_params, dp_bucket_params_per_dp_rank x dp)
  // (megatron/core/distributed/distributed_data_parallel.py core_r0.8.0: "max(40000000, 1000000 *
  // parallel_state.get_data_parallel_world_size())"); 0 = no bucket model. The bucket that holds the word
  // embedding is reduce-scattered last (buckets are filled in reverse parameter order, param_and_grad_buffer.py)
  // and all-gathered first (distrib_optimizer.py zero_grad dispatches all-gather 0 "before forward compute is
  // initiated"): that bucket's reduce-scatter and all-gather stay exposed however long the overlap windows are.
  double dp_bucket_min_params = 0;
  double dp_bucket_params_per_dp_rank = 0;
  // The interleaved schedule syncs each model chunk's gradients after that chunk's last backward (YAML
  // `dp_chunk_sync: true`; default false = the whole stage's reduction under the last microbatch's backward):
  // megatron/core/pipeline_parallel/schedules.py core_r0.8.0 (analytic::dp_window_scale).
  bool dp_chunk_sync = false;
  // Passes over the DP gradient buffer (gradient_reduce bytes per element) the stack's DDP runs on the
  // compute stream every step with dp > 1 (YAML `ddp_grad_passes`; 0 = none), e.g. Megatron-Core's
  // zero_grad_buffer (grad_data.zero_()) and, per bucket before its collective, the NaN check's norm and the
  // 1/dp scaling (param_and_grad_buffer.py core_r0.8.0; the count is in configs/stacks/megatron-core-2024.yaml).
  double ddp_grad_passes = 0;
  // Bytes moved per word-embedding parameter on this rank (vocab/tp x hidden) and microbatch by the dense
  // embedding gradient and its accumulation into the main gradient (YAML `embedding_grad_bytes_per_param`;
  // 0 = none): F.embedding's backward (sparse=False) zero-fills a dense vocab/tp x h gradient and the DDP's
  // param hook adds it to the fp32 main_grad (Megatron-Core core_r0.8.0 tensor_parallel/layers.py
  // VocabParallelEmbedding, distributed_data_parallel.py param_hook; count in configs/stacks/megatron-core-2024.yaml).
  double embedding_grad_bytes_per_param = 0;
  // Bytes moved per logit element (b x s x vocab/tp) by the stack's cross-entropy in forward and backward
  // (0 = the estimator's default: 12 B forward, 4 + e B backward, strategies/layer_cost.cpp head_cost).
  // Megatron-Core's unfused vocab-parallel cross-entropy (the count is in configs/stacks/megatron-core-2024.yaml).
  double ce_logit_bytes_fwd = 0;
  double ce_logit_bytes_bwd = 0;
  // Bytes per logit element (b x s x vocab/tp) held at the cross-entropy's memory peak on the last stage,
  // on top of the saved activations (YAML `ce_logit_peak_bytes`; default 4: the fp32 logits). torchtitan's
  // eager loss `cross_entropy(pred.flatten(0, 1).float(), labels)` peaks at the start of its backward with the
  // saved log_softmax output, nll_loss's gradient and log_softmax's input gradient, all fp32: 12
  // (count in configs/stacks/torchtitan-fsdp2.yaml).
  double ce_logit_peak_bytes = 4;
};

// Where checkpoints go (issue 19): the shared file system's aggregate write/read bandwidth and each
// node's own link to it. A checkpoint moves at min(aggregate, nodes x per node).
struct Storage {
  double write_Bps = 0;     // aggregate write (0: not given = nodes x per_node_Bps)
  double read_Bps = 0;      // aggregate read (0: not given = nodes x per_node_Bps)
  double per_node_Bps = 0;  // one node to the storage, per direction
};

struct Cluster {
  std::string name;
  Device device;
  int gpus_per_node = 8;
  IntraLink intra;
  Network net;
  Host host;
  Software sw;
  double price_usd_per_gpu_hour = 0;
  double power_W_per_gpu = 0;
  Storage storage;           // issue 19
  std::string failures;      // failure profile (configs/failures/<name>.yaml); "" = the default profile
};

Cluster parse_cluster(const std::string& text, const std::string& file);
Cluster load_cluster(const std::string& spec);

}  // namespace scaleplan::hw
