#pragma once
// Serving cost model (issue 20; docs/serve.md): memory per GPU (weights, KV cache, activations, buffers) and
// time (prefill, decode, TP/PP/EP communication) of one serving layout, and continuous batching as a
// steady-state model. Closed form; ServeModel::evaluate allocates nothing (the search calls it ~10^6 times/s).
#include <array>
#include <string>

#include "hardware/cluster.hpp"
#include "model/model.hpp"

namespace scaleplan::serve {

// How weights, KV cache and GEMMs are stored and computed (a registry, `precision_spec`).
//  bf16: weights, KV and GEMMs in bf16.
//  fp8:  FP8 weights (W8A8, e4m3) and FP8 KV cache, GEMMs at the FP8 rate (TensorRT-LLM / ModelOpt FP8 checkpoints,
//        hf_quant_config quant_algo FP8 + kv_cache_quant_algo FP8).
//  int8: weight-only INT8 (W8A16): weights 1 B, dequantized into bf16 GEMMs, bf16 KV (TensorRT-LLM "INT8 weight-only").
//  int4: weight-only INT4 (W4A16, AWQ/GPTQ): weights 0.5 B, bf16 GEMMs, bf16 KV (Lin et al. 2024 AWQ).
// Quantized checkpoints quantize the linear layers only and keep the word embedding, the LM head and the norms in
// 16 bits (`unquantized_bytes`): DeepSeek-V3 report sec. 3.3.1 ("we retain the original precision (e.g., BF16 or
// FP32) for ... the embedding module, the output head ... normalization operators"); ModelOpt FP8 checkpoints list
// lm_head in exclude_modules, and TensorRT-LLM logs "Rank 0 uses 8.46 GB for model weights" for
// nvidia/Llama-3.1-8B-Instruct-FP8 (TensorRT-LLM issue #6294) = 6.98e9 FP8 linear weights + 1.05e9 bf16 embedding
// and head parameters = 9.08e9 B = 8.46 GiB.
struct PrecisionSpec {
  const char* name;
  double weight_bytes;
  double kv_bytes;
  hw::Dtype compute;
  double unquantized_bytes;
};
// Throws UsageError naming `flag` for an unknown name.
const PrecisionSpec& precision_spec(const std::string& name, const std::string& flag = "--precision");
// "bf16" for 16/32-bit checkpoints, "fp8" for 8-bit (DeepSeek-V3 ships FP8), "int4" for 4-bit.
std::string default_precision(const model::ModelSpec& m);

struct Request {
  long long prompt_tokens = 0;  // P, input length per request
  long long output_tokens = 0;  // O, generated tokens per request
};

// Serving-stack knobs (defaults: TensorRT-LLM; each cited where it is used in serve.cpp).
struct StackOptions {
  double kv_fraction = 0.90;       // share of the memory left after weights and activations given to the KV cache
  int kv_block_tokens = 32;        // paged-KV block (TensorRT-LLM tokens_per_block 32; vLLM block_size 16)
  long long max_num_tokens = 8192; // tokens per engine iteration (prefill chunk budget)
  long long max_batch = 2048;      // sequences in flight per replica (TensorRT-LLM LlmArgs max_batch_size)
  // Communication buffers outside the KV pool when a replica spans > 1 GPU (NCCL communicators, custom all-reduce
  // workspaces). TensorRT-LLM's KvCacheCreator (tensorrt_llm/_torch/pyexecutor/_util.py) sizes the pool as
  // kv_fraction x (total - peak), peak = weights + activations + the memory "used outside torch (e.g., NCCL and
  // CUDA graphs)", so this memory comes off before the fraction. Value: the TP2 - TP1 increment of non-torch memory
  // measured on H100 80GB with Llama 3 8B (vLLM PR #10511 log: 1.79 GiB at TP1, 3.58 GiB at TP2); assumed flat
  // beyond TP2 (not measured). The single-GPU share (CUDA context, workspaces) is left inside the (1 - kv_fraction)
  // reserve: TensorRT-LLM v0.9 held Llama 2 7B FP8 at batch 120 x 2176 tokens on one H100
  // (validation/serve_runs_trtllm090.yaml), which a further 1.79 GiB would not fit.
  double comm_bytes = 1.79 * 1073741824.0;
  // CUDA-graph decode batch sizes: a decode-only iteration runs padded up to the smallest captured size >= its
  // batch; sizes above min(max_batch, max_num_tokens) are replaced by that bound (serve.cpp padded_decode_rows;
  // TensorRT-LLM cuda_graph_runner.py _get_padded_batch, model_engine.py _filter_cuda_graph_batch_sizes; the perf-overview
  // llm_options.yml: cuda_graph_config enable_padding true, batch_sizes 1 ... 8192). Padding rows cost GEMM,
  // all-reduce and LM-head work, not attention (the dummy request holds one KV block). graph_batch_count 0: none.
  std::array<long long, 15> graph_batches = {1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096, 8192};
  int graph_batch_count = 15;
};

// One layout: tp x pp GPUs per replica (ep of the tp GPUs hold disjoint experts), dp replicas,
// `batch` sequences in flight per replica.
struct Layout {
  int tp = 1, pp = 1, ep = 1, dp = 1;
  long long batch = 1;
  int gpus() const { return tp * pp * dp; }
};

enum class Verdict { ok = 0, out_of_memory, ttft_slo, tpot_slo };
const char* verdict_name(Verdict v);

struct Memory {  // bytes per GPU, the most-loaded pipeline stage
  double weights = 0, kv_cache = 0, activations = 0, buffers = 0, capacity = 0;
  double total() const { return weights + kv_cache + activations + buffers; }
};
struct Latency {
  double ttft_s = 0, tpot_s = 0, e2e_s = 0;
  double prefill_s = 0;      // one prefill pass of the admitted prompts through all stages
  double decode_step_s = 0;  // one decode iteration of the whole batch, prefill stalls excluded
};
struct Throughput {
  double tokens_per_s_per_gpu = 0;  // output tokens
  double usd_per_m_tokens = 0;      // per million output tokens at the cluster's price
  double requests_per_s = 0;        // all replicas
};
struct Result {
  Layout layout;
  Verdict verdict = Verdict::ok;
  bool feasible() const { return verdict == Verdict::ok; }
  Memory memory;
  Latency latency;
  Throughput throughput;
  long long max_batch_fit = 0;  // the largest batch per replica whose KV cache fits this layout
};

struct Slo {
  double ttft_s = 0, tpot_s = 0;  // 0 = none
};

// Per-model, per-cluster, per-request tables computed once; evaluate() is arithmetic only.
class ServeModel {
 public:
  ServeModel(const model::ModelSpec& m, const hw::Cluster& c, const PrecisionSpec& prec, const Request& req,
             const StackOptions& opt = {});
  Result evaluate(const Layout& l, const Slo& slo = {}) const;

  // Pieces (public for tests and the search's batch bound).
  double weights_per_gpu(const Layout& l) const;                    // bytes
  double kv_bytes_per_token(const Layout& l) const;                 // bytes per GPU per cached token
  long long max_batch(const Layout& l) const;                       // KV-limited, per replica (0: weights do not fit)
  double decode_stage_s(const Layout& l, double seqs, double ctx) const;   // one decode pass of one stage
  double prefill_stage_s(const Layout& l, double seqs, double prompt) const;
  long long prefill_batch(const Layout& l) const;                   // prompts per prefill pass
  double padded_decode_rows(double seqs) const;                     // the CUDA-graph batch a decode pass runs at
  double reserved_bytes(const Layout& l) const;                     // communication buffers per GPU (comm_bytes)
  const model::ModelSpec& model() const { return m_; }
  const hw::Cluster& cluster() const { return c_; }
  const PrecisionSpec& precision() const { return prec_; }
  const Request& request() const { return req_; }
  const StackOptions& options() const { return opt_; }

 private:
  struct StageShape {
    double dense_layers = 0, moe_layers = 0;  // on the most-loaded stage
    bool embedding = true, head = true;
  };
  StageShape stage(const Layout& l) const;
  double activations_per_gpu(const Layout& l) const;
  double layer_time_s(const Layout& l, bool moe, double tokens, double seqs, double ctx, bool prefill) const;
  double tp_all_reduce_s(const Layout& l, double bytes) const;

  model::ModelSpec m_;
  hw::Cluster c_;
  PrecisionSpec prec_;
  Request req_;
  StackOptions opt_;
  // Tables (parameters; bytes per element in prec_).
  double attn_params_ = 0, dense_mlp_params_ = 0, expert_params_ = 0, router_params_ = 0;
  double embed_params_ = 0, head_params_ = 0, norm_params_ = 0;
  double kv_elems_ = 0;          // per token per layer
  double attn_core_dim_ = 0;     // prefill: heads x (d_qk + d_v); causal attention FLOPs = P^2 x this per sequence
  double decode_attn_dim_ = 0;   // decode: FLOPs = 2 x context x this per token (MLA: the absorbed latent form)
  double dense_layers_ = 0, moe_layers_ = 0;
  double act_bytes_ = 2;         // activations in bf16 (fp8 GEMMs take bf16 activations and quantize on the fly)
};

}  // namespace scaleplan::serve
