// Size limits checked at the edge (client input, incoming frames).
#pragma once

#include <cstddef>
#include <cstdint>

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
// Buckets with properties in a cluster (gossiped in full every round).
inline constexpr size_t kMaxBuckets = 1024;
// Key listing: keys per page (default, most), bytes of keys one replica
// answers for one page (a page of long keys is shorter), partitions named
// in one request.
inline constexpr uint32_t kDefaultListPage = 100;
inline constexpr uint32_t kMaxListPage = 1000;
inline constexpr size_t kMaxListReplyBytes = 4 * 1024 * 1024;
inline constexpr size_t kMaxListPartitions = 1 << 20;

}  // namespace ringkv
