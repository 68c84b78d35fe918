#include "simulator/analytic/mcore_ddp.hpp"

#include <algorithm>
#include <cmath>

namespace scaleplan::analytic {

double dp_window_scale(int v, int pp, long long m) {
  if (v <= 1) return 1.0;
  const double chunk_bwds = std::min(static_cast<double>(m) * v, static_cast<double>(v - 1) * pp + 1.0);
  return chunk_bwds / v;
}

double dp_bucket_params(const hw::Software& sw, int dp) {
  return std::max(sw.dp_bucket_min_params, sw.dp_bucket_params_per_dp_rank * dp);
}

double dp_edge_bucket_params(double bucket_params, double word_params, double stage_params) {
  if (bucket_params <= 0) return 0;
  return std::min(stage_params, std::max(bucket_params, word_params));
}

double ddp_grad_pass_s(const hw::Device& d, double passes, double bytes_per_elem, double params, double bucket_params) {
  if (passes <= 0 || params <= 0) return 0;
  const double buckets = bucket_params > 0 ? std::ceil(params / bucket_params) : 1;
  return d.stream_time(passes * bytes_per_elem * params) + 2 * buckets * d.eff.kernel_overhead_s;
}

}  // namespace scaleplan::analytic
