#pragma once
// Matching names in free text (a runs row's source or hardware.gpu): lower case, and whole-word search.
#include <string>

namespace scaleplan {

std::string lower(const std::string& s);
// `word` occurs in `text` with no letter or digit right before or after it ("nemo" in "NVIDIA-NeMo/...",
// not in "nemotron"). Both are compared as given: lower-case them first for a case-free match.
bool has_word(const std::string& text, const std::string& word);

}  // namespace scaleplan
