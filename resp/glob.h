// Redis-style glob patterns, for SCAN MATCH and KEYS: '*' any run of bytes,
// '?' one byte, '[abc]' '[^abc]' '[a-z]' a set, '\x' the byte x itself.
#pragma once

#include <string>
#include <string_view>

namespace ringkv {

// True iff text matches pattern. Iterative with one backtracking point per
// star, so a hostile pattern costs O(pattern x text), never exponential.
bool GlobMatch(std::string_view pattern, std::string_view text);

// The bytes every match must start with: the pattern up to its first
// special character ("user:*" -> "user:"), for the key listing's prefix.
std::string GlobLiteralPrefix(std::string_view pattern);

}  // namespace ringkv
