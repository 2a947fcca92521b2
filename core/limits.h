// Size limits checked at the edge (client input, incoming frames).
#pragma once

#include <cstddef>

namespace ringkv {

inline constexpr size_t kMaxKeyBytes = 64 * 1024;
inline constexpr size_t kDefaultMaxValueBytes = 16 * 1024 * 1024;
// A frame carries at most one value plus its key, siblings and clocks; more
// than this is refused before it is buffered.
inline constexpr size_t kDefaultMaxFrameBytes = 64 * 1024 * 1024;
// Keys in one ReapCheck or Reap message (the reaper sends far fewer).
inline constexpr size_t kMaxReapEntries = 4096;
// Members, fields or field/value pairs of one data-type operation (SADD,
// HSET, ...).
inline constexpr size_t kMaxDataTypeArgs = 100000;

}  // namespace ringkv
