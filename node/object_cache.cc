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
  auto it = map_.find(key);
  if (it == map_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  it->second.referenced = true;
  return &it->second.object;
}

void ObjectCache::Put(std::string_view key, const DvvSet& object) {
  size_t charge = Charge(key, object);
  auto it = map_.find(key);
  if (charge > budget_ / 8) {
    if (it != map_.end()) Remove(it);
    return;
  }
  if (it != map_.end()) {
    Entry& e = it->second;
    bytes_ -= e.charge;
    e.object = object;
    e.charge = charge;
    e.referenced = true;
    bytes_ += charge;
  } else {
    it = map_.emplace(std::string(key), Entry{object, charge, 0, false}).first;
    if (!free_slots_.empty()) {
      it->second.slot = free_slots_.back();
      free_slots_.pop_back();
      ring_[it->second.slot] = &*it;
    } else {
      it->second.slot = ring_.size();
      ring_.push_back(&*it);
    }
    bytes_ += charge;
  }
  while (bytes_ > budget_ && !map_.empty()) EvictOne();
}

void ObjectCache::Erase(std::string_view key) {
  auto it = map_.find(key);
  if (it != map_.end()) Remove(it);
}

void ObjectCache::EvictOne() {
  // Two sweeps at most: the first clears every referenced bit it passes.
  for (size_t steps = 0; steps < 2 * ring_.size() + 1; ++steps) {
    if (hand_ >= ring_.size()) hand_ = 0;
    Map::value_type* e = ring_[hand_++];
    if (e == nullptr) continue;
    if (e->second.referenced) {
      e->second.referenced = false;
      continue;
    }
    Remove(map_.find(e->first));
    return;
  }
}

void ObjectCache::Remove(Map::iterator it) {
  bytes_ -= it->second.charge;
  ring_[it->second.slot] = nullptr;
  free_slots_.push_back(it->second.slot);
  map_.erase(it);
}

}  // namespace ringkv
