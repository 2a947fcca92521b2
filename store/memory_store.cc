#include "store/memory_store.h"

#include "core/hash.h"

#include <vector>

namespace ringkv {

namespace {

void AppendBigEndian64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xff));
}

}  // namespace

uint64_t StoreKeyHash(std::string_view store_key) {
  if (store_key.size() < 9) return 0;
  uint64_t h = 0;
  for (size_t i = 1; i <= 8; ++i) h = (h << 8) | static_cast<uint8_t>(store_key[i]);
  return h;
}

std::string ObjectStoreKey(std::string_view key) {
  std::string out;
  out.reserve(9 + key.size());
  out.push_back('o');
  AppendBigEndian64(KeyHash(key), &out);
  out.append(key);
  return out;
}

Status MemoryStore::Get(std::string_view key, DvvSet* object) {
  auto it = objects_.find(ObjectStoreKey(key));
  if (it == objects_.end()) return Status::NotFound("");
  *object = it->second.object;
  return Status::OK();
}

Status MemoryStore::Put(std::string_view key, const DvvSet& object) {
  objects_[ObjectStoreKey(key)] = Entry{std::string(key), object};
  return Status::OK();
}

Status MemoryStore::Erase(std::string_view key) {
  objects_.erase(ObjectStoreKey(key));
  return Status::OK();
}

Status MemoryStore::Scan(uint64_t first_hash, uint64_t last_hash, const ScanFn& fn) {
  std::string start = "o";
  AppendBigEndian64(first_hash, &start);
  for (auto it = objects_.lower_bound(start); it != objects_.end(); ++it) {
    if (KeyHash(it->second.key) > last_hash) break;
    if (!fn(it->second.key, it->second.object)) break;
  }
  return Status::OK();
}

Status MemoryStore::GetHint(const NodeId& target, std::string_view key, Hint* hint) {
  auto t = hints_.find(target);
  if (t == hints_.end()) return Status::NotFound("");
  auto it = t->second.find(ObjectStoreKey(key));
  if (it == t->second.end()) return Status::NotFound("");
  *hint = it->second;
  return Status::OK();
}

Status MemoryStore::PutHint(const NodeId& target, const Hint& hint) {
  hints_[target][ObjectStoreKey(hint.key)] = hint;
  return Status::OK();
}

Status MemoryStore::EraseHint(const NodeId& target, std::string_view key) {
  auto t = hints_.find(target);
  if (t == hints_.end()) return Status::OK();
  t->second.erase(ObjectStoreKey(key));
  if (t->second.empty()) hints_.erase(t);
  return Status::OK();
}

Status MemoryStore::ScanHints(const NodeId& target, const HintFn& fn) {
  auto t = hints_.find(target);
  if (t == hints_.end()) return Status::OK();
  std::vector<Hint> copy;  // fn may erase
  for (const auto& [k, h] : t->second) copy.push_back(h);
  for (const Hint& h : copy) {
    if (!fn(h)) break;
  }
  return Status::OK();
}

Status MemoryStore::SummarizeHints(std::map<NodeId, HintSummary>* out) {
  out->clear();
  for (const auto& [target, hints] : hints_) {
    HintSummary& s = (*out)[target];
    for (const auto& [k, h] : hints) {
      if (s.count++ == 0 || h.created_ms < s.oldest_ms) s.oldest_ms = h.created_ms;
    }
  }
  return Status::OK();
}

Status MemoryStore::GetMeta(std::string_view name, std::string* value) {
  auto it = meta_.find(name);
  if (it == meta_.end()) return Status::NotFound("");
  *value = it->second;
  return Status::OK();
}

Status MemoryStore::PutMeta(std::string_view name, std::string_view value) {
  meta_[std::string(name)] = std::string(value);
  return Status::OK();
}

Store::Sizes MemoryStore::ApproximateSizes() {
  // Keys and values; clocks and dots are small beside them in what the
  // simulator and tests store.
  auto object_bytes = [](const std::string& key, const DvvSet& object) {
    uint64_t n = key.size();
    for (const Sibling& s : object.siblings()) n += s.value.size();
    return n;
  };
  Sizes out;
  for (const auto& [store_key, entry] : objects_) out.object_bytes += object_bytes(entry.key, entry.object);
  for (const auto& [target, hints] : hints_) {
    for (const auto& [store_key, hint] : hints) out.hint_bytes += object_bytes(hint.key, hint.object);
  }
  out.memory_bytes = out.object_bytes + out.hint_bytes;
  return out;
}

}  // namespace ringkv
