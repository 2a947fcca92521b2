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
#include <unordered_map>
#include <vector>

#include "core/dvv.h"

namespace ringkv {

class ObjectCache {
 public:
  explicit ObjectCache(size_t budget_bytes) : budget_(budget_bytes) {}

  // The cached object for key, or nullptr. Marks it used.
  const DvvSet* Find(std::string_view key);
  // Caches object as key's (replacing what was cached), evicting entries
  // beyond the budget. An object larger than an eighth of the budget is not
  // cached (and any older copy is dropped).
  void Put(std::string_view key, const DvvSet& object);
  void Erase(std::string_view key);

  size_t bytes() const { return bytes_; }
  size_t budget() const { return budget_; }
  size_t entries() const { return map_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

  // What an entry is charged: its key, values, actors and bookkeeping.
  static size_t Charge(std::string_view key, const DvvSet& object);

 private:
  struct Entry {
    DvvSet object;
    size_t charge = 0;
    size_t slot = 0;  // position in ring_
    bool referenced = false;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  using Map = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;

  void Remove(Map::iterator it);
  void EvictOne();

  size_t budget_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  Map map_;
  std::vector<Map::value_type*> ring_;  // the clock; nullptr: a free slot
  std::vector<size_t> free_slots_;
  size_t hand_ = 0;
};

}  // namespace ringkv
