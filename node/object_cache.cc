#include "node/object_cache.h"

namespace ringkv {

size_t ObjectCache::Charge(std::string_view key, const DvvSet& object) {
  // Node and hash-table overhead, roughly, plus what the strings hold.
  size_t charge = 160 + key.size();
  for (const Sibling& s : object.siblings()) charge += 64 + s.value.size() + s.dot.actor.size();
  for (const auto& [actor, counter] : object.clock().entries()) charge += 64 + actor.size();
  return charge;
}

const DvvSet* ObjectCache::Find(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->object;
}

void ObjectCache::Put(std::string_view key, const DvvSet& object) {
  size_t charge = Charge(key, object);
  auto it = index_.find(key);
  if (charge > budget_ / 8) {
    if (it != index_.end()) Remove(it->second);
    return;
  }
  if (it != index_.end()) {
    Entry& e = *it->second;
    bytes_ -= e.charge;
    e.object = object;
    e.charge = charge;
    bytes_ += charge;
    lru_.splice(lru_.begin(), lru_, it->second);
  } else {
    lru_.push_front(Entry{std::string(key), object, charge});
    index_.emplace(lru_.front().key, lru_.begin());
    bytes_ += charge;
  }
  while (bytes_ > budget_ && !lru_.empty()) Remove(std::prev(lru_.end()));
}

void ObjectCache::Erase(std::string_view key) {
  auto it = index_.find(key);
  if (it != index_.end()) Remove(it->second);
}

void ObjectCache::Remove(List::iterator it) {
  bytes_ -= it->charge;
  index_.erase(it->key);
  lru_.erase(it);
}

}  // namespace ringkv
