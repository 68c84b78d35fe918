#include "gui/serve_explorer.hpp"

#include <fmt/format.h>

#include "common/errors.hpp"
#include "hardware/cluster.hpp"
#include "model/model.hpp"

namespace scaleplan::gui {

ServeExploration explore_serve(const ServeInputs& in) {
  const model::ModelSpec m = model::load_model(in.model);
  const hw::Cluster c = hw::load_cluster(in.cluster);
  if (in.gpus < 1) throw UsageError("GPUs must be at least 1");
  if (in.prompt_tokens < 1 || in.output_tokens < 1) throw UsageError("prompt and output tokens must be at least 1");
  if (in.prompt_tokens > m.seq)
    throw UsageError(fmt::format("prompt tokens {} exceed {}'s context ({} tokens)", in.prompt_tokens, m.name, m.seq));
  if (in.prompt_tokens + in.output_tokens > m.seq)
    throw UsageError(fmt::format("prompt + output tokens {} exceed {}'s context ({} tokens)", in.prompt_tokens + in.output_tokens,
                                 m.name, m.seq));
  const serve::PrecisionSpec& prec = serve::precision_spec(in.precision.empty() ? serve::default_precision(m) : in.precision,
                                                           "precision");
  if (c.device.peak(prec.compute) <= 0)
    throw UsageError(fmt::format("precision {}: {} has no {} tensor cores", prec.name, c.device.name, hw::dtype_name(prec.compute)));
  const serve::ServeModel sm(m, c, prec, {in.prompt_tokens, in.output_tokens});
  serve::SearchSpec spec;
  spec.gpus = in.gpus;
  ServeExploration out;
  out.model = m.name;
  out.cluster = c.name;
  out.precision = prec.name;
  std::vector<serve::Result> all;
  out.search = serve::search(sm, spec, &all);
  for (const serve::Result& r : all)
    if (r.verdict != serve::Verdict::out_of_memory) out.points.push_back(r);
  return out;
}

}  // namespace scaleplan::gui
