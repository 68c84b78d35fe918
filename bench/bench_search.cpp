// Search performance (issue 4): plan evaluations per second on one core, exhaustive search wall
// time for GPT-3 175B on 20,480 H100, and a 10-count scaling sweep.
//   ./bench_search --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <memory>
#include <unordered_map>

#include "simulator/analytic/estimator.hpp"
#include "simulator/search/scale.hpp"
#include "simulator/search/search.hpp"

using namespace scaleplan;

namespace {

struct Fixture {
  model::ModelSpec m;
  hw::Cluster c;
  analytic::Estimator est;
  Fixture(const char* model, const char* cluster) : m(model::load_model(model)), c(hw::load_cluster(cluster)), est(m, c) {}
};

// The estimator's hot path on one core: every plan of GPT-3 175B on 1024 selene-a100 at gbs 1536,
// layer tables prepared once per (mbs, tp, cp, sp, recompute, precision), as the search does.
void BM_EvaluatePlans(benchmark::State& state) {
  static Fixture f("gpt3-175b", "selene-a100");
  const search::Space s = search::make_space(f.m, f.c, 1024, {1536});
  static const std::vector<strategies::Plan> plans = search::enumerate_plans(s);
  static std::vector<analytic::LayerTable> tables;
  static std::vector<const analytic::LayerTable*> table_of;
  static std::vector<analytic::ChunkTable> chunks;  // offload=gemini plans (issue 6)
  static std::vector<const analytic::ChunkTable*> chunk_of;
  if (tables.empty()) {
    chunks.reserve(plans.size());
    for (const auto& p : plans) {
      const analytic::ChunkTable* ct = nullptr;
      if (p.offload == strategies::Offload::gemini) {
        for (const auto& t : chunks)
          if (t.matches(p)) ct = &t;
        if (ct == nullptr) ct = &chunks.emplace_back(f.est.prepare_chunks(p));
      }
      chunk_of.push_back(ct);
    }
    tables.reserve(plans.size());
    for (const auto& p : plans) {
      bool found = false;
      for (const auto& t : tables) found = found || t.matches(p);
      if (!found) tables.push_back(f.est.prepare(p));
    }
    for (const auto& p : plans)
      for (const auto& t : tables)
        if (t.matches(p)) {
          table_of.push_back(&t);
          break;
        }
  }
  size_t n = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < plans.size(); ++i) {
      analytic::StepMetrics x = f.est.metrics(plans[i], *table_of[i], chunk_of[i]);
      benchmark::DoNotOptimize(x);
    }
    n += plans.size();
  }
  state.counters["plans"] = static_cast<double>(plans.size());
  state.counters["evals_per_s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EvaluatePlans)->Unit(benchmark::kMillisecond);

// The whole search (walk, layer tables, evaluation, top K, Pareto) on `threads` threads.
void BM_Search(benchmark::State& state, const char* model, const char* cluster, long long gpus, long long gbs) {
  static std::unordered_map<std::string, std::unique_ptr<Fixture>> cache;
  auto& f = cache[std::string(model) + cluster];
  if (!f) f = std::make_unique<Fixture>(model, cluster);
  search::SearchSpec spec;
  spec.gpus = gpus;
  spec.gbs = {gbs};
  spec.threads = static_cast<int>(state.range(0));
  std::uint64_t n = 0, feasible = 0;
  for (auto _ : state) {
    const search::SearchResult r = search::run_search(f->est, spec);
    n += r.evaluated;
    feasible = r.feasible;
    benchmark::DoNotOptimize(r.top.data());
  }
  state.counters["plans"] = static_cast<double>(n / state.iterations());
  state.counters["feasible"] = static_cast<double>(feasible);
  state.counters["evals_per_s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_Search, gpt3_175b_selene_1024_gbs1536, "gpt3-175b", "selene-a100", 1024, 1536)
    ->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Search, gpt3_175b_h100_20480_gbs2048, "gpt3-175b", "dgx-h100", 20480, 2048)
    ->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// Search with --gbs auto (every candidate batch is a dimension of the space).
void BM_SearchAuto(benchmark::State& state) {
  static Fixture f("gpt3-175b", "dgx-h100");
  search::SearchSpec spec;
  spec.gpus = 20480;
  spec.gbs_auto = true;
  spec.batch = search::batch_model(f.m, search::Optimizer::adam);
  spec.gbs = search::auto_gbs_candidates(f.m, f.c, spec.gpus, spec.batch);
  spec.threads = static_cast<int>(state.range(0));
  std::uint64_t n = 0;
  for (auto _ : state) {
    const search::SearchResult r = search::run_search(f.est, spec);
    n += r.evaluated;
    benchmark::DoNotOptimize(r.top.data());
  }
  state.counters["plans"] = static_cast<double>(n / state.iterations());
  state.counters["evals_per_s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SearchAuto)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// scale over 10 counts from 200 to 20,000 (fixed gbs 2048, and auto).
void BM_Scale(benchmark::State& state) {
  static Fixture f("gpt3-175b", "dgx-h100");
  const std::vector<long long> counts = {200, 400, 800, 1000, 2000, 4000, 8000, 10000, 16000, 20000};
  search::BatchChoice b;
  b.automatic = state.range(0) != 0;
  b.gbs = 2048;
  b.model = search::batch_model(f.m, search::Optimizer::adam);
  search::SearchSpec base;
  base.top_k = 1;
  base.objective = search::Objective::time;
  for (auto _ : state) {
    const search::ScaleResult r = search::run_scale(f.est, base, b, counts, 0);
    benchmark::DoNotOptimize(r.points.data());
  }
}
BENCHMARK(BM_Scale)->Arg(0)->Arg(1)->ArgName("auto")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
