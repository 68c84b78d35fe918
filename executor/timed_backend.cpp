#include "executor/timed_backend.hpp"

#include <chrono>

namespace scaleplan::executor {

const char* name(TimedOp op) {
  static const char* const n[kTimedOps] = {"alloc",         "gemm",          "gemm_batched", "copy",     "simple",
                                           "layernorm_fwd", "layernorm_bwd", "gelu_fwd",     "gelu_bwd", "softmax_fwd",
                                           "softmax_bwd",   "heads",         "embedding",    "cross_entropy",
                                           "optimizer",     "other"};
  return n[static_cast<int>(op)];
}

namespace {

class TimedBackend final : public Backend {
  // (first: the member functions below deduce its return type)
  // Runs fn, adds its wall time (after synchronize()) to op; `count` false for the second half of a
  // pair (deallocate: the allocation's time, not another call).
  template <class F>
  auto timed(TimedOp op, F&& fn, bool count = true) {
    const auto t0 = std::chrono::steady_clock::now();
    auto done = [&] {
      b_->synchronize();
      const int i = static_cast<int>(op);
      p_.seconds[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (count) ++p_.calls[i];
    };
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      done();
    } else {
      auto r = fn();
      done();
      return r;
    }
  }
 public:
  TimedBackend(std::unique_ptr<Backend> inner, OpProfile& prof) : b_(std::move(inner)), p_(prof) {}
  std::string name() const override { return b_->name(); }
  bool host_accessible() const override { return b_->host_accessible(); }
  std::unique_ptr<Comm> make_device_comm(Comm& w) override { return b_->make_device_comm(w); }
  void* allocate(std::size_t bytes, MemCategory c) override {
    return timed(TimedOp::alloc, [&] { return b_->allocate(bytes, c); });
  }
  void deallocate(void* q) override { timed(TimedOp::alloc, [&] { b_->deallocate(q); }, false); }
  MemStats memory_stats() const override { return b_->memory_stats(); }
  void reset_peaks() override { b_->reset_peaks(); }
  void copy_to_device(void* d, const void* s, std::size_t n) override { timed(TimedOp::copy, [&] { b_->copy_to_device(d, s, n); }); }
  void copy_to_host(void* d, const void* s, std::size_t n) override { timed(TimedOp::copy, [&] { b_->copy_to_host(d, s, n); }); }
  void copy_device(void* d, const void* s, std::size_t n) override { timed(TimedOp::copy, [&] { b_->copy_device(d, s, n); }); }
  void synchronize() override { b_->synchronize(); }
  void gemm(Trans ta, Trans tb, int m, int n, int k, float al, const float* A, int lda, const float* B, int ldb, float be,
            float* C, int ldc) override {
    timed(TimedOp::gemm, [&] { b_->gemm(ta, tb, m, n, k, al, A, lda, B, ldb, be, C, ldc); });
  }
  void gemm_strided_batched(Trans ta, Trans tb, int m, int n, int k, float al, const float* A, int lda, long long sa,
                            const float* B, int ldb, long long sb, float be, float* C, int ldc, long long sc,
                            int batch) override {
    timed(TimedOp::gemm_batched,
          [&] { b_->gemm_strided_batched(ta, tb, m, n, k, al, A, lda, sa, B, ldb, sb, be, C, ldc, sc, batch); });
  }
  void fill(float* x, float v, std::size_t n) override { timed(TimedOp::copy, [&] { b_->fill(x, v, n); }); }
  void scale(float* x, float a, std::size_t n) override { timed(TimedOp::simple, [&] { b_->scale(x, a, n); }); }
  void axpy(float a, const float* x, float* y, std::size_t n) override { timed(TimedOp::simple, [&] { b_->axpy(a, x, y, n); }); }
  void copy(const float* x, float* y, std::size_t n) override { timed(TimedOp::copy, [&] { b_->copy(x, y, n); }); }
  double sum_squares(const float* x, std::size_t n) override {
    return timed(TimedOp::optimizer, [&] { return b_->sum_squares(x, n); });
  }
  void add_bias(float* y, const float* bias, int r, int c) override { timed(TimedOp::simple, [&] { b_->add_bias(y, bias, r, c); }); }
  void bias_grad(const float* dy, float* db, int r, int c) override { timed(TimedOp::simple, [&] { b_->bias_grad(dy, db, r, c); }); }
  void layernorm_fwd(const float* x, const float* g, const float* bt, float* y, float* mu, float* rs, int r, int c,
                     float eps) override {
    timed(TimedOp::layernorm_fwd, [&] { b_->layernorm_fwd(x, g, bt, y, mu, rs, r, c, eps); });
  }
  void layernorm_bwd(const float* dy, const float* x, const float* g, const float* mu, const float* rs, float* dx,
                     float* dg, float* db, int r, int c) override {
    timed(TimedOp::layernorm_bwd, [&] { b_->layernorm_bwd(dy, x, g, mu, rs, dx, dg, db, r, c); });
  }
  void gelu_fwd(const float* x, float* y, std::size_t n) override { timed(TimedOp::gelu_fwd, [&] { b_->gelu_fwd(x, y, n); }); }
  void gelu_bwd(const float* x, const float* dy, float* dx, std::size_t n) override {
    timed(TimedOp::gelu_bwd, [&] { b_->gelu_bwd(x, dy, dx, n); });
  }
  void swiglu_fwd(const float* x, float* y, int r, int f) override { timed(TimedOp::gelu_fwd, [&] { b_->swiglu_fwd(x, y, r, f); }); }
  void swiglu_bwd(const float* x, const float* dy, float* dx, int r, int f) override {
    timed(TimedOp::gelu_bwd, [&] { b_->swiglu_bwd(x, dy, dx, r, f); });
  }
  void split_heads(const float* in, int ld, float* out, int b, int s, int h, int d) override {
    timed(TimedOp::heads, [&] { b_->split_heads(in, ld, out, b, s, h, d); });
  }
  void merge_heads(const float* in, float* out, int ld, int b, int s, int h, int d) override {
    timed(TimedOp::heads, [&] { b_->merge_heads(in, out, ld, b, s, h, d); });
  }
  void softmax_causal_fwd(const float* x, float* p, int batch, int s, float sc) override {
    timed(TimedOp::softmax_fwd, [&] { b_->softmax_causal_fwd(x, p, batch, s, sc); });
  }
  void softmax_causal_bwd(const float* p, const float* dp, float* dx, int batch, int s, float sc) override {
    timed(TimedOp::softmax_bwd, [&] { b_->softmax_causal_bwd(p, dp, dx, batch, s, sc); });
  }
  void embedding_fwd(const std::int32_t* ids, const float* t, float* out, int n, int dim, int vb, int ve) override {
    timed(TimedOp::embedding, [&] { b_->embedding_fwd(ids, t, out, n, dim, vb, ve); });
  }
  void embedding_bwd(const std::int32_t* ids, const float* dout, float* dt, int n, int dim, int vb, int ve) override {
    timed(TimedOp::embedding, [&] { b_->embedding_bwd(ids, dout, dt, n, dim, vb, ve); });
  }
  void add_positions(float* out, const float* pos, int b, int s, int dim) override {
    timed(TimedOp::embedding, [&] { b_->add_positions(out, pos, b, s, dim); });
  }
  void positions_bwd(const float* dout, float* dpos, int b, int s, int dim) override {
    timed(TimedOp::embedding, [&] { b_->positions_bwd(dout, dpos, b, s, dim); });
  }
  void ce_row_max(const float* l, float* mx, int r, int c) override { timed(TimedOp::cross_entropy, [&] { b_->ce_row_max(l, mx, r, c); }); }
  void ce_sum_exp(const float* l, const float* mx, float* se, int r, int c) override {
    timed(TimedOp::cross_entropy, [&] { b_->ce_sum_exp(l, mx, se, r, c); });
  }
  void ce_target_logit(const float* l, const std::int32_t* t, float* tg, int r, int c, int vb) override {
    timed(TimedOp::cross_entropy, [&] { b_->ce_target_logit(l, t, tg, r, c, vb); });
  }
  void ce_bwd(const float* l, const float* mx, const float* se, const std::int32_t* t, float* dl, int r, int c, int vb,
              float sc) override {
    timed(TimedOp::cross_entropy, [&] { b_->ce_bwd(l, mx, se, t, dl, r, c, vb, sc); });
  }
  void adamw_update(float* p, const float* g, float* m, float* v, std::size_t n, float lr, float b1, float b2, float eps,
                    float wd, int step) override {
    timed(TimedOp::optimizer, [&] { b_->adamw_update(p, g, m, v, n, lr, b1, b2, eps, wd, step); });
  }
  void lamb_direction(const float* p, const float* g, float* m, float* v, float* u, std::size_t n, float b1, float b2,
                      float eps, float wd, int step) override {
    timed(TimedOp::optimizer, [&] { b_->lamb_direction(p, g, m, v, u, n, b1, b2, eps, wd, step); });
  }
  void lars_update(float* p, const float* g, float* mom, std::size_t n, float lr, float mo, float wd) override {
    timed(TimedOp::optimizer, [&] { b_->lars_update(p, g, mom, n, lr, mo, wd); });
  }

 private:
  std::unique_ptr<Backend> b_;
  OpProfile& p_;
};

}  // namespace

std::unique_ptr<Backend> make_timed_backend(std::unique_ptr<Backend> inner, OpProfile& profile) {
  return std::make_unique<TimedBackend>(std::move(inner), profile);
}

}  // namespace scaleplan::executor
