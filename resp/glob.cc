#include "resp/glob.h"

#include <utility>

namespace ringkv {

namespace {

// Matches one element of pattern at p (not '*') against c; sets *next to
// the index after the element. False when the element does not match c or
// is malformed (an unterminated set matches nothing).
bool MatchOne(std::string_view pattern, size_t p, unsigned char c, size_t* next) {
  char pc = pattern[p];
  if (pc == '?') {
    *next = p + 1;
    return true;
  }
  if (pc == '\\' && p + 1 < pattern.size()) {
    *next = p + 2;
    return static_cast<unsigned char>(pattern[p + 1]) == c;
  }
  if (pc != '[') {
    *next = p + 1;
    return static_cast<unsigned char>(pc) == c;
  }
  size_t i = p + 1;
  bool negate = i < pattern.size() && pattern[i] == '^';
  if (negate) ++i;
  bool matched = false;
  bool first = true;
  while (i < pattern.size() && (pattern[i] != ']' || first)) {
    first = false;
    unsigned char lo = static_cast<unsigned char>(pattern[i]);
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      lo = static_cast<unsigned char>(pattern[++i]);
    }
    if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      unsigned char hi = static_cast<unsigned char>(pattern[i + 2]);
      if (lo > hi) std::swap(lo, hi);
      if (c >= lo && c <= hi) matched = true;
      i += 3;
    } else {
      if (c == lo) matched = true;
      ++i;
    }
  }
  if (i >= pattern.size()) return false;  // no closing ']'
  *next = i + 1;
  return matched != negate;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    size_t next = 0;
    if (p < pattern.size() && pattern[p] == '*') {
      star_p = ++p;
      star_t = t;
      continue;
    }
    if (p < pattern.size() && MatchOne(pattern, p, static_cast<unsigned char>(text[t]), &next)) {
      p = next;
      ++t;
      continue;
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string GlobLiteralPrefix(std::string_view pattern) {
  std::string out;
  for (char c : pattern) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') break;
    out.push_back(c);
  }
  return out;
}

}  // namespace ringkv
