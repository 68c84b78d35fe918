#include "common/text_match.hpp"

#include <cctype>

namespace scaleplan {

std::string lower(const std::string& s) {
  std::string out = s;
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

bool has_word(const std::string& text, const std::string& word) {
  if (word.empty()) return false;
  const auto alnum = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) != 0; };
  for (std::size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const std::size_t end = at + word.size();
    if ((at == 0 || !alnum(text[at - 1])) && (end >= text.size() || !alnum(text[end]))) return true;
  }
  return false;
}

}  // namespace scaleplan
