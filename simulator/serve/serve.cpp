#include "simulator/serve/serve.hpp"

#include <algorithm>
#include <cmath>

#include "common/errors.hpp"
#include "hardware/collectives.hpp"

namespace scaleplan::serve {

namespace {

// The precision registry (serve.hpp documents each entry and its source).
constexpr PrecisionSpec kPrecisions[] = {
    {"bf16", 2.0, 2.0, hw::Dtype::bf16, 2.0},
    {"fp8", 1.0, 1.0, hw::Dtype::fp8, 2.0},
    {"int8", 1.0, 2.0, hw::Dtype::bf16, 2.0},
    {"int4", 0.5, 2.0, hw::Dtype::bf16, 2.0},
};

double ceil_div(double a, double b) { return std::ceil(a / b); }

// A grouped GEMM (MoE experts): the device's saturating efficiency curve (hardware/device.hpp, the same
// curve the training estimator uses) evaluated at the work of ONE expert's GEMM, applied to all of them.
double grouped_gemm_s(const hw::Device& d, double flops, double flops_per_gemm, double bytes, hw::Dtype dt) {
  if (flops <= 0) return 0;
  const double eff = d.eff.gemm_max * flops_per_gemm / (flops_per_gemm + d.eff.gemm_half_flop);
  return std::max(flops / (d.peak(dt) * eff), bytes / (d.hbm_bw_Bps * d.eff.mem_bw)) + d.eff.kernel_overhead_s;
}

}  // namespace

const PrecisionSpec& precision_spec(const std::string& name, const std::string& flag) {
  for (const PrecisionSpec& p : kPrecisions)
    if (name == p.name) return p;
  throw UsageError(flag + " must be bf16, fp8, int8 or int4 (got '" + name + "')");
}

std::string default_precision(const model::ModelSpec& m) {
  return m.weight_bits <= 4 ? "int4" : m.weight_bits <= 8 ? "fp8" : "bf16";
}

const char* verdict_name(Verdict v) {
  static const char* n[] = {"", "out of memory: weights, activations and the KV cache of the batch exceed the GPU",
                            "time to first token exceeds --ttft-slo-ms", "time per output token exceeds --tpot-slo-ms"};
  return n[static_cast<int>(v)];
}

ServeModel::ServeModel(const model::ModelSpec& m, const hw::Cluster& c, const PrecisionSpec& prec, const Request& req,
                       const StackOptions& opt)
    : m_(m), c_(c), prec_(prec), req_(req), opt_(opt) {
  attn_params_ = m.attn_weight_params() + m.attn_bias_params();
  dense_mlp_params_ = m.mlp_weight_params() + m.mlp_bias_params();
  expert_params_ = m.moe.enabled() ? m.expert_mlp_params() + m.mlp_bias_params() : 0;
  router_params_ = m.router_params();
  embed_params_ = m.embedding_params();
  head_params_ = m.tied_embeddings ? m.embedding_params() : m.lm_head_params();  // tied: the head reads the embedding
  norm_params_ = m.norm_params();
  kv_elems_ = m.kv_elems_per_token_layer();
  moe_layers_ = static_cast<double>(m.moe_layers());
  dense_layers_ = static_cast<double>(m.layers) - moe_layers_;
  if (m.mla.enabled()) {
    // Prefill (DeepSeek-V2 sec. 2.1.2, K/V decompressed): QK^T over d_nope + d_rope, PV over d_v, per head.
    attn_core_dim_ = static_cast<double>(m.heads) * (m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim + m.mla.v_head_dim);
    // Decode with W^UK / W^UV absorbed (DeepSeek-V2 sec. 2.1.2 "absorbed into W^Q ... W^O"): scores over the
    // latent + rope key (d_c + d_R), values over the latent (d_c), per head.
    decode_attn_dim_ = static_cast<double>(m.heads) * (2.0 * m.mla.kv_lora_rank + m.mla.qk_rope_head_dim);
  } else {
    attn_core_dim_ = 2.0 * static_cast<double>(m.heads) * m.head_dim();  // d_qk + d_v = 2 d_head
    decode_attn_dim_ = attn_core_dim_;
  }
}

ServeModel::StageShape ServeModel::stage(const Layout& l) const {
  // The most-loaded stage: ceil(L/pp) layers, as many of them MoE as the model has (DeepSeek's 3 dense
  // layers sit on the first stage; every later stage is all-MoE).
  StageShape s;
  const double per = ceil_div(static_cast<double>(m_.layers), l.pp);
  s.moe_layers = std::min(moe_layers_, per);
  s.dense_layers = per - s.moe_layers;
  s.embedding = l.pp == 1;  // with pp > 1 the embedding and the head sit on different stages
  s.head = true;
  return s;
}

double ServeModel::weights_per_gpu(const Layout& l) const {
  const StageShape s = stage(l);
  const double tp = l.tp;
  // Megatron tensor parallelism (Shoeybi et al. 2019 sec. 3): attention and MLP matrices split tp ways, norms
  // replicated; vocab-parallel embedding and head. Experts: ep groups of whole experts, each sliced tp/ep ways
  // (TensorRT-LLM moe_tp_size x moe_ep_size = tp_size), i.e. (experts + shared) expert_params / tp per GPU.
  const double moe_layer = attn_params_ / tp + (m_.moe.experts + m_.moe.shared_experts) * expert_params_ / tp + router_params_;
  const double dense_layer = attn_params_ / tp + dense_mlp_params_ / tp;
  // Word embedding and LM head (vocab-parallel), with the final norm on the last stage; with pp > 1 they sit
  // on different stages and the most-loaded stage holds the larger.
  const double own_head = (m_.tied_embeddings ? 0 : head_params_) / tp + m_.final_norm_params();
  const double words = s.embedding ? embed_params_ / tp + own_head : std::max(embed_params_ / tp, own_head);
  const double linears = s.dense_layers * dense_layer + s.moe_layers * moe_layer;
  const double others = (s.dense_layers + s.moe_layers) * norm_params_ + words;  // embedding, head, norms: 16-bit
  return linears * prec_.weight_bytes + others * prec_.unquantized_bytes;       // (serve.hpp PrecisionSpec)
}

double ServeModel::kv_bytes_per_token(const Layout& l) const {
  const StageShape s = stage(l);
  // GQA/MQA: KV heads split over tp, replicated when tp > kv_heads (vLLM/TensorRT-LLM replicate KV heads).
  // MLA: the latent is shared by all heads, so every TP rank keeps the whole latent (vLLM MLA backend).
  const double split = m_.mla.enabled() ? 1.0 : std::min<double>(l.tp, static_cast<double>(m_.kv_heads));
  return kv_elems_ * (s.dense_layers + s.moe_layers) * prec_.kv_bytes / split;
}

double ServeModel::activations_per_gpu(const Layout& l) const {
  // Inference keeps no activations for a backward pass: the peak is one layer's live tensors for the largest
  // iteration (llm-analysis, Li 2023, inference activation memory per layer), i.e. max_num_tokens tokens
  // (TensorRT-LLM sizes its activation buffers by max_num_tokens): residual + norm output (2h), the QKV output
  // and the MLP intermediate split over tp; plus fp32 logits of one row per sequence of the largest batch.
  const double T = static_cast<double>(opt_.max_num_tokens);
  const double h = m_.hidden;
  const double qkv = m_.mla.enabled() ? static_cast<double>(m_.heads) * (m_.mla.qk_nope_head_dim + m_.mla.qk_rope_head_dim + m_.mla.v_head_dim)
                                      : h + 2.0 * m_.kv_dim();
  const double ffn = m_.moe.enabled() ? std::max<double>(m_.ffn, (m_.moe.top_k + m_.moe.shared_experts) *
                                                                       static_cast<double>(m_.moe.expert_ffn > 0 ? m_.moe.expert_ffn : m_.ffn))
                                      : static_cast<double>(m_.ffn);
  const double per_token = 2 * h + qkv / l.tp + (m_.mlp_matrices() - 1) * ffn / l.tp;
  const double logits = static_cast<double>(std::min(opt_.max_batch, opt_.max_num_tokens)) * m_.vocab / l.tp * 4.0;
  return T * per_token * act_bytes_ + logits;
}

double ServeModel::reserved_bytes(const Layout& l) const {
  // Memory outside the KV pool and the activations (StackOptions::comm_bytes: TensorRT-LLM KvCacheCreator's
  // non-torch share): communication buffers once the replica spans more than one GPU.
  return l.tp * l.pp > 1 ? opt_.comm_bytes : 0.0;
}

double ServeModel::padded_decode_rows(double seqs) const {
  // TensorRT-LLM _get_padded_batch pads to the smallest captured CUDA-graph batch >= seqs. The captured sizes are
  // the listed ones <= cap = min(max_batch, max_num_tokens), plus cap itself when padding is on and a listed size
  // exceeds it (model_engine.py _filter_cuda_graph_batch_sizes, PR #4843 "Include the executor's max batch size in
  // CUDA graph batch size list"); a batch above every captured size runs unpadded (eager).
  const double cap = static_cast<double>(std::min(opt_.max_batch, opt_.max_num_tokens));
  for (int i = 0; i < opt_.graph_batch_count; ++i) {
    const double g = static_cast<double>(opt_.graph_batches[i]);
    if (g >= seqs) return g <= cap ? g : (seqs <= cap ? cap : seqs);
  }
  return seqs;
}

long long ServeModel::max_batch(const Layout& l) const {
  const double cap = c_.device.hbm_bytes;
  const double free_b = cap - weights_per_gpu(l) - activations_per_gpu(l) - reserved_bytes(l);
  if (free_b <= 0) return 0;
  // Paged KV (Kwon et al. 2023 PagedAttention sec. 4.1): a sequence holds ceil(tokens / block) blocks.
  const double blocks = ceil_div(static_cast<double>(req_.prompt_tokens + req_.output_tokens), opt_.kv_block_tokens);
  const double per_seq = blocks * opt_.kv_block_tokens * kv_bytes_per_token(l);
  // TensorRT-LLM kv_cache_free_gpu_mem_fraction (default 0.9): the KV pool is that share of the free memory.
  return static_cast<long long>(std::floor(opt_.kv_fraction * free_b / per_seq));
}

double ServeModel::tp_all_reduce_s(const Layout& l, double bytes) const {
  if (l.tp <= 1) return 0;
  const hw::Group g = hw::make_group(c_, l.tp, 1);
  const double nccl = hw::collective_time(c_, hw::Coll::all_reduce, bytes, g);
  if (g.nodes > 1) return nccl;
  // Small messages: the custom one-shot all-reduce of TensorRT-LLM / vLLM (csrc/custom_all_reduce.cuh): each rank
  // reads its tp-1 peers' buffers over NVLink after one flag barrier: 2 alpha + (tp-1) B / bw.
  const double one_shot = 2 * c_.intra.latency_s + (l.tp - 1) * bytes / hw::intra_bw(c_);
  return std::min(nccl, one_shot);
}

// One transformer layer on one GPU: `tokens` rows through the linears; attention over `ctx` cached tokens per
// sequence (decode) or causal over the prompt (prefill, ctx = prompt length).
double ServeModel::layer_time_s(const Layout& l, bool moe, double tokens, double seqs, double ctx, bool prefill) const {
  const hw::Device& d = c_.device;
  const hw::Dtype dt = prec_.compute;
  const double tp = l.tp, w = prec_.weight_bytes, a = act_bytes_, h = m_.hidden;
  // Linears: 2 FLOPs per weight per token (Kaplan et al. 2020 sec. 2.1); bytes = weights once + activations in/out.
  // Attention projections as two GEMMs (QKV, O), split by their weight counts.
  const double o_share = (m_.mla.enabled() ? static_cast<double>(m_.heads) * m_.mla.v_head_dim : h) * h / attn_params_;
  const double attn_w = attn_params_ / tp;
  double t = 0;
  for (double share : {1.0 - o_share, o_share})
    t += d.gemm_time(2 * tokens * attn_w * share, attn_w * share * w + 2 * tokens * h * a / tp, dt);
  // Attention core: FlashAttention/FMHA at the device's fused-attention efficiency, or the KV read time.
  const double split = m_.mla.enabled() ? 1.0 : std::min<double>(tp, static_cast<double>(m_.kv_heads));
  if (prefill) {
    // Causal: half of the s x s score matrix (FlashAttention-2, Dao 2023, sec. 3 FLOPs count 4 s^2 d / 2 per head).
    const double flops = seqs * ctx * ctx * attn_core_dim_ / tp;
    const double kv_write = tokens * kv_elems_ * prec_.kv_bytes / split;
    t += std::max(d.flash_time(flops, dt), d.stream_time(kv_write));
  } else {
    // Decode: each query reads its sequence's whole KV cache (memory-bound: LLM-Viewer, Yuan et al. 2024, sec. 3).
    const double flops = 2 * seqs * ctx * decode_attn_dim_ / tp;
    const double kv_read = seqs * ctx * kv_elems_ * prec_.kv_bytes / split;
    t += std::max(d.flash_time(flops, dt), d.stream_time(kv_read));
  }
  const double up_share = (m_.mlp_matrices() - 1.0) / m_.mlp_matrices();
  if (!moe) {
    const double mlp_w = dense_mlp_params_ / tp;
    for (double share : {up_share, 1.0 - up_share})
      t += d.gemm_time(2 * tokens * mlp_w * share, mlp_w * share * w + tokens * h * a / tp, dt);
  } else {
    // Routed experts under uniform routing: the expected share of the E experts hit by at least one of the
    // tokens' top_k choices is 1 - (1 - k/E)^tokens (balls into bins); only those experts' weights are read.
    const double E = m_.moe.experts, k = m_.moe.top_k, sh = m_.moe.shared_experts;
    const double hit = 1.0 - std::pow(1.0 - k / E, tokens);
    const double slice = tp / l.ep;  // each expert sliced tp/ep ways
    const double expert_bytes = (E * hit + sh) * expert_params_ / tp * w;
    const double flops = 2 * tokens * (k + sh) * expert_params_ / tp;
    const double flops_one = 2 * std::max(1.0, tokens * k / E) * expert_params_ / slice;  // one expert's GEMM
    for (double share : {up_share, 1.0 - up_share})
      t += grouped_gemm_s(d, flops * share, flops_one * share, expert_bytes * share, dt);
    t += d.gemm_time(2 * tokens * router_params_, router_params_ * w, dt);
    if (l.ep > 1) {
      // Expert parallelism: dispatch and combine all-to-alls of the routed copies (GShard, Lepikhin et al. 2020
      // sec. 2.2; DeepSpeed-MoE inference): top_k x tokens/ep rows of h per GPU each way.
      const hw::Group ge = hw::make_group(c_, l.ep, 1);
      t += 2 * hw::collective_time(c_, hw::Coll::all_to_all, tokens / l.ep * k * h * a, ge);
    }
  }
  // Two all-reduces per layer (Megatron, Shoeybi et al. 2019 sec. 3: after attention and after the MLP).
  t += 2 * tp_all_reduce_s(l, tokens * h * a);
  return t;
}

double ServeModel::decode_stage_s(const Layout& l, double seqs, double ctx) const {
  const StageShape s = stage(l);
  // Linears, all-reduces and the LM head run the CUDA-graph padded rows; attention only the real sequences.
  const double rows = padded_decode_rows(seqs);
  double t = 0;
  if (s.dense_layers > 0) t += s.dense_layers * layer_time_s(l, false, rows, seqs, ctx, false);
  if (s.moe_layers > 0) t += s.moe_layers * layer_time_s(l, true, rows, seqs, ctx, false);
  // LM head on the last stage: one logits row per sequence (vocab-parallel), 16-bit weights (serve.hpp).
  const double hw_ = head_params_ / l.tp;
  t += c_.device.gemm_time(2 * rows * hw_, hw_ * prec_.unquantized_bytes, prec_.compute);
  return t;
}

double ServeModel::prefill_stage_s(const Layout& l, double seqs, double prompt) const {
  const StageShape s = stage(l);
  const double tokens = seqs * prompt;
  double t = 0;
  if (s.dense_layers > 0) t += s.dense_layers * layer_time_s(l, false, tokens, seqs, prompt, true);
  if (s.moe_layers > 0) t += s.moe_layers * layer_time_s(l, true, tokens, seqs, prompt, true);
  const double hw_ = head_params_ / l.tp;  // logits of the last prompt token only
  t += c_.device.gemm_time(2 * seqs * hw_, hw_ * prec_.unquantized_bytes, prec_.compute);
  return t;
}

long long ServeModel::prefill_batch(const Layout& l) const {
  // Prompts per prefill pass: as many whole prompts as fit in max_num_tokens (TensorRT-LLM inflight batching
  // scheduler), at least one (a longer prompt is chunked: the same work in several passes).
  const long long fit = std::max<long long>(1, opt_.max_num_tokens / std::max<long long>(1, req_.prompt_tokens));
  return std::min(fit, std::max<long long>(1, l.batch));
}

Result ServeModel::evaluate(const Layout& l, const Slo& slo) const {
  Result r;
  r.layout = l;
  const double B = static_cast<double>(l.batch), P = static_cast<double>(req_.prompt_tokens), O = static_cast<double>(req_.output_tokens);
  // --- memory (per GPU, most-loaded stage)
  Memory& mem = r.memory;
  mem.capacity = c_.device.hbm_bytes;
  mem.weights = weights_per_gpu(l);
  mem.activations = activations_per_gpu(l);
  const double kv_tok = kv_bytes_per_token(l);
  mem.kv_cache = B * (P + O) * kv_tok;  // peak: every sequence at its full length
  const double blocks = ceil_div(P + O, opt_.kv_block_tokens) * opt_.kv_block_tokens;
  const double reserved = reserved_bytes(l);
  const double free_b = std::max(0.0, mem.capacity - mem.weights - mem.activations - reserved);
  // Buffers: the communication buffers outside torch (NCCL, all-reduce workspaces) + the (1 - kv_fraction) share of
  // the rest the engine leaves out of its KV pool (workspaces, CUDA graphs, allocator) + the unused tail of each
  // sequence's last KV block.
  mem.buffers = reserved + (1.0 - opt_.kv_fraction) * free_b + B * (blocks - (P + O)) * kv_tok;
  r.max_batch_fit = max_batch(l);
  // --- time: continuous batching in steady state (Orca, Yu et al. 2022; vLLM): B sequences in flight per
  // replica, spread uniformly over their O decode steps, so the mean context is P + O/2 and B/O new prompts
  // are prefilled per decode iteration. Pipeline: pp micro-batches of ceil(B/pp) sequences keep every stage busy.
  const double b = std::ceil(B / l.pp);
  const double ctx = P + O / 2;
  const double a = act_bytes_, h = m_.hidden;
  const hw::Group g_pp = hw::make_group(c_, 2, l.tp);
  auto hop = [&](double rows) { return l.pp > 1 ? hw::collective_time(c_, hw::Coll::send_recv, rows * h * a, g_pp) : 0.0; };
  const double t_decode = l.pp * (decode_stage_s(l, b, ctx) + hop(b));
  const double bp = static_cast<double>(prefill_batch(l));
  const double t_pf_stage = prefill_stage_s(l, bp, P) + hop(bp * P);  // each stage's busy time per prefill pass
  const double pf_per_seq = t_pf_stage / bp;
  const double t_iter = t_decode + B / O * pf_per_seq;  // all work of one iteration, prefill amortized
  Latency& lat = r.latency;
  lat.decode_step_s = t_decode;
  lat.prefill_s = l.pp * t_pf_stage;
  // A sequence's own prefill is its TTFT; the other B-1 sequences' prefills stall its decode steps.
  lat.tpot_s = t_decode + (B - 1) / O * pf_per_seq;
  lat.ttft_s = lat.prefill_s + (l.batch > 1 ? 0.5 * t_decode : 0.0);  // + mean wait for the running iteration
  lat.e2e_s = lat.ttft_s + (O - 1) * lat.tpot_s;
  const double replica_gpus = static_cast<double>(l.tp) * l.pp;
  r.throughput.tokens_per_s_per_gpu = B / t_iter / replica_gpus;
  r.throughput.requests_per_s = l.dp * B / t_iter / O;
  r.throughput.usd_per_m_tokens = c_.price_usd_per_gpu_hour / 3600.0 / r.throughput.tokens_per_s_per_gpu * 1e6;
  // --- verdict
  if (mem.total() > mem.capacity || free_b <= 0) r.verdict = Verdict::out_of_memory;
  else if (slo.ttft_s > 0 && lat.ttft_s > slo.ttft_s) r.verdict = Verdict::ttft_slo;
  else if (slo.tpot_s > 0 && lat.tpot_s > slo.tpot_s) r.verdict = Verdict::tpot_slo;
  return r;
}

}  // namespace scaleplan::serve
