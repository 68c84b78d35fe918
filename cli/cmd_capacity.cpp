// scaleplan capacity: the largest GPT-shaped model each memory strategy trains (issue 6;
// DESIGN.md sec. 3 "capacity --json"). The family and the search: simulator/search/capacity.hpp.
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"
#include "common/errors.hpp"
#include "simulator/search/capacity.hpp"
#include "strategies/plan.hpp"

namespace scaleplan::cli {

namespace {
struct CapacityArgs {
  std::string cluster, plan, stack;
  long long gpus = 0, seq = 1024;
  bool json = false;
};

nlohmann::json entry_json(const search::CapacityEntry& e) {
  const auto& r = e.report;
  nlohmann::json j = {{"strategy", e.strategy},
                      {"max_params", e.max_params},
                      {"model", {{"layers", e.layers}, {"hidden", e.hidden}, {"heads", e.heads}}},
                      {"tokens_per_s", e.tokens_per_s},
                      {"available", e.available},
                      {"binding", e.binding},
                      {"reason", e.available ? e.binding_reason : e.reason}};
  if (e.max_params > 0) {
    j["plan"] = plan_json(r.plan);
    j["memory"] = {{"gpu", r.memory.total()}, {"capacity", r.memory.capacity}, {"host", r.memory.host}, {"nvme", r.memory.nvme}};
    j["time"] = {{"step_s", r.time.step_s}, {"offload_exposed_s", r.time.offload_exposed_s}};
    j["pcie_bytes_per_step"] = r.offload.pcie_bytes;
  }
  return j;
}
}  // namespace

void add_capacity(CLI::App& app, int& rc) {
  auto a = std::make_shared<CapacityArgs>();
  CLI::App* sub = app.add_subcommand("capacity", "the largest GPT-shaped model each memory strategy trains, and its throughput");
  sub->add_option("--cluster", a->cluster, "cluster preset or YAML file")->required();
  sub->add_option("--gpus", a->gpus, "GPU count")->required()->check(gpus_range());
  add_stack_option(sub, a->stack);
  sub->add_option("--plan", a->plan,
                  "the rest of the plan (tp, pp, mbs, recompute, ...; default mbs=1,recompute=full); zero and offload come "
                  "from each strategy");
  sub->add_option("--seq", a->seq, "sequence length of the model family (default 1024)")->check(seq_range());
  sub->add_flag("--json", a->json, "print one JSON object only");
  sub->callback([a, &rc] {
    rc = guarded([&] {
      hw::Cluster c = hw::load_cluster(a->cluster);
      apply_stack_option(c, a->stack);
      search::CapacitySpec s;
      s.gpus = a->gpus;
      s.seq = a->seq;
      s.base = search::default_capacity_plan();
      if (!a->plan.empty()) {
        s.base = strategies::load_plan(a->plan);
        if (s.base.zero != 0) throw PlanError("zero", "capacity sets zero per strategy: leave it out of --plan");
        if (s.base.offload != strategies::Offload::none)
          throw PlanError("offload", "capacity sets offload per strategy: leave it out of --plan");
      }
      const std::vector<search::CapacityEntry> es = search::run_capacity(c, s);
      bool any = false;
      for (const auto& e : es) any = any || e.max_params > 0;
      if (a->json) {
        nlohmann::json j = {{"cluster", c.name}, {"gpus", a->gpus}, {"seq", a->seq}, {"strategies", nlohmann::json::array()}};
        for (const auto& e : es) j["strategies"].push_back(entry_json(e));
        std::cout << j.dump(2) << "\n";
      } else {
        std::cout << fmt::format("capacity of {} x {} ({}), GPT family hidden=128k heads=k layers~k, seq {}\n", a->gpus,
                                 c.device.name, c.name, a->seq);
        std::cout << fmt::format("{:<14} {:>10} {:>7} {:>7} {:>11} {:>10} {:>10} {:>10}  {}\n", "strategy", "params", "layers",
                                 "hidden", "tokens/s", "GPU", "host/GPU", "offload", "next size refused by");
        for (const auto& e : es) {
          if (!e.available) {
            std::cout << fmt::format("{:<14} {:>10}  {}\n", e.strategy, "-", e.reason);
            continue;
          }
          const auto& r = e.report;
          std::cout << fmt::format("{:<14} {:>9.2f}B {:>7} {:>7} {:>11.4g} {:>10} {:>10} {:>10}  {}\n", e.strategy, e.max_params / 1e9,
                                   e.layers, e.hidden, e.tokens_per_s, fmt_bytes(r.memory.total()), fmt_bytes(r.memory.host),
                                   fmt_time(r.time.offload_exposed_s), e.binding);
        }
      }
      return any ? 0 : 1;
    });
  });
}

}  // namespace scaleplan::cli
