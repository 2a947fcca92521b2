// The Store contract, checked on both implementations, and what the LevelDB
// store adds: writes buffered until Commit, seen by reads meanwhile, and
// on disk after Commit (or close); a cache of decoded objects that is never
// stale.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <random>

#include <fmt/format.h>

#include "core/hash.h"
#include "store/object_cache.h"
#include "store/leveldb_store.h"
#include "store/memory_store.h"

using namespace ringkv;

namespace {

DvvSet Object(const std::string& value, const std::string& actor = "n1") {
  return DvvSet::Update(DvvSet(), VersionVector(), actor, value, false, 1000);
}

std::string Value(Store& store, const std::string& key) {
  DvvSet o;
  Status s = store.Get(key, &o);
  if (s.IsNotFound()) return "<absent>";
  REQUIRE(s.ok());
  REQUIRE(o.siblings().size() == 1);
  return o.siblings()[0].value;
}

// The same through View (the store's own copy where it has one decoded);
// scratch is reused across calls, as a caller may.
std::string Viewed(Store& store, const std::string& key, DvvSet* scratch) {
  const DvvSet* o = nullptr;
  Status s = store.View(key, &o, scratch);
  REQUIRE(o != nullptr);
  if (s.IsNotFound()) {
    CHECK(o->empty());
    return "<absent>";
  }
  REQUIRE(s.ok());
  REQUIRE(o->siblings().size() == 1);
  return o->siblings()[0].value;
}

// A data directory removed when the test ends.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> n{0};
    path = std::filesystem::temp_directory_path() /
           ("ringkv-store-test-" + std::to_string(getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::unique_ptr<Store> OpenDb(const TempDir& dir) {
  auto s = OpenLevelDbStore(dir.path.string(), LevelDbOptions{});
  REQUIRE(s.ok());
  return std::move(s).value();
}

// What every Store does, whether or not it buffers.
void CheckContract(Store& store) {
  CHECK(Value(store, "a") == "<absent>");
  REQUIRE(store.Put("a", Object("1")).ok());
  REQUIRE(store.Put("b", Object("2")).ok());
  CHECK(Value(store, "a") == "1");  // before any Commit
  REQUIRE(store.Put("a", Object("3")).ok());
  CHECK(Value(store, "a") == "3");  // the later of two buffered writes
  DvvSet scratch;
  CHECK(Viewed(store, "a", &scratch) == "3");
  REQUIRE(store.Erase("b").ok());
  CHECK(Value(store, "b") == "<absent>");
  CHECK(Viewed(store, "b", &scratch) == "<absent>");
  REQUIRE(store.Put("c", Object("4")).ok());

  // Scans and counts see buffered writes.
  std::vector<std::string> seen;
  REQUIRE(store.Scan(0, ~uint64_t{0}, [&](std::string_view key, const DvvSet&) {
                 seen.emplace_back(key);
                 return true;
               }).ok());
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"a", "c"});
  CHECK(store.CountObjects() == 2);

  // Hints likewise.
  Hint h{"k", Object("hinted", "n2"), 42};
  REQUIRE(store.PutHint("n3", h).ok());
  Hint got;
  REQUIRE(store.GetHint("n3", "k", &got).ok());
  CHECK(got.object == h.object);
  CHECK(got.created_ms == 42);
  CHECK(store.GetHint("n4", "k", &got).IsNotFound());
  std::map<NodeId, HintSummary> summary;
  REQUIRE(store.SummarizeHints(&summary).ok());
  CHECK(summary["n3"].count == 1);
  REQUIRE(store.EraseHint("n3", "k").ok());
  CHECK(store.GetHint("n3", "k", &got).IsNotFound());
  REQUIRE(store.Commit().ok());
  CHECK(Value(store, "a") == "3");
}

}  // namespace

TEST_CASE("store: memory store keeps the contract") {
  MemoryStore store;
  CheckContract(store);
}

TEST_CASE("store: LevelDB store keeps the contract") {
  TempDir dir;
  auto store = OpenDb(dir);
  CheckContract(*store);
}

TEST_CASE("store: LevelDB writes are on disk after Commit, and after close") {
  TempDir dir;
  {
    auto store = OpenDb(dir);
    REQUIRE(store->Put("committed", Object("1")).ok());
    REQUIRE(store->Commit().ok());
    REQUIRE(store->Put("at-close", Object("2")).ok());
    REQUIRE(store->Erase("committed").ok());
    REQUIRE(store->Put("again", Object("3")).ok());
  }  // closing commits what is buffered
  auto store = OpenDb(dir);
  CHECK(Value(*store, "committed") == "<absent>");
  CHECK(Value(*store, "at-close") == "2");
  CHECK(Value(*store, "again") == "3");
  CHECK(store->CountObjects() == 2);
}

TEST_CASE("store: metadata is written with the buffered writes before it") {
  TempDir dir;
  // A child process writes, then dies without closing the store (as a crash
  // would): what it wrote must be on disk all the same.
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto s = OpenLevelDbStore(dir.path.string(), LevelDbOptions{});
    bool ok = s.ok() && (*s)->Put("object", Object("1")).ok() && (*s)->PutMeta("complete", "yes").ok() &&
              (*s)->Put("buffered", Object("2")).ok();
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto store = OpenDb(dir);
  std::string v;
  REQUIRE(store->GetMeta("complete", &v).ok());
  CHECK(v == "yes");
  CHECK(Value(*store, "object") == "1");
  // Written after the metadata and never committed: lost, as the runtime's
  // commit-before-reply rule expects (nothing acknowledged it).
  CHECK(Value(*store, "buffered") == "<absent>");
}

TEST_CASE("object cache: within the budget, entries not used lately go first") {
  DvvSet small = Object(std::string(100, 'x'));
  size_t charge = ObjectCache::Charge("key:000000000000", small);
  ObjectCache cache(charge * 10);
  for (int i = 0; i < 10; ++i) cache.Put(fmt::format("key:{:012}", i), small);
  CHECK(cache.entries() == 10);
  CHECK(cache.Find("key:000000000000") != nullptr);  // used again: spared once
  cache.Put("key:000000000010", small);             // evicts key 1, not used since its write
  CHECK(cache.entries() == 10);
  CHECK(cache.bytes() <= charge * 10);
  CHECK(cache.Find("key:000000000001") == nullptr);
  CHECK(cache.Find("key:000000000000") != nullptr);

  // Replacing keeps one entry with the new object; erasing removes it.
  DvvSet other = Object("other");
  cache.Put("key:000000000000", other);
  REQUIRE(cache.Find("key:000000000000") != nullptr);
  CHECK(*cache.Find("key:000000000000") == other);
  cache.Erase("key:000000000000");
  CHECK(cache.Find("key:000000000000") == nullptr);

  // Too big to cache: not cached, and an older copy goes.
  cache.Put("key:000000000005", Object(std::string(charge * 2, 'y')));
  CHECK(cache.Find("key:000000000005") == nullptr);
}

TEST_CASE("object cache: under random puts, erases and evictions a lookup finds the last object put or nothing") {
  std::mt19937_64 rng(7);
  std::map<std::string, DvvSet> model;  // what was last put, not erased since
  // Room for about a quarter of the keys: evictions all the time, and the
  // index grows, shrinks back to a few keys and is probed across wrap-around.
  DvvSet sample = Object(std::string(40, 'v'));
  ObjectCache cache(ObjectCache::Charge("key:000000000000", sample) * 150);
  for (int step = 0; step < 200000; ++step) {
    std::string key = fmt::format("key:{:012}", rng() % 600);
    uint64_t what = rng() % 10;
    if (what < 5) {
      DvvSet object = Object(fmt::format("value {} of {}", step, key));
      cache.Put(key, object);
      model[key] = object;
    } else if (what < 6) {
      cache.Erase(key);
      model.erase(key);
    } else {
      const DvvSet* found = cache.Find(key);
      if (found != nullptr) {
        REQUIRE(model.contains(key));
        REQUIRE(*found == model[key]);
      }
    }
    REQUIRE(cache.bytes() <= cache.budget());
    REQUIRE(cache.entries() <= model.size());
  }
  CHECK(cache.hits() > 0);
  CHECK(cache.misses() > 0);
  // Erasing everything leaves it empty, and it fills again.
  for (int k = 0; k < 600; ++k) cache.Erase(fmt::format("key:{:012}", k));
  CHECK(cache.entries() == 0);
  CHECK(cache.bytes() == 0);
  cache.Put("key:000000000001", sample);
  REQUIRE(cache.Find("key:000000000001") != nullptr);
  CHECK(*cache.Find("key:000000000001") == sample);
}

TEST_CASE("object cache: with room for all, every key put is found (the index grows)") {
  ObjectCache cache(size_t{1} << 30);
  for (int k = 0; k < 20000; ++k) cache.Put(fmt::format("k{}", k), Object(std::to_string(k)));
  CHECK(cache.entries() == 20000);
  for (int k = 0; k < 20000; k += 7) {
    const DvvSet* found = cache.Find(fmt::format("k{}", k));
    REQUIRE(found != nullptr);
    CHECK(*found == Object(std::to_string(k)));
  }
  CHECK(cache.Find("k20000") == nullptr);
  CHECK(cache.Find("") == nullptr);
  cache.Put("", Object("empty key"));
  REQUIRE(cache.Find("") != nullptr);
}

TEST_CASE("store: the LevelDB store's object cache never serves a stale object") {
  TempDir dir;
  LevelDbOptions options;
  options.object_cache_bytes = 4096;  // a few objects: most reads miss
  auto opened = OpenLevelDbStore(dir.path.string(), options);
  REQUIRE(opened.ok());
  Store& store = **opened;
  std::map<std::string, std::string> model;
  DvvSet scratch;
  uint64_t rng = 7;
  for (int i = 0; i < 3000; ++i) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    std::string key = fmt::format("k{}", (rng >> 33) % 40);
    switch ((rng >> 20) % 4) {
      case 0:
        REQUIRE(store.Erase(key).ok());
        model.erase(key);
        break;
      case 1:
      case 2: {
        std::string value = fmt::format("v{}", i);
        REQUIRE(store.Put(key, Object(value)).ok());
        model[key] = value;
        break;
      }
      default: {
        auto it = model.find(key);
        std::string want = it == model.end() ? "<absent>" : it->second;
        // Reads of keys written this turn and evicted since commit the
        // turn's writes first; View reads like Get.
        if ((rng >> 40) % 2 == 0) {
          REQUIRE(Value(store, key) == want);
        } else {
          REQUIRE(Viewed(store, key, &scratch) == want);
        }
      }
    }
    if (i % 97 == 0) REQUIRE(store.Commit().ok());
  }
  for (int k = 0; k < 40; ++k) {
    std::string key = fmt::format("k{}", k);
    auto it = model.find(key);
    CHECK(Value(store, key) == (it == model.end() ? "<absent>" : it->second));
  }
  // What `ringkv stats` shows of it: both hits and misses, within the budget.
  Store::CacheStats cache = store.object_cache();
  CHECK(cache.budget == 4096);
  CHECK(cache.hits > 0);
  CHECK(cache.misses > 0);
  CHECK(cache.entries > 0);
  CHECK(cache.bytes <= cache.budget);
}
