#pragma once
// Documented ranges of the numeric inputs (docs/reliability.md, issue 17): every integer read from a
// plan, a YAML file or a flag is checked against one of these at the edge, and every product of
// them that the tools form (dp*tp*pp*cp, gbs*seq, bytes of a tensor) is checked for overflow, so a
// value that does not fit is refused (exit 2, naming the key and the range) instead of wrapping.
// The bounds are far above any published run (largest: ~10^5 GPUs, 16 M tokens per step, 128
// layers, hidden 25600) and low enough that every loop over them answers in seconds.
#include <string>

namespace scaleplan::limits {

// GPUs in one job (--gpus, dp*tp*pp*cp): 2^24 = 16.8 M.
inline constexpr long long kMaxGpus = 1LL << 24;
// One parallel degree (dp, tp, pp, cp, ep, tp_depth): at most the GPUs.
inline constexpr long long kMaxDegree = kMaxGpus;
// Global batch in sequences, and tokens per step (gbs*seq): 2^40 = 1.1e12.
inline constexpr long long kMaxGbs = 1LL << 40;
inline constexpr long long kMaxTokensPerStep = 1LL << 40;
// Model shape (model YAML, runs files, --seq).
inline constexpr long long kMaxLayers = 1LL << 16;   // 65536 (largest published: 128-ish)
inline constexpr long long kMaxHidden = 1LL << 20;   // 1 M (largest published: 25600)
inline constexpr long long kMaxHeads = 1LL << 16;    // 65536
inline constexpr long long kMaxFfn = 1LL << 24;      // 16.8 M
inline constexpr long long kMaxVocab = 1LL << 28;    // 268 M (largest published: 256 k)
inline constexpr long long kMaxSeq = 1LL << 27;      // 134 M tokens (largest published: 10 M)
inline constexpr long long kMaxExperts = 1LL << 16;  // 65536
// A config or runs file read into memory (also bounds /dev/zero, FIFOs): 64 MiB.
inline constexpr long long kMaxFileBytes = 64LL << 20;

// "[lo, hi]" for messages.
inline std::string range_str(long long lo, long long hi) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}
// a*b when it is within [0, hi] (a, b >= 0), else false (no overflow on the way).
inline bool mul_within(long long a, long long b, long long hi, long long* out) {
  long long r = 0;
  if (__builtin_mul_overflow(a, b, &r) || r > hi) return false;
  *out = r;
  return true;
}

}  // namespace scaleplan::limits
