// Serving cost model (simulator/serve, issue 20): KV-cache bytes against hand counts for GQA and MLA,
// weights against the model's parameter count, decode at batch 1 against the HBM-bandwidth bound derived
// here, the precision registry, the steady-state continuous-batching relations and the layout search.
#include <gtest/gtest.h>

#include <cmath>

#include "common/errors.hpp"
#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/serve/serve_search.hpp"

namespace {

using namespace scaleplan;

serve::ServeModel make(const char* model, const char* cluster, const char* prec, long long P, long long O) {
  return serve::ServeModel(model::load_model(model), hw::load_cluster(cluster), serve::precision_spec(prec), {P, O});
}

serve::Layout layout(int tp, int pp, long long batch, int ep = 1) {
  serve::Layout l;
  l.tp = tp;
  l.pp = pp;
  l.ep = ep;
  l.batch = batch;
  return l;
}

// GQA: Llama 3 70B (80 layers, 8 KV heads of 128): 2 (K,V) x 8 x 128 x 80 = 163,840 elements per token.
TEST(ServeKv, GqaBytesPerTokenExact) {
  const auto sm = make("llama3-70b", "dgx-h100", "bf16", 1000, 1000);
  EXPECT_DOUBLE_EQ(sm.kv_bytes_per_token(layout(1, 1, 1)), 2.0 * 8 * 128 * 80 * 2);      // 327,680 B
  EXPECT_DOUBLE_EQ(sm.kv_bytes_per_token(layout(2, 1, 1)), 2.0 * 8 * 128 * 80 * 2 / 2);  // heads split over tp
  EXPECT_DOUBLE_EQ(sm.kv_bytes_per_token(layout(8, 1, 1)), 2.0 * 1 * 128 * 80 * 2);      // one KV head per GPU
  // tp = 16 > 8 KV heads: each head replicated on 2 GPUs, so still one head per GPU.
  const auto big = make("llama3-405b", "dgx-h100", "fp8", 1000, 1000);
  EXPECT_DOUBLE_EQ(big.kv_bytes_per_token(layout(16, 1, 1)), 2.0 * 1 * 128 * 126 * 1);
  // pp = 2: 40 layers on a stage.
  EXPECT_DOUBLE_EQ(sm.kv_bytes_per_token(layout(1, 2, 1)), 2.0 * 8 * 128 * 40 * 2);
  // Peak KV cache: batch x (prompt + output) tokens.
  const serve::Result r = sm.evaluate(layout(8, 1, 4));
  EXPECT_DOUBLE_EQ(r.memory.kv_cache, 4.0 * 2000 * (2.0 * 1 * 128 * 80 * 2));
}

// MLA: DeepSeek-V3 caches the latent (512) + the rope key (64) per layer, 61 layers (DeepSeek-V2 Table 1:
// (d_c + d_h^R) l elements), the same on every TP rank.
TEST(ServeKv, MlaBytesPerTokenExact) {
  const auto fp8 = make("deepseek-v3", "dgx-h200", "fp8", 1000, 1000);
  EXPECT_DOUBLE_EQ(fp8.kv_bytes_per_token(layout(8, 1, 1)), (512.0 + 64) * 61 * 1);  // 35,136 B
  EXPECT_DOUBLE_EQ(fp8.kv_bytes_per_token(layout(1, 1, 1)), (512.0 + 64) * 61 * 1);
  const auto bf16 = make("deepseek-v3", "dgx-h200", "bf16", 1000, 1000);
  EXPECT_DOUBLE_EQ(bf16.kv_bytes_per_token(layout(8, 1, 1)), (512.0 + 64) * 61 * 2);
  const serve::Result r = fp8.evaluate(layout(8, 1, 16));
  EXPECT_DOUBLE_EQ(r.memory.kv_cache, 16.0 * 2000 * (512.0 + 64) * 61);
  // The same model with GQA-style heads would cache 2 x 128 heads x 128 dims: 56.9x more.
  EXPECT_NEAR(2.0 * 128 * 128 / (512 + 64), 56.9, 0.1);
}

// DeepSeek-V3 parameters by hand (config.json shapes): MLA attention 187,107,328 per layer; expert 3 x 7168 x 2048;
// 58 MoE layers (256 routed + 1 shared, router 7168 x 256), 3 dense layers (FFN 18432), untied 129,280-word
// embedding and head: 671,026,404,352 ("671B total parameters", tech report abstract).
TEST(ServeModelSpec, DeepSeekV3ParameterCount) {
  const model::ModelSpec m = model::load_model("deepseek-v3");
  const double attn = 7168.0 * 1536 + 1536 + 1536.0 * 128 * 192 + 7168.0 * 576 + 512 + 512.0 * 128 * 256 + 128.0 * 128 * 7168;
  EXPECT_DOUBLE_EQ(m.attn_weight_params(), attn);
  EXPECT_DOUBLE_EQ(attn, 187107328.0);
  const double expert = 3.0 * 7168 * 2048, norms = 2.0 * 7168;
  const double moe_layer = attn + 257 * expert + 7168.0 * 256 + norms;
  const double dense_layer = attn + 3.0 * 7168 * 18432 + norms;
  const double total = 58 * moe_layer + 3 * dense_layer + 2 * 129280.0 * 7168 + 7168;
  EXPECT_DOUBLE_EQ(m.total_params(), total);
  EXPECT_DOUBLE_EQ(total, 671026404352.0);
  EXPECT_EQ(m.moe_layers(), 58);
  EXPECT_EQ(m.weight_bits, 8);
  EXPECT_EQ(serve::default_precision(m), "fp8");
}

// Weights per GPU at tp = pp = 1 are every parameter of the model: the linears at the precision's bytes, the word
// embedding, the LM head and the norms in 16 bits (quantized checkpoints keep them; serve.hpp PrecisionSpec).
TEST(ServeMemory, WeightsAreAllParametersOnOneGpu) {
  const model::ModelSpec m = model::load_model("llama3-8b");
  const double words = m.embedding_params() + m.lm_head_params();  // 2 x 128256 x 4096
  EXPECT_DOUBLE_EQ(words, 2.0 * 128256 * 4096);
  const double norms = (2.0 * 32 + 1) * 4096;  // 2 RMSNorms per layer + the final one
  for (const char* p : {"bf16", "fp8", "int8", "int4"}) {
    const auto sm = make("llama3-8b", "dgx-h100", p, 128, 128);
    EXPECT_DOUBLE_EQ(sm.weights_per_gpu(layout(1, 1, 1)),
                     (m.total_params() - words - norms) * serve::precision_spec(p).weight_bytes + (words + norms) * 2)
        << p;
  }
  // Published: TensorRT-LLM logs "Rank 0 uses 8.46 GB for model weights" (GiB) for nvidia/Llama-3.1-8B-Instruct-FP8
  // on one H100 (TensorRT-LLM issue #6294).
  EXPECT_NEAR(make("llama3-8b", "dgx-h100", "fp8", 128, 128).weights_per_gpu(layout(1, 1, 1)) / (1 << 30), 8.46, 0.005);
  const auto sm = make("llama3-8b", "dgx-h100", "bf16", 128, 128);
  // tp = 4: every matrix split four ways; only the norms (2 per layer + final, 4096 each) are replicated.
  EXPECT_NEAR(sm.weights_per_gpu(layout(4, 1, 1)), ((m.total_params() - norms) / 4 + norms) * 2, 1.0);
}

// Decode at batch 1 is bounded by reading the weights (and the KV cache) from HBM once per token:
// t >= bytes / (hbm_bw x mem_bw), mem_bw the device's sustained streaming fraction. Llama 3 70B in FP8 on one
// H200: 70.6 GB of weights at 4.8 TB/s x 0.85 = 17.3 ms. The model must sit within 10% above that bound.
TEST(ServeDecode, BatchOneWithinTenPercentOfHbmBound) {
  const auto sm = make("llama3-70b", "dgx-h200", "fp8", 128, 128);
  const hw::Cluster c = hw::load_cluster("dgx-h200");
  const serve::Layout l = layout(1, 1, 1);
  const double ctx = 128 + 64;  // P + O/2, the steady-state mean context
  const double bytes = sm.weights_per_gpu(l) + ctx * sm.kv_bytes_per_token(l);
  const double bound = bytes / (c.device.hbm_bw_Bps * c.device.eff.mem_bw);
  const double t = sm.decode_stage_s(l, 1, ctx);
  EXPECT_GE(t, bound);
  EXPECT_LE(t, 1.10 * bound) << "decode " << t * 1e3 << " ms vs bound " << bound * 1e3 << " ms";
  // At batch 1 the TPOT is that decode step (no other sequence's prefill interleaves).
  const serve::Result r = sm.evaluate(l);
  EXPECT_DOUBLE_EQ(r.latency.tpot_s, t);
  // Dense 8B on one H100 in bf16: the same bound holds within 15% (more kernels per byte).
  const auto s8 = make("llama3-8b", "dgx-h100", "bf16", 128, 128);
  const hw::Cluster h100 = hw::load_cluster("dgx-h100");
  const double b8 = (s8.weights_per_gpu(l) + ctx * s8.kv_bytes_per_token(l)) / (h100.device.hbm_bw_Bps * h100.device.eff.mem_bw);
  EXPECT_GE(s8.decode_stage_s(l, 1, ctx), b8);
  EXPECT_LE(s8.decode_stage_s(l, 1, ctx), 1.15 * b8);
}

TEST(ServePrecision, RegistryAndUnknownNameNamesTheFlag) {
  EXPECT_DOUBLE_EQ(serve::precision_spec("int4").weight_bytes, 0.5);
  EXPECT_DOUBLE_EQ(serve::precision_spec("fp8").kv_bytes, 1.0);
  EXPECT_DOUBLE_EQ(serve::precision_spec("int8").kv_bytes, 2.0);
  try {
    serve::precision_spec("fp4");
    FAIL() << "fp4 accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--precision"), std::string::npos) << e.what();
  }
}

// Continuous batching (steady state): larger batches raise throughput per GPU and TPOT; e2e = TTFT + (O-1) TPOT;
// the largest batch that fits fills the memory and one more sequence does not fit.
TEST(ServeBatching, SteadyStateRelations) {
  const auto sm = make("llama3-70b", "dgx-h100", "fp8", 1000, 1000);
  const serve::Result b1 = sm.evaluate(layout(4, 1, 1)), b64 = sm.evaluate(layout(4, 1, 64));
  EXPECT_GT(b64.throughput.tokens_per_s_per_gpu, 10 * b1.throughput.tokens_per_s_per_gpu);
  EXPECT_GT(b64.latency.tpot_s, b1.latency.tpot_s);
  EXPECT_NEAR(b64.latency.e2e_s, b64.latency.ttft_s + 999 * b64.latency.tpot_s, 1e-12);
  const long long fit = sm.max_batch(layout(4, 1, 1));
  ASSERT_GT(fit, 64);
  EXPECT_TRUE(sm.evaluate(layout(4, 1, fit)).feasible());
  const serve::Result over = sm.evaluate(layout(4, 1, fit + 1));
  EXPECT_EQ(over.verdict, serve::Verdict::out_of_memory);
  // Throughput per GPU x GPUs x O = requests/s x O (output tokens) for dp = 1.
  EXPECT_NEAR(b64.throughput.tokens_per_s_per_gpu * 4, b64.throughput.requests_per_s * 1000, 1e-6);
  // Cost: price / (3600 x tokens/s per GPU) per token.
  EXPECT_NEAR(b64.throughput.usd_per_m_tokens, 4.0 / 3600 / b64.throughput.tokens_per_s_per_gpu * 1e6, 1e-9);
}

TEST(ServeSearch, BestLayoutAndParetoFront) {
  const auto sm = make("llama3-70b", "dgx-h100", "fp8", 1000, 1000);
  serve::SearchSpec spec;
  spec.gpus = 8;
  const serve::SearchResult s = serve::search(sm, spec);
  ASSERT_TRUE(s.found);
  EXPECT_EQ(s.best.layout.gpus(), 8);
  ASSERT_GE(s.front.size(), 2u);
  for (std::size_t i = 1; i < s.front.size(); ++i) {
    EXPECT_GE(s.front[i].latency.tpot_s, s.front[i - 1].latency.tpot_s);
    EXPECT_GT(s.front[i].throughput.tokens_per_s_per_gpu, s.front[i - 1].throughput.tokens_per_s_per_gpu);
  }
  EXPECT_DOUBLE_EQ(s.front.back().throughput.tokens_per_s_per_gpu, s.best.throughput.tokens_per_s_per_gpu);
  // A TPOT SLO moves the best to a lower-latency layout that meets it.
  spec.slo.tpot_s = 0.020;
  const serve::SearchResult slo = serve::search(sm, spec);
  ASSERT_TRUE(slo.found);
  EXPECT_LE(slo.best.latency.tpot_s, 0.020);
  EXPECT_LT(slo.best.throughput.tokens_per_s_per_gpu, s.best.throughput.tokens_per_s_per_gpu);
  // The batch under the SLO is bisected, not rounded down to a power of two: one more sequence misses the SLO.
  serve::Layout next = slo.best.layout;
  ++next.batch;
  EXPECT_FALSE(sm.evaluate(next, spec.slo).feasible()) << "batch " << slo.best.layout.batch;
  // An impossible SLO: nothing feasible, the reason names the SLO.
  spec.slo.tpot_s = 1e-6;
  const serve::SearchResult none = serve::search(sm, spec);
  EXPECT_FALSE(none.found);
  EXPECT_NE(none.reason.find("SLO"), std::string::npos) << none.reason;
}

TEST(ServeSearch, MoeLayoutsIncludeExpertParallelism) {
  const auto sm = make("deepseek-v3", "dgx-h200", "fp8", 1000, 1000);
  serve::SearchSpec spec;
  spec.gpus = 8;
  const serve::SearchResult s = serve::search(sm, spec);
  ASSERT_TRUE(s.found) << s.reason;
  bool has_ep = false;
  for (const auto& l : serve::layouts(sm.model(), 8)) has_ep = has_ep || l.ep > 1;
  EXPECT_TRUE(has_ep);
  // 671B in FP8 (625 GiB of weights) does not fit 4 H200s (4 x 131 GiB): infeasible, out of memory.
  spec.gpus = 4;
  const serve::SearchResult four = serve::search(sm, spec);
  EXPECT_FALSE(four.found);
  EXPECT_NE(four.reason.find("out of memory"), std::string::npos) << four.reason;
}

// CUDA-graph padding (TensorRT-LLM _get_padded_batch; perf-overview llm_options.yml): a decode batch runs at the
// smallest captured size >= it, the captured sizes capped at the engine's max batch; padding costs linears, all-reduces and
// the LM head, not attention. At ctx = 0 attention costs nothing, so 226 sequences cost exactly 256 unpadded rows.
TEST(ServeDecode, CudaGraphPaddingRoundsTheDecodeBatchUp) {
  const auto sm = make("llama3-405b", "dgx-h100", "fp8", 128, 4096);
  EXPECT_DOUBLE_EQ(sm.padded_decode_rows(1), 1);
  EXPECT_DOUBLE_EQ(sm.padded_decode_rows(226), 256);
  EXPECT_DOUBLE_EQ(sm.padded_decode_rows(257), 384);
  EXPECT_DOUBLE_EQ(sm.padded_decode_rows(1145), 2048);  // 2048 <= max_batch 2048
  EXPECT_DOUBLE_EQ(sm.padded_decode_rows(2049), 2049);  // above the max batch (never admitted): unpadded
  // A max batch that is not a listed size (trtllm-bench's 1280): the listed sizes above it are replaced by it
  // (model_engine.py _filter_cuda_graph_batch_sizes, PR #4843), so 1145 runs padded to 1280, 1000 to 1024.
  serve::StackOptions mb;
  mb.max_batch = 1280;
  const serve::ServeModel capped(model::load_model("llama3-405b"), hw::load_cluster("dgx-h200"), serve::precision_spec("fp8"),
                                 {128, 2048}, mb);
  EXPECT_DOUBLE_EQ(capped.padded_decode_rows(1145), 1280);
  EXPECT_DOUBLE_EQ(capped.padded_decode_rows(1000), 1024);
  EXPECT_DOUBLE_EQ(capped.padded_decode_rows(1280), 1280);
  mb.max_num_tokens = 1100;  // the bound is min(max_batch, max_num_tokens)
  const serve::ServeModel tok(model::load_model("llama3-405b"), hw::load_cluster("dgx-h200"), serve::precision_spec("fp8"),
                              {128, 2048}, mb);
  EXPECT_DOUBLE_EQ(tok.padded_decode_rows(1050), 1100);
  serve::StackOptions none;
  none.graph_batch_count = 0;
  const serve::ServeModel raw(model::load_model("llama3-405b"), hw::load_cluster("dgx-h100"), serve::precision_spec("fp8"),
                              {128, 4096}, none);
  EXPECT_DOUBLE_EQ(raw.padded_decode_rows(226), 226);
  const serve::Layout l = layout(8, 1, 226);
  EXPECT_DOUBLE_EQ(sm.decode_stage_s(l, 226, 0), raw.decode_stage_s(l, 256, 0));
  EXPECT_GT(sm.decode_stage_s(l, 226, 2176), raw.decode_stage_s(l, 226, 2176));
}

// KV pool (TensorRT-LLM KvCacheCreator): kv_fraction x (capacity - weights - activations - communication buffers),
// the buffers (StackOptions::comm_bytes, 1.79 GiB) only when the replica spans more than one GPU.
TEST(ServeMemory, CommunicationBuffersComeOffBeforeTheKvFraction) {
  const auto sm = make("llama3-70b", "dgx-h100", "fp8", 1000, 2000);
  const double per_seq = std::ceil(3000.0 / 32) * 32;
  for (int tp : {1, 2, 8}) {
    const serve::Layout l = layout(tp, 1, 1);
    const serve::Result r = sm.evaluate(l);
    const double reserve = tp > 1 ? 1.79 * (1 << 30) : 0.0;
    EXPECT_DOUBLE_EQ(sm.reserved_bytes(l), reserve) << tp;
    const double free_b = r.memory.capacity - r.memory.weights - r.memory.activations - reserve;
    EXPECT_EQ(sm.max_batch(l), static_cast<long long>(std::floor(0.9 * free_b / (per_seq * sm.kv_bytes_per_token(l))))) << tp;
    // The breakdown still sums to the total, and the reserve is part of the buffers.
    EXPECT_GE(r.memory.buffers, reserve) << tp;
  }
}

}  // namespace
