// Serving search performance (issue 20): layouts costed per second on one core (target >= 1M/s) and the
// whole `serve` search for 8 to 64 GPUs (target < 1 s; the CLI adds parsing and printing).
//   ./bench_serve --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <vector>

#include "simulator/serve/serve_search.hpp"

using namespace scaleplan;

namespace {

serve::ServeModel make(const char* model, const char* cluster) {
  return serve::ServeModel(model::load_model(model), hw::load_cluster(cluster), serve::precision_spec("fp8"), {2000, 500});
}

// ServeModel::evaluate on one core over every layout of 64 GPUs x a spread of batches (dense and MoE/MLA).
void evaluate_layouts(benchmark::State& state, const char* model) {
  const serve::ServeModel sm = make(model, "dgx-h200");
  std::vector<serve::Layout> ls;
  for (serve::Layout l : serve::layouts(sm.model(), 64))
    for (long long b : {1LL, 8LL, 64LL, 512LL}) {
      l.batch = b;
      ls.push_back(l);
    }
  double sink = 0;
  for (auto _ : state) {
    for (const auto& l : ls) sink += sm.evaluate(l).throughput.tokens_per_s_per_gpu;
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<long long>(ls.size()));
  state.counters["layouts_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * ls.size()), benchmark::Counter::kIsRate);
}
void BM_EvaluateDense(benchmark::State& state) { evaluate_layouts(state, "llama3-70b"); }
void BM_EvaluateMoeMla(benchmark::State& state) { evaluate_layouts(state, "deepseek-v3"); }
BENCHMARK(BM_EvaluateDense)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EvaluateMoeMla)->Unit(benchmark::kMicrosecond);

// The full search (every layout, every candidate batch, Pareto front) for state.range(0) GPUs.
void BM_SearchDeepSeek(benchmark::State& state) {
  const serve::ServeModel sm = make("deepseek-v3", "dgx-h200");
  serve::SearchSpec spec;
  spec.gpus = static_cast<int>(state.range(0));
  long long n = 0;
  for (auto _ : state) {
    const serve::SearchResult r = serve::search(sm, spec);
    n += r.evaluated;
    benchmark::DoNotOptimize(r.best.throughput.tokens_per_s_per_gpu);
  }
  state.counters["evaluated"] = static_cast<double>(n) / state.iterations();
}
BENCHMARK(BM_SearchDeepSeek)->Arg(8)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
