#include "validation/trtllm_bench.hpp"

#include <algorithm>
#include <cmath>

namespace scaleplan::validation {

namespace {

constexpr double kGiB = 1073741824.0;

struct QuantBytes {
  const char* precision;
  double weight_bytes, kv_bytes;  // tuning.py BYTES_PER_ELEM of quant_algo / kv_cache_quant_algo
};
// build.py TUNED_QUANTS (NVFP4, FP8, FP8_BLOCK_SCALES, NO_QUANT): the precisions the heuristic runs for.
// tuning.py BYTES_PER_ELEM: NO_QUANT 2.0, FP8 1.0 (FP8 checkpoints carry an FP8 KV cache: kv_cache_quant_algo FP8).
constexpr QuantBytes kTuned[] = {{"bf16", 2.0, 2.0}, {"fp8", 1.0, 1.0}};

long long round_up(double x, long long step) { return step * static_cast<long long>(std::ceil(x / static_cast<double>(step))); }

}  // namespace

long long trtllm_bench_round_batch(double raw_bs) {
  // tuning.py finetune_setting (optimistic tuning): "Set min BS to be 64", then round up by 32 / 128 / 256.
  if (raw_bs < 256) return std::max<long long>(64, round_up(raw_bs, 32));
  if (raw_bs < 1024) return round_up(raw_bs, 128);
  return round_up(raw_bs, 256);
}

long long trtllm_bench_round_tokens(double raw_tokens) {
  // tuning.py finetune_setting: "Set min to 2048 to ensure Ctx/Gen overlap efficiency", round up by 256/512/1024.
  if (raw_tokens < 4096) return std::max<long long>(2048, round_up(raw_tokens, 256));
  if (raw_tokens < 8192) return round_up(raw_tokens, 512);
  return round_up(raw_tokens, 1024);
}

TrtllmBenchSettings trtllm_bench_settings(const TrtllmBenchInput& in) {
  TrtllmBenchSettings s;
  const QuantBytes* q = nullptr;
  for (const QuantBytes& t : kTuned)
    if (in.precision == t.precision) q = &t;
  if (q == nullptr) {
    s.reason = "trtllm-bench tunes only FP8 / unquantized checkpoints (build.py TUNED_QUANTS), not " + in.precision;
    return s;
  }
  // tuning.py calc_engine_setting, in GiB as there: "Each GPU in TP group has at least 1 kv head".
  const double kv_heads = std::max<double>(in.tp, static_cast<double>(in.kv_heads));
  const double gib_per_token = 2.0 * static_cast<double>(in.attention_layers) * kv_heads * static_cast<double>(in.head_size) * q->kv_bytes / kGiB;
  const double n_gpus = static_cast<double>(in.tp) * in.pp;
  const double engine_gib = in.param_count * q->weight_bytes / kGiB;   // every parameter at the quantized width
  const double total_gib = in.device_memory_bytes / kGiB * n_gpus;     // get_device_memory() x n_gpus
  const double cache_gib = (total_gib - engine_gib) * in.kv_fraction;  // available_memory x the KV fraction
  const double seq = static_cast<double>(in.isl + in.osl);             // target_seq_len
  s.kv_cache_max_requests = cache_gib / (gib_per_token * seq);
  if (total_gib < engine_gib || s.kv_cache_max_requests < 1) {
    s.reason = "trtllm-bench: the KV cache memory estimate holds less than one request";
    return s;
  }
  // finetune_setting: "Cap total batch size to avoid decoder buffer size becoming too large" (4096, per PP stage);
  // "Cap num tokens to avoid TRT activation buffer becoming too large" (32768).
  const double raw_bs = std::min(s.kv_cache_max_requests, 4096.0) / in.pp;
  const double raw_tokens = std::min(raw_bs * (1.0 + static_cast<double>(in.isl) / static_cast<double>(in.osl)), 32768.0);
  s.max_batch_size = trtllm_bench_round_batch(raw_bs);
  // general.py get_settings (PR #5625): chunked prefill off (the perf-overview's llm_options.yml leaves it off), so
  // "Forcing max_num_tokens to" max(max_num_tokens, max_isl + max_batch_size).
  s.max_num_tokens = std::max(trtllm_bench_round_tokens(raw_tokens), in.isl + s.max_batch_size);
  s.ok = true;
  return s;
}

}  // namespace scaleplan::validation
