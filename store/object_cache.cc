#include "store/object_cache.h"

#include <cstring>
#include <new>

#include "core/hash.h"

namespace ringkv {

namespace {
constexpr size_t kInitialSlots = 1024;  // a power of two
}  // namespace

size_t ObjectCache::Charge(std::string_view key, const DvvSet& object) {
  // The entry and its index slots, roughly, plus what the strings hold.
  size_t charge = 160 + key.size();
  for (const Sibling& s : object.siblings()) charge += 64 + s.value.size() + s.dot.actor.size();
  for (const auto& [actor, counter] : object.clock().entries()) charge += 64 + actor.size();
  return charge;
}

ObjectCache::~ObjectCache() {
  for (const Slot& slot : table_) {
    if (slot.entry != nullptr) DeleteEntry(slot.entry);
  }
}

ObjectCache::Entry* ObjectCache::NewEntry(std::string_view key, uint64_t hash, const DvvSet& object,
                                          size_t charge) {
  void* memory = ::operator new(sizeof(Entry) + key.size());
  Entry* e = new (memory) Entry{object, charge, 0, hash, static_cast<uint32_t>(key.size()), false};
  if (!key.empty()) std::memcpy(reinterpret_cast<char*>(e + 1), key.data(), key.size());
  return e;
}

void ObjectCache::DeleteEntry(Entry* e) {
  e->~Entry();
  ::operator delete(e);
}

size_t ObjectCache::Probe(std::string_view key, uint64_t hash) const {
  const size_t mask = table_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = table_[i];
    if (slot.entry == nullptr || (slot.hash == hash && slot.entry->key() == key)) return i;
  }
}

void ObjectCache::Grow() {
  std::vector<Slot> old = std::move(table_);
  table_.assign(old.empty() ? kInitialSlots : old.size() * 2, Slot{});
  const size_t mask = table_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.entry == nullptr) continue;
    size_t i = slot.hash & mask;
    while (table_[i].entry != nullptr) i = (i + 1) & mask;
    table_[i] = slot;
  }
}

const DvvSet* ObjectCache::Find(std::string_view key) {
  if (size_ == 0) {
    ++misses_;
    return nullptr;
  }
  Entry* e = table_[Probe(key, KeyHash(key))].entry;
  if (e == nullptr) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  e->referenced = true;
  return &e->object;
}

void ObjectCache::Put(std::string_view key, const DvvSet& object) {
  size_t charge = Charge(key, object);
  uint64_t hash = KeyHash(key);
  if (charge > budget_ / 8) {
    if (size_ > 0) {
      size_t i = Probe(key, hash);
      if (table_[i].entry != nullptr) RemoveAt(i);
    }
    return;
  }
  if (2 * (size_ + 1) > table_.size()) Grow();
  size_t i = Probe(key, hash);
  if (Entry* e = table_[i].entry; e != nullptr) {
    bytes_ -= e->charge;
    e->object = object;
    e->charge = charge;
    e->referenced = true;
    bytes_ += charge;
  } else {
    e = NewEntry(key, hash, object, charge);
    table_[i] = Slot{hash, e};
    ++size_;
    if (!free_slots_.empty()) {
      e->ring_slot = free_slots_.back();
      free_slots_.pop_back();
      ring_[e->ring_slot] = e;
    } else {
      e->ring_slot = ring_.size();
      ring_.push_back(e);
    }
    bytes_ += charge;
  }
  while (bytes_ > budget_ && size_ > 0) EvictOne();
}

void ObjectCache::Erase(std::string_view key) {
  if (size_ == 0) return;
  size_t i = Probe(key, KeyHash(key));
  if (table_[i].entry != nullptr) RemoveAt(i);
}

void ObjectCache::EvictOne() {
  // Two sweeps at most: the first clears every referenced bit it passes.
  for (size_t steps = 0; steps < 2 * ring_.size() + 1; ++steps) {
    if (hand_ >= ring_.size()) hand_ = 0;
    Entry* e = ring_[hand_++];
    if (e == nullptr) continue;
    if (e->referenced) {
      e->referenced = false;
      continue;
    }
    RemoveAt(Probe(e->key(), e->hash));
    return;
  }
}

void ObjectCache::RemoveAt(size_t i) {
  Entry* e = table_[i].entry;
  bytes_ -= e->charge;
  ring_[e->ring_slot] = nullptr;
  free_slots_.push_back(e->ring_slot);
  DeleteEntry(e);
  --size_;
  // Backward shift: pull later entries of the probe run into the hole unless
  // their home slot lies cyclically in (hole, their slot], where a probe
  // would no longer reach them past the hole.
  const size_t mask = table_.size() - 1;
  size_t hole = i;
  for (size_t j = (i + 1) & mask; table_[j].entry != nullptr; j = (j + 1) & mask) {
    size_t home = table_[j].hash & mask;
    bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    table_[hole] = table_[j];
    hole = j;
  }
  table_[hole] = Slot{};
}

}  // namespace ringkv
