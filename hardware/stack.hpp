#pragma once
// Software stacks (DESIGN.md sec. 6, docs/stacks.md): configs/stacks/<name>.yaml names a training
// framework and version, what it can run (`capabilities`, hw::Capabilities) and how it runs it
// (`efficiency`, the values of hw::Software). A cluster names its default stack (`stack:`) and may
// override the efficiency values in its `software:` block; `--stack` and a runs-file row's `stack:`
// replace the cluster's stack as a whole.
#include <string>
#include <vector>

#include "hardware/cluster.hpp"

namespace scaleplan {
class YamlMap;
}

namespace scaleplan::hw {

// Parses a stack file; errors name file:line:column and the field (unknown keys included).
Software parse_stack(const std::string& text, const std::string& file);
// A stack preset name (configs/stacks) or a path to a stack YAML file.
Software load_stack(const std::string& spec);
std::vector<std::string> stack_names();

// A framework's family name as a runs file may give it ("nemo", "megatron-lm", "torchtitan", "DeepSpeed";
// matched without case, spaces, hyphens or underscores) resolved to the stack preset that ran at `month` (months
// since year 0, as validation::row_month counts them; 0 = unknown). The presets that list the name in their
// `aliases` each answer it from their `alias_from` month: the one with the latest alias_from <= month,
// else the earliest of them; with the month unknown, the latest. A preset name or a file path is returned
// as is (note untouched); a name no preset answers is returned as is too (load_stack then names the
// presets). `note` receives the assumption ("stack nemo -> nemo-2024 (...)") when a family name was resolved.
std::string resolve_stack_name(const std::string& spec, int month, std::string* note);
// Months since year 0 of "YYYY-MM" (a stack's `alias_from` / `date`); 0 when it is not one.
int alias_month(const std::string& ym);
struct InferredStack {
  std::string stack, note;
  bool by_date = true;  // answers the family by the row's month (false: only later, a fallback)
};
// For a row that names no stack: every stack its source text names (`text`: the row's `source`), each alias found
// as a word (case, spaces and underscores ignored), most specific (longest) alias first, each alias's presets in
// family_candidates order; those answering by `month` before the later ones. The row takes the first that can
// run its published strategy (validation/runs.cpp).
std::vector<InferredStack> stacks_named_in(const std::string& text, int month);
// The presets answering a family name, in the order a row of `month` should try them: those answering it by
// then, latest alias_from first, then the later ones, earliest first (month unknown: latest first). A row
// takes the first whose capabilities run its published strategy (validation/runs.cpp); resolve_stack_name
// takes the first.
std::vector<InferredStack> family_candidates(const std::string& family, int month);
// The presets answering a family name (for error messages), latest alias_from first.
std::vector<std::string> stacks_answering(const std::string& family);

// The efficiency keys shared by a stack's `efficiency:` block and a cluster's `software:` block
// (attention, dp_overlap, step_overhead_ms, rank_order, chunk_*): each key given replaces the value
// in `sw`, the rest keep theirs.
void apply_software_block(const YamlMap& block, Software& sw);

// Replaces the cluster's stack (CLI --stack, a runs-file row's `stack:`): the cluster's own
// `software:` overrides described its default stack and are dropped with it.
void use_stack(Cluster& c, const std::string& spec);

}  // namespace scaleplan::hw
