#include "cli/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "strategies/pipeline.hpp"
#include "strategies/plan_label.hpp"

namespace scaleplan::cli {

// The plan's one-line label (strategies/plan_label.hpp: the same in search, scale and the GUI).
std::string short_plan(const strategies::Plan& p, long long layers) { return strategies::short_label(p); }


using strategies::name;

nlohmann::json report_json_core(const strategies::StepReport& r);

std::string fmt_bytes(double b) {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  if (b >= gib) return fmt::format("{:.2f} GiB", b / gib);
  return fmt::format("{:.1f} MiB", b / (1024.0 * 1024.0));
}

std::string fmt_time(double s) {
  if (s >= 1) return fmt::format("{:.3f} s", s);
  if (s >= 1e-3) return fmt::format("{:.2f} ms", s * 1e3);
  return fmt::format("{:.1f} us", s * 1e6);
}

nlohmann::json plan_json(const strategies::Plan& p) {
  nlohmann::json j = {{"dp", p.dp},
          {"tp", p.tp},
          {"pp", p.pp},
          {"vpp", p.vpp},
          {"mbs", p.mbs},
          {"gbs", p.gbs},
          {"cp", p.cp},
          {"ep", p.ep},
          {"tp_mode", name(p.tp_mode)},
          {"tp_depth", p.tp_depth},
          {"sp", p.sp ? "on" : "off"},
          {"cp_algo", name(p.cp_algo)},
          {"schedule", name(p.schedule)},
          {"recompute", name(p.recompute)},
          {"zero", p.zero},
          {"offload", name(p.offload)},
          {"precision", name(p.precision)},
          {"layers", p.layers_string()}};  // issue 16: the split, as the plan key layers=F/M/L
  if (p.zero_shard > 0) j["zero_shard"] = p.zero_shard;  // hybrid sharding (docs/zero3.md); only when set
  return j;
}

// Offload detail (issue 6): present only for offload plans; not a required key of the contract.
nlohmann::json offload_json(const strategies::StepReport& r) {
  const auto& o = r.offload;
  nlohmann::json j = {{"pcie_bytes", o.pcie_bytes},       {"nvme_bytes", o.nvme_bytes},     {"cpu_adam_s", o.cpu_adam_s},
                      {"host_capacity", o.host_capacity}, {"nvme_capacity", o.nvme_capacity}, {"ranks_per_node", o.ranks_per_node}};
  if (r.plan.offload == strategies::Offload::gemini)
    j["chunks"] = {{"chunk_elems", o.chunk_elems},       {"waste", o.chunk_waste},
                   {"chunks", o.chunks},                 {"fp16_on_gpu", o.fp16_chunks_on_gpu},
                   {"optimizer_on_gpu", o.os_chunks_on_gpu}, {"host_warmup", o.host_warmup},
                   {"static_zero3_gpu", o.static_zero3_gpu}, {"static_offload_host", o.static_offload_host}};
  return j;
}

nlohmann::json report_json(const strategies::StepReport& r) {
  nlohmann::json j = report_json_core(r);
  if (r.plan.offload != strategies::Offload::none) j["offload"] = offload_json(r);
  return j;
}

nlohmann::json report_json_core(const strategies::StepReport& r) {
  const auto& m = r.memory;
  const auto& t = r.time;
  const auto& c = r.comm;
  const auto& q = r.throughput;
  return {{"feasible", r.feasible},
          {"reason", r.reason},
          {"plan", plan_json(r.plan)},
          {"memory",
           {{"params", m.params},
            {"grads", m.grads},
            {"optimizer", m.optimizer},
            {"activations", m.activations},
            {"buffers", m.buffers},
            {"total", m.total()},
            {"capacity", m.capacity},
            {"host", m.host},
            {"nvme", m.nvme}}},
          {"time",
           {{"step_s", t.step_s},
            {"compute_s", t.compute_s},
            {"comm_exposed_s", t.comm_exposed_s},
            {"bubble_s", t.bubble_s},
            {"offload_exposed_s", t.offload_exposed_s},
            {"optimizer_s", t.optimizer_s},
            {"host_s", t.host_s}}},
          {"comm_bytes_per_gpu", {{"tp", c.tp}, {"pp", c.pp}, {"dp", c.dp}, {"cp", c.cp}, {"ep", c.ep}}},
          {"throughput",
           {{"tokens_per_s", q.tokens_per_s},
            {"model_tflops_per_gpu", q.model_flops_per_gpu / 1e12},
            {"hw_tflops_per_gpu", q.hw_flops_per_gpu / 1e12},
            {"mfu", q.mfu},
            {"hfu", q.hfu}}}};
}

std::string report_text(const strategies::StepReport& r, const std::string& title) {
  std::string s;
  const auto& m = r.memory;
  const double cap = m.capacity > 0 ? m.capacity : 1;
  auto bar = [&](double v) {
    const double n = std::clamp(40.0 * v / cap + 0.5, 0.0, 40.0);  // NaN-free: cap > 0, v finite or huge
    return std::string(std::isfinite(n) ? static_cast<std::size_t>(n) : 0, '#');
  };
  s += title + "\n";
  s += "plan: " + r.plan.to_string() + "\n";
  s += r.feasible ? "verdict: fits\n" : "verdict: DOES NOT FIT - " + r.reason + "\n";
  s += fmt::format("\nmemory per GPU (most-loaded: pipeline stage {})\n", r.most_loaded_stage);
  const std::pair<const char*, double> cats[] = {{"params", m.params},
                                                 {"grads", m.grads},
                                                 {"optimizer", m.optimizer},
                                                 {"activations", m.activations},
                                                 {"buffers", m.buffers}};
  for (const auto& [n, v] : cats) s += fmt::format("  {:<12} {:>12}  {}\n", n, fmt_bytes(v), bar(v));
  s += fmt::format("  {:<12} {:>12}  of {} ({:.0f}%)\n", "total", fmt_bytes(m.total()), fmt_bytes(m.capacity), 100 * m.total() / cap);
  if (r.plan.offload != strategies::Offload::none) {  // issue 6: where the offloaded states live
    const auto& o = r.offload;
    s += fmt::format("  {:<12} {:>12}  of {} per GPU ({} GPUs share a node)\n", "host", fmt_bytes(m.host), fmt_bytes(o.host_capacity),
                     o.ranks_per_node);
    if (m.nvme > 0) s += fmt::format("  {:<12} {:>12}  of {} per GPU\n", "nvme", fmt_bytes(m.nvme), fmt_bytes(o.nvme_capacity));
    s += fmt::format("  offload traffic per step: PCIe {}, NVMe {}, CPU Adam {}\n", fmt_bytes(o.pcie_bytes), fmt_bytes(o.nvme_bytes),
                     fmt_time(o.cpu_adam_s));
    if (r.plan.offload == strategies::Offload::gemini)
      s += fmt::format("  chunks: {:.0f} of {:.1f}M elements ({:.2f}% wasted); on the GPU: {:.0f} 16-bit, {:.0f} optimizer; warm-up host {}\n",
                       o.chunks, o.chunk_elems / 1e6, 100 * o.chunk_waste, o.fp16_chunks_on_gpu, o.os_chunks_on_gpu,
                       fmt_bytes(o.host_warmup));
    if (r.plan.offload == strategies::Offload::gemini)
      s += fmt::format("  static placement of the same states: ZeRO-3 model states {} on the GPU; ZeRO-3-Offload {} on the host\n",
                       fmt_bytes(o.static_zero3_gpu), fmt_bytes(o.static_offload_host));
  }
  const auto& t = r.time;
  const double st = t.step_s > 0 ? t.step_s : 1;
  s += "\nstep time\n";
  s += fmt::format("  {:<22} {:>12}  {:5.1f}%\n", "compute (incl. optim.)", fmt_time(t.compute_s), 100 * t.compute_s / st);
  s += fmt::format("  {:<22} {:>12}  {:5.1f}%\n", "  optimizer step", fmt_time(t.optimizer_s), 100 * t.optimizer_s / st);
  s += fmt::format("  {:<22} {:>12}  {:5.1f}%\n", "exposed communication", fmt_time(t.comm_exposed_s), 100 * t.comm_exposed_s / st);
  s += fmt::format("  {:<22} {:>12}\n", "  tensor/context par.", fmt_time(r.tp_comm_exposed_s));
  s += fmt::format("  {:<22} {:>12}\n", "  pipeline p2p", fmt_time(r.pp_comm_exposed_s));
  s += fmt::format("  {:<22} {:>12}\n", "  data parallel", fmt_time(r.dp_comm_exposed_s));
  if (r.plan.ep > 1) s += fmt::format("  {:<22} {:>12}\n", "  expert all-to-all", fmt_time(r.ep_comm_exposed_s));
  s += fmt::format("  {:<22} {:>12}  {:5.1f}%\n", "pipeline bubble", fmt_time(t.bubble_s), 100 * t.bubble_s / st);
  if (r.plan.offload != strategies::Offload::none)
    s += fmt::format("  {:<22} {:>12}  {:5.1f}%\n", "exposed offload", fmt_time(t.offload_exposed_s), 100 * t.offload_exposed_s / st);
  if (t.host_s > 0) s += fmt::format("  {:<22} {:>12}  {:5.1f}%\n", "host step overhead", fmt_time(t.host_s), 100 * t.host_s / st);
  s += fmt::format("  {:<22} {:>12}\n", "step", fmt_time(t.step_s));
  const auto& q = r.throughput;
  s += "\nthroughput\n";
  s += fmt::format("  tokens/s               {:.4g}\n", q.tokens_per_s);
  s += fmt::format("  model TFLOP/s per GPU  {:.1f}   (MFU {:.1f}%)\n", q.model_flops_per_gpu / 1e12, 100 * q.mfu);
  s += fmt::format("  hw TFLOP/s per GPU     {:.1f}   (HFU {:.1f}%)\n", q.hw_flops_per_gpu / 1e12, 100 * q.hfu);
  const auto& c = r.comm;
  s += fmt::format("\ncommunication payload per GPU per step: tp {}  pp {}  dp {}  cp {}", fmt_bytes(c.tp), fmt_bytes(c.pp),
                   fmt_bytes(c.dp), fmt_bytes(c.cp));
  if (r.plan.ep > 1) s += fmt::format("  ep {}", fmt_bytes(c.ep));
  s += "\n";
  return s;
}

}  // namespace scaleplan::cli

namespace scaleplan::cli {

namespace {

void flatten(const nlohmann::json& v, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  if (v.is_object()) {
    for (const auto& [k, x] : v.items()) flatten(x, prefix.empty() ? k : prefix + "." + k, out);
    return;
  }
  std::string s;
  if (v.is_string()) s = v.get<std::string>();
  else if (v.is_array()) {
    for (const auto& x : v) s += (s.empty() ? "" : ";") + (x.is_string() ? x.get<std::string>() : x.dump());
  } else if (!v.is_null()) s = v.dump();
  out.emplace_back(prefix, s);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::string csv_table(const nlohmann::json& rows) {
  std::vector<std::vector<std::pair<std::string, std::string>>> flat;
  const auto add = [&flat](const nlohmann::json& r) {
    flat.emplace_back();
    flatten(r, "", flat.back());
  };
  if (rows.is_array()) {
    for (const auto& r : rows) add(r);
  } else if (!rows.is_null()) {
    add(rows);
  }
  std::vector<std::string> cols;
  for (const auto& r : flat)
    for (const auto& [k, v] : r)
      if (std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
  // The row's identity first (JSON objects iterate in key order): id, then the GPU count.
  std::stable_partition(cols.begin(), cols.end(), [](const std::string& c) { return c == "id" || c == "gpus" || c == "gpus_used"; });
  std::string out;
  for (size_t i = 0; i < cols.size(); ++i) out += (i ? "," : "") + csv_field(cols[i]);
  out += "\n";
  for (const auto& r : flat) {
    for (size_t i = 0; i < cols.size(); ++i) {
      if (i) out += ",";
      for (const auto& [k, v] : r)
        if (k == cols[i]) {
          out += csv_field(v);
          break;
        }
    }
    out += "\n";
  }
  return out;
}

}  // namespace scaleplan::cli
