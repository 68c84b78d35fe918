#include "strategies/plan_label.hpp"

namespace scaleplan::strategies {

std::string short_label(const Plan& p) {
  std::string s = "tp=" + std::to_string(p.tp);
  if (p.tp_mode == TpMode::d2_5) s += "(2.5d,d=" + std::to_string(p.tp_depth) + ")";
  else if (p.tp_mode != TpMode::d1) s += std::string("(") + name(p.tp_mode) + ")";
  s += " pp=" + std::to_string(p.pp);
  if (p.uneven_split()) s += " layers=" + p.layers_string();
  if (p.schedule == Schedule::interleaved) s += " vpp=" + std::to_string(p.vpp);
  s += " dp=" + std::to_string(p.dp) + " mbs=" + std::to_string(p.mbs);
  if (p.cp > 1) s += " cp=" + std::to_string(p.cp) + "(" + name(p.cp_algo) + ")";
  if (p.ep > 1) s += " ep=" + std::to_string(p.ep);
  s += std::string(" sp=") + (p.sp ? "on" : "off") + " zero=" + std::to_string(p.zero) + " rc=" + name(p.recompute) + " " + name(p.schedule);
  if (p.offload != Offload::none) s += std::string(" offload=") + name(p.offload);  // issue 6
  if (p.precision != Precision::bf16) s += std::string(" ") + name(p.precision);
  return s;
}

}  // namespace scaleplan::strategies
