#pragma once
// Published serving results (`kind: serve` rows of a runs file, e.g. validation/serve_runs.yaml) and their
// prediction by the serving cost model (simulator/serve; issue 20). Kept apart from the training rows.
#include <string>

#include "hardware/cluster.hpp"
#include "model/model.hpp"
#include "simulator/serve/serve.hpp"

namespace scaleplan {
class YamlMap;
}

namespace scaleplan::validation {

struct RunResult;

struct ServeRunSpec {
  std::string id, source;
  model::ModelSpec model;
  hw::Cluster cluster;
  serve::Layout layout;            // tp, pp, ep, dp from the row (batch: the largest that fits, or the row's)
  long long batch = 0;             // 0: not published -> the largest that fits, capped by the stack's max batch
  std::string precision;
  serve::Request request;
  serve::Slo slo;                  // a server scenario's latency limits (0 = offline)
  double output_tokens_per_s = 0;  // published: all GPUs of the row together
  bool per_gpu = false;            // the source states tokens/s per GPU (result.output_tokens_per_s_per_gpu)
  bool cuda_graph_padding = true;  // stack.cuda_graph_padding: decode batches padded to CUDA-graph sizes (serve.hpp)
  // stack.engine_limits: who set the engine's max batch size and max num tokens when the row publishes no batch.
  // "trtllm-bench": its heuristic (validation/trtllm_bench.hpp); "" : the stack defaults (serve::StackOptions).
  // Either way the row runs min(that max batch size, the sequences the KV pool holds).
  std::string engine_limits;
};

// Parses one `kind: serve` row (errors name file:line:column and field).
ServeRunSpec parse_serve_run(const YamlMap& r);
// Predicts the row's output tokens/s (all its GPUs).
RunResult predict_serve_run(const ServeRunSpec& r);

}  // namespace scaleplan::validation
