#include "core/hash.h"

#include <xxhash.h>

namespace ringkv {

uint64_t KeyHash(std::string_view key) { return XXH64(key.data(), key.size(), 0); }

}  // namespace ringkv
