// MemoryStore: a Store in a process's memory, for unit tests and the
// simulator (tests/sim), where a crash keeps the store as a disk would.
// Writes apply at once; Commit has nothing to do.
#pragma once

#include <map>
#include <string>

#include "store/store.h"

namespace ringkv {

class MemoryStore final : public Store {
 public:
  Status Get(std::string_view key, DvvSet* object) override;
  Status Put(std::string_view key, const DvvSet& object) override;
  Status Erase(std::string_view key) override;
  Status Scan(uint64_t first_hash, uint64_t last_hash, const ScanFn& fn) override;
  uint64_t CountObjects() override { return objects_.size(); }
  Sizes ApproximateSizes() override;
  Status GetMeta(std::string_view name, std::string* value) override;
  Status PutMeta(std::string_view name, std::string_view value) override;
  Status GetHint(const NodeId& target, std::string_view key, Hint* hint) override;
  Status PutHint(const NodeId& target, const Hint& hint) override;
  Status EraseHint(const NodeId& target, std::string_view key) override;
  Status ScanHints(const NodeId& target, const HintFn& fn) override;
  Status SummarizeHints(std::map<NodeId, HintSummary>* out) override;

 private:
  struct Entry {
    std::string key;
    DvvSet object;
  };
  std::map<std::string, Entry, std::less<>> objects_;  // by ObjectStoreKey
  std::map<std::string, std::string, std::less<>> meta_;
  std::map<NodeId, std::map<std::string, Hint>> hints_;  // by target, then ObjectStoreKey
};

}  // namespace ringkv
