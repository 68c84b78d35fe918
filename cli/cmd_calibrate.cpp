// scaleplan calibrate: measure this machine as the executor uses it (DESIGN.md sec. 3) and write a
// cluster YAML that --cluster loads: GEMM FLOP/s over shapes (fitted to the device model's
// saturating efficiency curve, hardware/device.hpp), copy bandwidth, the cost of a tiny kernel,
// and the alpha-beta of the MPI all-reduce (fitted to the ring model of hardware/collectives.cpp).
// Under mpirun every rank measures at the same time, so the numbers are per rank with the others
// busy, as during `scaleplan run` with the same rank count; a compute rate is the slowest rank's
// (the ranks' mean when they share cores).
#ifdef SCALEPLAN_HAVE_EXECUTOR
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <chrono>
#include <ctime>
#include <deque>
#include <random>
#include <fstream>
#include <iostream>

#include "cli/commands.hpp"
#include "common/errors.hpp"
#include "executor/backend.hpp"
#include "executor/comm.hpp"
#include "hardware/cluster.hpp"

namespace scaleplan::cli {

namespace {
struct CalArgs {
  std::string out, backend = "cpu";
  double budget_s = 0.05;  // seconds of repetitions per measurement
};

using Clock = std::chrono::steady_clock;

// Seconds per call of fn: the median of 5 windows of budget_s / 5 each (at least 3 calls per
// window). The median, as `run` reports the median step: on a shared machine a window in which
// the process was descheduled is an outlier, not the rate.
template <class F>
double time_per_call(F&& fn, double budget_s) {
  fn();  // warm-up
  std::vector<double> w;
  for (int k = 0; k < 5; ++k) {
    int n = 0;
    const auto t0 = Clock::now();
    double el = 0;
    do {
      fn();
      ++n;
      el = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (el < budget_s / 5 || n < 3);
    w.push_back(el / n);
  }
  std::sort(w.begin(), w.end());
  return w[2];
}

// What every measurement needs: the backend, the host communicator (barriers, host scalars), the
// communicator under test, the rank count.
struct Ctx {
  executor::Backend& be;
  executor::Comm& world;
  executor::Comm& comm;
  int n;
  double mean(double v) const {
    world.all_reduce_host(&v, 1, executor::ReduceOp::sum);
    return v / n;
  }
  // The slowest rank's rate: the executor's ranks meet at every collective, so a step runs at the
  // pace of the slowest (issue 22: on the 2-core VM the rank on core 0 ran 0-40 % slower than the
  // other in the same run, rank 1 then waiting in the DP all-reduce).
  // With more ranks than cores (mpirun --oversubscribe) the kernel scheduler rotates the cores
  // among the ranks every few ms, so no rank stays the slow one: over a step each runs at the
  // ranks' mean share (issue 22, 4 ranks on 2 cores: the slowest rank's GEMM rate 16.1 GFLOP/s in
  // one calibration, the mean 16.4 and 16.6 in the next two).
  bool shared_cores = false;
  double pace(double rate) const {
    if (shared_cores) return mean(rate);
    double neg = -rate;
    world.all_reduce_host(&neg, 1, executor::ReduceOp::max);
    return -neg;
  }
};

// GEMM FLOP/s over shapes: squares and the executor's linear-layer shapes (tokens x out x in).
struct Shape {
  int m, n, k;
};
const Shape shapes[] = {{32, 32, 32},    {64, 64, 64},     {128, 128, 128}, {256, 256, 256}, {512, 512, 512},
                        {64, 192, 64},   {64, 256, 64},    {128, 768, 256}, {128, 1024, 256}, {256, 256, 1024},
                        {1024, 1024, 1024}, {64, 64, 16},  {64, 16, 64},    {128, 128, 32},  {128, 32, 128}};

struct GemmFit {
  std::vector<std::pair<double, double>> fr;  // per shape: (FLOPs, FLOP/s)
  double peak = 0, half = 0;                 // the device model's fp32 peak and gemm_half_flop
};

GemmFit measure_gemm(const CalArgs& a, const Ctx& c) {
  using namespace executor;
  Backend* be = &c.be;
  Comm& world = c.world;
  auto pace = [&](double r) { return c.pace(r); };
  std::vector<std::pair<double, double>> fr;  // (FLOPs, FLOP/s)
  {
    // Three interleaved passes over the shapes after a warm-up (the first shapes measured alone
    // ran up to 2x slower on the shared VM: clock ramp and other jobs), the median pass per shape.
    const int S = static_cast<int>(std::size(shapes));
    // Each shape cycles through copies of its operands totalling >= 8 MiB (more than a core's L2):
    // in a training step a GEMM's operands were last touched layers ago, not by the previous call
    // (measured on the 2-core VM: 5-12 % slower than on one hot set; issue 22).
    std::vector<std::vector<Buffer>> As(std::size(shapes)), Bs(std::size(shapes)), Cs(std::size(shapes));
    std::vector<int> next(std::size(shapes), 0);
    for (std::size_t i = 0; i < std::size(shapes); ++i) {
      const Shape& s = shapes[i];
      const double bytes = 4.0 * ((double)s.m * s.k + (double)s.k * s.n + (double)s.m * s.n);
      const int copies = static_cast<int>(std::clamp(std::ceil(8.0 * (1 << 20) / bytes), 1.0, 64.0));
      for (int c = 0; c < copies; ++c) {
        As[i].push_back(make_floats(*be, (size_t)s.m * s.k, MemCategory::buffers));
        Bs[i].push_back(make_floats(*be, (size_t)s.k * s.n, MemCategory::buffers));
        Cs[i].push_back(make_floats(*be, (size_t)s.m * s.n, MemCategory::buffers));
        be->fill(As[i].back().f(), 0.5f, As[i].back().floats());
        be->fill(Bs[i].back().f(), 0.25f, Bs[i].back().floats());
      }
    }
    auto run = [&](int i) {
      const Shape& s = shapes[i];
      const int c = next[i];
      next[i] = (c + 1) % static_cast<int>(As[i].size());
      be->gemm(Trans::N, Trans::N, s.m, s.n, s.k, 1.f, As[i][c].f(), s.k, Bs[i][c].f(), s.n, 0.f, Cs[i][c].f(), s.n);
      be->synchronize();
    };
    const auto w0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - w0).count() < 4 * a.budget_s) run(3);  // warm-up
    std::vector<std::vector<double>> rates(S);
    for (int pass = 0; pass < 3; ++pass)
      for (int i = 0; i < S; ++i) {
        world.barrier();
        const double t = time_per_call([&] { run(i); }, a.budget_s / 3);
        const double f = 2.0 * shapes[i].m * shapes[i].n * shapes[i].k;
        rates[i].push_back(pace(f / t));
      }
    for (int i = 0; i < S; ++i) {
      std::sort(rates[i].begin(), rates[i].end());
      fr.push_back({2.0 * shapes[i].m * shapes[i].n * shapes[i].k, rates[i][1]});
    }
  }
  // The device model's GEMM time is (F + F_half) / peak (hardware/device.hpp with gemm_max = 1):
  // a line in F. Fit t = a F + b minimising the relative error (weights 1/t^2): peak = 1/a, F_half = b/a.
  double sw = 0, swf = 0, swff = 0, swt = 0, swft = 0;
  for (auto& [f, r] : fr) {
    const double t = f / r, w = 1 / (t * t);
    sw += w, swf += w * f, swff += w * f * f, swt += w * t, swft += w * f * t;
  }
  const double det = sw * swff - swf * swf;
  double slope = (sw * swft - swf * swt) / det, icpt = (swff * swt - swf * swft) / det;
  // No size effect measured (a negative intercept: the small shapes ran as fast as the large):
  // t = F / peak, relative least squares: peak = sum r^2 / sum r.
  double sr = 0, srr = 0;
  for (auto& [f, r] : fr) sr += r, srr += r * r;
  double peak = srr / sr;
  if (slope > 0 && icpt >= 0) peak = 1 / slope;
  const double half = (slope > 0 && icpt >= 0) ? icpt / slope : 0;

  return {fr, peak, half};
}

struct KernelRates {
  std::array<double, hw::kNumKernelClasses> class_Bps{};
  double bw = 0, overhead = 0;  // streaming rate (geometric mean of the forward classes), one call's fixed cost
};

KernelRates measure_kernels(const CalArgs& a, const Ctx& c) {
  using namespace executor;
  Backend* be = &c.be;
  Comm& world = c.world;
  auto mean = [&](double v) { return c.mean(v); };
  auto pace = [&](double r) { return c.pace(r); };
  // Streaming rate: the device model charges memory-bound kernels bytes / hbm_bw. On a CPU the
  // executor's elementwise kernels (GeLU's tanh, softmax's exp, LayerNorm) are compute-bound, so the
  // rate that predicts them is the one they reach: the geometric mean of read + write bytes per
  // second of copy, GeLU, LayerNorm and causal softmax on 1M floats (in-cache, as the executor's
  // activations), all measured with the backend the executor uses.
  // Per kernel class (hardware/device.hpp KernelClass), on 64Ki floats (256 KiB: the size of the
  // executor's activations for gpt-tiny/gpt-small, cache-resident as theirs are): bytes read +
  // written per second of memmove (copy), axpy (simple), GeLU, LayerNorm (rows of 256), causal
  // softmax (64 x 64 blocks) and AdamW (p, g, m, v read; p, m, v written). The executor's op model
  // (EstimatorOptions::executor_op_time) charges each of its kernels at its class's rate.
  const std::size_t N = 1u << 16;
  double bw = 0, overhead = 0;
  std::array<double, hw::kNumKernelClasses> class_Bps{};
  {
    Buffer X = make_floats(*be, N, MemCategory::buffers), Y = make_floats(*be, N, MemCategory::buffers);
    Buffer M = make_floats(*be, N, MemCategory::buffers), V = make_floats(*be, N, MemCategory::buffers);
    Buffer D = make_floats(*be, N, MemCategory::buffers);
    std::deque<Buffer> ring;  // KernelClass::alloc: the executor allocates while its other buffers live
    Buffer g = make_floats(*be, 256, MemCategory::buffers), st = make_floats(*be, 2 * N / 256, MemCategory::buffers);
    // Inputs spread (normal, sd 1, fixed seed) rather than one constant, which takes one branch of
    // every data-dependent loop; the executor's GeLU is data-independent since issue 22 (tanh from
    // one expf: the same rate on N(0, 0.1) and N(0, 1) inputs).
    {
      std::mt19937 rng(1234);
      std::normal_distribution<float> nd(0.f, 1.f);
      std::vector<float> host(N);
      for (auto& v : host) v = nd(rng);
      be->copy_to_device(X.f(), host.data(), N * sizeof(float));
      for (auto& v : host) v = nd(rng);
      be->copy_to_device(Y.f(), host.data(), N * sizeof(float));
    }
    Buffer tgt = make_floats(*be, N / 256, MemCategory::buffers);  // int32 targets (0: a valid class)
    Buffer L = make_floats(*be, N, MemCategory::buffers);         // logits for the loss passes
    be->copy(X.f(), L.f(), N);
    be->fill(g.f(), 1.f, 256);
    struct K {
      hw::KernelClass c;
      double bytes_per_elem;
      std::function<void()> run;
    };
    std::vector<K> kernels = {
        {hw::KernelClass::copy, 8, [&] { be->copy(X.f(), Y.f(), N); }},
        {hw::KernelClass::simple, 12, [&] { be->axpy(1e-3f, X.f(), Y.f(), N); }},
        {hw::KernelClass::gelu, 8, [&] { be->gelu_fwd(X.f(), Y.f(), N); }},
        {hw::KernelClass::layernorm, 8, [&] { be->layernorm_fwd(X.f(), g.f(), g.f(), Y.f(), st.f(), st.f() + N / 256, N / 256, 256, 1e-5f); }},
        {hw::KernelClass::softmax, 8, [&] { be->softmax_causal_fwd(X.f(), Y.f(), static_cast<int>(N / (64 * 64)), 64, 0.125f); }},
        {hw::KernelClass::optimizer, 28,
         [&] { be->adamw_update(Y.f(), X.f(), M.f(), V.f(), N, 1e-6f, 0.9f, 0.95f, 1e-8f, 0.f, 1); }},
        // The backward loops (reads x or p and dy, writes dx: 12 B per element).
        {hw::KernelClass::gelu_bwd, 12, [&] { be->gelu_bwd(X.f(), Y.f(), D.f(), N); }},
        {hw::KernelClass::layernorm_bwd, 12,
         [&] { be->layernorm_bwd(Y.f(), X.f(), g.f(), st.f(), st.f() + N / 256, D.f(), M.f(), M.f() + 256, N / 256, 256); }},
        {hw::KernelClass::softmax_bwd, 12,
         [&] { be->softmax_causal_bwd(X.f(), Y.f(), D.f(), static_cast<int>(N / (64 * 64)), 64, 0.125f); }},
        // The loss's exp passes over rows of 256 (sum of exp reads 4 B, the in-place gradient reads
        // and writes 8 B per element; the gradient replaces the logits, whose values stay in range).
        {hw::KernelClass::cross_entropy, 12, [&] {
           be->ce_sum_exp(L.f(), st.f(), M.f(), static_cast<int>(N / 256), 256);
           be->ce_bwd(L.f(), st.f(), M.f(), tgt.i32(), L.f(), static_cast<int>(N / 256), 256, 0, 1e-3f);
         }},
        // A buffer allocated (zero-filled) while 8 others are live, the oldest freed (4 B written).
        {hw::KernelClass::alloc, 4, [&] {
           ring.push_back(make_floats(*be, N, MemCategory::buffers));
           if (ring.size() > 8) ring.pop_front();
         }}};
    double logsum = 0;
    int forward_classes = 0;
    // Three interleaved passes over the classes, the median pass per class (as the GEMM shapes: a
    // slow phase of the shared VM then spoils one pass, not a class).
    std::vector<std::array<double, 3>> passes(kernels.size());
    for (int pass = 0; pass < 3; ++pass)
      for (std::size_t i = 0; i < kernels.size(); ++i) {
        world.barrier();
        const double t = time_per_call([&] { kernels[i].run(); be->synchronize(); }, a.budget_s / 3);
        passes[i][pass] = pace(kernels[i].bytes_per_elem * N / t);
      }
    for (std::size_t i = 0; i < kernels.size(); ++i) {
      std::sort(passes[i].begin(), passes[i].end());
      const double r = passes[i][1];
      class_Bps[static_cast<int>(kernels[i].c)] = r;
      if (static_cast<int>(kernels[i].c) <= static_cast<int>(hw::KernelClass::optimizer)) logsum += std::log(r), ++forward_classes;
    }
    ring.clear();
    // The streaming rate of the GPU op model (other uses of this file): the geometric mean of the
    // forward classes (as before the backward classes were measured).
    bw = std::exp(logsum / forward_classes);
    // The fixed cost of one executor kernel call: every op of executor/gpt.cpp allocates its output
    // (tracked aligned_alloc + memset) and frees it later, so a 16-element output allocated, written
    // by an axpy and freed (the bytes are negligible).
    overhead = mean(time_per_call([&] {
      Buffer o = make_floats(*be, 16, MemCategory::buffers);
      be->axpy(1.f, X.f(), o.f(), 16);
      be->synchronize();
    }, a.budget_s / 5));
  }

  return {class_Bps, bw, overhead};
}

struct LinkFit {
  double bw_Bps = 0, lat_s = 0;
  std::string bw_note, lat_note;
};

LinkFit measure_link(const CalArgs& a, const Ctx& c, const KernelRates& k) {
  using namespace executor;
  Backend* be = &c.be;
  Comm& world = c.world;
  Comm& comm = c.comm;
  const int n = c.n;
  auto mean = [&](double v) { return c.mean(v); };
  const double bw = k.bw, overhead = k.overhead;
  // All-reduce alpha-beta: t = 2(n-1) alpha + 2(n-1)/n bytes / bw (ring, hardware/collectives.cpp),
  // least squares over message sizes. One rank: a shared-memory copy stands for the link.
  double sync_lat = 0;  // a small all-reduce right after compute, minus the compute (n > 1)
  double link_bw = bw / 2, link_lat = overhead;  // one rank: the streaming rate one way, the tiny-op time
  std::string lat_note = "as bw_GBps";
  std::string link_note = "single process: streaming rate one way and tiny-kernel time (run under mpirun -np 2+ to measure MPI)";
  if (n > 1) {
    // Normal equations in (alpha, 1/bw), each size weighted 1/t^2 (relative error): the executor's
    // collectives are mostly small (TP activations, per-layer buckets), where alpha dominates.
    double sxx = 0, sxy = 0, syy = 0, sx = 0, sy = 0, st1 = 0, st2 = 0;
    (void)sx; (void)sy;
    // Three interleaved passes over the sizes, the median pass per size (a slow phase of the shared
    // VM halved the fitted bandwidth of single passes at 4 ranks; issue 22).
    std::vector<std::size_t> sizes;
    for (std::size_t bytes = 64; bytes <= (8u << 20); bytes *= 4) sizes.push_back(bytes);
    std::vector<std::array<double, 3>> ts(sizes.size());
    for (int pass = 0; pass < 3; ++pass)
      for (std::size_t si = 0; si < sizes.size(); ++si) {
        const std::size_t bytes = sizes[si];
        Buffer B = make_floats(*be, bytes / 4, MemCategory::buffers);
        world.barrier();
        // Every rank must make the same number of calls: agree on it from the slowest first call.
        auto call = [&] { comm.all_reduce(B.f(), bytes / 4); };
        call();
        auto t0 = Clock::now();
        call();
        double first = std::chrono::duration<double>(Clock::now() - t0).count();
        world.all_reduce_host(&first, 1, ReduceOp::max);
        const int reps = static_cast<int>(std::clamp(a.budget_s / 3 / std::max(first, 1e-9), 3.0, 2000.0));
        world.barrier();
        t0 = Clock::now();
        for (int r = 0; r < reps; ++r) call();
        ts[si][pass] = mean(std::chrono::duration<double>(Clock::now() - t0).count() / reps);
      }
    for (std::size_t si = 0; si < sizes.size(); ++si) {
      std::sort(ts[si].begin(), ts[si].end());
      const double t = ts[si][1];
      const double x1 = 2.0 * (n - 1), x2 = 2.0 * (n - 1) / n * static_cast<double>(sizes[si]), w = 1 / (t * t);
      sxx += w * x1 * x1;
      sxy += w * x1 * x2;
      syy += w * x2 * x2;
      st1 += w * x1 * t;
      st2 += w * x2 * t;
    }
    const double det = sxx * syy - sxy * sxy;
    double alpha = (st1 * syy - st2 * sxy) / det, inv_bw = (sxx * st2 - sxy * st1) / det;
    if (alpha < 0) alpha = 0;
    // What one of the executor's collectives costs where it runs: right after a compute phase, the
    // ranks arrive apart (on a shared machine a rank is descheduled for ~ms) and the earlier one
    // waits. Measured as (GEMM + 16-float all-reduce) - (GEMM alone), means, all ranks at once;
    // the ring's latency term (2(n-1) alpha) takes the larger of this and the fitted alpha.
    {
      Buffer A = make_floats(*be, 256 * 256, MemCategory::buffers), C = make_floats(*be, 256 * 256, MemCategory::buffers);
      Buffer s16 = make_floats(*be, 16, MemCategory::buffers);
      be->fill(A.f(), 0.5f, A.floats());
      auto g = [&] { be->gemm(Trans::N, Trans::N, 256, 256, 256, 1.f, A.f(), 256, A.f(), 256, 0.f, C.f(), 256); };
      // Per window the mean over 20 calls (a step pays every stall of its many collectives), every
      // rank making every call; the median of 9 interleaved windows of each (issue 22: single
      // 60-call means at 4 ranks on 2 cores ranged 120-1,350 us between back-to-back calibrations, medians
      // of 5 windows 219-340 us).
      auto window = [&](auto&& fn) {
        world.barrier();
        const auto t0 = Clock::now();
        for (int r = 0; r < 20; ++r) fn();
        return mean(std::chrono::duration<double>(Clock::now() - t0).count() / 20);
      };
      std::array<double, 9> w_c{}, w_cs{};
      for (int k = 0; k < 9; ++k) {
        w_c[k] = window([&] { g(); });
        w_cs[k] = window([&] { g(); comm.all_reduce(s16.f(), 16); });
      }
      std::sort(w_c.begin(), w_c.end());
      std::sort(w_cs.begin(), w_cs.end());
      const double t_c = w_c[4], t_cs = w_cs[4];
      sync_lat = std::max(0.0, t_cs - t_c);
      alpha = std::max(alpha, sync_lat / (2.0 * (n - 1)));
    }
    link_lat = alpha;
    link_bw = inv_bw > 0 ? 1.0 / inv_bw : link_bw;
    link_note = fmt::format("{} all-reduce over {} ranks, ring alpha-beta relative least squares over 64 B..8 MiB", comm.name(), n);
    lat_note = fmt::format("the larger of the fitted alpha and a 16-float all-reduce after a GEMM minus the GEMM ({:.4g} us) / 2(n-1)",
                           sync_lat * 1e6);
  }
  return {link_bw, link_lat, link_note, lat_note};
}

// The calibrated cluster YAML, every number commented with how it was measured.
std::string cluster_yaml(const CalArgs& a, const Ctx& c, const GemmFit& g, const KernelRates& k, const LinkFit& l) {
  const int n = c.n;
  const auto& fr = g.fr;
  const double peak = g.peak, half = g.half, bw = k.bw, overhead = k.overhead;
  const auto& class_Bps = k.class_Bps;
  const double link_bw = l.bw_Bps, link_lat = l.lat_s;
  const std::string &link_note = l.bw_note, &lat_note = l.lat_note;
  const executor::Backend* be = &c.be;
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  const double mem_gib = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGE_SIZE) / (1024.0 * 1024 * 1024);
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string y;
  y += fmt::format("# Written by `scaleplan calibrate` on {} at {} with {} rank(s), backend {}.\n", host, when, n, be->name());
  y += "# Every number is a measurement on this machine (or named as derived from one).\n";
  y += fmt::format("name: calibrated-{}\n", host);
  for (std::size_t i = 0; i < fr.size(); ++i)
    y += fmt::format("# GEMM {} x {} x {}: measured {:.4g} GFLOP/s, fitted model {:.4g} GFLOP/s\n", shapes[i].m, shapes[i].n,
                     shapes[i].k, fr[i].second / 1e9, peak * fr[i].first / (fr[i].first + half) / 1e9);
  y += "device:\n";
  y += fmt::format("  name: {}-{}\n", host, a.backend);
  y += "  peak_tflops:\n";
  y += fmt::format("    fp32: {:.6g}         # measured: GEMM rate per rank, fitted over {} shapes (see gemm_half_flop)\n", peak / 1e12, fr.size());
  y += fmt::format("  hbm_GiB: {:.4g}          # measured: physical memory / ranks\n", mem_gib / n);
  y += fmt::format("  hbm_bw_GBps: {:.5g}      # measured: elementwise rate per rank (geometric mean of kernel_GBps)\n", bw / 1e9);
  y += "  efficiency:\n";
  y += "    gemm_max: 1.0            # peak_tflops is the fitted rate\n";
  y += fmt::format("    gemm_half_flop: {:.4g}   # measured: time = (F + gemm_half_flop) / peak, least squares (relative) over the shapes\n", half);
  y += "    mem_bw: 1.0              # hbm_bw_GBps is the measured rate\n";
  y += "    kernel_GBps:             # measured: each executor kernel class on 64Ki floats (read + write bytes / s)\n";
  for (int i = 0; i < hw::kNumKernelClasses; ++i)
    y += fmt::format("      {}: {:.5g}\n", hw::kernel_class_name(static_cast<hw::KernelClass>(i)), class_Bps[i] / 1e9);
  y += fmt::format("    kernel_overhead_us: {:.4g} # measured: allocate a 16-float output, axpy into it, free (one executor kernel call)\n", overhead * 1e6);
  y += "node:\n";
  y += fmt::format("  gpus: {}                   # ranks measured together\n", n);
  y += "  intra:\n";
  y += "    kind: nvswitch           # one host: every pair of ranks talks through shared memory\n";
  y += fmt::format("    bw_GBps: {:.5g}         # measured: {}\n", link_bw / 1e9, link_note);
  y += fmt::format("    latency_us: {:.4g}       # measured: {}\n", link_lat * 1e6, lat_note);
  y += "    bus_efficiency: 1.0      # bw_GBps is the achieved rate\n";
  y += fmt::format("  host_memory_GiB: {:.4g}\n", mem_gib);
  y += fmt::format("  host_cores: {}              # online CPU cores the ranks share (sysconf)\n", ::sysconf(_SC_NPROCESSORS_ONLN));
  y += "network:                     # one host: the network is the same shared memory\n";
  y += fmt::format("  nic_Gbps_per_gpu: {:.5g}\n", link_bw * 8 / 1e9);
  y += fmt::format("  latency_us: {:.4g}\n", link_lat * 1e6);
  y += "  bus_efficiency: 1.0\n";
  y += "software:                    # how the reference executor trains\n";
  y += "  attention: unfused\n";
  y += "  dp_overlap: false\n";
  return y;
}

int calibrate(const CalArgs& args, executor::Comm& world) {
  using namespace executor;
  const bool root = world.rank() == 0;
  auto be = make_backend(args.backend);
  // The collectives run on the backend's buffers: through the backend's device communicator
  // (NCCL for cuda) when its memory is not host accessible, through `world` (MPI) otherwise.
  std::unique_ptr<Comm> dev = be->make_device_comm(world);
  const bool shared = world.size() > ::sysconf(_SC_NPROCESSORS_ONLN);
  const Ctx c{*be, world, dev ? *dev : world, world.size(), shared};
  // Ranks sharing cores take turns in scheduler slices of milliseconds: a measurement window must
  // span many of them, or it catches a rank that ran alone (issue 22: at 4 ranks on 2 cores,
  // calibrations with the default budget's 3 ms GEMM windows left 5 of 6 plans 15-44 % too fast in
  // every repeat of a run; --budget 0.4 kept 5 of 6 within 19 % in another). At least 0.4 s then.
  CalArgs a = args;
  if (shared) a.budget_s = std::max(a.budget_s, 0.4);
  const GemmFit g = measure_gemm(a, c);
  const KernelRates k = measure_kernels(a, c);
  const LinkFit l = measure_link(a, c, k);
  world.counters().reset();
  if (!root) return 0;
  const std::string y = cluster_yaml(a, c, g, k, l);
  // The file must load as a cluster (hardware/cluster.cpp) before it is written.
  (void)hw::parse_cluster(y, a.out.empty() ? "<calibrate>" : a.out);
  if (a.out.empty()) {
    std::cout << y;
  } else {
    std::ofstream f(a.out);
    if (!f) throw UsageError("--out: cannot write " + a.out);
    f << y;
    std::cerr << "wrote " << a.out << "\n";
  }
  return 0;
}
}  // namespace

void add_calibrate(CLI::App& app, int& rc) {
  auto a = std::make_shared<CalArgs>();
  CLI::App* sub = app.add_subcommand("calibrate", "measure this machine (GEMM, bandwidth, MPI) and write a cluster YAML");
  sub->add_option("--out", a->out, "output YAML (default: stdout)");
  sub->add_option("--backend", a->backend, "compute backend to measure: cpu, or cuda when built");
  sub->add_option("--budget", a->budget_s, "seconds of repetitions per measurement")->check(CLI::PositiveNumber);
  sub->callback([a, &rc] {
    std::unique_ptr<executor::Comm> world = executor::make_world_comm();
    const bool root = world->rank() == 0;
    try {
      rc = calibrate(*a, *world);
    } catch (const std::exception& e) {
      if (root) std::cerr << "error: " << e.what() << "\n";
      rc = 2;
    }
  });
}

}  // namespace scaleplan::cli
#endif  // SCALEPLAN_HAVE_EXECUTOR
