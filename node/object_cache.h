// ObjectCache: decoded objects of recently used keys, least recently used
// first out, within a byte budget.
//
// Every put reads its key before writing it (to merge versions) and every get
// reads it on each replica, so the same keys are read again and again. From
// LevelDB each read is a memtable search, table and block cache lookups, and
// a decode; from here it is a hash lookup and a copy. The store keeps the
// cache exact: it is updated on every write and erase of a key, so it is
// never stale. Single-threaded, like the store.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/dvv.h"

namespace ringkv {

class ObjectCache {
 public:
  explicit ObjectCache(size_t budget_bytes) : budget_(budget_bytes) {}

  // The cached object for key, or nullptr. Marks it recently used.
  const DvvSet* Find(std::string_view key);
  // Caches object as key's (replacing what was cached), evicting the least
  // recently used entries beyond the budget. An object larger than an eighth
  // of the budget is not cached (and any older copy is dropped).
  void Put(std::string_view key, const DvvSet& object);
  void Erase(std::string_view key);

  size_t bytes() const { return bytes_; }
  size_t entries() const { return index_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

  // What an entry is charged: its key, values, actors and bookkeeping.
  static size_t Charge(std::string_view key, const DvvSet& object);

 private:
  struct Entry {
    std::string key;
    DvvSet object;
    size_t charge = 0;
  };
  using List = std::list<Entry>;  // most recently used first

  void Remove(List::iterator it);

  size_t budget_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  List lru_;
  std::unordered_map<std::string_view, List::iterator> index_;  // views into lru_'s keys
};

}  // namespace ringkv
