#pragma once
// The GPT decoder of the reference executor, written once against Backend and Comm, trained under
// a Plan: DP with bucketed gradient all-reduce, ZeRO-1/2/3, Megatron TP-1D (column/row-parallel
// linears, vocab-parallel embedding and cross-entropy) with or without sequence parallel, PP with
// GPipe or 1F1B, activation recompute (full, selective). fp32 throughout.
//
// Parameters live in "units" (a transformer layer, the word embedding, the position embedding,
// the final LayerNorm, the last stage's copy of the tied word embedding): a unit is one flat
// buffer, the DP bucket and the ZeRO-3 gather granularity.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "executor/backend.hpp"
#include "executor/comm.hpp"
#include "model/model.hpp"
#include "strategies/plan.hpp"
#include "strategies/timeline.hpp"

namespace scaleplan::executor {

// Optimizer hyper-parameters (defaults: GPT-3 paper Table 2.1 betas/eps; lr for tiny models).
struct TrainOptions {
  std::string optimizer = "adamw";  // adamw | lamb | lars (registry in gpt.cpp)
  double lr = 3e-3;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.9;  // LARS
  std::uint64_t seed = 1234;
};

// This rank's place in the plan. Rank order, innermost first: tp, dp, pp (Megatron default; cp = 1).
struct Grid {
  int tp = 1, dp = 1, pp = 1;
  int tp_rank = 0, dp_rank = 0, pp_rank = 0;
  static Grid make(const strategies::Plan& p, int world_rank);
};

// How a global tensor is cut over the TP group: none (replicated), cols (each of `blocks` column
// blocks cut into tp pieces, local = the pieces concatenated), rows (row blocks).
enum class Split { none, cols, rows };

struct TensorInfo {
  std::string name;         // "layer0.attn.qkv.weight"
  std::string init_name;    // the tensor whose initial value this one takes (tied copies)
  long long rows = 0, cols = 0;  // global shape
  Split split = Split::none;
  int blocks = 1;
  enum class Init { normal, ones, zeros } init = Init::zeros;
  float init_std = 0;
  bool sp_sync = false;     // replicated over TP; its gradient is summed over TP under SP
  long long offset = 0;     // in the unit's local flat buffer
  long long local_rows = 0, local_cols = 0;
  long long local_size() const { return local_rows * local_cols; }
};

struct UnitInfo {
  std::string name;  // wte, wpe, layer<i>, lnf, wte_copy
  std::vector<TensorInfo> tensors;
  long long size = 0;  // local (TP-sliced) parameters
  int layer = -1;
};

// The layers of pipeline stage `stage`, in order (interleaved: chunk by chunk).
std::vector<int> stage_layer_list(const model::ModelSpec& m, const strategies::Plan& p, int stage);
// The units of pipeline stage `stage` for TP degree `tp` (layout is the same on every rank).
std::vector<UnitInfo> stage_units(const model::ModelSpec& m, const strategies::Plan& p, int stage);
// Cuts a global tensor (rows x cols, row-major) to TP rank `r`'s local piece.
std::vector<float> slice_tensor(const TensorInfo& t, const std::vector<float>& global, int tp, int r);
// The initial global value of a tensor (deterministic: seed and init_name).
std::vector<float> init_tensor(const TensorInfo& t, std::uint64_t seed);

// A token corpus: byte-level (vocab >= 256) training data with a deterministic batch order.
class Corpus {
 public:
  explicit Corpus(std::vector<std::int32_t> tokens) : tok_(std::move(tokens)) {}
  static Corpus from_text(const std::string& text);
  static Corpus from_file(const std::string& path);  // throws ConfigError
  // Sequence j of step k: tokens [o, o+s) and targets [o+1, o+s+1).
  void sequence(long long step, long long j, long long gbs, int s, std::int32_t* ids, std::int32_t* targets) const;
  std::size_t size() const { return tok_.size(); }

 private:
  std::vector<std::int32_t> tok_;
};

struct GradPiece {  // a range of one unit's local flat gradient that this rank owns after a step
  std::string unit;
  long long begin = 0;
  std::vector<float> values;
};

class Trainer {
 public:
  // `p` must be resolved for world.size() ranks. Throws PlanError for what the executor does not
  // support or a model that does not divide.
  Trainer(model::ModelSpec m, strategies::Plan p, Backend& be, Comm& world, TrainOptions o = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // One optimizer step on gbs sequences; returns the global mean loss (the same on every rank).
  double step(const Corpus& data);
  long long steps_done() const { return step_; }

  // Measurements of this rank since construction (memory peaks: reset_peaks() first).
  MemStats memory() const { return be_.memory_stats(); }
  const CommCounters& comm_counters() const { return world_.counters(); }
  void reset_measurements();

  // Checkpoint (one file per rank and step + a manifest written last; atomic temp+fsync+rename).
  // `before_rename` (tests) runs after each rank file is durable under its temporary name and
  // before the rename; throwing from it simulates a crash in the middle of a save.
  void save(const std::string& dir, const std::function<void(const std::string&)>& before_rename = {}) const;
  void load(const std::string& dir);  // throws CheckpointError; collective (all ranks agree)

  // For tests: loss and gradients of the next step's batch without the optimizer update, and
  // access to one local parameter (zero < 3).
  double loss_and_grads(const Corpus& data);
  float param(const std::string& unit, long long i) const;
  void set_param(const std::string& unit, long long i, float v);
  // For tests: the gradient ranges this rank owns, and the global gradients of a single-rank run.
  std::vector<GradPiece> grad_pieces() const;
  std::map<std::string, std::vector<float>> global_grads() const;  // only for tp = 1 and one stage
  std::vector<UnitInfo> units_info() const;
  const Grid& grid() const { return g_; }
  // This rank's spans of the last step (seconds from its start): one per forward/backward op
  // ("F mb0 c0", "B mb0 c0"; their TP/PP communication included), "grad reduction", "optimizer".
  const strategies::Timeline& last_timeline() const;

  struct Impl;

 private:
  Backend& be_;
  Comm& world_;
  Grid g_;
  long long step_ = 0;
  std::unique_ptr<Impl> im_;
};

struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace scaleplan::executor
