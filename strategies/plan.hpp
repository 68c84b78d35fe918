#pragma once
// The Plan: how the work is split (DESIGN.md sec. 3, plan keys). Parsed, validated, then immutable.
#include <string>

#include "hardware/cluster.hpp"
#include "model/model.hpp"

namespace scaleplan::strategies {

enum class TpMode { d1, d2, d2_5, d3 };
enum class CpAlgo { ring, ulysses, ring_self_attn, allgather };
enum class Schedule { gpipe, one_f_one_b, interleaved, zero_bubble };
enum class Recompute { none, selective, full };
enum class Offload { none, optimizer, params, nvme, gemini };
enum class Precision { fp32, fp16, bf16, fp8 };

const char* name(TpMode v);
const char* name(CpAlgo v);
const char* name(Schedule v);
const char* name(Recompute v);
const char* name(Offload v);
const char* name(Precision v);
hw::Dtype compute_dtype(Precision p);
double bytes_per_element(Precision p);  // activations / working weights (fp8 keeps 16-bit activations)

struct Plan {
  int dp = 0;  // 0 = derive from --gpus
  int tp = 1, pp = 1, vpp = 1, mbs = 1;
  long long gbs = 0;  // 0 = default (see README "Plan defaults")
  int cp = 1, ep = 1;
  TpMode tp_mode = TpMode::d1;
  int tp_depth = 1;
  bool sp = false;
  CpAlgo cp_algo = CpAlgo::ring;
  Schedule schedule = Schedule::one_f_one_b;
  bool schedule_set = false;
  Recompute recompute = Recompute::none;
  int zero = 0;
  // ZeRO-3 shard group (hybrid sharding: PyTorch FSDP ShardingStrategy.HYBRID_SHARD / FSDP2 2-D
  // mesh, "HSDP"): parameters, gradients and optimizer states shard over zero_shard consecutive
  // data-parallel ranks and replicate over dp / zero_shard groups. 0: shard over all of dp.
  int zero_shard = 0;
  // The shard group size ZeRO-3 uses: the DP x CP ranks, which hold the same weights (torchtitan
  // parallelize_llama.py @d4c86e37 applies fully_shard on world_mesh["dp_shard_cp"]), unless zero_shard
  // says fewer (hybrid sharding inside the DP ranks).
  int shard_degree() const { return zero_shard > 0 ? zero_shard : dp * cp; }
  // The ranks the optimizer states (and ZeRO-2 gradients) are split over. ZeRO-1/2: the DP x CP group,
  // since context-parallel ranks hold the same weights (Megatron-Core 0.8 megatron/core/optimizer/__init__.py
  // "data_parallel_group=mpu.get_data_parallel_group(with_context_parallel=True)"; NeMo 24.07's
  // DistributedFusedAdam process_group likewise, docs/accuracy-acc11.md). ZeRO-3: shard_degree().
  int state_shards() const { return zero <= 2 ? dp * cp : shard_degree(); }
  Offload offload = Offload::none;
  Precision precision = Precision::bf16;
  bool precision_set = false;
  // Allow layers not divisible by pp*vpp (middle stages take ceil(L/p), first and last share the
  // rest, as Llama 3 did: "one fewer layer on the first and last stage"). Off for user plans.
  bool allow_uneven_layers = false;
  // Layers per pipeline stage (issue 16), plan key `layers=F/M/L`: F on the first stage, M on each
  // middle stage, L on the last (`F/L` at pp=2, `L` at pp=1). 0: not given; resolve_plan and the
  // search fill them (strategies::stage_layers), so every resolved plan says its split.
  int layers_first = 0, layers_middle = 0, layers_last = 0;
  int layers_given = 0;  // how many numbers the plan's `layers=` key gave (0: none)
  bool uneven_split() const { return layers_first > 0 && (layers_first != layers_middle || layers_last != layers_middle); }
  std::string layers_string() const;  // "F/M/L", "F/L" or "L" (the key's value); "" when not set

  int gpus() const { return dp * tp * pp * cp; }
  long long microbatches() const { return gbs / (static_cast<long long>(mbs) * dp); }  // per pipeline
  std::string to_string() const;
};

// Parses "tp=8,pp=16,mbs=1" (unknown keys, bad values -> PlanError naming the key).
Plan parse_plan(const std::string& text);
// Parses the text of a plan file (a YAML mapping with the same keys; errors name file:line:col).
Plan parse_plan_yaml(const std::string& text, const std::string& file);
// Parses a plan file (YAML mapping with the same keys) or, if `spec` contains '=', a plan string.
Plan load_plan(const std::string& spec);
// Fills defaults (dp from gpus, gbs, precision, schedule) and checks every divisibility rule
// against the model, cluster and GPU count (gpus <= 0: no GPU-count check). Throws PlanError.
Plan resolve_plan(Plan p, const model::ModelSpec& m, const hw::Cluster& c, long long gpus);

}  // namespace scaleplan::strategies
