// Parallel correctness and accounting check of the executor, run under
//   mpirun --oversubscribe --allow-run-as-root -np N executor_parallel_check [--model M] [--layers L] PLAN...
// For every plan: (1) the loss and every gradient this rank owns after one step equal a single-rank
// run of the same batch (computed on each rank with the self communicator) within 1e-5 relative
// (per unit, in norm); the loss after the first update also matches; (2) memory per category and
// communication bytes per dimension equal the analytic estimator's prediction for the executor:
// params, grads, optimizer and comm bytes exactly, activations within 5%. Plan suffixes: `|nocomm`
// skips the comm-bytes equality; `|lamb`, `|lars` train with that optimizer (trust ratios over shards).
// Exit code 0 only if every check passed on every rank.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "executor/backend.hpp"
#include "executor/comm.hpp"
#include "executor/gpt.hpp"
#include "executor/predict.hpp"
#include "hardware/cluster.hpp"
#include "model/model.hpp"

using namespace scaleplan;
using namespace scaleplan::executor;

namespace {

int failures = 0;
int rank0 = 0;

void fail(const std::string& plan, const std::string& what) {
  std::fprintf(stderr, "[rank %d] FAIL %s: %s\n", rank0, plan.c_str(), what.c_str());
  ++failures;
}

bool close_rel(double a, double b, double tol) { return std::abs(a - b) <= tol * std::max(std::abs(b), 1e-30); }

}  // namespace

int main(int argc, char** argv) {
  auto world = make_world_comm();
  world->set_timeout(60);
  rank0 = world->rank();
  std::vector<std::string> plans;
  int layers = 0;
  std::string model = "gpt-tiny";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--layers" && i + 1 < argc) layers = std::stoi(argv[++i]);
    else if (a == "--model" && i + 1 < argc) model = argv[++i];
    else plans.push_back(a);
  }
  model::ModelSpec m = model::load_model(model);
  if (layers > 0) m.layers = layers;
  const hw::Cluster cl = executor_cluster(hw::load_cluster("dgx-a100-40gb"));
  const Corpus data = Corpus::from_file(SCALEPLAN_SOURCE_DIR "/executor/data/corpus.txt");
  auto be = make_backend("cpu");

  for (std::string spec : plans) {
    bool check_comm = true;
    TrainOptions to;
    while (auto bar = spec.rfind('|')) {  // suffixes: |nocomm, |lamb, |lars
      if (bar == std::string::npos) break;
      const std::string opt = spec.substr(bar + 1);
      if (opt == "nocomm") check_comm = false;
      else to.optimizer = opt, to.lr = opt == "lars" ? 5.0 : 1e-2;
      spec = spec.substr(0, bar);
    }
    const strategies::Plan p = resolve_executor_plan(strategies::parse_plan(spec), m, cl, world->size());
    // The single-rank reference on the same global batch.
    strategies::Plan rp = p;
    rp.dp = rp.tp = rp.pp = rp.vpp = 1;
    rp.sp = false;
    rp.zero = 0;
    rp.recompute = strategies::Recompute::none;
    rp.schedule = strategies::Schedule::one_f_one_b;
    auto self = make_self_comm();
    auto rbe = make_backend("cpu");
    Trainer ref(m, rp, *rbe, *self, to);
    const double rl1 = ref.loss_and_grads(data);
    const auto rg = ref.global_grads();
    ref.step(data);
    const double rl2 = ref.step(data);

    Trainer tr(m, p, *be, *world, to);
    tr.reset_measurements();
    const double l1 = tr.loss_and_grads(data);
    if (!close_rel(l1, rl1, 1e-5)) fail(spec, "loss " + std::to_string(l1) + " vs single rank " + std::to_string(rl1));
    double worst = 0;
    std::string worst_unit;
    const auto infos = tr.units_info();
    for (const auto& piece : tr.grad_pieces()) {
      const UnitInfo* ui = nullptr;
      for (const auto& u : infos)
        if (u.name == piece.unit) ui = &u;
      std::vector<float> flat(ui->size);
      for (const auto& ti : ui->tensors) {
        std::string gname = ti.name == "wte_copy.weight" ? "wte.weight" : ti.name;
        auto loc = slice_tensor(ti, rg.at(gname), p.tp, tr.grid().tp_rank);
        std::copy(loc.begin(), loc.end(), flat.begin() + ti.offset);
      }
      double num = 0, den = 0;
      for (std::size_t i = 0; i < piece.values.size(); ++i) {
        const double e = flat[piece.begin + i], d = piece.values[i] - e;
        num += d * d;
        den += e * e;
      }
      const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
      if (rel > worst) {
        worst = rel;
        worst_unit = piece.unit;
      }
    }
    if (worst > 1e-5) fail(spec, "gradient of " + worst_unit + " differs by " + std::to_string(worst) + " (relative, norm)");
    tr.step(data);
    const double l2 = tr.step(data);
    if (!close_rel(l2, rl2, 1e-5)) fail(spec, "loss after one update " + std::to_string(l2) + " vs " + std::to_string(rl2));

    // Accounting: the measured step (loss_and_grads + 2 steps = 3 passes; bytes per step = /3).
    tr.reset_measurements();
    tr.step(data);
    const MemStats ms = tr.memory();
    const CommCounters& cc = tr.comm_counters();
    PredictOptions po;
    po.optimizer = to.optimizer;  // LARS keeps one momentum buffer (4 B/param), AdamW and LAMB two
    const strategies::StepReport r = predict(m, p, cl, po);
    const bool on_stage = tr.grid().pp_rank == r.most_loaded_stage;  // memory is the most-loaded stage's
    const double meas[4] = {ms.at(MemCategory::params), ms.at(MemCategory::grads), ms.at(MemCategory::optimizer),
                            ms.at(MemCategory::activations)};
    const double pred[4] = {r.memory.params, r.memory.grads, r.memory.optimizer, r.memory.activations};
    const char* names[4] = {"params", "grads", "optimizer", "activations"};
    if (on_stage) {
      for (int k = 0; k < 3; ++k)
        if (meas[k] != pred[k]) fail(spec, std::string(names[k]) + " measured " + std::to_string(meas[k]) + " predicted " + std::to_string(pred[k]));
      const double err = (meas[3] - pred[3]) / pred[3];
      if (std::abs(err) > 0.05) fail(spec, "activations measured " + std::to_string(meas[3]) + " predicted " + std::to_string(pred[3]));
      // Workspace peak (executor_buffer_bytes, issue 22): equal where the model names every live
      // buffer; printed when not, failing beyond the 25%.
      const double mb = ms.at(MemCategory::buffers), pb = r.memory.buffers;
      if (mb != pb) std::fprintf(stderr, "%s: buffers measured %.0f predicted %.0f (%+.1f%%)\n", spec.c_str(), mb, pb, 100 * (pb - mb) / mb);
      if (std::abs(pb - mb) > 0.25 * mb) fail(spec, "buffers measured " + std::to_string(mb) + " predicted " + std::to_string(pb));
    }
    const double mc[3] = {cc.contract_bytes(CommDim::tp), cc.contract_bytes(CommDim::pp), cc.contract_bytes(CommDim::dp)};
    const double pc[3] = {r.comm.tp, r.comm.pp, r.comm.dp};
    const char* cn[3] = {"tp", "pp", "dp"};
    // The estimator reports the slowest stage's bytes: compare on that stage's ranks.
    if (check_comm && tr.grid().pp_rank == r.slowest_stage)
      for (int k = 0; k < 3; ++k) {
        if (mc[k] != pc[k]) fail(spec, std::string("comm ") + cn[k] + " measured " + std::to_string(mc[k]) + " predicted " + std::to_string(pc[k]));
      }
    const bool col0 = tr.grid().tp_rank == 0 && tr.grid().dp_rank == 0;
    if (on_stage && col0)
      std::printf("[rank %d] %-40s loss %.6f (ref %.6f) grad err %.1e | memory (stage %d) params %.0f/%.0f grads %.0f/%.0f opt %.0f/%.0f act %.0f/%.0f (%+.2f%%)\n",
                  world->rank(), spec.c_str(), l1, rl1, worst, r.most_loaded_stage, meas[0], pred[0], meas[1], pred[1], meas[2], pred[2],
                  meas[3], pred[3], 100 * (meas[3] - pred[3]) / pred[3]);
    if (tr.grid().pp_rank == r.slowest_stage && col0)
      std::printf("[rank %d] %-40s comm (stage %d) tp %.0f/%.0f pp %.0f/%.0f dp %.0f/%.0f\n", world->rank(), spec.c_str(),
                  r.slowest_stage, mc[0], pc[0], mc[1], pc[1], mc[2], pc[2]);
  }
  double f = failures;
  world->all_reduce_host(&f, 1, ReduceOp::sum);
  if (world->rank() == 0) std::printf("%s: %d plan(s), %.0f failure(s)\n", f == 0 ? "OK" : "FAILED", (int)plans.size(), f);
  return f == 0 ? 0 : 1;
}
