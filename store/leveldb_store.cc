// LevelDB implementation of Store. Key spaces by first byte: 'o' objects
// (see ObjectStoreKey), 'm' node metadata, 'h' hints. Writes are buffered in
// one WriteBatch until Commit (once per loop turn: one log write, and with
// --sync one fsync, for all the writes of the turn).
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <unordered_set>

#include <fmt/format.h>

#include "core/codec.h"
#include "core/hash.h"
#include "store/object_cache.h"
#include "store/leveldb_store.h"

namespace ringkv {

namespace {

// 'h', the target's id length (1 byte) and id, then ObjectStoreKey(key)
// without its 'o'.
std::string HintPrefix(const NodeId& target) {
  std::string k = "h";
  k.push_back(static_cast<char>(target.size()));
  k.append(target);
  return k;
}

std::string HintKey(const NodeId& target, std::string_view key) {
  return HintPrefix(target) + ObjectStoreKey(key).substr(1);
}

std::string EncodeHint(const Hint& h) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((h.created_ms >> (8 * i)) & 0xff);
  out += EncodeStoredObject(h.key, h.object);
  return out;
}

Status DecodeHint(std::string_view bytes, Hint* h) {
  if (bytes.size() < 9) return Status::Corruption("hint record too short");
  h->created_ms = 0;
  for (int i = 0; i < 8; ++i) h->created_ms |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  auto obj = DecodeStoredObject(bytes.substr(8), &h->key);
  if (!obj.ok()) return obj.status();
  h->object = std::move(obj).value();
  return Status::OK();
}

std::string MetaKey(std::string_view name) {
  std::string k = "m";
  k.append(name);
  return k;
}

Status FromLevelDb(const leveldb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound("");
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  return Status::IOError(s.ToString());
}

class LevelDbStore final : public Store {
 public:
  LevelDbStore(std::unique_ptr<leveldb::DB> db, std::unique_ptr<leveldb::Cache> cache,
               std::unique_ptr<const leveldb::FilterPolicy> filter, bool sync,
               size_t object_cache_bytes)
      : cache_(std::move(cache)), filter_(std::move(filter)), db_(std::move(db)),
        objects_(object_cache_bytes) {
    write_options_.sync = sync;
  }

  ~LevelDbStore() override {
    Status s = Commit();
    if (!s.ok()) fmt::print(stderr, "store: writes lost at close: {}\n", s.ToString());
  }

  Status Commit() override {
    if (pending_.empty()) return Status::OK();
    leveldb::Status s = db_->Write(write_options_, &batch_);
    batch_.Clear();
    pending_.clear();
    return FromLevelDb(s);
  }

  Status View(std::string_view key, const DvvSet** object, DvvSet* scratch) override {
    if (const DvvSet* cached = objects_.Find(key)) {
      *object = cached;
      return Status::OK();
    }
    return Store::View(key, object, scratch);  // read into *scratch (and cached)
  }

  Sizes ApproximateSizes() override {
    // Key spaces by first byte: objects 'o', hints 'h'.
    leveldb::Range ranges[] = {{"o", "p"}, {"h", "i"}};
    uint64_t sizes[2] = {0, 0};
    db_->GetApproximateSizes(ranges, 2, sizes);
    Sizes out;
    out.object_bytes = sizes[0];
    out.hint_bytes = sizes[1];
    std::string memory;
    if (db_->GetProperty("leveldb.approximate-memory-usage", &memory)) {
      out.memory_bytes = std::strtoull(memory.c_str(), nullptr, 10);
    }
    return out;
  }

  CacheStats object_cache() const override {
    return {objects_.hits(), objects_.misses(), objects_.entries(), objects_.bytes(), objects_.budget()};
  }

  Status Get(std::string_view key, DvvSet* object) override {
    if (const DvvSet* cached = objects_.Find(key)) {
      *object = *cached;
      return Status::OK();
    }
    std::string bytes;
    Status s = Read(ObjectStoreKey(key), &bytes);
    if (!s.ok()) return s;
    auto decoded = DecodeStoredObject(bytes);
    if (!decoded.ok()) return decoded.status();
    *object = std::move(decoded).value();
    objects_.Put(key, *object);
    return Status::OK();
  }

  Status Put(std::string_view key, const DvvSet& object) override {
    objects_.Put(key, object);
    value_buffer_.clear();
    AppendStoredObject(key, object, &value_buffer_);
    return Buffer(ObjectStoreKey(key), &value_buffer_);
  }

  Status Erase(std::string_view key) override {
    objects_.Erase(key);
    return Buffer(ObjectStoreKey(key), nullptr);
  }

  Status Scan(uint64_t first_hash, uint64_t last_hash, const ScanFn& fn) override {
    if (Status c = Commit(); !c.ok()) return c;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options_));
    std::string start = ObjectStoreKey("");
    start.resize(1);
    for (int shift = 56; shift >= 0; shift -= 8) start.push_back(char((first_hash >> shift) & 0xff));
    for (it->Seek(start); it->Valid(); it->Next()) {
      leveldb::Slice k = it->key();
      if (k.size() < 9 || k[0] != 'o') break;
      uint64_t h = StoreKeyHash(std::string_view(k.data(), k.size()));
      if (h > last_hash) break;
      std::string key;
      auto decoded = DecodeStoredObject(std::string_view(it->value().data(), it->value().size()), &key);
      if (!decoded.ok()) {
        return Status::Corruption(fmt::format("object at hash {:016x}: {}", h, decoded.status().message()));
      }
      if (!fn(key, *decoded)) break;
    }
    return FromLevelDb(it->status());
  }

  uint64_t CountObjects() override {
    Commit();
    uint64_t n = 0;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options_));
    for (it->Seek("o"); it->Valid() && it->key()[0] == 'o'; it->Next()) ++n;
    return n;
  }

  Status GetHint(const NodeId& target, std::string_view key, Hint* hint) override {
    std::string bytes;
    Status s = Read(HintKey(target, key), &bytes);
    if (!s.ok()) return s;
    return DecodeHint(bytes, hint);
  }

  Status PutHint(const NodeId& target, const Hint& hint) override {
    std::string value = EncodeHint(hint);
    return Buffer(HintKey(target, hint.key), &value);
  }

  Status EraseHint(const NodeId& target, std::string_view key) override {
    return Buffer(HintKey(target, key), nullptr);
  }

  Status ScanHints(const NodeId& target, const HintFn& fn) override {
    if (Status c = Commit(); !c.ok()) return c;
    std::string prefix = HintPrefix(target);
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      Hint h;
      Status s = DecodeHint(std::string_view(it->value().data(), it->value().size()), &h);
      if (!s.ok()) return s;
      if (!fn(h)) break;
    }
    return FromLevelDb(it->status());
  }

  Status SummarizeHints(std::map<NodeId, HintSummary>* out) override {
    out->clear();
    if (Status c = Commit(); !c.ok()) return c;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options_));
    for (it->Seek("h"); it->Valid() && it->key().size() > 1 && it->key()[0] == 'h'; it->Next()) {
      leveldb::Slice k = it->key();
      size_t len = static_cast<uint8_t>(k[1]);
      if (k.size() < 2 + len) return Status::Corruption("bad hint key");
      NodeId target(k.data() + 2, len);
      Hint h;
      Status s = DecodeHint(std::string_view(it->value().data(), it->value().size()), &h);
      if (!s.ok()) return s;
      HintSummary& sum = (*out)[target];
      if (sum.count++ == 0 || h.created_ms < sum.oldest_ms) sum.oldest_ms = h.created_ms;
    }
    return FromLevelDb(it->status());
  }

  Status GetMeta(std::string_view name, std::string* value) override {
    return FromLevelDb(db_->Get(read_options_, MetaKey(name), value));
  }

  Status PutMeta(std::string_view name, std::string_view value) override {
    // Metadata is rare and must survive; it goes with the buffered writes,
    // which may be what it describes (a partition's objects, say).
    batch_.Put(MetaKey(name), leveldb::Slice(value.data(), value.size()));
    leveldb::WriteOptions sync_options;
    sync_options.sync = true;
    leveldb::Status s = db_->Write(sync_options, &batch_);
    batch_.Clear();
    pending_.clear();
    return FromLevelDb(s);
  }

 private:
  // A read sees the writes buffered in this turn: one of a key written in
  // this turn commits the batch first. Object reads rarely get here (the
  // object cache has every object written, unless it evicted it since).
  Status Read(const std::string& store_key, std::string* bytes) {
    if (pending_.contains(KeyHash(store_key))) {
      if (Status c = Commit(); !c.ok()) return c;
    }
    return FromLevelDb(db_->Get(read_options_, store_key, bytes));
  }

  // Adds a write (nullptr: a delete) to the batch, which copies the bytes. A
  // batch that grows large within one turn (a handoff slice, say) is written
  // at once.
  Status Buffer(const std::string& store_key, const std::string* value) {
    if (value != nullptr) {
      batch_.Put(store_key, *value);
    } else {
      batch_.Delete(store_key);
    }
    pending_.insert(KeyHash(store_key));
    if (batch_.ApproximateSize() >= kMaxBatchBytes) return Commit();
    return Status::OK();
  }

  static constexpr size_t kMaxBatchBytes = 4 << 20;

  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<const leveldb::FilterPolicy> filter_;  // outlives db_
  std::unique_ptr<leveldb::DB> db_;
  leveldb::ReadOptions read_options_;
  leveldb::WriteOptions write_options_;
  // Always exact: every Put and Erase of an object updates it.
  ObjectCache objects_;
  leveldb::WriteBatch batch_;
  // KeyHash of the store keys the batch writes (a collision only costs an
  // early commit), so a read in the same turn sees them.
  std::unordered_set<uint64_t> pending_;
  std::string value_buffer_;  // Put's encoding, reused
};

// LevelDB's background thread (memtable flushes and compactions) runs at a
// lower CPU priority (nice +10) than the node's loop thread. On a machine
// with more busy threads than cores the loop thread, which every request
// waits on, then gets a core first, and compaction takes the idle time.
// LevelDB slows writers down on its own if compaction falls behind (more
// than 8 level-0 files).
class BackgroundNiceEnv : public leveldb::EnvWrapper {
 public:
  BackgroundNiceEnv() : EnvWrapper(leveldb::Env::Default()) {}

  void Schedule(void (*fn)(void*), void* arg) override { target()->Schedule(&Run, new Job{fn, arg}); }

 private:
  static constexpr int kNice = 10;

  struct Job {
    void (*fn)(void*);
    void* arg;
  };

  static void Run(void* p) {
    std::unique_ptr<Job> job(static_cast<Job*>(p));
    thread_local bool lowered = false;
    if (!lowered) {
      setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kNice);
      lowered = true;
    }
    job->fn(job->arg);
  }
};

}  // namespace

Result<std::unique_ptr<Store>> OpenLevelDbStore(const std::string& dir,
                                                const LevelDbOptions& options) {
  std::unique_ptr<leveldb::Cache> cache(leveldb::NewLRUCache(options.cache_bytes));
  leveldb::Options o;
  o.create_if_missing = true;
  static BackgroundNiceEnv* env = new BackgroundNiceEnv();  // for the process's lifetime, as LevelDB's
  o.env = env;
  o.block_cache = cache.get();
  // Every put reads the key first (to merge); for new keys a bloom filter
  // answers "not here" without reading a table block.
  std::unique_ptr<const leveldb::FilterPolicy> filter(leveldb::NewBloomFilterPolicy(10));
  o.filter_policy = filter.get();
  o.write_buffer_size = options.write_buffer_bytes;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(o, dir, &raw);
  if (!s.ok()) return Status::IOError(fmt::format("cannot open data dir {}: {}", dir, s.ToString()));
  return std::unique_ptr<Store>(
      new LevelDbStore(std::unique_ptr<leveldb::DB>(raw), std::move(cache), std::move(filter),
                       options.sync, options.object_cache_bytes));
}

}  // namespace ringkv
