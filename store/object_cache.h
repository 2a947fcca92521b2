// ObjectCache: decoded objects of recently used keys, within a byte budget.
//
// Every put reads its key before writing it (to merge versions) and every get
// reads it on each replica, so the same keys are read again and again. From
// LevelDB each read is a memtable search, table and block cache lookups, and
// a decode; from here it is a hash lookup and a copy. The store keeps the
// cache exact: it is updated on every write and erase of a key, so it is
// never stale. Single-threaded, like the store.
//
// Eviction is CLOCK, an approximation of least-recently-used: a lookup only
// sets the entry's `referenced` bit, and the hand that looks for room spares
// a referenced entry once (clearing the bit) and evicts the first entry that
// was not used since the hand last passed. An LRU list would move the entry
// to the front on every hit, touching its neighbours' memory; a lookup here
// touches only the hash table's bucket and node.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/dvv.h"

namespace ringkv {

class ObjectCache {
 public:
  explicit ObjectCache(size_t budget_bytes) : budget_(budget_bytes) {}
  ~ObjectCache();
  ObjectCache(const ObjectCache&) = delete;
  ObjectCache& operator=(const ObjectCache&) = delete;

  // The cached object for key, or nullptr. Marks it used. The pointer is
  // valid until the next Put or Erase.
  const DvvSet* Find(std::string_view key);
  // Caches object as key's (replacing what was cached), evicting entries
  // beyond the budget. An object larger than an eighth of the budget is not
  // cached (and any older copy is dropped).
  void Put(std::string_view key, const DvvSet& object);
  void Erase(std::string_view key);

  size_t bytes() const { return bytes_; }
  size_t budget() const { return budget_; }
  size_t entries() const { return size_; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

  // What an entry is charged: its key, values, actors and bookkeeping.
  static size_t Charge(std::string_view key, const DvvSet& object);

 private:
  // One allocation per key: the entry, with the key's bytes right after it
  // (so comparing the key reads the entry's own cache lines, not another
  // heap block).
  struct Entry {
    DvvSet object;
    size_t charge = 0;
    size_t ring_slot = 0;  // position in ring_
    uint64_t hash = 0;
    uint32_t key_size = 0;
    bool referenced = false;

    std::string_view key() const { return {reinterpret_cast<const char*>(this + 1), key_size}; }
  };
  // The index: open addressing with linear probing over a power-of-two table
  // of (hash, entry) pairs, at most half full. A lookup reads one slot (the
  // table is 16 bytes a key, small enough to stay in the CPU's caches) and
  // the one entry whose full 64-bit hash matches; a chained hash table reads
  // a bucket, a node, the node before it and the key's heap block, each a
  // cache miss once the cache holds more than the CPU's caches do.
  struct Slot {
    uint64_t hash = 0;
    Entry* entry = nullptr;  // nullptr: empty
  };

  static Entry* NewEntry(std::string_view key, uint64_t hash, const DvvSet& object, size_t charge);
  static void DeleteEntry(Entry* e);
  // The slot holding key, or the empty slot where it would go.
  size_t Probe(std::string_view key, uint64_t hash) const;
  void Grow();
  // Removes the entry in table slot i (backward-shift deletion: no
  // tombstones, so probes stay short).
  void RemoveAt(size_t i);
  void EvictOne();

  size_t budget_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  std::vector<Slot> table_;
  size_t size_ = 0;
  std::vector<Entry*> ring_;  // the clock; nullptr: a free slot
  std::vector<size_t> free_slots_;
  size_t hand_ = 0;
};

}  // namespace ringkv
