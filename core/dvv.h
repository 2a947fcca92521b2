// Dotted version vector sets: the versioned object ringkv stores per key.
//
// A DvvSet is a causal container (Preguiça, Almeida et al., "Dotted Version
// Vectors", 2012/2014; Riak 2.0's dvvset): a version vector `clock` that
// summarises every write the object has seen, and the siblings — values that
// are concurrent with each other — each tagged with the dot (actor, counter)
// of the write that made it. Every sibling's dot is covered by the clock.
//
// Promises:
//  - Update() at a replica with a client's causal context replaces exactly the
//    siblings that context covers and adds one sibling with a fresh dot; with
//    an empty context it only adds (a blind write is concurrent with all).
//  - Sync() (replica merge) is commutative, associative and idempotent, and
//    its result is canonical (siblings sorted by dot, clock sorted by actor),
//    so replicas holding the same writes hold byte-identical objects.
//  - Dots are minted only by a replica that stores the key, so clock[actor]
//    at that replica is the highest counter that actor ever used for the key.
#pragma once

#include <compare>
#include <cstdint>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

namespace ringkv {

using NodeId = std::string;

struct Dot {
  NodeId actor;
  uint64_t counter = 0;

  auto operator<=>(const Dot&) const = default;
  // "n1:3"
  std::string ToString() const;
};

class VersionVector {
 public:
  VersionVector() = default;

  // Highest counter seen from actor (0 if none).
  uint64_t Get(std::string_view actor) const;
  void Set(const NodeId& actor, uint64_t counter);
  // True iff the write with this dot is in the history this vector summarises.
  bool Covers(const Dot& dot) const { return Get(dot.actor) >= dot.counter; }
  // True iff every entry of other is <= the same entry here.
  bool Descends(const VersionVector& other) const;
  // Pointwise maximum.
  void Join(const VersionVector& other);

  bool empty() const { return entries_.empty(); }
  // (actor, counter) pairs sorted by actor.
  using Entries = std::vector<std::pair<NodeId, uint64_t>>;
  const Entries& entries() const { return entries_; }
  bool operator==(const VersionVector&) const = default;
  // "{n1:3,n2:1}"
  std::string ToString() const;

 private:
  // Sorted by actor, no zero entries. A vector, not a map: a key's clock has
  // a handful of actors, and an object is copied, decoded and merged on every
  // request, where one allocation beats one per entry (and a cold copy is a
  // cache miss per allocation).
  Entries entries_;
};

struct Sibling {
  Dot dot;
  std::string value;          // empty for a tombstone
  bool tombstone = false;     // a delete
  uint64_t timestamp_ms = 0;  // coordinator's clock at the write; used by lww mode only
  uint64_t expires_ms = 0;    // wall clock (ms) from which the value is expired; 0: never
  uint8_t datatype = 0;       // 0: opaque bytes; else the convergent data type of value

  bool operator==(const Sibling&) const = default;
};

class DvvSet {
 public:
  DvvSet() = default;

  // The object after a write of `value` (or a delete when tombstone is true)
  // that replica `actor` coordinates for a client that had read `context`.
  // Siblings covered by context are replaced; others stay. The new sibling's
  // dot is (actor, clock[actor] + 1). `local` is what the replica stores
  // (empty if nothing).
  // The actor must know every dot it minted for this key before (they are
  // in local or context); otherwise a jump in its counter would claim to have
  // seen them. A replica that cannot promise that mints as a fresh actor.
  // min_counter: the new dot's counter is above it too. A replica that
  // reaped tombstones passes the highest counter it ever had for itself in a
  // reaped clock, so a dot of a deleted write is never minted again (a copy
  // of the tombstone that survives somewhere would swallow the new write).
  // The jump only claims to have seen dots of deleted writes.
  static DvvSet Update(const DvvSet& local, const VersionVector& context, const NodeId& actor,
                       std::string value, bool tombstone, uint64_t timestamp_ms,
                       uint64_t min_counter = 0);
  // The same, for a write described by a sibling whose dot is to be minted
  // (value, tombstone, timestamp_ms, expires_ms, datatype are kept).
  static DvvSet Update(const DvvSet& local, const VersionVector& context, const NodeId& actor,
                       Sibling write, uint64_t min_counter = 0);

  // The replica merge: keeps each sibling that both hold or that the other
  // side has not seen, and joins the clocks.
  static DvvSet Sync(const DvvSet& a, const DvvSet& b);

  // Last-write-wins collapse (comparison mode): keeps only the sibling with
  // the greatest (timestamp, dot). Loses concurrent writes by design.
  static DvvSet CollapseLww(const DvvSet& object);

  // The causal context to hand to clients: the clock.
  const VersionVector& clock() const { return clock_; }
  // All siblings, tombstones included, sorted by dot.
  const std::vector<Sibling>& siblings() const { return siblings_; }
  // Siblings that are values, not tombstones.
  std::vector<const Sibling*> LiveSiblings() const;
  // No siblings at all: the key was never written (here).
  bool empty() const { return siblings_.empty() && clock_.empty(); }
  // Has history but every sibling is a tombstone.
  bool IsDeleted() const;
  // The sibling with this dot, or nullptr.
  const Sibling* FindSibling(const Dot& dot) const;

  // Builds an object from decoded parts; sorts into canonical form. Used by
  // the codec. Returns false if a sibling's dot is not covered by the clock
  // or two siblings share a dot.
  static bool FromParts(VersionVector clock, std::vector<Sibling> siblings, DvvSet* out);

  bool operator==(const DvvSet&) const = default;
  std::string ToString() const;

 private:
  void Canonicalize();

  VersionVector clock_;
  std::vector<Sibling> siblings_;
};

}  // namespace ringkv
