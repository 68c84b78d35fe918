#pragma once
// Chunk-based memory management (offload=gemini): Colossal-AI Gemini and PatrickStar (Fang et al.
// 2021, "PatrickStar: Parallel Training of Pre-trained Models via Chunk-based Memory Management").
// Parameters are packed in order into fixed-size chunks; the 16-bit weights and gradients share a
// chunk (PatrickStar sec. 4: the gradient overwrites the weight chunk after its last use), and the
// fp32 master weights, momentum and variance live in chunks that mirror it (12 B per element).
// Chunks are sharded over the data-parallel ranks (each rank owns 1/dp of every chunk) and a rank
// places its shards between GPU and host from the step's memory timeline:
//   - GPU room for model data = cap_ratio x capacity - the peak non-model data (activations,
//     buffers) of forward/backward; in the warm-up iteration, before the trace exists, only
//     warmup_ratio x capacity (Colossal-AI: non-model data assumed to take 0.8 of it; PatrickStar:
//     warmup_gpu_chunk_mem_ratio 0.1 of 0.8) -- the rest must wait in host memory;
//   - 16-bit chunks (used every microbatch) get the room first, evicting the chunk used furthest in
//     the future; optimizer chunks take the margin left (PatrickStar's "margin space", updated by
//     a GPU Adam), the others stay on the host for the CPU Adam.
#include <limits>
#include <vector>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "strategies/offload.hpp"

namespace scaleplan::strategies {

// --- chunk size (Colossal-AI gemini/chunk/search_utils.py search_chunk_configuration) ---
struct ChunkSearch {
  double search_range_elems = 32.0 * 1024 * 1024;  // search_range_m = 32 (x 2^20 elements)
  double min_chunk_elems = 32.0 * 1024 * 1024;     // min_chunk_size_m = 32
  double interval_elems = 0;                       // search_interval: 0 = the model's hidden size
};
struct ChunkConfig {
  double chunk_elems = 0;   // elements per chunk (a multiple of dp)
  long long chunks = 0;     // chunks holding the tensors
  double used_elems = 0;    // parameter elements packed
  double wasted_elems = 0;  // unused elements of the chunks
  double largest_elems = 0; // the largest tensor (an extra-large one has a chunk of its own size)
  double waste_fraction() const { return used_elems + wasted_elems > 0 ? wasted_elems / (used_elems + wasted_elems) : 0; }
};
// Next-fit packing in parameter order (a tensor that does not fit starts a new chunk; one larger
// than the chunk gets a chunk of its own size): the unused elements (Colossal-AI _get_unused_byte).
// With `stop_at`, the packing stops once the waste reaches it and returns a value >= stop_at (the
// waste only grows, so that happens exactly when the full packing's waste is >= stop_at; the chunk
// count is then partial): the search drops a candidate chunk size as soon as it cannot win.
double packed_waste(const std::vector<double>& tensor_elems, double chunk_elems, long long* chunks = nullptr,
                    double stop_at = std::numeric_limits<double>::infinity());
// Leaves out extra-large tensors (above mean + 3 standard deviations, Colossal-AI
// filter_exlarge_params), tries chunk sizes from max(largest remaining tensor, min_chunk) upward in
// steps of the interval over the search range, keeps the one wasting least (ties: the smaller),
// rounds it up to a multiple of dp.
ChunkConfig search_chunk_configuration(const std::vector<double>& tensor_elems, int dp, const ChunkSearch& s = {},
                                       double hidden = 0);
// The two halves of search_chunk_configuration: the search (does not depend on dp; the costly part,
// up to 1024 packings), and the configuration for its result (rounded up to a multiple of dp, packed).
double search_chunk_elems(const std::vector<double>& tensor_elems, const ChunkSearch& s = {}, double hidden = 0);
ChunkConfig chunk_configuration(const std::vector<double>& tensor_elems, double searched_elems, int dp);
// The tensors one GPU of a pipeline stage holds, in parameter order (layers / tp, ep as the plan splits them).
std::vector<double> stage_tensors(const model::ModelSpec& m, int tp, int ep, double layers, bool first, bool last, bool pp_gt1);

// --- eviction ---
// Loads of a GPU cache of `slots` chunks over an access sequence of chunk ids, evicting the chunk
// whose next use is furthest in the future (Belady's MIN). `resident`: the chunks cached at start.
long long furthest_future_loads(const std::vector<int>& accesses, int slots, const std::vector<int>& resident);
// The steady state of one microbatch's sweep (forward over chunks 0..n-1, backward n-1..0) with the
// cache the previous sweep left: 2 (n - slots) loads (proved against furthest_future_loads in
// tests/test_offload.cpp).
double sweep_loads(double n, double slots);

// --- placement ---
struct ChunkPolicy {
  double cap_ratio = 0.9;      // steady-state share of the GPU chunks may use (Gemini steady_cuda_cap_ratio)
  double warmup_ratio = 0.2;   // share of the GPU for chunks during warm-up (Gemini: 1 - 0.8 non-model)
  double host_ratio = 1.0;     // share of the host memory chunks may use (PatrickStar overall_cpu_mem_ratio)
};
ChunkPolicy chunk_policy(const hw::Software& sw);

struct ChunkInput {
  ChunkConfig config;
  int dp = 1;
  double capacity = 0;        // GPU bytes
  double non_model_peak = 0;  // peak non-model bytes during forward/backward (activations + buffers)
  long long microbatches = 1;
  double compute_per_mb_s = 0;
  double param_bytes = 2;       // 16-bit weight (and gradient) per element
  double optimizer_bytes = 12;  // fp32 master + momentum + variance per element
  HostShare host;               // this GPU's share of the node
  ChunkPolicy policy;
};
struct ChunkPlacement {
  double shards = 0;            // chunk shards this rank owns (= chunks)
  double shard_fp16_bytes = 0;  // 2 x chunk / dp
  double working_bytes = 0;     // gathered chunks in flight (current + prefetched)
  double fp16_on_gpu = 0;       // resident 16-bit shards (count), steady state
  double os_on_gpu = 0;         // optimizer shards on the GPU (count), steady state
  double gpu_params = 0, gpu_optimizer = 0;  // bytes on the GPU, steady state
  double host_steady = 0, host_warmup = 0;   // bytes on the host
  double room_steady = 0, room_warmup = 0;   // GPU bytes for model data
  double pcie_bytes = 0, cpu_adam_s = 0, gpu_adam_params = 0, exposed_s = 0;
  double host_capacity = 0;     // policy.host_ratio x this GPU's share of host memory
  double chunk_elems = 0, chunk_waste = 0;  // the configuration placed (elements, wasted share)
  bool fits_gpu = true;
  double host() const { return host_steady > host_warmup ? host_steady : host_warmup; }
};
ChunkPlacement place_chunks(const ChunkInput& in, const OffloadOptions& o = {});

// offload=gemini for one GPU of pipeline stage `stage` of plan p: its stage's tensors, the chunk
// size search, and the placement against that stage's non-model peak (activations + buffers).
// ranks_per_node GPUs share the node's host. The recipe gives the bytes per element (16-bit weights
// and gradients share a chunk; the optimizer chunks hold the fp32 master and the moments).
ChunkPlacement gemini_placement(const model::ModelSpec& m, const hw::Cluster& c, const Plan& p, int stage, const Recipe& r,
                                double non_model_peak, double compute_per_mb_s, int ranks_per_node);
// The two halves of gemini_placement: the chunk configuration of stage `stage` (its tensors and the
// chunk-size search: allocates, ~1 ms for GPT-3 175B; depends on tp, ep, pp, dp and the stage only,
// so the search prepares it once per such key, analytic::Estimator::prepare_chunks), and the
// placement for a given configuration (arithmetic only: the search's hot path).
ChunkConfig stage_chunk_config(const model::ModelSpec& m, const Plan& p, int stage);
// stage_chunk_config's input: the tensors of stage `stage` (depend on tp, ep, pp and the stage only).
std::vector<double> stage_chunk_tensors(const model::ModelSpec& m, const Plan& p, int stage);
ChunkPlacement gemini_placement(const ChunkConfig& cfg, const hw::Cluster& c, const Plan& p, const Recipe& r, double non_model_peak,
                                double compute_per_mb_s, int ranks_per_node);

}  // namespace scaleplan::strategies
