// Store: where a node keeps its objects and metadata.
//
// Objects are ordered by (KeyHash(key), key), so a partition — a contiguous
// range of the hash space — is a contiguous range of the store that can be
// scanned or dropped, and a Merkle segment is a sub-range of it. Metadata
// (node id, cluster name, ring size) lives in its own key space.
//
// Calls are synchronous and made from the node's loop thread only. Two
// implementations: MemoryStore (store/memory_store.h: tests, simulator) and
// the LevelDB store (store/leveldb_store.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/dvv.h"
#include "core/status.h"

namespace ringkv {

// An object a fallback holds for a primary that was down (sloppy quorum).
struct Hint {
  std::string key;
  DvvSet object;
  uint64_t created_ms = 0;  // wall clock when first hinted; kept across merges
};

struct HintSummary {
  uint64_t count = 0;
  uint64_t oldest_ms = 0;  // created_ms of the oldest hint
};

class Store {
 public:
  using HintFn = std::function<bool(const Hint& hint)>;

  // Visitor for Scan: return false to stop.
  using ScanFn = std::function<bool(std::string_view key, const DvvSet& object)>;

  virtual ~Store() = default;

  // NotFound if the store has no object for key.
  virtual Status Get(std::string_view key, DvvSet* object) = 0;
  // Get without the copy where the store holds the object decoded (an object
  // cache): *object then points at the store's own copy, valid until the next
  // call on the store (a read may evict it too). Otherwise the object
  // is read into *scratch and *object points there. NotFound leaves *object
  // pointing at an empty *scratch.
  virtual Status View(std::string_view key, const DvvSet** object, DvvSet* scratch) {
    *scratch = DvvSet();
    *object = scratch;
    return Get(key, scratch);
  }
  // Replaces the stored object (durable once committed, see Commit).
  virtual Status Put(std::string_view key, const DvvSet& object) = 0;
  virtual Status Erase(std::string_view key) = 0;
  // Visits, in (hash, key) order, every object whose KeyHash is in
  // [first_hash, last_hash].
  virtual Status Scan(uint64_t first_hash, uint64_t last_hash, const ScanFn& fn) = 0;
  // Number of objects (may be approximate for large stores).
  virtual uint64_t CountObjects() = 0;

  // A store may buffer the writes (Put, Erase, PutHint, EraseHint) made since
  // the last Commit and write them together; Get and GetHint see them, and
  // every other call commits first. The runtime commits once per loop turn
  // before it writes anything to a socket, so a write is in the store (and
  // its log) before any message that acknowledges it leaves the node. An
  // error means the buffered writes may be lost: the node must stop.
  virtual Status Commit() { return Status::OK(); }

  // The object cache in front of the store, if it has one (for `stats`).
  struct CacheStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t entries = 0;
    uint64_t bytes = 0;
    uint64_t budget = 0;
  };
  virtual CacheStats object_cache() const { return {}; }

  // What the store takes, approximately (for /metrics). LevelDB: the bytes
  // its table files hold for objects and for hints (GetApproximateSizes;
  // writes still in the memtable count once they are flushed), and the
  // memory of its memtables and block cache in use
  // ("leveldb.approximate-memory-usage"). MemoryStore: the bytes of its
  // keys and values, all of it in memory.
  struct Sizes {
    uint64_t object_bytes = 0;
    uint64_t hint_bytes = 0;
    uint64_t memory_bytes = 0;
  };
  virtual Sizes ApproximateSizes() { return {}; }

  // NotFound if the metadata entry is absent.
  virtual Status GetMeta(std::string_view name, std::string* value) = 0;
  virtual Status PutMeta(std::string_view name, std::string_view value) = 0;

  // Hints, keyed by (target node, KeyHash(key), key), apart from objects.
  // NotFound if there is no hint for (target, key).
  virtual Status GetHint(const NodeId& target, std::string_view key, Hint* hint) = 0;
  virtual Status PutHint(const NodeId& target, const Hint& hint) = 0;
  virtual Status EraseHint(const NodeId& target, std::string_view key) = 0;
  // Visits target's hints in store order until fn returns false.
  virtual Status ScanHints(const NodeId& target, const HintFn& fn) = 0;
  // Every target that has hints (full scan: call at start, not per request).
  virtual Status SummarizeHints(std::map<NodeId, HintSummary>* out) = 0;
};

// The byte key under which an object is stored: 'o', the big-endian 64-bit
// KeyHash, then the key. Part of the on-disk format.
std::string ObjectStoreKey(std::string_view key);
// The KeyHash in such a key (its bytes 1..8); 0 for one shorter than 9 bytes.
uint64_t StoreKeyHash(std::string_view store_key);

}  // namespace ringkv
