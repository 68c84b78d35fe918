#pragma once
// The global batch as a decision: the large-batch model of McCandlish et al. 2018 ("An Empirical
// Model of Large-Batch Training", arXiv 1812.06162, eq. 2.11 and sec. 2.4):
//     optimizer steps  S = S_min (1 + B_noise / B)
//     tokens processed E = E_min (1 + B / B_noise)      (B, B_noise in tokens; E_min = S_min B_noise)
// A batch far below B_noise wastes steps (and pipelines starve), far above wastes data. With
// --gbs auto the search picks the batch that minimises time to train E_min ("useful") tokens:
//     time = S * step_time(B) = E / tokens_per_s(B).
#include <string>
#include <vector>

#include "hardware/cluster.hpp"
#include "model/model.hpp"

namespace scaleplan::search {

enum class Optimizer { adam, lamb };
const char* name(Optimizer o);
Optimizer parse_optimizer(const std::string& s);  // adam|lamb|lars (lars = lamb); throws UsageError

// B_noise when the model YAML leaves b_noise_tokens at 0: 4M tokens. Kaplan et al. 2020 ("Scaling
// Laws for Neural Language Models", eq. 5.1: B_crit = B* / L^(1/alpha_B), B* ~ 2e8 tokens,
// alpha_B ~ 0.21) gives ~2.5M tokens at a loss of 2.5 nats and ~7M at 2.0; GPT-3 175B trained at
// 3.2M tokens (Brown et al. 2020, Table 2.1). A model whose loss is higher (smaller model, earlier
// in training) has a smaller B_noise: set b_noise_tokens in its YAML.
inline constexpr double kDefaultBNoiseTokens = 4.0e6;
// LAMB/LARS: B_noise x 4. An assumption, not a measurement: You et al. 2019 ("Large Batch
// Optimization for Deep Learning: Training BERT in 76 minutes", arXiv 1904.00962) train BERT with
// LAMB at 32K sequences (64K/32K in two phases) without loss, where their AdamW baseline stops
// scaling around 16K, i.e. 2-4x the usable batch; we take the upper end (usable batch ~ B_noise).
// Nado et al. 2021 ("A Large Batch Optimizer Reality Check") find tuned Adam closes much of that
// gap, so treat --optimizer lamb as an optimistic bound.
inline constexpr double kLambBNoiseFactor = 4.0;
// Default tokens when none are given: 20 tokens per parameter (Hoffmann et al. 2022, "Training
// Compute-Optimal Large Language Models", Table 3: compute-optimal D ~ 20 N).
inline constexpr double kChinchillaTokensPerParam = 20.0;

struct BatchModel {
  double b_noise_tokens = kDefaultBNoiseTokens;  // after the optimizer factor
  // E = E_min (1 + B / B_noise) (McCandlish et al. 2018 eq. 2.11).
  double tokens_needed(double useful_tokens, double batch_tokens) const {
    return useful_tokens * (1.0 + batch_tokens / b_noise_tokens);
  }
  // S = S_min (1 + B_noise / B) with S_min = E_min / B_noise (eq. 2.11), i.e. S = E / B.
  double steps(double useful_tokens, double batch_tokens) const {
    return useful_tokens / b_noise_tokens * (1.0 + b_noise_tokens / batch_tokens);
  }
  // E_min / E: the share of processed tokens that counts at batch B (1 / (1 + B / B_noise)).
  double useful_fraction(double batch_tokens) const { return 1.0 / (1.0 + batch_tokens / b_noise_tokens); }
};
// The model's B_noise (or kDefaultBNoiseTokens when 0, or `override_tokens` when > 0) times the
// optimizer factor.
BatchModel batch_model(const model::ModelSpec& m, Optimizer o, double override_tokens = 0);
bool b_noise_is_default(const model::ModelSpec& m, double override_tokens = 0);

// --gbs: a positive integer (sequences) or "auto". Throws UsageError.
struct GbsArg {
  bool automatic = false;
  long long gbs = 0;
};
GbsArg parse_gbs(const std::string& s);
// A count such as --tokens: "3e11", "300B", "1.4T", "4M" (K, M, B or G, T suffixes). Throws UsageError.
double parse_quantity(const std::string& s, const std::string& what);
// "200,400,1000": positive integers. Throws UsageError.
std::vector<long long> parse_counts(const std::string& s, const std::string& what);

// Global batches (sequences) --gbs auto considers on `gpus` GPUs: 2^k, 3*2^k and dp*2^k for every
// data-parallel degree dp = gpus/(tp*cp*pp) the model allows, between B_noise/32 and 8 B_noise
// (beyond 8 B_noise a run needs 9x the data, which no throughput gain repays; below B_noise/32,
// 33x the minimum steps), plus for each dp its smallest multiple in range, ascending.
std::vector<long long> auto_gbs_candidates(const model::ModelSpec& m, const hw::Cluster& c, long long gpus, const BatchModel& bm);

}  // namespace scaleplan::search
