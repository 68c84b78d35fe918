#pragma once
// The engine limits `trtllm-bench throughput` picks when the user gives none (issue 20; docs/serve.md
// "Validation"): max_batch_size and max_num_tokens from the KV memory its own estimate leaves. The TensorRT-LLM
// perf-overview tables (validation/serve_runs.yaml) were produced this way (perf-overview.md at commit 00f37686:
// `trtllm-bench --tp $tp_size --pp $pp_size --model $model_name throughput --dataset $dataset_file --backend pytorch
// --extra_llm_api_options $llm_options`, no --max_batch_size / --max_num_tokens), so the batch those rows ran is
// min(this max_batch_size, the sequences the KV pool holds), not a batch picked for the best throughput.
//
// Sources (NVIDIA/TensorRT-LLM; the rule is the same at both tuning.py commits read, 04cba882 and a7e572fb):
//  - tensorrt_llm/bench/build/tuning.py calc_engine_setting / finetune_setting (the estimate and the rounding);
//  - tensorrt_llm/bench/build/build.py get_benchmark_engine_settings (TUNED_QUANTS; others get BuildConfig's
//    defaults max_batch_size 2048, max_num_tokens 8192);
//  - tensorrt_llm/bench/benchmark/utils/general.py get_settings (commit 0171265e; PR #5625): without chunked
//    prefill, max_num_tokens = max(tuned, max ISL + max_batch_size);
//  - tensorrt_llm/bench/build/utils.py get_device_memory: NVML total memory per GPU, in GiB.
#include <string>

namespace scaleplan::validation {

struct TrtllmBenchInput {
  double param_count = 0;          // checkpoint parameters (ModelConfig.param_count: safetensors element count)
  std::string precision;           // serve precision name: "fp8" and "bf16" are tuned; others get the defaults
  long long attention_layers = 0;  // num_attention_layers (= num_hidden_layers for a plain transformer)
  long long kv_heads = 0;          // num_key_value_heads
  long long head_size = 0;         // head_dim (hidden / heads when the config has none)
  int tp = 1, pp = 1;
  double device_memory_bytes = 0;  // per GPU (get_device_memory)
  long long isl = 0, osl = 0;      // the dataset's average (= max for a uniform one) input and output lengths
  double kv_fraction = 0.90;       // --kv_cache_free_gpu_mem_fraction (trtllm-bench throughput default .90)
};

struct TrtllmBenchSettings {
  bool ok = false;                   // false: the estimate leaves room for < 1 request (trtllm-bench raises)
  std::string reason;                // why not ok
  double kv_cache_max_requests = 0;  // the estimate before rounding (all pipeline stages)
  long long max_batch_size = 0;
  long long max_num_tokens = 0;      // after the no-chunking floor max(tuned, isl + max_batch_size)
};

// finetune_setting's rounding of the raw batch (kv_cache_max_requests, capped at 4096, / pp): up to a multiple
// of 32 (at least 64) below 256, of 128 below 1024, else of 256.
long long trtllm_bench_round_batch(double raw_bs);
// finetune_setting's rounding of the raw token budget (min(raw_bs (1 + isl/osl), 32768)): up to a multiple of
// 256 (at least 2048) below 4096, of 512 below 8192, else of 1024.
long long trtllm_bench_round_tokens(double raw_tokens);
// calc_engine_setting + finetune_setting + the no-chunking floor (the sources above).
TrtllmBenchSettings trtllm_bench_settings(const TrtllmBenchInput& in);

}  // namespace scaleplan::validation
