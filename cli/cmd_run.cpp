// scaleplan run: train a GPT model under a plan with the reference executor (DESIGN.md sec. 3,
// "run --json"): one process per rank under mpirun; rank 0 prints measured memory, step time and
// communication bytes beside the analytic estimator's prediction for the same plan.
#ifdef SCALEPLAN_HAVE_EXECUTOR
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"
#include "common/errors.hpp"
#include "executor/backend.hpp"
#include "executor/comm.hpp"
#include "executor/gpt.hpp"
#include "executor/predict.hpp"
#include "executor/timed_backend.hpp"

namespace scaleplan::cli {

namespace {
struct RunArgs {
  std::string model, plan, cluster, backend = "cpu", data, optimizer = "adamw", save, resume, fault, trace;
  long long steps = 10;
  double lr = 3e-3, timeout_s = 60;
  std::uint64_t seed = 1234;
  bool json = false, profile = false;
};

// Deliberate failures for the fault tests: "die:RANK:STEP" (the rank exits at once without
// finalising MPI) or "hang:RANK:STEP" (the rank stops answering; its peers time out).
struct Fault {
  std::string kind;
  int rank = -1;
  long long step = -1;
};
Fault parse_fault(const std::string& s) {
  Fault f;
  if (s.empty()) return f;
  const auto a = s.find(':'), b = s.rfind(':');
  if (a == std::string::npos || a == b) throw UsageError("--fault: expected die:RANK:STEP or hang:RANK:STEP, got '" + s + "'");
  f.kind = s.substr(0, a);
  if (f.kind != "die" && f.kind != "hang") throw UsageError("--fault: kind must be die or hang, got '" + f.kind + "'");
  try {
    f.rank = std::stoi(s.substr(a + 1, b - a - 1));
    f.step = std::stoll(s.substr(b + 1));
  } catch (const std::exception&) {
    throw UsageError("--fault: RANK and STEP must be integers, got '" + s + "'");
  }
  return f;
}

// --save DIR must be a folder this process can write, checked before the first step (issue 17: an
// unwritable path used to fail only after training). Every rank checks for itself (same answer on
// a shared folder), so no rank waits in a collective for one that gave up.
void check_writable_dir(const std::string& dir, int rank) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    throw UsageError("--save '" + dir + "': cannot create the folder" + (ec ? " (" + ec.message() + ")" : std::string()));
  const std::string probe = dir + "/.write-probe-rank-" + std::to_string(rank);
  {
    std::ofstream f(probe, std::ios::binary);
    if (!(f << "probe") || !f.flush()) throw UsageError("--save '" + dir + "': the folder is not writable");
  }
  std::filesystem::remove(probe, ec);
}

nlohmann::json memory_json(const double* v) {  // params, grads, optimizer, activations, buffers
  return {{"params", v[0]}, {"grads", v[1]}, {"optimizer", v[2]}, {"activations", v[3]}, {"buffers", v[4]},
          {"total", v[0] + v[1] + v[2] + v[3] + v[4]}};
}

// --profile: every rank's seconds per step in each backend operation and each communication call
// (summed over the dimensions' groups), gathered to all ranks: {"ranks": [{op: s, ...}, ...]}.
nlohmann::json profile_json(const executor::OpProfile& prof, const executor::CommCounters& cc, executor::Comm& world,
                            long long steps) {
  using namespace executor;
  const int n = world.size(), K = kTimedOps + kCommDims * kCollKinds + 1;
  std::vector<double> v(static_cast<std::size_t>(n) * K, 0.0);
  double* mine = v.data() + static_cast<std::size_t>(world.rank()) * K;
  for (int i = 0; i < kTimedOps; ++i) mine[i] = prof.seconds[i] / steps;
  for (int d = 0; d < kCommDims; ++d)
    for (int k = 0; k < kCollKinds; ++k) mine[kTimedOps + d * kCollKinds + k] = cc.seconds[d][k] / steps;
  mine[K - 1] = cc.sync_s / steps;
  world.all_reduce_host(v.data(), v.size(), ReduceOp::sum);
  nlohmann::json ranks = nlohmann::json::array();
  for (int r = 0; r < n; ++r) {
    const double* x = v.data() + static_cast<std::size_t>(r) * K;
    nlohmann::json o;
    for (int i = 0; i < kTimedOps; ++i) o["kernel"][name(static_cast<TimedOp>(i))] = x[i];
    for (int d = 0; d < kCommDims; ++d)
      for (int k = 0; k < kCollKinds; ++k)
        if (x[kTimedOps + d * kCollKinds + k] > 0)
          o["comm"][std::string(name(static_cast<CommDim>(d))) + "." + name(static_cast<CollKind>(k))] = x[kTimedOps + d * kCollKinds + k];
    o["sync"] = x[K - 1];
    ranks.push_back(o);
  }
  return {{"unit", "seconds per step"}, {"ranks", ranks}};
}

void print_profile(const nlohmann::json& pj) {
  const auto& ranks = pj["ranks"];
  std::cout << "\nprofile (ms per step, steps after the first):\n" << fmt::format("{:<26}", "");
  for (std::size_t r = 0; r < ranks.size(); ++r) std::cout << fmt::format("{:>10}", fmt::format("rank {}", r));
  std::cout << "\n";
  std::vector<std::string> keys;
  for (auto& [k, v] : ranks[0]["kernel"].items()) keys.push_back("kernel/" + k);
  for (const auto& r : ranks)
    if (r.contains("comm"))
      for (auto& [k, v] : r["comm"].items())
        if (std::find(keys.begin(), keys.end(), "comm/" + k) == keys.end()) keys.push_back("comm/" + k);
  keys.push_back("sync");
  for (const auto& key : keys) {
    std::cout << fmt::format("{:<26}", key);
    for (const auto& r : ranks) {
      const auto ptr = nlohmann::json::json_pointer("/" + key);
      std::cout << fmt::format("{:>10.3f}", r.contains(ptr) ? 1e3 * r[ptr].get<double>() : 0.0);
    }
    std::cout << "\n";
  }
}

int run(const RunArgs& a, executor::Comm& world) {
  using namespace executor;
  const bool root = world.rank() == 0;
  world.set_timeout(a.timeout_s);
  const Fault fault = parse_fault(a.fault);
  model::ModelSpec m = model::load_model(a.model);
  // Memory and bytes do not depend on the device; the predicted step time needs --cluster (a
  // calibrated one: `scaleplan calibrate --out FILE.yaml`).
  const hw::Cluster cl = executor_cluster(hw::load_cluster(a.cluster.empty() ? "dgx-a100-40gb" : a.cluster));
  const strategies::Plan p = resolve_executor_plan(strategies::load_plan(a.plan), m, cl, world.size());
  const std::string text = a.data.empty() ? std::string(SCALEPLAN_SOURCE_DIR "/executor/data/corpus.txt") : a.data;
  const Corpus data = Corpus::from_file(text);
  if (m.vocab < 256) throw ConfigError({a.model, 0, 0}, "vocab", "byte-level training data needs vocab >= 256");
  auto be = make_backend(a.backend);
  OpProfile prof;  // --profile: every backend call timed (executor/timed_backend.hpp)
  if (a.profile) be = make_timed_backend(std::move(be), prof);
  // Device memory (cuda) needs a device communicator (NCCL); the host communicator stays in
  // charge of barriers, host scalars and aborting the job.
  std::unique_ptr<Comm> dev = be->make_device_comm(world);
  if (dev) dev->set_timeout(a.timeout_s);
  if (!dev && !be->host_accessible()) throw BackendError("backend " + be->name() + " needs a device communicator");
  Comm& tcomm = dev ? *dev : world;
  TrainOptions to;
  to.optimizer = a.optimizer;
  to.lr = a.lr;
  to.seed = a.seed;
  if (!a.save.empty()) check_writable_dir(a.save, world.rank());  // before training, not after it
  Trainer tr(m, p, *be, tcomm, to);
  if (!a.resume.empty()) tr.load(a.resume);
  tr.reset_measurements();

  std::vector<double> losses, times;
  for (long long k = 0; k < a.steps; ++k) {
    if (fault.rank == world.rank() && fault.step == tr.steps_done()) {
      if (fault.kind == "die") std::_Exit(9);
      std::this_thread::sleep_for(std::chrono::duration<double>(10 * a.timeout_s + 5));
    }
    world.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    losses.push_back(tr.step(data));  // the loss all-reduce ends the step on every rank
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (k == 0) {  // the profile, as the step time, leaves out the first (warm-up) step
      prof.reset();
      tcomm.counters().seconds = {};
      tcomm.counters().sync_s = 0;
    }
    if (root && !a.json) std::cout << fmt::format("step {:4d}  loss {:.4f}  {:.1f} ms\n", tr.steps_done(), losses.back(), 1e3 * times.back());
  }
  // The job's step: the longest of the ranks' own windows (barrier exit to the loss all-reduce's
  // end). Ranks leave the barrier at different times when they share cores (mpirun --oversubscribe:
  // rank 0 descheduled at the exit while its core partner computes measured a 4-rank step at 8 ms
  // that took 12-19 ms on the others; issue 22).
  world.all_reduce_host(times.data(), times.size(), ReduceOp::max);
  if (!a.save.empty()) {
    if (root) std::filesystem::create_directories(a.save);
    world.barrier();
    tr.save(a.save);
  }

  // The last step's spans of every rank as a Chrome trace (chrome://tracing, Perfetto). Every rank
  // has the same number of spans; each is sent as numbers (kind, F/B, microbatch, chunk, start,
  // duration) through the host all-reduce, and rank 0 rebuilds the names.
  if (!a.trace.empty()) {
    const auto& sp = tr.last_timeline().spans;
    double count = static_cast<double>(sp.size());
    world.all_reduce_host(&count, 1, ReduceOp::max);
    const std::size_t S = static_cast<std::size_t>(count), W = 6;
    std::vector<double> buf(static_cast<std::size_t>(world.size()) * S * W, 0.0);
    for (std::size_t k = 0; k < sp.size(); ++k) {
      double* r = buf.data() + (static_cast<std::size_t>(world.rank()) * S + k) * W;
      // name "F mb3 c1" -> (F/B, mb, chunk); other names by kind.
      int fb = -1, mb = 0, ch = 0;
      if (std::sscanf(sp[k].name.c_str(), "F mb%d c%d", &mb, &ch) == 2) fb = 0;
      else if (std::sscanf(sp[k].name.c_str(), "B mb%d c%d", &mb, &ch) == 2) fb = 1;
      r[0] = 1 + static_cast<int>(sp[k].kind), r[1] = fb, r[2] = mb, r[3] = ch, r[4] = sp[k].start_s, r[5] = sp[k].dur_s;
    }
    world.all_reduce_host(buf.data(), buf.size(), ReduceOp::sum);
    if (root) {
      nlohmann::json ev = nlohmann::json::array();
      for (int rk = 0; rk < world.size(); ++rk)
        for (std::size_t k = 0; k < S; ++k) {
          const double* r = buf.data() + (static_cast<std::size_t>(rk) * S + k) * W;
          if (r[0] == 0) continue;
          const auto kind = static_cast<strategies::SpanKind>(static_cast<int>(r[0]) - 1);
          const std::string nm = r[1] == 0   ? fmt::format("F mb{} c{}", (int)r[2], (int)r[3])
                                 : r[1] == 1 ? fmt::format("B mb{} c{}", (int)r[2], (int)r[3])
                                 : kind == strategies::SpanKind::optimizer ? "optimizer"
                                                                           : "grad reduction";
          ev.push_back({{"name", nm}, {"cat", strategies::name(kind)}, {"ph", "X"}, {"pid", 0}, {"tid", rk},
                        {"ts", r[4] * 1e6}, {"dur", r[5] * 1e6}});
        }
      std::ofstream f(a.trace);
      if (!f) throw UsageError("--trace: cannot write " + a.trace);
      f << nlohmann::json{{"traceEvents", ev}, {"displayTimeUnit", "ms"}}.dump() << "\n";
    }
  }

  // Measured: each rank's peaks and bytes per step; the most-loaded rank's memory, the largest
  // bytes per dimension (as the estimator reports the most-loaded GPU).
  const int n = world.size(), K = 8;
  std::vector<double> all(static_cast<std::size_t>(n) * K, 0.0);
  const MemStats ms = tr.memory();
  const CommCounters& cc = tr.comm_counters();
  const double steps = std::max<long long>(1, a.steps);
  double* mine = all.data() + static_cast<std::size_t>(world.rank()) * K;
  for (int c = 0; c < kMemCategories; ++c) mine[c] = ms.peak[c];
  mine[5] = cc.contract_bytes(CommDim::tp) / steps;
  mine[6] = cc.contract_bytes(CommDim::pp) / steps;
  mine[7] = cc.contract_bytes(CommDim::dp) / steps;
  world.all_reduce_host(all.data(), all.size(), ReduceOp::sum);
  const nlohmann::json profile = a.profile ? profile_json(prof, tcomm.counters(), world, std::max<long long>(1, a.steps - 1))
                                           : nlohmann::json(nullptr);
  if (!root) return 0;
  int worst = 0;
  double worst_total = -1, comm[3] = {0, 0, 0};
  for (int r = 0; r < n; ++r) {
    const double* v = all.data() + static_cast<std::size_t>(r) * K;
    const double tot = v[0] + v[1] + v[2] + v[3] + v[4];
    if (tot > worst_total) {
      worst_total = tot;
      worst = r;
    }
    for (int d = 0; d < 3; ++d) comm[d] = std::max(comm[d], v[5 + d]);
  }
  // Step time: the mean without the first step (warm-up), when there are several.
  double step_s = 0;
  const std::size_t skip = times.size() > 1 ? 1 : 0;
  for (std::size_t i = skip; i < times.size(); ++i) step_s += times[i];
  step_s = times.size() > skip ? step_s / static_cast<double>(times.size() - skip) : 0;
  // The median too: on a shared machine a rank that the OS deschedules stalls every rank for that
  // step (visible with --trace), which the mean carries and the median does not.
  std::vector<double> kept(times.begin() + static_cast<long>(skip), times.end());
  std::sort(kept.begin(), kept.end());
  const double step_med = kept.empty() ? 0 : kept[kept.size() / 2];

  PredictOptions po;
  po.optimizer = a.optimizer;
  po.op_time = a.backend == "cpu";  // the CPU backend's own kernel list (EstimatorOptions::executor_op_time)
  const strategies::StepReport r = predict(m, p, cl, po);
  const nlohmann::json pr = report_json(r);
  nlohmann::json j;
  j["backend"] = a.backend;
  j["backend_impl"] = be->name();
  j["ranks"] = n;
  j["plan"] = plan_json(p);
  j["steps"] = a.steps;
  j["loss"] = losses;
  j["measured"] = {{"memory", memory_json(all.data() + static_cast<std::size_t>(worst) * K)},
                   {"time", {{"step_s", step_s}, {"step_s_median", step_med}}},
                   {"comm_bytes_per_gpu", {{"tp", comm[0]}, {"pp", comm[1]}, {"dp", comm[2]}, {"cp", 0}, {"ep", 0}}}};
  nlohmann::json pt = {{"step_s", nullptr}};
  if (!a.cluster.empty()) pt = pr["time"];  // step_s and its parts (compute, exposed comm, bubble, ...)
  nlohmann::json pmem = pr["memory"];
  for (const char* k : {"capacity", "host", "nvme"}) pmem.erase(k);
  j["predicted"] = {{"memory", pmem}, {"time", pt}, {"comm_bytes_per_gpu", pr["comm_bytes_per_gpu"]}};
  j["cluster"] = a.cluster.empty() ? nlohmann::json(nullptr) : nlohmann::json(cl.name);
  if (a.profile) j["measured"]["profile"] = profile;
  if (a.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("\n{} on {} rank(s), {} ({}), plan {}\n", m.name, n, a.backend, be->name(), p.to_string());
  std::cout << fmt::format("{:<22}{:>16}{:>16}{:>10}\n", "", "measured", "predicted", "error");
  auto row = [](const std::string& k, double meas, double pred, bool bytes) {
    const std::string e = pred > 0 ? fmt::format("{:+.1f}%", 100 * (meas - pred) / pred) : "";
    std::cout << fmt::format("{:<22}{:>16}{:>16}{:>10}\n", k, bytes ? fmt::format("{:.0f} B", meas) : fmt_time(meas),
                             bytes ? fmt::format("{:.0f} B", pred) : (pred > 0 ? fmt_time(pred) : "-"), e);
  };
  const auto& mm = j["measured"]["memory"];
  for (const char* k : {"params", "grads", "optimizer", "activations", "buffers"})
    row(std::string("memory.") + k, mm[k].get<double>(), pmem[k].get<double>(), true);
  for (const char* k : {"tp", "pp", "dp"})
    row(std::string("comm.") + k, j["measured"]["comm_bytes_per_gpu"][k].get<double>(), pr["comm_bytes_per_gpu"][k].get<double>(), true);
  row("step time (mean)", step_s, a.cluster.empty() ? 0 : r.time.step_s, false);
  row("step time (median)", step_med, a.cluster.empty() ? 0 : r.time.step_s, false);
  if (a.profile) {
    print_profile(profile);
    if (!a.cluster.empty())
      std::cout << fmt::format("predicted step {}: compute {} (optimizer {}), exposed comm {}, bubble {}, host {}\n",
                               fmt_time(r.time.step_s), fmt_time(r.time.compute_s), fmt_time(r.time.optimizer_s),
                               fmt_time(r.time.comm_exposed_s), fmt_time(r.time.bubble_s), fmt_time(r.time.host_s));
  }
  if (a.cluster.empty()) std::cout << "(predicted step time needs --cluster: run `scaleplan calibrate --out FILE.yaml` first)\n";
  return 0;
}

}  // namespace

void add_run(CLI::App& app, int& rc) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* sub = app.add_subcommand("run", "train a GPT model under a plan with the reference executor (under mpirun)");
  sub->add_option("--model", a->model, "model preset or YAML file (gpt-tiny, gpt-small)")->required();
  sub->add_option("--plan", a->plan, "plan: key=value,... (precision defaults to fp32; dp*tp*pp = ranks)")->required();
  sub->add_option("--steps", a->steps, "optimizer steps")->check(CLI::NonNegativeNumber);
  sub->add_option("--backend", a->backend, "compute backend: cpu, or cuda when built");
  sub->add_option("--cluster", a->cluster, "cluster preset or YAML (e.g. from `calibrate`) for the predicted step time");
  sub->add_option("--data", a->data, "training text (bytes are tokens; default: executor/data/corpus.txt)");
  sub->add_option("--optimizer", a->optimizer, "adamw, lamb or lars");
  sub->add_option("--lr", a->lr, "learning rate")->check(finite_positive());
  sub->add_option("--seed", a->seed, "initialisation seed");
  sub->add_option("--save", a->save, "write a checkpoint to this directory after the last step");
  sub->add_option("--resume", a->resume, "restore a checkpoint directory before the first step");
  sub->add_option("--timeout", a->timeout_s, "seconds before a collective that does not complete ends the job")
      ->check(finite_positive());
  sub->add_option("--trace", a->trace, "write the last step's per-rank spans as a Chrome trace (JSON)");
  sub->add_option("--fault", a->fault, "fault injection for tests: die:RANK:STEP or hang:RANK:STEP");
  sub->add_flag("--json", a->json, "print the contract JSON only (rank 0)");
  sub->add_flag("--profile", a->profile,
                "time every kernel and communication call (per step, after the first): measured.profile in --json, a table otherwise");
  sub->callback([a, &rc] {
    std::unique_ptr<executor::Comm> world;
    try {
      world = executor::make_world_comm();
    } catch (const std::exception& e) {
      std::cerr << "error: cannot start the communicator: " << e.what() << "\n";
      rc = 2;
      return;
    }
    const bool root = world->rank() == 0;
    auto report = [&](const std::string& msg) {
      if (root) std::cerr << "error: " << msg << "\n";
    };
    try {
      rc = run(*a, *world);
    } catch (const ConfigError& e) {
      report(e.what()), rc = 2;
    } catch (const PlanError& e) {
      report(e.what()), rc = 2;
    } catch (const UsageError& e) {
      report(e.what()), rc = 2;
    } catch (const executor::CheckpointError& e) {
      report(e.what()), rc = 2;
    } catch (const executor::BackendError& e) {
      report(e.what()), rc = 2;
    } catch (const executor::CommError& e) {
      // A peer died or hangs: say so (rank 0 always; another rank prefixes its number) and end
      // every process of the job, never wait forever.
      std::cerr << (root ? "error: " : fmt::format("error (rank {}): ", world->rank())) << e.what() << "\n";
      std::cerr.flush();
      world->abort(3);
    } catch (const std::exception& e) {
      std::cerr << (root ? "error: " : fmt::format("error (rank {}): ", world->rank())) << e.what() << "\n";
      rc = 2;
    }
  });
}

}  // namespace scaleplan::cli
#endif  // SCALEPLAN_HAVE_EXECUTOR
