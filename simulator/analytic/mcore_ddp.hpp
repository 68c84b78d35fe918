#pragma once
// Megatron-Core DistributedDataParallel + distributed optimizer (--overlap-grad-reduce,
// --overlap-param-gather) timing rules the estimator applies to the ZeRO-1/2 data-parallel traffic
// (docs/accuracy-acc10.md). Pure arithmetic: the estimator's hot path calls these per plan.
#include "hardware/cluster.hpp"

namespace scaleplan::analytic {

// How many microbatch-backwards (of the whole stage, all chunks) the gradient reduce-scatter has to
// hide under, and likewise forwards for the parameter all-gather, relative to the non-interleaved
// schedule's one. The interleaved schedule launches each model chunk's gradient sync as soon as that
// chunk's last backward is done (megatron/core/pipeline_parallel/schedules.py core_r0.8.0,
// forward_backward_pipelining_with_interleaving: grad_sync_func[grad_sync_chunk_id] when
// is_last_microbatch_for_model_chunk) and the cool-down then runs pp backwards of each remaining chunk:
// chunk c's sync is followed by c x pp chunk-backwards, so the first launch has (v-1) x pp + 1
// chunk-backwards before the step's end, i.e. ((v-1) pp + 1) / v stage-backwards (capped at the
// m x v chunk-backwards of the step). The parameter all-gather is symmetric (param_sync_func for chunk
// c+1 launched at chunk c's first forward). v = 1: 1 (the last microbatch's backward only).
double dp_window_scale(int v, int pp, long long m);

// Megatron-Core's DDP bucket in parameters, max(min_params, params_per_dp_rank x dp)
// (distributed_data_parallel.py core_r0.8.0), or 0 where the stack has no bucket model.
double dp_bucket_params(const hw::Software& sw, int dp);

// Parameters in the bucket reduce-scattered last and all-gathered first on a stage holding the word
// embedding (word_params on this rank): buckets are filled in reverse parameter order, so the word
// embedding (the model's first parameter) closes the last one (param_and_grad_buffer.py core_r0.8.0
// `for param in params[::-1]`); it holds at least the embedding, and a whole bucket where the
// embedding is smaller. Capped at the stage's parameters.
double dp_edge_bucket_params(double bucket_params, double word_params, double stage_params);

// Seconds of the DDP's own passes over the gradient buffer on the compute stream per step
// (hw::Software::ddp_grad_passes): `passes` x bytes_per_elem x params streamed, one kernel for the
// buffer-wide zero and two per bucket (norm, scale); 0 without passes.
double ddp_grad_pass_s(const hw::Device& d, double passes, double bytes_per_elem, double params, double bucket_params);

}  // namespace scaleplan::analytic
