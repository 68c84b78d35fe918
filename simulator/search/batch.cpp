#include "simulator/search/batch.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cmath>
#include <set>

#include "common/errors.hpp"
#include "common/limits.hpp"
#include "simulator/search/space.hpp"

namespace scaleplan::search {

const char* name(Optimizer o) { return o == Optimizer::lamb ? "lamb" : "adam"; }

Optimizer parse_optimizer(const std::string& s) {
  if (s == "adam" || s == "adamw") return Optimizer::adam;
  if (s == "lamb" || s == "lars") return Optimizer::lamb;
  throw UsageError("--optimizer must be adam|lamb|lars (got '" + s + "')");
}

GbsArg parse_gbs(const std::string& s) {
  GbsArg g;
  if (s == "auto") {
    g.automatic = true;
    return g;
  }
  long long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v <= 0 || v > limits::kMaxGbs)
    throw UsageError("--gbs must be an integer in " + limits::range_str(1, limits::kMaxGbs) + " (sequences) or 'auto' (got '" + s + "')");
  g.gbs = v;
  return g;
}

double parse_quantity(const std::string& s, const std::string& what) {
  const char* b = s.c_str();
  char* end = nullptr;
  double v = std::strtod(b, &end);
  if (end == b) throw UsageError(what + " must be a number such as 3e11 or 300B (got '" + s + "')");
  std::string suffix(end);
  if (suffix == "K" || suffix == "k") v *= 1e3;
  else if (suffix == "M") v *= 1e6;
  else if (suffix == "B" || suffix == "G") v *= 1e9;
  else if (suffix == "T") v *= 1e12;
  else if (!suffix.empty()) throw UsageError(what + ": unknown suffix '" + suffix + "' (use K, M, B or T) in '" + s + "'");
  if (!(v > 0) || !std::isfinite(v)) throw UsageError(what + " must be positive (got '" + s + "')");
  return v;
}

std::vector<long long> parse_counts(const std::string& s, const std::string& what) {
  std::vector<long long> out;
  size_t i = 0;
  while (i <= s.size()) {
    const size_t j = std::min(s.find(',', i), s.size());
    std::string item = s.substr(i, j - i);
    const auto a = item.find_first_not_of(" \t"), z = item.find_last_not_of(" \t");
    item = a == std::string::npos ? "" : item.substr(a, z - a + 1);
    long long v = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || v <= 0 || v > limits::kMaxGpus)
      throw UsageError(what + " must be integers in " + limits::range_str(1, limits::kMaxGpus) + " separated by commas (bad item '" + item + "')");
    out.push_back(v);
    i = j + 1;
  }
  return out;
}

bool b_noise_is_default(const model::ModelSpec& m, double override_tokens) {
  return override_tokens <= 0 && m.b_noise_tokens <= 0;
}

BatchModel batch_model(const model::ModelSpec& m, Optimizer o, double override_tokens) {
  BatchModel b;
  b.b_noise_tokens = override_tokens > 0 ? override_tokens : m.b_noise_tokens > 0 ? m.b_noise_tokens : kDefaultBNoiseTokens;
  if (o == Optimizer::lamb) b.b_noise_tokens *= kLambBNoiseFactor;
  return b;
}

std::vector<long long> auto_gbs_candidates(const model::ModelSpec& m, const hw::Cluster& c, long long gpus, const BatchModel& bm) {
  if (gpus <= 0) throw UsageError("--gpus must be a positive GPU count");
  const double bn_seq = bm.b_noise_tokens / static_cast<double>(m.seq);
  const long long lo = std::max(1LL, static_cast<long long>(std::floor(bn_seq / 32)));
  const long long hi = std::max(lo, static_cast<long long>(std::ceil(8 * bn_seq)));
  std::set<long long> out;
  auto add_series = [&](long long base) {
    // base * 2^k in [lo, hi]; always keep the first multiple >= lo so every dp has a batch.
    long long b = base;
    while (b < lo) b *= 2;
    out.insert(b);
    for (b *= 2; b <= hi; b *= 2) out.insert(b);
  };
  add_series(1);
  add_series(3);
  for (long long mp : model_parallel_sizes(m, c)) {
    if (mp > gpus) break;
    if (gpus % mp != 0) continue;
    const long long dp = gpus / mp;
    add_series(dp);
  }
  return {out.begin(), out.end()};
}

}  // namespace scaleplan::search
