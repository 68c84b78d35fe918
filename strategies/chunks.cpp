#include "strategies/chunks.hpp"
#include "strategies/pipeline.hpp"
#include "strategies/expert.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <iterator>
#include <utility>

namespace scaleplan::strategies {

double packed_waste(const std::vector<double>& tensor_elems, double chunk_elems, long long* chunks, double stop_at) {
  long long n = 0;
  double left = 0, waste = 0;
  for (double t : tensor_elems) {
    if (t <= 0) continue;
    if (t > chunk_elems) {
      // A tensor larger than the chunk size gets a chunk of its own size (Colossal-AI ChunkManager
      // sizes a chunk to max(chunk_size, numel)); the open chunk is closed first.
      waste += left;
      left = 0;
      ++n;
      if (waste >= stop_at) break;
      continue;
    }
    if (t > left) {  // next fit: close the open chunk, start a new one
      waste += left;
      ++n;
      left = chunk_elems;
      if (waste >= stop_at) break;
    }
    left -= t;
  }
  waste += left;
  if (chunks) *chunks = n;
  return waste;
}

double search_chunk_elems(const std::vector<double>& tensor_elems, const ChunkSearch& s, double hidden) {
  // filter_exlarge_params: tensors above mean + 3 standard deviations (a large vocabulary's embedding)
  // stay out of the search and get chunks of their own size.
  double used = 0, sq = 0;
  for (double t : tensor_elems) {
    used += t;
    sq += t * t;
  }
  const double cnt = tensor_elems.empty() ? 1 : static_cast<double>(tensor_elems.size());
  const double mean = used / cnt, sd = std::sqrt(std::max(0.0, sq / cnt - mean * mean));
  std::vector<double> kept;
  kept.reserve(tensor_elems.size());
  double largest = 0;
  for (double t : tensor_elems)
    if (t <= mean + 3 * sd) {
      kept.push_back(t);
      largest = std::max(largest, t);
    }
  const double interval = s.interval_elems > 0 ? s.interval_elems : hidden > 0 ? hidden : 1024;
  // Colossal-AI steps through the whole range; past 1024 candidates we widen the step (to a
  // multiple of the interval) to bound the cost: the waste curve is smooth at that scale.
  const double steps = std::floor(s.search_range_elems / interval);
  const double stride = interval * std::max(1.0, std::ceil(steps / 1024.0));
  const double start = std::max(largest, s.min_chunk_elems);
  // Pruning that leaves the pick unchanged: every kept tensor fits a chunk (c >= largest), so next
  // fit opens at least ceil(S / c) chunks for the S kept elements and wastes at least
  // ceil(S / c) c - S; a candidate whose bound is above the best waste so far (with a 1e-9
  // relative margin, far above the rounding of either sum) would lose and is not packed. A packing
  // stops once its waste reaches the best so far (packed_waste's stop_at).
  double kept_sum = 0;
  for (double t : kept)
    if (t > 0) kept_sum += t;
  double best = start, best_waste = std::numeric_limits<double>::infinity();
  for (double c = start; c <= start + s.search_range_elems; c += stride) {
    const double min_chunks = std::ceil(kept_sum / c * (1 - 1e-9));
    if (min_chunks * c - kept_sum > best_waste + 1e-9 * (kept_sum + c)) continue;
    const double w = packed_waste(kept, c, nullptr, best_waste);
    if (w < best_waste) {
      best_waste = w;
      best = c;
    }
  }
  return best;
}

ChunkConfig chunk_configuration(const std::vector<double>& tensor_elems, double best, int dp) {
  double used = 0, largest_all = 0;
  for (double t : tensor_elems) {
    used += t;
    largest_all = std::max(largest_all, t);
  }
  ChunkConfig cfg;
  const double d = dp > 0 ? dp : 1;
  cfg.chunk_elems = std::ceil(best / d) * d;  // every rank owns an equal shard of each chunk
  cfg.wasted_elems = packed_waste(tensor_elems, cfg.chunk_elems, &cfg.chunks);
  cfg.used_elems = used;
  cfg.largest_elems = largest_all;
  return cfg;
}

ChunkConfig search_chunk_configuration(const std::vector<double>& tensor_elems, int dp, const ChunkSearch& s, double hidden) {
  return chunk_configuration(tensor_elems, search_chunk_elems(tensor_elems, s, hidden), dp);
}

std::vector<double> stage_tensors(const model::ModelSpec& m, int tp, int ep, double layers, bool first, bool last, bool pp_gt1) {
  const double h = static_cast<double>(m.hidden), t = tp > 0 ? tp : 1, e = ep > 0 ? ep : 1;
  const double kv = static_cast<double>(m.kv_dim()), q = static_cast<double>(m.q_dim()), V = static_cast<double>(m.vocab);
  // FFN width of one MLP unit: the dense FFN, or one routed expert (strategies/expert expert_width).
  const double ffn = m.moe.enabled() ? expert_width(m) : static_cast<double>(m.ffn);
  const double shared = shared_experts_width(m);
  const double norm = m.norm_params_per_norm() * h;  // weight (+ bias), one tensor per norm for packing
  std::vector<double> out;
  if (first) {
    out.push_back(V * h / t);
    if (m.position == model::Position::learned) out.push_back(static_cast<double>(m.seq) * h);
  }
  const int L = static_cast<int>(std::ceil(layers));
  const double experts = m.moe.enabled() ? m.moe.experts / e : 1;
  for (int l = 0; l < L; ++l) {
    out.push_back(norm);
    out.push_back(h * (q + 2 * kv) / t);  // QKV weight (column parallel)
    if (m.bias) out.push_back((q + 2 * kv) / t);
    out.push_back(q * h / t);  // attention output (row parallel)
    if (m.bias) out.push_back(h);
    out.push_back(norm);
    if (m.moe.enabled()) out.push_back(h * m.moe.experts);  // router
    for (double x = 0; x < experts; ++x) {
      for (int k = 0; k < m.mlp_matrices() - 1; ++k) {
        out.push_back(h * ffn / t);  // FC1 (and the SwiGLU gate)
        if (m.bias) out.push_back(ffn / t);
      }
      out.push_back(ffn * h / t);  // FC2
      if (m.bias) out.push_back(h);
    }
    for (int k = 0; shared > 0 && k < m.mlp_matrices(); ++k) out.push_back(h * shared / t);  // shared experts' FC1 (gate), FC2
  }
  if (last) {
    out.push_back(norm);
    if (!m.tied_embeddings || pp_gt1) out.push_back(V * h / t);
  }
  return out;
}

long long furthest_future_loads(const std::vector<int>& accesses, int slots, const std::vector<int>& resident) {
  const long long N = static_cast<long long>(accesses.size());
  int max_id = 0;
  for (int a : accesses) max_id = std::max(max_id, a);
  for (int r : resident) max_id = std::max(max_id, r);
  // next[i]: the next position that accesses accesses[i] (N = never); first[id]: its first use.
  std::vector<long long> next(accesses.size(), N), first(static_cast<size_t>(max_id) + 1, N);
  for (long long i = N - 1; i >= 0; --i) {
    const auto id = static_cast<size_t>(accesses[static_cast<size_t>(i)]);
    next[static_cast<size_t>(i)] = first[id];
    first[id] = i;
  }
  std::set<std::pair<long long, int>> cache;     // (next use, id), furthest last
  std::vector<long long> key(first.size(), -1);  // next use of a cached id, -1 = not cached
  for (int r : resident) {
    if (static_cast<int>(cache.size()) >= slots) break;
    key[static_cast<size_t>(r)] = first[static_cast<size_t>(r)];
    cache.insert({first[static_cast<size_t>(r)], r});
  }
  long long loads = 0;
  for (long long i = 0; i < N; ++i) {
    const int a = accesses[static_cast<size_t>(i)];
    const long long k = key[static_cast<size_t>(a)];
    if (k >= 0) {
      cache.erase({k, a});  // hit
    } else {
      ++loads;
      if (slots <= 0) continue;
      if (static_cast<int>(cache.size()) >= slots) {
        auto victim = std::prev(cache.end());  // the chunk used furthest in the future
        key[static_cast<size_t>(victim->second)] = -1;
        cache.erase(victim);
      }
    }
    key[static_cast<size_t>(a)] = next[static_cast<size_t>(i)];
    cache.insert({next[static_cast<size_t>(i)], a});
  }
  return loads;
}

double sweep_loads(double n, double slots) {
  // Forward hits the `slots` chunks backward left resident (0..R-1) and loads the rest, each time
  // evicting the lowest-numbered resident chunk (backward reaches it last); backward then hits
  // n-R..n-1 and loads the rest, evicting the highest (next forward reaches it last).
  return 2.0 * std::max(0.0, n - std::max(0.0, slots));
}

ChunkPolicy chunk_policy(const hw::Software& sw) {
  ChunkPolicy p;
  p.cap_ratio = sw.chunk_cap_ratio;
  p.warmup_ratio = sw.chunk_warmup_ratio;
  p.host_ratio = sw.chunk_host_ratio;
  return p;
}

ChunkPlacement place_chunks(const ChunkInput& in, const OffloadOptions& o) {
  ChunkPlacement r;
  const double d = in.dp > 0 ? in.dp : 1;
  const double C = in.config.chunk_elems;
  // Chunk equivalents (own-size chunks of extra-large tensors count by their elements).
  const double n = C > 0 ? (in.config.used_elems + in.config.wasted_elems) / C : 0;
  const double b16 = in.param_bytes * C / d, bos = in.optimizer_bytes * C / d;
  r.shards = n;
  r.chunk_elems = C;
  r.chunk_waste = in.config.waste_fraction();
  r.shard_fp16_bytes = b16;
  // The gathered chunk in use and the one prefetched (an own-size chunk may be the larger).
  r.working_bytes = 2 * in.param_bytes * std::max(C, in.config.largest_elems);
  r.room_steady = in.policy.cap_ratio * in.capacity - in.non_model_peak - r.working_bytes;
  r.room_warmup = in.policy.warmup_ratio * in.capacity - r.working_bytes;
  r.fits_gpu = r.room_steady >= 0 && r.room_warmup >= 0;
  struct Split {
    double r16, ros, host;
  };
  auto place = [&](double room) {
    Split s{};
    room = std::max(0.0, room);
    s.r16 = b16 > 0 ? std::min(n, std::floor(room / b16)) : 0;
    const double margin = room - s.r16 * b16;
    s.ros = bos > 0 ? std::min(n, std::floor(margin / bos)) : 0;
    s.host = (n - s.r16) * b16 + (n - s.ros) * bos;
    return s;
  };
  const Split st = place(r.room_steady), wu = place(r.room_warmup);
  r.fp16_on_gpu = st.r16;
  r.os_on_gpu = st.ros;
  r.gpu_params = st.r16 * b16 + r.working_bytes;
  r.gpu_optimizer = st.ros * bos;
  r.host_steady = st.host;
  r.host_capacity = in.policy.host_ratio * in.host.memory;
  r.host_warmup = wu.host;

  // Traffic per step: every load of a 16-bit shard evicts one (moved, not copied: PatrickStar keeps
  // one copy of each chunk), once per microbatch sweep.
  const double pcie = in.host.pcie > 0 ? in.host.pcie : 1;
  const double sweep_bytes = 2 * b16 * sweep_loads(n, st.r16);
  // Optimizer step: shards whose states are on the host run CPU Adam; those whose 16-bit chunk is
  // resident send the gradient down and take the updated weight back.
  const double both_gpu = std::min(st.r16, st.ros);
  const double adam_bytes = 2 * b16 * (st.r16 - both_gpu);
  r.gpu_adam_params = st.ros * C / d;
  r.cpu_adam_s = cpu_adam_time((n - st.ros) * C / d, in.host, o);
  const double m = static_cast<double>(in.microbatches);
  r.pcie_bytes = m * sweep_bytes + adam_bytes;
  // Prefetching overlaps a sweep's copies with its compute; the optimizer step waits for the CPU.
  r.exposed_s = m * std::max(0.0, sweep_bytes / pcie - in.compute_per_mb_s) + r.cpu_adam_s + adam_bytes / pcie;
  return r;
}

std::vector<double> stage_chunk_tensors(const model::ModelSpec& m, const Plan& p, int stage) {
  const StageLayers sl = stage_layers(p, m.layers);
  const bool first = stage == 0, last = stage == p.pp - 1;
  const double layers = first ? sl.first : last ? sl.last : sl.middle;
  return stage_tensors(m, p.tp, p.ep, layers, first, last, p.pp > 1);
}

ChunkConfig stage_chunk_config(const model::ModelSpec& m, const Plan& p, int stage) {
  return search_chunk_configuration(stage_chunk_tensors(m, p, stage), p.dp, ChunkSearch{}, static_cast<double>(m.hidden));
}

ChunkPlacement gemini_placement(const ChunkConfig& cfg, const hw::Cluster& c, const Plan& p, const Recipe& r, double non_model_peak,
                                double compute_per_mb_s, int ranks_per_node) {
  ChunkInput in;
  in.config = cfg;
  in.dp = p.dp;
  in.capacity = c.device.hbm_bytes;
  in.non_model_peak = non_model_peak;
  in.microbatches = p.microbatches();
  in.compute_per_mb_s = compute_per_mb_s;
  in.param_bytes = r.param_bytes;  // the gradient reuses the weight's chunk (PatrickStar sec. 4)
  in.optimizer_bytes = r.optimizer_bytes;
  in.host = host_share(c.host, ranks_per_node);
  in.policy = chunk_policy(c.sw);
  return place_chunks(in);
}

ChunkPlacement gemini_placement(const model::ModelSpec& m, const hw::Cluster& c, const Plan& p, int stage, const Recipe& r,
                                double non_model_peak, double compute_per_mb_s, int ranks_per_node) {
  return gemini_placement(stage_chunk_config(m, p, stage), c, p, r, non_model_peak, compute_per_mb_s, ranks_per_node);
}

}  // namespace scaleplan::strategies
