#pragma once
// A Backend decorator that times every call of the wrapped backend (steady clock, after the
// backend's own synchronize() for asynchronous backends) and counts calls per operation:
// `run --profile` uses it to put measured per-kernel time beside the executor op model's
// prediction (issue 22: find what the cost model misses from measurements, not from a factor).
#include <array>
#include <memory>
#include <string>

#include "executor/backend.hpp"

namespace scaleplan::executor {

// The operations timed, grouped as the op model prices them (simulator/analytic/executor_ops.cpp).
enum class TimedOp : int {
  alloc = 0, gemm, gemm_batched, copy, simple, layernorm_fwd, layernorm_bwd, gelu_fwd, gelu_bwd,
  softmax_fwd, softmax_bwd, heads, embedding, cross_entropy, optimizer, other
};
inline constexpr int kTimedOps = 16;
const char* name(TimedOp op);

struct OpProfile {
  std::array<double, kTimedOps> seconds{};
  std::array<long long, kTimedOps> calls{};
  void reset() { *this = OpProfile{}; }
};

// Wraps `inner`; `profile` (owned by the caller, outliving the backend) receives the timings.
std::unique_ptr<Backend> make_timed_backend(std::unique_ptr<Backend> inner, OpProfile& profile);

}  // namespace scaleplan::executor
