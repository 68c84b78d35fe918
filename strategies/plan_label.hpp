#pragma once
// The one-line label of a plan that search, scale and the GUI print (issue 16: one plan language):
// "tp=8 pp=7 layers=13/14/13 vpp=7 dp=8 mbs=1 sp=on zero=1 rc=full interleaved". The fields that
// vary in a search, in plan-key syntax; an uneven pipeline split as its `layers=` key.
#include <string>

#include "strategies/plan.hpp"

namespace scaleplan::strategies {

std::string short_label(const Plan& p);

}  // namespace scaleplan::strategies
