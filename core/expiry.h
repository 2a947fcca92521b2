// Expiry (TTL) of siblings, seen at read time.
//
// A sibling whose expires_ms (Sibling, core/dvv.h) is set and not after the
// reader's wall clock is treated as a tombstone by whoever reads it: reads,
// key listings, the Redis protocol. The stored bytes never change because
// of expiry, so every replica's copy (and Merkle tree) stays alike and
// anti-entropy has nothing to bring back; the tombstone reaper
// (node/tombstone_reaper.h) erases an object once every sibling is a
// tombstone or expired, past the grace period. Each node compares with its
// own wall clock: a node whose clock runs ahead hides a value early.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dvv.h"

namespace ringkv {

// The longest ttl a write or a bucket may ask for: ten years.
inline constexpr uint64_t kMaxTtlMs = 10ull * 365 * 24 * 3600 * 1000;

// True iff s carries an expiry that has passed at now_ms.
inline bool IsExpired(const Sibling& s, uint64_t now_ms) {
  return s.expires_ms != 0 && s.expires_ms <= now_ms;
}

// A value (not a tombstone) that has not expired at now_ms.
inline bool IsLive(const Sibling& s, uint64_t now_ms) {
  return !s.tombstone && !IsExpired(s, now_ms);
}

// Siblings of object that are live at now_ms.
size_t LiveCount(const DvvSet& object, uint64_t now_ms);
std::vector<const Sibling*> LiveSiblingsAt(const DvvSet& object, uint64_t now_ms);

// The object as a reader at now_ms sees it: the same clock (so a write with
// its context replaces the expired siblings too), without expired siblings.
// An object whose siblings all expired reads as deleted (IsDeleted()).
DvvSet VisibleAt(const DvvSet& object, uint64_t now_ms);

// Every sibling is a tombstone or carries an expiry (and the clock is not
// empty): the shape of object the tombstone reaper may erase once each
// sibling is past its end (tombstone timestamp or expiry) by the grace.
bool OnlyEndingSiblings(const DvvSet& object);

// The newest end among the siblings (a tombstone's timestamp_ms, a value's
// expires_ms), or nullopt-like 0 if a sibling is a value that never expires
// or has not expired at now_ms. An object is dead at now_ms iff this is
// non-zero.
uint64_t DeadSince(const DvvSet& object, uint64_t now_ms);

}  // namespace ringkv
