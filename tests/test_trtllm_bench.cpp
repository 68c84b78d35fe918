// trtllm-bench's engine limits (validation/trtllm_bench.hpp; TensorRT-LLM tensorrt_llm/bench/build/tuning.py
// calc_engine_setting + finetune_setting, general.py's no-chunking floor): each case below is worked by hand from
// that code, in GiB as it computes.
#include <gtest/gtest.h>

#include "validation/trtllm_bench.hpp"

namespace {

using namespace scaleplan::validation;

constexpr double kGiB = 1073741824.0;

TrtllmBenchInput llama(double params, long long layers, int tp, double gpu_GiB, long long isl, long long osl) {
  TrtllmBenchInput in;
  in.param_count = params;
  in.precision = "fp8";
  in.attention_layers = layers;
  in.kv_heads = 8;
  in.head_size = 128;
  in.tp = tp;
  in.device_memory_bytes = gpu_GiB * kGiB;
  in.isl = isl;
  in.osl = osl;
  in.kv_fraction = 0.90;
  return in;
}

TEST(TrtllmBench, RoundsTheBatchUpBy32Then128Then256) {
  EXPECT_EQ(trtllm_bench_round_batch(10), 64);  // "Set min BS to be 64"
  EXPECT_EQ(trtllm_bench_round_batch(65), 96);
  EXPECT_EQ(trtllm_bench_round_batch(255.9), 256);
  EXPECT_EQ(trtllm_bench_round_batch(256), 256);  // 256 <= raw < 1024: multiples of 128
  EXPECT_EQ(trtllm_bench_round_batch(256.5), 384);
  EXPECT_EQ(trtllm_bench_round_batch(1024), 1024);
  EXPECT_EQ(trtllm_bench_round_batch(1024.5), 1280);
  EXPECT_EQ(trtllm_bench_round_batch(1157.2), 1280);
}

TEST(TrtllmBench, RoundsTheTokensUpBy256Then512Then1024) {
  EXPECT_EQ(trtllm_bench_round_tokens(100), 2048);  // "Set min to 2048"
  EXPECT_EQ(trtllm_bench_round_tokens(4095), 4096);
  EXPECT_EQ(trtllm_bench_round_tokens(4097), 4608);
  EXPECT_EQ(trtllm_bench_round_tokens(8192), 8192);
  EXPECT_EQ(trtllm_bench_round_tokens(14264.2), 14336);
}

// Llama 3.1 8B FP8 (8,030,261,248 parameters), one H100 of 80 GiB, ISL/OSL 1000/1000:
// GiB per token = 2 x 32 layers x max(1, 8) x 128 x 1 B / 2^30 = 6.1035e-5; engine = 8.0303e9 / 2^30 = 7.4787 GiB;
// cache = (80 - 7.4787) x 0.9 = 65.269 GiB; requests = 65.269 / (6.1035e-5 x 2000) = 534.69;
// batch: 256 <= 534.69 < 1024 -> 128 x ceil(4.177) = 640; tokens: 534.69 x 2 = 1069 -> 2048; max(2048, 1000 + 640).
TEST(TrtllmBench, Llama8bH100Tp1) {
  const TrtllmBenchSettings s = trtllm_bench_settings(llama(8030261248.0, 32, 1, 80.0, 1000, 1000));
  ASSERT_TRUE(s.ok) << s.reason;
  EXPECT_NEAR(s.kv_cache_max_requests, 534.69, 0.01);
  EXPECT_EQ(s.max_batch_size, 640);
  EXPECT_EQ(s.max_num_tokens, 2048);
}

// The same model on one H200 (131.3 GiB), 2048/128: cache = (131.3 - 7.4787) x 0.9 = 111.439 GiB; requests =
// 111.439 / (6.1035e-5 x 2176) = 839.07 -> 128 x ceil(6.555) = 896; tokens 839.07 x (1 + 2048/128) = 14264 ->
// 1024 x 14 = 14336 (> 2048 + 896).
TEST(TrtllmBench, Llama8bH200LongPrompt) {
  const TrtllmBenchSettings s = trtllm_bench_settings(llama(8030261248.0, 32, 1, 131.3, 2048, 128));
  ASSERT_TRUE(s.ok) << s.reason;
  EXPECT_NEAR(s.kv_cache_max_requests, 839.07, 0.01);
  EXPECT_EQ(s.max_batch_size, 896);
  EXPECT_EQ(s.max_num_tokens, 14336);
  // 128/128: 111.439 / (6.1035e-5 x 256) = 7132 requests, capped at 4096; tokens 4096 x 2 = 8192 -> 8192.
  const TrtllmBenchSettings c = trtllm_bench_settings(llama(8030261248.0, 32, 1, 131.3, 128, 128));
  EXPECT_NEAR(c.kv_cache_max_requests, 7132.0, 1.0);
  EXPECT_EQ(c.max_batch_size, 4096);
  EXPECT_EQ(c.max_num_tokens, 8192);
}

// Llama 3.1 405B FP8 (405,853,388,800 parameters), TP8 on H200, 128/2048: GiB per token = 2 x 126 x 8 x 128 / 2^30
// = 2.4033e-4 (for the whole TP group, as tuning.py counts); engine 377.98 GiB of 8 x 131.3 = 1050.4 GiB;
// cache = 672.42 x 0.9 = 605.18 GiB; requests = 605.18 / (2.4033e-4 x 2176) = 1157.2 -> 256 x ceil(4.52) = 1280
// (the batch a KV fit of ~1145 is padded up to); tokens 1157.2 x 1.0625 = 1229.5 -> 2048 (> 128 + 1280).
TEST(TrtllmBench, Llama405bH200Tp8) {
  const TrtllmBenchSettings s = trtllm_bench_settings(llama(405853388800.0, 126, 8, 131.3, 128, 2048));
  ASSERT_TRUE(s.ok) << s.reason;
  EXPECT_NEAR(s.kv_cache_max_requests, 1157.2, 0.1);
  EXPECT_EQ(s.max_batch_size, 1280);
  EXPECT_EQ(s.max_num_tokens, 2048);
}

// Llama 3.3 70B FP8 (70,553,706,496 parameters), one H200, 20000/2000: engine 65.708 GiB, cache 59.03 GiB,
// GiB per token 2 x 80 x 8 x 128 / 2^30 = 1.5259e-4, requests 59.03 / (1.5259e-4 x 22000) = 17.58 -> 64 (minimum);
// tokens 17.58 x 11 = 193 -> 2048, but without chunked prefill max(2048, 20000 + 64) = 20064.
// TP2 on H100 with pp = 2 (a made-up mapping): the raw batch is split over the stages.
TEST(TrtllmBench, Llama70bLongPromptAndPipelineStages) {
  const TrtllmBenchSettings s = trtllm_bench_settings(llama(70553706496.0, 80, 1, 131.3, 20000, 2000));
  ASSERT_TRUE(s.ok) << s.reason;
  EXPECT_NEAR(s.kv_cache_max_requests, 17.58, 0.01);
  EXPECT_EQ(s.max_batch_size, 64);
  EXPECT_EQ(s.max_num_tokens, 20064);
  // tp 2, pp 2 on 80 GiB GPUs, 1000/1000: GiB per token 1.5259e-4 (max(2, 8) heads); cache (320 - 65.708) x 0.9 =
  // 228.86; requests 228.86 / (1.5259e-4 x 2000) = 749.9; raw batch 749.9 / 2 = 374.9 -> 384.
  TrtllmBenchInput in = llama(70553706496.0, 80, 2, 80.0, 1000, 1000);
  in.pp = 2;
  const TrtllmBenchSettings p = trtllm_bench_settings(in);
  EXPECT_NEAR(p.kv_cache_max_requests, 749.9, 0.1);
  EXPECT_EQ(p.max_batch_size, 384);
}

TEST(TrtllmBench, UntunedPrecisionAndTooLittleMemoryAreRefused) {
  TrtllmBenchInput in = llama(8030261248.0, 32, 1, 80.0, 1000, 1000);
  in.precision = "int4";  // weight-only INT4 is not in build.py's TUNED_QUANTS
  EXPECT_FALSE(trtllm_bench_settings(in).ok);
  const TrtllmBenchSettings small = trtllm_bench_settings(llama(405853388800.0, 126, 1, 80.0, 1000, 1000));
  EXPECT_FALSE(small.ok);  // 378 GiB of weights on one 80 GiB GPU
  EXPECT_FALSE(small.reason.empty());
}

}  // namespace
