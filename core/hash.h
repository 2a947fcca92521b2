// Key hashing. KeyHash is XXH64 with seed 0 of the key's bytes: stable across
// machines, versions and restarts, because it is part of the on-disk format
// (objects are stored ordered by it) and of placement on the ring.
#pragma once

#include <cstdint>
#include <string_view>

namespace ringkv {

uint64_t KeyHash(std::string_view key);

}  // namespace ringkv
