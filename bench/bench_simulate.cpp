// Discrete-event simulator speed (issue 7 targets): one training step of GPT-3 175B on 1,024 GPUs
// in <= 5 s wall and on 20,480 GPUs in <= 30 s, peak memory <= 4 GB. Each iteration runs one
// simulation in a forked child (des::simulate); the counters report the child's own wall time and
// peak resident memory (getrusage in the child) and the simulated step.
//   ./bench_simulate --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include "simulator/des/simulate.hpp"

using namespace scaleplan;

namespace {

void run(benchmark::State& state, const char* cluster, long long gpus, const char* plan, bool reduce, const char* model = "gpt3-175b") {
  const model::ModelSpec m = model::load_model(model);
  const hw::Cluster c = hw::load_cluster(cluster);
  const strategies::Plan p = strategies::resolve_plan(strategies::parse_plan(plan), m, c, gpus);
  des::SimOptions o;
  o.reduce = reduce;
  o.timeline = true;  // as `scaleplan simulate --trace` runs it
  des::SimResult r;
  for (auto _ : state) {
    r = des::simulate(m, c, p, o);
    benchmark::ClobberMemory();  // (DoNotOptimize on a double member corrupted it with this libbenchmark)
  }
  state.counters["sim_wall_s"] = r.wall_s;
  state.counters["peak_rss_MiB"] = r.peak_rss_bytes / (1024.0 * 1024.0);
  state.counters["sim_step_s"] = r.report.time.step_s;
  state.counters["analytic_step_s"] = r.analytic_step_s;
  state.counters["ranks_run"] = static_cast<double>(r.simulated_ranks);
  state.counters["flows"] = static_cast<double>(r.flows);
  state.counters["spans"] = static_cast<double>(r.timeline.spans.size());
}

void BM_Gpt3_175B_1024(benchmark::State& s) { run(s, "selene-a100", 1024, "tp=8,pp=16,mbs=1,gbs=1536", true); }
void BM_Gpt3_175B_1024_Unreduced(benchmark::State& s) { run(s, "selene-a100", 1024, "tp=8,pp=16,mbs=1,gbs=1536", false); }
void BM_Gpt3_175B_20480(benchmark::State& s) { run(s, "selene-a100", 20480, "tp=8,pp=16,mbs=1,gbs=1920", true); }
void BM_Gpt3_175B_20480_Interleaved(benchmark::State& s) {
  run(s, "selene-a100", 20480, "tp=8,pp=16,vpp=2,schedule=interleaved,mbs=1,gbs=2560", true);
}
void BM_Gpt3_175B_20480_MetaPods(benchmark::State& s) { run(s, "meta-h100-roce", 20480, "tp=8,pp=16,mbs=1,gbs=1920", true); }
// Context parallelism as flows: Llama 3 70B, all-gather CP over 16 nodes per group, 1:7 pods.
void BM_Llama3_70B_16384_AllGatherCp(benchmark::State& s) {
  run(s, "meta-h100-roce", 16384, "tp=8,cp=16,pp=16,mbs=1,gbs=128,cp_algo=allgather,zero=1", true, "llama3-70b");
}

}  // namespace

BENCHMARK(BM_Gpt3_175B_1024)->Unit(benchmark::kSecond)->Iterations(3);
BENCHMARK(BM_Gpt3_175B_1024_Unreduced)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_Gpt3_175B_20480)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_Gpt3_175B_20480_Interleaved)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_Gpt3_175B_20480_MetaPods)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_Llama3_70B_16384_AllGatherCp)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK_MAIN();
