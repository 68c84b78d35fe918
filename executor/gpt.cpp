// The GPT decoder of the reference executor and its training step under a Plan (see gpt.hpp).
// Megatron-LM's layouts and collectives (Shoeybi et al. 2019 sec. 3; Korthikanti et al. 2022
// sec. 4.2.2 for sequence parallel), ZeRO (Rajbhandari et al. 2020 sec. 5), PP schedules GPipe
// (Huang et al. 2019) and 1F1B (Narayanan et al. 2021 sec. 2.2).
#include "executor/gpt.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include "common/errors.hpp"
#include "common/presets.hpp"
#include "strategies/pipeline.hpp"

namespace scaleplan::executor {

using strategies::Plan;
using strategies::Recompute;
using strategies::Schedule;

Grid Grid::make(const Plan& p, int r) {
  Grid g;
  g.tp = p.tp;
  g.dp = p.dp;
  g.pp = p.pp;
  g.tp_rank = r % p.tp;
  g.dp_rank = (r / p.tp) % p.dp;
  g.pp_rank = r / (p.tp * p.dp);
  return g;
}

// ---------------------------------------------------------------------------------------------
// Layout
namespace {

struct StageRange {
  int first = 0, count = 0;
};
StageRange stage_range(long long L, int pp, int stage) {
  const strategies::StageLayers sl = strategies::stage_layers(L, pp);
  auto n_of = [&](int i) {
    return static_cast<int>(pp == 1 ? sl.first : i == 0 ? sl.first : i == pp - 1 ? sl.last : sl.middle);
  };
  StageRange r;
  for (int i = 0; i < stage; ++i) r.first += n_of(i);
  r.count = n_of(stage);
  return r;
}

void add_tensor(UnitInfo& u, const std::string& name, long long rows, long long cols, Split split, int blocks,
                TensorInfo::Init init, float stdv, bool sp_sync, int tp, const std::string& init_name = "") {
  TensorInfo t;
  t.name = u.name + "." + name;
  t.init_name = init_name.empty() ? t.name : init_name;
  t.rows = rows;
  t.cols = cols;
  t.split = split;
  t.blocks = blocks;
  t.init = init;
  t.init_std = stdv;
  t.sp_sync = sp_sync;
  t.local_rows = split == Split::rows ? rows / tp : rows;
  t.local_cols = split == Split::cols ? cols / tp : cols;
  t.offset = u.size;
  u.size += t.local_size();
  u.tensors.push_back(std::move(t));
}

}  // namespace

std::vector<int> stage_layer_list(const model::ModelSpec& m, const Plan& p, int stage) {
  std::vector<int> v;
  if (p.schedule == Schedule::interleaved && p.vpp > 1) {
    // Interleaved stages (Narayanan et al. 2021 sec. 2.2): chunk c of stage i is virtual stage
    // c*pp + i, holding layers/(pp*vpp) consecutive layers.
    const int lc = static_cast<int>(m.layers / (static_cast<long long>(p.pp) * p.vpp));
    for (int c = 0; c < p.vpp; ++c)
      for (int l = 0; l < lc; ++l) v.push_back((c * p.pp + stage) * lc + l);
    return v;
  }
  const StageRange r = stage_range(m.layers, p.pp, stage);
  for (int l = r.first; l < r.first + r.count; ++l) v.push_back(l);
  return v;
}

std::vector<UnitInfo> stage_units(const model::ModelSpec& m, const Plan& p, int stage) {
  using I = TensorInfo::Init;
  const int t = p.tp;
  const long long h = m.hidden, F = m.ffn, V = m.vocab, s = m.seq;
  const int gated = m.activation == model::Activation::swiglu ? 2 : 1;
  const float std0 = 0.02f;                                                   // GPT-2 init
  const float std_out = 0.02f / std::sqrt(2.0f * static_cast<float>(m.layers));  // GPT-2: residual projections
  std::vector<UnitInfo> us;
  if (stage == 0) {
    UnitInfo w{"wte", {}, 0, -1};
    add_tensor(w, "weight", V, h, Split::rows, 1, I::normal, std0, false, t);
    us.push_back(std::move(w));
    UnitInfo pe{"wpe", {}, 0, -1};
    add_tensor(pe, "weight", s, h, Split::none, 1, I::normal, 0.01f, false, t);  // GPT-2 wpe std 0.01
    us.push_back(std::move(pe));
  }
  for (int l : stage_layer_list(m, p, stage)) {
    UnitInfo u{"layer" + std::to_string(l), {}, 0, l};
    add_tensor(u, "ln1.weight", 1, h, Split::none, 1, I::ones, 0, true, t);
    add_tensor(u, "ln1.bias", 1, h, Split::none, 1, I::zeros, 0, true, t);
    add_tensor(u, "attn.qkv.weight", h, 3 * h, Split::cols, 3, I::normal, std0, false, t);
    if (m.bias) add_tensor(u, "attn.qkv.bias", 1, 3 * h, Split::cols, 3, I::zeros, 0, false, t);
    add_tensor(u, "attn.proj.weight", h, h, Split::rows, 1, I::normal, std_out, false, t);
    if (m.bias) add_tensor(u, "attn.proj.bias", 1, h, Split::none, 1, I::zeros, 0, true, t);
    add_tensor(u, "ln2.weight", 1, h, Split::none, 1, I::ones, 0, true, t);
    add_tensor(u, "ln2.bias", 1, h, Split::none, 1, I::zeros, 0, true, t);
    add_tensor(u, "mlp.fc1.weight", h, gated * F, Split::cols, gated, I::normal, std0, false, t);
    if (m.bias) add_tensor(u, "mlp.fc1.bias", 1, gated * F, Split::cols, gated, I::zeros, 0, false, t);
    add_tensor(u, "mlp.fc2.weight", F, h, Split::rows, 1, I::normal, std_out, false, t);
    if (m.bias) add_tensor(u, "mlp.fc2.bias", 1, h, Split::none, 1, I::zeros, 0, true, t);
    us.push_back(std::move(u));
  }
  if (stage == p.pp - 1) {
    UnitInfo f{"lnf", {}, 0, -1};
    add_tensor(f, "weight", 1, h, Split::none, 1, I::ones, 0, true, t);
    add_tensor(f, "bias", 1, h, Split::none, 1, I::zeros, 0, true, t);
    us.push_back(std::move(f));
    if (p.pp > 1) {  // Megatron keeps a copy of the tied word embedding on the last stage
      UnitInfo w{"wte_copy", {}, 0, -1};
      add_tensor(w, "weight", V, h, Split::rows, 1, I::normal, std0, false, t, "wte.weight");
      us.push_back(std::move(w));
    }
  }
  return us;
}

std::vector<float> slice_tensor(const TensorInfo& t, const std::vector<float>& g, int tp, int r) {
  std::vector<float> out(static_cast<std::size_t>(t.local_size()));
  if (t.split == Split::none || tp == 1) {
    std::copy(g.begin(), g.begin() + t.local_size(), out.begin());
  } else if (t.split == Split::rows) {
    const long long lr = t.rows / tp;
    std::copy(g.begin() + r * lr * t.cols, g.begin() + (r + 1) * lr * t.cols, out.begin());
  } else {
    const long long bw = t.cols / t.blocks, lw = bw / tp, lc = t.local_cols;
    for (long long row = 0; row < t.rows; ++row)
      for (int b = 0; b < t.blocks; ++b)
        std::copy(g.begin() + row * t.cols + b * bw + r * lw, g.begin() + row * t.cols + b * bw + (r + 1) * lw,
                  out.begin() + row * lc + b * lw);
  }
  return out;
}

std::vector<float> init_tensor(const TensorInfo& t, std::uint64_t seed) {
  std::vector<float> v(static_cast<std::size_t>(t.rows * t.cols), 0.f);
  if (t.init == TensorInfo::Init::ones) std::fill(v.begin(), v.end(), 1.f);
  if (t.init == TensorInfo::Init::normal) {
    // Seeded by the tensor's name (FNV-1a), so every rank and every plan draws the same values.
    std::uint64_t hsh = 1469598103934665603ULL;
    for (char c : t.init_name) hsh = (hsh ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    std::mt19937_64 rng(hsh ^ seed);
    std::normal_distribution<float> nd(0.f, t.init_std);
    for (auto& x : v) x = nd(rng);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Corpus
Corpus Corpus::from_text(const std::string& text) {
  std::vector<std::int32_t> t(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) t[i] = static_cast<unsigned char>(text[i]);
  return Corpus(std::move(t));
}
Corpus Corpus::from_file(const std::string& path) {
  // Bounded read (common/presets.hpp read_file): regular files up to limits::kMaxFileBytes only,
  // so /dev/zero or a FIFO is refused instead of read forever (issue 17).
  try {
    return from_text(read_file(path));
  } catch (const UsageError& e) {
    throw ConfigError({path, 0, 0}, "data", std::string("cannot use the training text file: ") + e.what());
  }
}
void Corpus::sequence(long long step, long long j, long long gbs, int s, std::int32_t* ids, std::int32_t* tg) const {
  const long long span = static_cast<long long>(tok_.size()) - s - 1;
  if (span <= 0) throw ConfigError({"<data>", 0, 0}, "data", "the corpus is shorter than seq+1 tokens");
  // Sequence starts walk the corpus with a stride coprime-ish to its length (deterministic order).
  const long long k = step * gbs + j;
  const long long o = (k * 7919LL * s / 8 + k * 131) % span;
  for (int i = 0; i < s; ++i) {
    ids[i] = tok_[o + i];
    tg[i] = tok_[o + i + 1];
  }
}

// ---------------------------------------------------------------------------------------------
// The trainer
namespace {

struct Unit {
  UnitInfo info;
  Buffer p;  // params: the whole local unit, or the DP shard at ZeRO-3
  Buffer g;  // grads: the whole local unit, or the DP shard at ZeRO-2/3
  Buffer m, v;  // optimizer moments: the whole local unit, or the DP shard at ZeRO-1+
  long long shard = 0, begin = 0;  // this rank's DP shard of the flat unit
  // ZeRO-3 gathered params / ZeRO-2+ gradient bucket, while the unit is in use
  Buffer gp, gg;
  int gp_users = 0, gg_users = 0;
};

struct LayerActs {
  Buffer x, ln1, mu1, rs1, q, k, v, probs, ctx, x2, ln2, mu2, rs2, f1, a;
};

struct MbState {
  Buffer ids, targets;
  std::vector<std::vector<LayerActs>> acts;  // [chunk][layer of the chunk]
  Buffer dy_out;  // last stage: grad of the stage output, computed with the head at forward time
};

struct LayerW {
  float *ln1g, *ln1b, *wqkv, *bqkv, *wo, *bo, *ln2g, *ln2b, *w1, *b1, *w2, *b2;
};

// Optimizer registry (DESIGN.md sec. 4).
struct OptimizerKind {
  const char* name;
  int moments;  // fp32 state buffers per parameter
};
const OptimizerKind* find_optimizer(const std::string& n) {
  static const OptimizerKind kinds[] = {{"adamw", 2}, {"lamb", 2}, {"lars", 1}};
  for (const auto& k : kinds)
    if (n == k.name) return &k;
  return nullptr;
}

}  // namespace

struct Trainer::Impl {
  Backend& be;
  Comm& world;
  model::ModelSpec m;
  Plan p;
  TrainOptions o;
  Grid g;
  std::unique_ptr<Comm> tp, dp, pp, tie;
  std::vector<Unit> units;
  int first_layer_unit = 0, n_layers = 0;
  int v = 1;                                   // model chunks per stage (interleaved schedule)
  std::vector<std::vector<int>> chunk_units;   // unit indices of each chunk's layers, in order
  int wte = -1, wpe = -1, lnf = -1, wte_copy = -1;
  // dims
  int b = 1, s = 1, T = 1, h = 1, t = 1, Tl = 1, hl = 1, d = 1, Fl = 1, F1l = 1, V = 1, Vl = 1, vb = 0;
  bool sp = false, gated = false, first = true, last = true;
  const OptimizerKind* opt = nullptr;
  double loss_sum = 0;
  long long step_no = 0;
  strategies::Timeline timeline;

  Impl(Backend& b_, Comm& w_, model::ModelSpec m_, Plan p_, TrainOptions o_)
      : be(b_), world(w_), m(std::move(m_)), p(std::move(p_)), o(std::move(o_)) {}

  Buffer act(std::size_t n) { return make_floats(be, n, MemCategory::activations); }
  Buffer ws(std::size_t n) { return make_floats(be, n, MemCategory::buffers); }

  // ---- parameters ----------------------------------------------------------------------------
  float* params(Unit& u) { return p.zero >= 3 ? u.gp.f() : u.p.f(); }
  float* grads(Unit& u) { return p.zero >= 2 ? u.gg.f() : u.g.f(); }
  void acquire_params(Unit& u) {
    if (p.zero < 3) return;
    if (u.gp_users++ == 0) {
      // ZeRO-3 keeps one gathered unit live; the estimator books it under params (DeepSpeed's 4 P_L).
      u.gp = make_floats(be, u.info.size, MemCategory::params);
      dp->all_gather(u.p.f(), u.gp.f(), u.shard);
    }
  }
  void release_params(Unit& u) {
    if (p.zero < 3) return;
    if (--u.gp_users == 0) u.gp.reset();
  }
  void acquire_grads(Unit& u) {
    if (p.zero < 2) return;
    if (u.gg_users++ == 0) {
      // ZeRO-2: a communication bucket (buffers); ZeRO-3: the live layer's grads (params, as the estimator).
      u.gg = make_floats(be, u.info.size, p.zero >= 3 ? MemCategory::params : MemCategory::buffers);
    }
  }
  void release_grads(Unit& u) {
    if (p.zero < 2) return;
    if (--u.gg_users == 0) {
      if (sp) sp_sync({&u}, true);
      Buffer part = ws(u.shard);
      dp->reduce_scatter(u.gg.f(), part.f(), u.shard);
      be.axpy(1.f, part.f(), u.g.f(), u.shard);
      u.gg.reset();
    }
  }
  LayerW layer_w(float* base, const UnitInfo& u) {
    auto at = [&](const char* n) -> float* {
      for (const auto& ti : u.tensors)
        if (ti.name == u.name + "." + n) return base + ti.offset;
      return nullptr;
    };
    return {at("ln1.weight"), at("ln1.bias"), at("attn.qkv.weight"), at("attn.qkv.bias"), at("attn.proj.weight"),
            at("attn.proj.bias"), at("ln2.weight"), at("ln2.bias"), at("mlp.fc1.weight"), at("mlp.fc1.bias"),
            at("mlp.fc2.weight"), at("mlp.fc2.bias")};
  }

  void setup() {
    if (m.moe.enabled()) throw PlanError("model", "the executor trains dense models only (this one is MoE)");
    if (m.activation != model::Activation::gelu && m.activation != model::Activation::swiglu)
      throw PlanError("model", "the executor implements the gelu and swiglu activations only (not relu, geglu, squared_relu)");
    if (m.norm != model::Norm::layernorm) throw PlanError("model", "the executor implements LayerNorm only (norm=rmsnorm)");
    if (m.position != model::Position::learned) throw PlanError("model", "the executor implements learned positions only (rope)");
    if (m.kv_heads != m.heads) throw PlanError("model", "the executor implements multi-head attention only (kv_heads != heads)");
    if (!m.tied_embeddings) throw PlanError("model", "the executor implements tied embeddings only");
    if (p.tp_mode != strategies::TpMode::d1)
      throw PlanError("tp_mode", "the executor implements 1d (Megatron) tensor parallelism only (tp_mode=1d)");
    if (p.cp != 1) throw PlanError("cp", "context parallelism is not implemented in the executor (cp=1 only)");
    if (p.ep != 1) throw PlanError("ep", "expert parallelism is not implemented in the executor");
    if (p.offload != strategies::Offload::none) throw PlanError("offload", "offload is not implemented in the executor");
    if (p.precision != strategies::Precision::fp32) throw PlanError("precision", "the executor trains in fp32 (precision=fp32)");
    if (p.pp > 1 && p.schedule == Schedule::zero_bubble)
      throw PlanError("schedule", "zero_bubble is not implemented in the executor (gpipe, 1f1b, interleaved)");
    if (p.vpp != 1 && p.schedule != Schedule::interleaved) throw PlanError("vpp", "vpp > 1 needs schedule=interleaved");
    v = p.schedule == Schedule::interleaved ? p.vpp : 1;
    if (m.layers % (static_cast<long long>(p.pp) * v) != 0) throw PlanError("pp", "pp*vpp must divide layers in the executor");
    if (v > 1 && p.microbatches() % p.pp != 0) throw PlanError("gbs", "the interleaved schedule needs microbatches divisible by pp");
    opt = find_optimizer(o.optimizer);
    if (!opt) throw PlanError("optimizer", "unknown optimizer '" + o.optimizer + "' (adamw, lamb, lars)");
    b = p.mbs;
    s = static_cast<int>(m.seq);
    T = b * s;
    h = static_cast<int>(m.hidden);
    t = p.tp;
    sp = p.sp && t > 1;
    if ((sp || (p.pp > 1 && t > 1)) && T % t != 0)
      throw PlanError("mbs", "mbs*seq = " + std::to_string(T) + " tokens do not divide over tp=" + std::to_string(t));
    if (m.vocab % t != 0) throw PlanError("tp", "tp=" + std::to_string(t) + " does not divide vocab=" + std::to_string(m.vocab));
    Tl = sp ? T / t : T;
    hl = static_cast<int>(m.heads) / t;
    d = static_cast<int>(m.head_dim());
    gated = m.activation == model::Activation::swiglu;
    Fl = static_cast<int>(m.ffn) / t;
    F1l = gated ? 2 * Fl : Fl;
    V = static_cast<int>(m.vocab);
    Vl = V / t;

    g = Grid::make(p, world.rank());
    vb = g.tp_rank * Vl;
    first = g.pp_rank == 0;
    last = g.pp_rank == p.pp - 1;
    // Sub-communicators (every rank calls every split: MPI_Comm_split is collective).
    tp = world.split(g.pp_rank * p.dp + g.dp_rank, g.tp_rank, CommDim::tp);
    dp = world.split(g.pp_rank * p.tp + g.tp_rank, g.dp_rank, CommDim::dp);
    pp = world.split(g.dp_rank * p.tp + g.tp_rank, g.pp_rank, CommDim::pp);
    // Tied embedding: first and last stage of the same (dp, tp) column; its bytes count as dp
    // (DESIGN.md / estimator: the embedding-gradient all-reduce is in comm_bytes_per_gpu.dp).
    const bool end = p.pp > 1 && (first || last);
    tie = world.split(end ? g.dp_rank * p.tp + g.tp_rank : -1, g.pp_rank, CommDim::dp);

    const auto infos = stage_units(m, p, g.pp_rank);
    for (const auto& ui : infos) {
      Unit u;
      u.info = ui;
      if (p.zero >= 1 && ui.size % p.dp != 0)
        throw PlanError("dp", "the model does not divide: unit " + ui.name + " has " + std::to_string(ui.size) +
                                  " parameters per TP rank, not a multiple of dp=" + std::to_string(p.dp) + " (ZeRO shards)");
      u.shard = p.zero >= 1 ? ui.size / p.dp : ui.size;
      u.begin = p.zero >= 1 ? u.shard * g.dp_rank : 0;
      // Initial values: the global tensor, sliced to this TP rank, packed into the flat unit.
      std::vector<float> flat(static_cast<std::size_t>(ui.size));
      for (const auto& ti : ui.tensors) {
        auto loc = slice_tensor(ti, init_tensor(ti, o.seed), t, g.tp_rank);
        std::copy(loc.begin(), loc.end(), flat.begin() + ti.offset);
      }
      const std::size_t pn = p.zero >= 3 ? u.shard : ui.size;
      u.p = make_floats(be, pn, MemCategory::params);
      be.copy_to_device(u.p.f(), flat.data() + (p.zero >= 3 ? u.begin : 0), pn * sizeof(float));
      u.g = make_floats(be, p.zero >= 2 ? u.shard : ui.size, MemCategory::grads);
      const std::size_t on = p.zero >= 1 ? u.shard : ui.size;
      u.m = make_floats(be, on, MemCategory::optimizer);
      if (opt->moments > 1) u.v = make_floats(be, on, MemCategory::optimizer);
      units.push_back(std::move(u));
    }
    for (int i = 0; i < static_cast<int>(units.size()); ++i) {
      const auto& n = units[i].info.name;
      if (n == "wte") wte = i;
      else if (n == "wpe") wpe = i;
      else if (n == "lnf") lnf = i;
      else if (n == "wte_copy") wte_copy = i;
      else if (units[i].info.layer >= 0 && n_layers++ == 0) first_layer_unit = i;
    }
    chunk_units.assign(v, {});
    const int per_chunk = n_layers / v;
    for (int k = 0; k < n_layers; ++k) chunk_units[k / per_chunk].push_back(first_layer_unit + k);
  }

  // ---- TP helpers --------------------------------------------------------------------------------
  // [Tl, h] sequence shard -> [T, h] (SP all-gather).
  Buffer gather_seq(const float* x, int cols) {
    Buffer out = ws(static_cast<std::size_t>(T) * cols);
    tp->all_gather(x, out.f(), static_cast<std::size_t>(Tl) * cols);
    return out;
  }
  // A partial [T, h] sum over TP -> the reduced [Tl, h] (reduce-scatter with SP, all-reduce without).
  Buffer reduce_tp(Buffer partial) {
    if (t == 1) return partial;
    if (!sp) {
      tp->all_reduce(partial.f(), static_cast<std::size_t>(T) * h);
      return partial;
    }
    Buffer out = ws(static_cast<std::size_t>(Tl) * h);
    tp->reduce_scatter(partial.f(), out.f(), static_cast<std::size_t>(Tl) * h);
    return out;
  }

  // ---- one transformer layer ------------------------------------------------------------------
  void attention_scores(LayerActs& A, Buffer& probs, MemCategory cat) {
    const int bh = b * hl;
    Buffer S = ws(static_cast<std::size_t>(bh) * s * s);
    be.gemm_strided_batched(Trans::N, Trans::T, s, s, d, 1.f, A.q.f(), d, (long long)s * d, A.k.f(), d,
                            (long long)s * d, 0.f, S.f(), s, (long long)s * s, bh);
    probs = make_floats(be, static_cast<std::size_t>(bh) * s * s, cat);
    be.softmax_causal_fwd(S.f(), probs.f(), bh, s, 1.f / std::sqrt(static_cast<float>(d)));
  }

  // Forward of layer `W` on A.x; returns the output [Tl, h]. keep=false keeps only A.x;
  // output=false (recompute before backward) does not keep the layer's output.
  Buffer layer_fwd(const LayerW& W, LayerActs& A, bool keep, bool output = true,
                   MemCategory out_cat = MemCategory::activations) {
    // Without keep (full recompute's first forward) the intermediates are workspace: they die with
    // the layer's forward; only A.x and the output are stored activations.
    auto sv = [&](std::size_t n) { return make_floats(be, n, keep ? MemCategory::activations : MemCategory::buffers); };
    const int qw = 3 * hl * d;
    A.ln1 = sv((size_t)Tl * h);
    A.mu1 = sv(Tl);
    A.rs1 = sv(Tl);
    be.layernorm_fwd(A.x.f(), W.ln1g, W.ln1b, A.ln1.f(), A.mu1.f(), A.rs1.f(), Tl, h, 1e-5f);
    {
      Buffer ln1g;
      const float* ln1f = A.ln1.f();
      if (sp) {
        ln1g = gather_seq(A.ln1.f(), h);
        ln1f = ln1g.f();
      }
      Buffer qkv = ws((size_t)T * qw);
      be.gemm(Trans::N, Trans::N, T, qw, h, 1.f, ln1f, h, W.wqkv, qw, 0.f, qkv.f(), qw);
      if (W.bqkv) be.add_bias(qkv.f(), W.bqkv, T, qw);
      const size_t hn = (size_t)b * hl * s * d;
      A.q = sv(hn);
      A.k = sv(hn);
      A.v = sv(hn);
      be.split_heads(qkv.f(), qw, A.q.f(), b, s, hl, d);
      be.split_heads(qkv.f() + hl * d, qw, A.k.f(), b, s, hl, d);
      be.split_heads(qkv.f() + 2 * hl * d, qw, A.v.f(), b, s, hl, d);
    }
    {
      const bool selective = p.recompute == Recompute::selective;
      Buffer P;
      attention_scores(A, P, selective || !keep ? MemCategory::buffers : MemCategory::activations);
      Buffer ch = ws((size_t)b * hl * s * d);
      be.gemm_strided_batched(Trans::N, Trans::N, s, d, s, 1.f, P.f(), s, (long long)s * s, A.v.f(), d,
                              (long long)s * d, 0.f, ch.f(), d, (long long)s * d, b * hl);
      A.ctx = sv((size_t)T * hl * d);
      be.merge_heads(ch.f(), A.ctx.f(), hl * d, b, s, hl, d);
      if (!selective) A.probs = std::move(P);
    }
    {
      Buffer o = ws((size_t)T * h);
      be.gemm(Trans::N, Trans::N, T, h, hl * d, 1.f, A.ctx.f(), hl * d, W.wo, h, 0.f, o.f(), h);
      Buffer orr = reduce_tp(std::move(o));
      if (W.bo) be.add_bias(orr.f(), W.bo, Tl, h);
      A.x2 = sv((size_t)Tl * h);
      be.copy(A.x.f(), A.x2.f(), (size_t)Tl * h);
      be.axpy(1.f, orr.f(), A.x2.f(), (size_t)Tl * h);
    }
    A.ln2 = sv((size_t)Tl * h);
    A.mu2 = sv(Tl);
    A.rs2 = sv(Tl);
    be.layernorm_fwd(A.x2.f(), W.ln2g, W.ln2b, A.ln2.f(), A.mu2.f(), A.rs2.f(), Tl, h, 1e-5f);
    {
      Buffer ln2g;
      const float* ln2f = A.ln2.f();
      if (sp) {
        ln2g = gather_seq(A.ln2.f(), h);
        ln2f = ln2g.f();
      }
      A.f1 = sv((size_t)T * F1l);
      be.gemm(Trans::N, Trans::N, T, F1l, h, 1.f, ln2f, h, W.w1, F1l, 0.f, A.f1.f(), F1l);
      if (W.b1) be.add_bias(A.f1.f(), W.b1, T, F1l);
    }
    A.a = sv((size_t)T * Fl);
    if (gated) be.swiglu_fwd(A.f1.f(), A.a.f(), T, Fl);
    else be.gelu_fwd(A.f1.f(), A.a.f(), (size_t)T * Fl);
    Buffer y;
    {
      Buffer f2 = ws((size_t)T * h);
      be.gemm(Trans::N, Trans::N, T, h, Fl, 1.f, A.a.f(), Fl, W.w2, h, 0.f, f2.f(), h);
      Buffer fr = reduce_tp(std::move(f2));
      // Recompute runs the whole forward with its collectives (as Megatron's checkpointed layer)
      // but drops the output, which the backward does not need.
      if (!output) return Buffer();
      y = make_floats(be, (size_t)Tl * h, out_cat);
      if (W.b2) be.add_bias(fr.f(), W.b2, Tl, h);
      be.copy(A.x2.f(), y.f(), (size_t)Tl * h);
      be.axpy(1.f, fr.f(), y.f(), (size_t)Tl * h);
    }
    if (!keep) {
      Buffer x = std::move(A.x);
      A = LayerActs{};
      A.x = std::move(x);
    }
    return y;
  }

  // Backward of one layer: dy [Tl, h] -> dx [Tl, h]; accumulates into the grads at `G`.
  Buffer layer_bwd(const LayerW& W, const LayerW& G, LayerActs& A, Buffer dy) {
    const int qw = 3 * hl * d;
    if (G.b2) be.bias_grad(dy.f(), G.b2, Tl, h);
    Buffer dln2;
    {
      Buffer dyg;
      const float* dyf = dy.f();
      if (sp) {
        dyg = gather_seq(dy.f(), h);
        dyf = dyg.f();
      }
      Buffer da = ws((size_t)T * Fl);
      be.gemm(Trans::N, Trans::T, T, Fl, h, 1.f, dyf, h, W.w2, h, 0.f, da.f(), Fl);
      be.gemm(Trans::T, Trans::N, Fl, h, T, 1.f, A.a.f(), Fl, dyf, h, 1.f, G.w2, h);
      dyg.reset();
      Buffer df1 = ws((size_t)T * F1l);
      if (gated) be.swiglu_bwd(A.f1.f(), da.f(), df1.f(), T, Fl);
      else be.gelu_bwd(A.f1.f(), da.f(), df1.f(), (size_t)T * Fl);
      da.reset();
      if (G.b1) be.bias_grad(df1.f(), G.b1, T, F1l);
      {
        Buffer ln2g;
        const float* ln2f = A.ln2.f();
        if (sp) {  // SP re-gathers the sharded GEMM input for the weight gradient (Korthikanti sec. 4.2.2)
          ln2g = gather_seq(A.ln2.f(), h);
          ln2f = ln2g.f();
        }
        be.gemm(Trans::T, Trans::N, h, F1l, T, 1.f, ln2f, h, df1.f(), F1l, 1.f, G.w1, F1l);
      }
      Buffer dp_ = ws((size_t)T * h);
      be.gemm(Trans::N, Trans::T, T, h, F1l, 1.f, df1.f(), F1l, W.w1, F1l, 0.f, dp_.f(), h);
      df1.reset();
      dln2 = reduce_tp(std::move(dp_));
    }
    Buffer dx2 = ws((size_t)Tl * h);
    be.layernorm_bwd(dln2.f(), A.x2.f(), W.ln2g, A.mu2.f(), A.rs2.f(), dx2.f(), G.ln2g, G.ln2b, Tl, h);
    be.axpy(1.f, dy.f(), dx2.f(), (size_t)Tl * h);
    dln2.reset();
    dy.reset();
    if (G.bo) be.bias_grad(dx2.f(), G.bo, Tl, h);
    Buffer dqkv = ws((size_t)T * qw);
    {
      Buffer dxg;
      const float* dxf = dx2.f();
      if (sp) {
        dxg = gather_seq(dx2.f(), h);
        dxf = dxg.f();
      }
      Buffer dctx = ws((size_t)T * hl * d);
      be.gemm(Trans::N, Trans::T, T, hl * d, h, 1.f, dxf, h, W.wo, h, 0.f, dctx.f(), hl * d);
      be.gemm(Trans::T, Trans::N, hl * d, h, T, 1.f, A.ctx.f(), hl * d, dxf, h, 1.f, G.wo, h);
      dxg.reset();
      const int bh = b * hl;
      const size_t hn = (size_t)bh * s * d, sn = (size_t)bh * s * s;
      Buffer dch = ws(hn);
      be.split_heads(dctx.f(), hl * d, dch.f(), b, s, hl, d);
      dctx.reset();
      Buffer P;
      const float* pr = A.probs.f();
      if (!A.probs) {  // selective recompute: the attention core again, as workspace
        attention_scores(A, P, MemCategory::buffers);
        pr = P.f();
      }
      Buffer dP = ws(sn), dv = ws(hn);
      be.gemm_strided_batched(Trans::N, Trans::T, s, s, d, 1.f, dch.f(), d, (long long)s * d, A.v.f(), d,
                              (long long)s * d, 0.f, dP.f(), s, (long long)s * s, bh);
      be.gemm_strided_batched(Trans::T, Trans::N, s, d, s, 1.f, pr, s, (long long)s * s, dch.f(), d,
                              (long long)s * d, 0.f, dv.f(), d, (long long)s * d, bh);
      dch.reset();
      Buffer dS = ws(sn);
      be.softmax_causal_bwd(pr, dP.f(), dS.f(), bh, s, 1.f / std::sqrt(static_cast<float>(d)));
      dP.reset();
      P.reset();
      Buffer dq = ws(hn), dk = ws(hn);
      be.gemm_strided_batched(Trans::N, Trans::N, s, d, s, 1.f, dS.f(), s, (long long)s * s, A.k.f(), d,
                              (long long)s * d, 0.f, dq.f(), d, (long long)s * d, bh);
      be.gemm_strided_batched(Trans::T, Trans::N, s, d, s, 1.f, dS.f(), s, (long long)s * s, A.q.f(), d,
                              (long long)s * d, 0.f, dk.f(), d, (long long)s * d, bh);
      dS.reset();
      be.merge_heads(dq.f(), dqkv.f(), qw, b, s, hl, d);
      be.merge_heads(dk.f(), dqkv.f() + hl * d, qw, b, s, hl, d);
      be.merge_heads(dv.f(), dqkv.f() + 2 * hl * d, qw, b, s, hl, d);
    }
    if (G.bqkv) be.bias_grad(dqkv.f(), G.bqkv, T, qw);
    Buffer dln1;
    {
      Buffer ln1g;
      const float* ln1f = A.ln1.f();
      if (sp) {
        ln1g = gather_seq(A.ln1.f(), h);
        ln1f = ln1g.f();
      }
      be.gemm(Trans::T, Trans::N, h, qw, T, 1.f, ln1f, h, dqkv.f(), qw, 1.f, G.wqkv, qw);
      ln1g.reset();
      Buffer dp_ = ws((size_t)T * h);
      be.gemm(Trans::N, Trans::T, T, h, qw, 1.f, dqkv.f(), qw, W.wqkv, qw, 0.f, dp_.f(), h);
      dqkv.reset();
      dln1 = reduce_tp(std::move(dp_));
    }
    Buffer dx = ws((size_t)Tl * h);
    be.layernorm_bwd(dln1.f(), A.x.f(), W.ln1g, A.mu1.f(), A.rs1.f(), dx.f(), G.ln1g, G.ln1b, Tl, h);
    be.axpy(1.f, dx2.f(), dx.f(), (size_t)Tl * h);
    A = LayerActs{};
    return dx;
  }

  // ---- embedding and head ----------------------------------------------------------------------
  Buffer embed_fwd(MbState& st) {
    Unit& W = units[wte];
    Unit& P = units[wpe];
    acquire_params(W);
    acquire_params(P);
    Buffer e = ws((size_t)T * h);
    be.embedding_fwd(st.ids.i32(), params(W), e.f(), T, h, vb, vb + Vl);
    // Positions are added once (TP rank 0) before the TP reduction of the vocab-parallel lookup.
    if (g.tp_rank == 0) be.add_positions(e.f(), params(P), b, s, h);
    release_params(P);
    release_params(W);
    Buffer r = reduce_tp(std::move(e));
    Buffer x = act((size_t)Tl * h);
    be.copy(r.f(), x.f(), (size_t)Tl * h);
    return x;
  }
  void embed_bwd(MbState& st, Buffer dx) {
    Unit& W = units[wte];
    Unit& P = units[wpe];
    acquire_params(W);  // ZeRO-3 gathers every module in its backward too (DeepSpeed hooks)
    acquire_params(P);
    acquire_grads(W);
    acquire_grads(P);
    Buffer dxg;
    const float* dxf = dx.f();
    if (sp) {
      dxg = gather_seq(dx.f(), h);
      dxf = dxg.f();
    }
    be.embedding_bwd(st.ids.i32(), dxf, grads(W), T, h, vb, vb + Vl);
    be.positions_bwd(dxf, grads(P), b, s, h);
    dxg.reset();
    dx.reset();
    release_grads(P);
    release_grads(W);
    release_params(P);
    release_params(W);
  }
  // The last stage's head, forward and backward at once: final LayerNorm, vocab-parallel logits and
  // cross-entropy (Megatron `vocab_parallel_cross_entropy`); returns the grad of the stage output.
  Buffer head(MbState& st, Buffer x) {
    Unit& F = units[lnf];
    Unit& E = units[wte_copy >= 0 ? wte_copy : wte];
    acquire_params(F);
    acquire_params(E);
    acquire_grads(F);
    acquire_grads(E);
    const float* fg = params(F);
    const float* fb = fg + h;
    (void)fb;
    Buffer ln = act((size_t)Tl * h), mu = act(Tl), rs = act(Tl);
    be.layernorm_fwd(x.f(), fg, fb, ln.f(), mu.f(), rs.f(), Tl, h, 1e-5f);
    Buffer lng;
    const float* lnf_ = ln.f();
    if (sp) {
      lng = gather_seq(ln.f(), h);
      lnf_ = lng.f();
    }
    Buffer logits = act((size_t)T * Vl);
    be.gemm(Trans::N, Trans::T, T, Vl, h, 1.f, lnf_, h, params(E), h, 0.f, logits.f(), Vl);
    Buffer mx = ws(T), se = ws(T), tg = ws(T);
    be.ce_row_max(logits.f(), mx.f(), T, Vl);
    if (t > 1) tp->all_reduce(mx.f(), T, ReduceOp::max);
    be.ce_sum_exp(logits.f(), mx.f(), se.f(), T, Vl);
    if (t > 1) tp->all_reduce(se.f(), T);
    be.ce_target_logit(logits.f(), st.targets.i32(), tg.f(), T, Vl, vb);
    if (t > 1) tp->all_reduce(tg.f(), T);
    {
      std::vector<float> hm(T), hs(T), ht(T);
      be.copy_to_host(hm.data(), mx.f(), T * sizeof(float));
      be.copy_to_host(hs.data(), se.f(), T * sizeof(float));
      be.copy_to_host(ht.data(), tg.f(), T * sizeof(float));
      if (g.tp_rank == 0)
        for (int i = 0; i < T; ++i) loss_sum += std::log(static_cast<double>(hs[i])) + hm[i] - ht[i];
    }
    // Mean over the global batch's tokens: each token's gradient is 1/(gbs*seq).
    const float scale = static_cast<float>(1.0 / (static_cast<double>(p.gbs) * s));
    be.ce_bwd(logits.f(), mx.f(), se.f(), st.targets.i32(), logits.f(), T, Vl, vb, scale);  // in place
    // ZeRO-3 gathers a module for its forward and again for its backward (DeepSpeed's hooks), also
    // here where the head's backward follows its forward at once.
    release_params(E);
    release_params(F);
    acquire_params(F);
    acquire_params(E);
    fg = params(F);
    fb = fg + h;
    Buffer dl = ws((size_t)T * h);
    be.gemm(Trans::N, Trans::N, T, h, Vl, 1.f, logits.f(), Vl, params(E), h, 0.f, dl.f(), h);
    be.gemm(Trans::T, Trans::N, Vl, h, T, 1.f, logits.f(), Vl, lnf_, h, 1.f, grads(E), h);
    logits.reset();
    lng.reset();
    ln.reset();
    Buffer dlr = reduce_tp(std::move(dl));
    Buffer dx = act((size_t)Tl * h);
    float* gg = grads(F);
    be.layernorm_bwd(dlr.f(), x.f(), fg, mu.f(), rs.f(), dx.f(), gg, gg + h, Tl, h);
    release_grads(E);
    release_grads(F);
    release_params(E);
    release_params(F);
    return dx;
  }

  // ---- pipeline transfers (scatter/gather over TP without SP: SC21 sec. 4.1) ----------------------
  std::size_t p2p_elems() const { return (t > 1) ? (size_t)T * h / t : (size_t)T * h; }
  void send_act(const float* y, int dst, int tag) {
    const float* src = (t > 1 && !sp) ? y + (size_t)g.tp_rank * T * h / t : y;
    pp->send(src, p2p_elems(), dst, tag);
  }
  Buffer recv_act(int src, int tag, MemCategory cat) {
    Buffer x = make_floats(be, (size_t)Tl * h, cat);
    if (t > 1 && !sp) {
      Buffer part = ws(p2p_elems());
      pp->recv(part.f(), p2p_elems(), src, tag);
      tp->all_gather(part.f(), x.f(), p2p_elems());
    } else {
      pp->recv(x.f(), p2p_elems(), src, tag);
    }
    return x;
  }

  // ---- schedule ops -------------------------------------------------------------------------------
  // Messages are tagged by the receiver's (microbatch, chunk, direction).
  int tag(int mb, int c, int dir) const { return (mb * v + c) * 2 + dir; }
  void forward(MbState& st, long long mb_global, int c, const Corpus& data) {
    const bool first_v = first && c == 0, last_v = last && c == v - 1;  // first / last virtual stage
    if (first_v || last_v) {
      std::vector<std::int32_t> ids((size_t)T), tg((size_t)T);
      for (int i = 0; i < b; ++i)
        data.sequence(step_no, mb_global * b + i, p.gbs, s, ids.data() + (size_t)i * s, tg.data() + (size_t)i * s);
      if (first_v) {
        st.ids = Buffer(be, (size_t)T * 4, MemCategory::activations);
        be.copy_to_device(st.ids.data(), ids.data(), (size_t)T * 4);
      }
      if (last_v) {
        st.targets = Buffer(be, (size_t)T * 4, MemCategory::activations);
        be.copy_to_device(st.targets.data(), tg.data(), (size_t)T * 4);
      }
    }
    const int mb = static_cast<int>(mb_global % p.microbatches());
    const int P = p.pp, prev = (g.pp_rank - 1 + P) % P, next = (g.pp_rank + 1) % P;
    Buffer x = first_v ? embed_fwd(st) : recv_act(prev, tag(mb, c, 0), MemCategory::activations);
    const auto& cu = chunk_units[c];
    st.acts.resize(v);
    st.acts[c].resize(cu.size());
    for (std::size_t i = 0; i < cu.size(); ++i) {
      Unit& u = units[cu[i]];
      acquire_params(u);
      LayerActs& A = st.acts[c][i];
      A.x = std::move(x);
      // The chunk's output is the next layer's stored input, or (sent on) a p2p buffer.
      const bool sent = !last_v && i + 1 == cu.size();
      x = layer_fwd(layer_w(params(u), u.info), A, p.recompute != Recompute::full, true,
                    sent ? MemCategory::buffers : MemCategory::activations);
      release_params(u);
    }
    if (last_v) {
      st.dy_out = head(st, std::move(x));
      st.targets.reset();
    } else {
      send_act(x.f(), next, tag(mb, g.pp_rank == P - 1 ? c + 1 : c, 0));
    }
  }
  void backward(MbState& st, long long mb_global, int c) {
    const bool first_v = first && c == 0, last_v = last && c == v - 1;
    const int mb = static_cast<int>(mb_global % p.microbatches());
    const int P = p.pp, prev = (g.pp_rank - 1 + P) % P, next = (g.pp_rank + 1) % P;
    Buffer dy = last_v ? std::move(st.dy_out) : recv_act(next, tag(mb, c, 1), MemCategory::buffers);
    const auto& cu = chunk_units[c];
    for (int i = static_cast<int>(cu.size()) - 1; i >= 0; --i) {
      Unit& u = units[cu[i]];
      acquire_params(u);
      acquire_grads(u);
      LayerActs& A = st.acts[c][i];
      const LayerW W = layer_w(params(u), u.info);
      if (p.recompute == Recompute::full) layer_fwd(W, A, true, false);  // again, from the stored input
      dy = layer_bwd(W, layer_w(grads(u), u.info), A, std::move(dy));
      release_grads(u);
      release_params(u);
    }
    st.acts[c].clear();
    if (first_v) {
      embed_bwd(st, std::move(dy));
      st.ids.reset();
    } else {
      send_act(dy.f(), prev, tag(mb, g.pp_rank == 0 ? c - 1 : c, 1));
    }
  }

  // ---- step ------------------------------------------------------------------------------------
  double run_step(const Corpus& data, bool update = true) {
    for (auto& u : units) be.fill(u.g.f(), 0.f, u.g.floats());
    loss_sum = 0;
    const long long M = p.microbatches();
    const int P = p.pp, i = g.pp_rank;
    // Op order per stage: GPipe all forwards then all backwards; 1F1B warm-up of p-i-1 forwards,
    // then one forward / one backward, then the cool-down backwards (Narayanan et al. 2021 Fig. 4);
    // interleaved 1F1B as Megatron-LM's `forward_backward_pipelining_with_interleaving`: chunk-ops
    // in groups of p microbatches, warm-up 2(p-i-1) + (v-1)p.
    struct Op {
      bool fwd;
      long long mb;
      int chunk;
    };
    std::vector<Op> ops;
    if (p.schedule == Schedule::gpipe && P > 1) {
      for (long long k = 0; k < M; ++k) ops.push_back({true, k, 0});
      for (long long k = 0; k < M; ++k) ops.push_back({false, k, 0});
    } else if (v > 1) {
      const long long total = M * v;
      auto mb_of = [&](long long j) { return (j / (static_cast<long long>(P) * v)) * P + j % P; };
      auto fchunk = [&](long long j) { return static_cast<int>((j / P) % v); };
      auto bchunk = [&](long long j) { return v - 1 - static_cast<int>((j / P) % v); };
      const long long warm = std::min<long long>(2LL * (P - i - 1) + static_cast<long long>(v - 1) * P, total);
      long long f = 0, bk = 0;
      for (; f < warm; ++f) ops.push_back({true, mb_of(f), fchunk(f)});
      for (; f < total; ++f, ++bk) {
        ops.push_back({true, mb_of(f), fchunk(f)});
        ops.push_back({false, mb_of(bk), bchunk(bk)});
      }
      for (; bk < total; ++bk) ops.push_back({false, mb_of(bk), bchunk(bk)});
    } else {
      const long long warm = std::min<long long>(P - i - 1, M);
      long long f = 0, bk = 0;
      for (; f < warm; ++f) ops.push_back({true, f, 0});
      for (; f < M; ++f, ++bk) {
        ops.push_back({true, f, 0});
        ops.push_back({false, bk, 0});
      }
      for (; bk < M; ++bk) ops.push_back({false, bk, 0});
    }
    std::vector<MbState> st((size_t)M);
    const long long base = (long long)g.dp_rank * M;  // this DP rank's microbatches of the global batch
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    timeline.spans.clear();
    auto span = [&](strategies::SpanKind k, std::string name, Clock::time_point a) {
      const auto b2 = Clock::now();
      timeline.spans.push_back({world.rank(), k, std::move(name), std::chrono::duration<double>(a - t0).count(),
                                std::chrono::duration<double>(b2 - a).count()});
    };
    for (const Op& op : ops) {
      const auto a = Clock::now();
      if (op.fwd) forward(st[op.mb], base + op.mb, op.chunk, data);
      else backward(st[op.mb], base + op.mb, op.chunk);
      span(strategies::SpanKind::compute,
           std::string(op.fwd ? "F" : "B") + " mb" + std::to_string(op.mb) + " c" + std::to_string(op.chunk), a);
    }
    st.clear();
    auto a = Clock::now();
    reduce_grads();
    span(strategies::SpanKind::comm, "grad reduction", a);
    if (update) {
      a = Clock::now();
      optimizer_step();
      span(strategies::SpanKind::optimizer, "optimizer", a);
      ++step_no;
    }
    double l = loss_sum;
    world.all_reduce_host(&l, 1, ReduceOp::sum);
    return l / (static_cast<double>(p.gbs) * s);
  }

  // SP: the replicated LayerNorm and row-parallel bias grads saw one sequence shard each; sum them
  // over TP (Megatron `allreduce_sequence_parallel_gradients`), one packed all-reduce.
  // bucket=true: the units' ZeRO-2/3 full gradient buckets; false: their gradient buffers.
  void sp_sync(const std::vector<Unit*>& us, bool bucket) {
    std::vector<std::pair<float*, std::size_t>> pieces;
    std::size_t n = 0;
    for (Unit* u : us)
      for (const auto& ti : u->info.tensors) {
        if (!ti.sp_sync) continue;
        float* base = bucket ? u->gg.f() : u->g.f();
        pieces.emplace_back(base + ti.offset, static_cast<std::size_t>(ti.local_size()));
        n += ti.local_size();
      }
    if (n == 0) return;
    Buffer pack = ws(n);
    std::size_t off = 0;
    for (auto& [ptr, k] : pieces) { be.copy(ptr, pack.f() + off, k); off += k; }
    tp->all_reduce(pack.f(), n);
    off = 0;
    for (auto& [ptr, k] : pieces) { be.copy(pack.f() + off, ptr, k); off += k; }
  }

  void reduce_grads() {
    // DP: ZeRO-0 all-reduces each unit (the bucket); ZeRO-1 reduce-scatters it; ZeRO-2/3 did it per
    // microbatch in release_grads().
    if (p.dp > 1 && p.zero <= 1) {
      for (auto& u : units) {
        if (p.zero == 0) {
          dp->all_reduce(u.g.f(), u.info.size);
        } else {
          Buffer part = ws(u.shard);
          dp->reduce_scatter(u.g.f(), part.f(), u.shard);
          be.copy(part.f(), u.g.f() + u.begin, u.shard);
        }
      }
    }
    // SP (ZeRO-0/1): the replicated grads are summed over TP once per step (ZeRO-2/3: per bucket).
    if (sp && p.zero <= 1) {
      std::vector<Unit*> all;
      for (auto& u : units) all.push_back(&u);
      sp_sync(all, false);
    }
    // Tied embedding across the pipeline ends (Megatron `_allreduce_word_embedding_grads`).
    if (tie) {
      Unit& u = units[first ? wte : wte_copy];
      const long long off = p.zero == 1 ? u.begin : 0;
      const long long n = p.zero >= 1 ? u.shard : u.info.size;
      tie->all_reduce(u.g.f() + off, n);
    }
  }

  // Sum of squares of the owned range of `u`'s buffer `x` (offset `x_begin` in the flat unit),
  // split into TP-sharded and TP-replicated parts.
  void unit_sumsq(const Unit& u, const float* x, long long lo, long long hi, long long x_begin, double out[2]) {
    for (const auto& ti : u.info.tensors) {
      const long long a = std::max(ti.offset, lo), e = std::min(ti.offset + ti.local_size(), hi);
      if (a >= e) continue;
      const double ss = be.sum_squares(x + (a - x_begin), e - a);
      out[ti.split == Split::none ? 1 : 0] += ss;
    }
  }
  // Global norms of a unit (over DP shards and TP pieces), for LAMB / LARS trust ratios.
  void unit_norms(const Unit& u, const float* a, long long a_begin, const float* b2, long long b_begin,
                  double& na, double& nb) {
    const long long lo = p.zero >= 1 ? u.begin : 0, hi = lo + (p.zero >= 1 ? u.shard : u.info.size);
    double v[4] = {0, 0, 0, 0};
    unit_sumsq(u, a, lo, hi, a_begin, v);
    unit_sumsq(u, b2, lo, hi, b_begin, v + 2);
    if (p.zero >= 1) dp->all_reduce_host(v, 4, ReduceOp::sum);
    double split[2] = {v[0], v[2]};
    tp->all_reduce_host(split, 2, ReduceOp::sum);
    na = std::sqrt(split[0] + v[1]);
    nb = std::sqrt(split[1] + v[3]);
  }

  void optimizer_step() {
    const int k = static_cast<int>(step_no + 1);
    for (auto& u : units) {
      const long long n = p.zero >= 1 ? u.shard : u.info.size;
      float* pw = p.zero >= 3 ? u.p.f() : u.p.f() + (p.zero >= 1 ? u.begin : 0);
      const long long p_begin = p.zero >= 1 ? u.begin : 0;
      float* gw = p.zero >= 2 ? u.g.f() : u.g.f() + (p.zero == 1 ? u.begin : 0);
      const std::string on = opt->name;
      if (on == "adamw") {
        be.adamw_update(pw, gw, u.m.f(), u.v.f(), n, (float)o.lr, (float)o.beta1, (float)o.beta2, (float)o.eps,
                        (float)o.weight_decay, k);
      } else if (on == "lamb") {
        Buffer upd = ws(n);
        be.lamb_direction(pw, gw, u.m.f(), u.v.f(), upd.f(), n, (float)o.beta1, (float)o.beta2, (float)o.eps,
                          (float)o.weight_decay, k);
        double np_ = 0, nu = 0;
        unit_norms(u, pw, p_begin, upd.f(), p_begin, np_, nu);
        const double ratio = (np_ > 0 && nu > 0) ? np_ / nu : 1.0;  // You et al. 2020 Alg. 2 (phi = identity)
        be.axpy(static_cast<float>(-o.lr * ratio), upd.f(), pw, n);
      } else {  // lars
        double np_ = 0, ng = 0;
        unit_norms(u, pw, p_begin, gw, p_begin, np_, ng);
        const double eta = 0.001;  // trust coefficient (You et al. 2017)
        const double local = (np_ > 0 && ng > 0) ? eta * np_ / (ng + o.weight_decay * np_) : 1.0;
        be.lars_update(pw, gw, u.m.f(), n, static_cast<float>(o.lr * local), (float)o.momentum, (float)o.weight_decay);
      }
      // ZeRO-1/2: every rank gets the updated parameters back (all-gather in place).
      if (p.zero >= 1 && p.zero <= 2 && p.dp > 1) dp->all_gather(u.p.f() + u.begin, u.p.f(), u.shard);
    }
  }
};

Trainer::Trainer(model::ModelSpec m, Plan p, Backend& be, Comm& world, TrainOptions o)
    : be_(be), world_(world), im_(std::make_unique<Impl>(be, world, std::move(m), std::move(p), std::move(o))) {
  if (im_->p.gpus() != world.size())
    throw PlanError("dp", "the plan needs dp*tp*pp = " + std::to_string(im_->p.gpus()) + " ranks, the job has " +
                              std::to_string(world.size()));
  im_->setup();
  g_ = im_->g;
}
Trainer::~Trainer() = default;

double Trainer::step(const Corpus& data) {
  const double l = im_->run_step(data);
  step_ = im_->step_no;
  return l;
}

double Trainer::loss_and_grads(const Corpus& data) { return im_->run_step(data, false); }

static Buffer& unit_params(Trainer::Impl& I, const std::string& unit) {
  if (I.p.zero >= 3) throw PlanError("zero", "param access needs zero < 3");
  for (auto& u : I.units)
    if (u.info.name == unit) return u.p;
  throw PlanError("unit", "no unit " + unit + " on this rank");
}
float Trainer::param(const std::string& unit, long long i) const {
  float v;
  be_.copy_to_host(&v, unit_params(*im_, unit).f() + i, sizeof v);
  return v;
}
void Trainer::set_param(const std::string& unit, long long i, float v) {
  be_.copy_to_device(unit_params(*im_, unit).f() + i, &v, sizeof v);
}

void Trainer::reset_measurements() {
  be_.reset_peaks();
  world_.counters().reset();
}

const strategies::Timeline& Trainer::last_timeline() const { return im_->timeline; }

std::vector<UnitInfo> Trainer::units_info() const {
  std::vector<UnitInfo> v;
  for (const auto& u : im_->units) v.push_back(u.info);
  return v;
}

std::vector<GradPiece> Trainer::grad_pieces() const {
  std::vector<GradPiece> out;
  const int z = im_->p.zero;
  for (auto& u : im_->units) {
    GradPiece gp;
    gp.unit = u.info.name;
    gp.begin = z >= 1 ? u.begin : 0;
    const long long n = z >= 1 ? u.shard : u.info.size;
    gp.values.resize(n);
    const float* src = z >= 2 ? u.g.f() : u.g.f() + gp.begin;
    be_.copy_to_host(gp.values.data(), src, n * sizeof(float));
    out.push_back(std::move(gp));
  }
  return out;
}

std::map<std::string, std::vector<float>> Trainer::global_grads() const {
  std::map<std::string, std::vector<float>> out;
  if (im_->p.tp != 1 || im_->p.pp != 1 || im_->p.zero >= 1)
    throw PlanError("tp", "global_grads() needs a single-rank plan (tp=pp=1, zero=0)");
  for (auto& u : im_->units) {
    std::vector<float> flat(u.info.size);
    be_.copy_to_host(flat.data(), u.g.f(), flat.size() * sizeof(float));
    for (const auto& ti : u.info.tensors)
      out[ti.name] = std::vector<float>(flat.begin() + ti.offset, flat.begin() + ti.offset + ti.local_size());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checkpoint: <dir>/rank-<r>.step-<k>.ckpt per rank, then <dir>/manifest (naming step k) written by
// rank 0 once every rank file is durable; then each rank deletes its files of older steps. Each
// file: temp file, fsync, rename, fsync of the directory (POSIX rename is atomic: a reader sees the
// old file or the new one, never a torn one). A save interrupted anywhere leaves the previous
// manifest and the files it names intact. A trailing FNV-1a hash detects corruption.
namespace {

std::uint64_t fnv1a(const void* data, std::size_t n, std::uint64_t h = 1469598103934665603ULL) {
  const auto* c = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 1099511628211ULL;
  return h;
}

void write_atomic(const std::string& path, const std::string& bytes,
                  const std::function<void(const std::string&)>& before_rename = {}) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw CheckpointError("cannot create " + tmp + ": " + std::strerror(errno));
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0) {
      ::close(fd);
      throw CheckpointError("cannot write " + tmp + ": " + std::strerror(errno));
    }
    off += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw CheckpointError("cannot sync " + tmp);
  if (before_rename) before_rename(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw CheckpointError("cannot rename " + tmp + " to " + path);
  const std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/'));
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_all(const std::string& path, bool& ok) {
  std::ifstream f(path, std::ios::binary);
  ok = static_cast<bool>(f);
  if (!ok) return {};
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string rank_file(const std::string& dir, int rank, long long step) {
  return dir + "/rank-" + std::to_string(rank) + ".step-" + std::to_string(step) + ".ckpt";
}

}  // namespace

void Trainer::save(const std::string& dir, const std::function<void(const std::string&)>& before_rename) const {
  Impl& I = *im_;
  std::string hdr = "scaleplan-checkpoint 1\nmodel " + I.m.name + "\nplan " + I.p.to_string() + "\nworld " +
                    std::to_string(world_.size()) + "\nrank " + std::to_string(world_.rank()) + "\nstep " +
                    std::to_string(I.step_no) + "\noptimizer " + I.o.optimizer + "\n";
  std::string body;
  auto put = [&](const Buffer& b) {
    std::vector<float> hbuf(b.floats());
    if (!hbuf.empty()) be_.copy_to_host(hbuf.data(), b.data(), b.bytes());
    const std::uint64_t n = hbuf.size();
    body.append(reinterpret_cast<const char*>(&n), sizeof n);
    body.append(reinterpret_cast<const char*>(hbuf.data()), hbuf.size() * sizeof(float));
  };
  for (const auto& u : I.units) {
    body += u.info.name + "\n";
    put(u.p);
    put(u.m);
    put(u.v);
  }
  std::string all = hdr + "data\n" + body;
  const std::uint64_t hsh = fnv1a(all.data(), all.size());
  all.append(reinterpret_cast<const char*>(&hsh), sizeof hsh);
  std::string err;
  try {
    write_atomic(rank_file(dir, world_.rank(), I.step_no), all, before_rename);
  } catch (const std::exception& e) {
    err = e.what();
  }
  double bad = err.empty() ? 0 : world_.rank() + 1;
  world_.all_reduce_host(&bad, 1, ReduceOp::max);
  if (bad > 0) throw CheckpointError(err.empty() ? "rank " + std::to_string((int)bad - 1) + " failed to write its checkpoint file" : err);
  if (world_.rank() == 0) write_atomic(dir + "/manifest", hdr.substr(0, hdr.find("rank ")) + "step " + std::to_string(I.step_no) + "\n");
  world_.barrier();
  // The new manifest is durable: this rank's files of other steps are no longer named by it.
  const std::string mine = "rank-" + std::to_string(world_.rank()) + ".step-", keep = rank_file(dir, world_.rank(), I.step_no);
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(mine, 0) == 0 && e.path().string() != keep) std::filesystem::remove(e.path(), ec);
  }
}

void Trainer::load(const std::string& dir) {
  Impl& I = *im_;
  std::string err;
  long long step = -1;
  try {
    bool ok = false;
    const std::string man = read_all(dir + "/manifest", ok);
    if (!ok) throw CheckpointError("checkpoint " + dir + ": no manifest (missing or unfinished checkpoint)");
    const std::string want = "scaleplan-checkpoint 1\nmodel " + I.m.name + "\nplan " + I.p.to_string() + "\nworld " +
                             std::to_string(world_.size()) + "\n";
    if (man.compare(0, want.size(), want) != 0)
      throw CheckpointError("checkpoint " + dir + " was written for another model, plan or rank count (manifest: " +
                            man.substr(0, man.find("step")) + ")");
    const std::size_t ms = man.rfind("step ");
    const long long man_step = ms == std::string::npos ? -1 : std::stoll(man.substr(ms + 5));
    const std::string path = rank_file(dir, world_.rank(), man_step);
    const std::string all = read_all(path, ok);
    if (!ok) throw CheckpointError("checkpoint file " + path + " is missing");
    if (all.size() < 8) throw CheckpointError("checkpoint file " + path + " is truncated");
    std::uint64_t hsh;
    std::memcpy(&hsh, all.data() + all.size() - 8, 8);
    if (fnv1a(all.data(), all.size() - 8) != hsh) throw CheckpointError("checkpoint file " + path + " is corrupt (hash mismatch)");
    const std::size_t dpos = all.find("data\n");
    const std::string hdr = all.substr(0, dpos);
    const std::size_t sp = hdr.find("step ");
    step = std::stoll(hdr.substr(sp + 5));
    if (step != man_step) throw CheckpointError("checkpoint file " + path + " is at step " + std::to_string(step) + ", the manifest at " + std::to_string(man_step));
    std::size_t off = dpos + 5;
    const std::size_t end = all.size() - 8;
    auto get = [&](Buffer& b) {
      std::uint64_t n;
      if (off + 8 > end) throw CheckpointError("checkpoint file " + path + " is truncated");
      std::memcpy(&n, all.data() + off, 8);
      off += 8;
      if (n != b.floats() || off + n * 4 > end) throw CheckpointError("checkpoint file " + path + ": tensor sizes do not match the plan");
      if (n) be_.copy_to_device(b.data(), all.data() + off, n * 4);
      off += n * 4;
    };
    for (auto& u : I.units) {
      const std::size_t nl = all.find('\n', off);
      if (nl == std::string::npos || all.compare(off, nl - off, u.info.name) != 0)
        throw CheckpointError("checkpoint file " + path + ": unit " + u.info.name + " not found");
      off = nl + 1;
      get(u.p);
      get(u.m);
      get(u.v);
    }
  } catch (const CheckpointError& e) {
    err = e.what();
  } catch (const std::exception& e) {
    err = std::string("checkpoint ") + dir + ": " + e.what();
  }
  double bad = err.empty() ? 0 : world_.rank() + 1;
  world_.all_reduce_host(&bad, 1, ReduceOp::max);
  if (bad > 0)
    throw CheckpointError(err.empty() ? "checkpoint " + dir + ": rank " + std::to_string((int)bad - 1) + " could not read its file" : err);
  I.step_no = step;
  step_ = step;
}

}  // namespace scaleplan::executor
