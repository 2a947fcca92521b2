// ringkv-storebench: what storage alone costs per operation.
//
// Runs the storage work a 3-node cluster (n=3) does for a stream of client
// operations, in one process and without any network: for every put, each of
// the n replica stores reads the key (the read-before-write), builds the new
// object (the coordinator mints the dot, the other replicas merge) and writes
// it; for every get, each replica store reads the key. The stores are the
// nodes' own (OpenLevelDbStore: LevelDB with the object cache in front, the
// same options a node uses), committed once per `--batch` operations as a
// node's loop turn commits its writes.
//
// It prints the CPU time per operation, split into the calling thread (object
// cache, encoding, the memtable insert and log write of each commit) and
// LevelDB's background thread (memtable flushes and compactions, which run
// until the process has caught up before the clock stops). That is the floor
// under a node's cost per operation that no change to the network or the
// protocol can lower; docs/performance.md compares it with the budget the
// throughput targets leave.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/dvv.h"
#include "store/leveldb_store.h"

namespace ringkv {
namespace {

double CpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string KeyName(uint64_t i) { return fmt::format("key:{:012d}", i); }

struct Options {
  std::string dir;
  uint64_t keys = 100000;
  size_t value_size = 100;
  uint64_t ops = 1000000;
  uint32_t replicas = 3;
  uint32_t batch = 32;
  uint32_t gets = 1;
  uint32_t puts = 1;
  size_t object_cache_mb = 64;
  size_t write_buffer_mb = 16;
  bool lww = true;
  bool json = false;
  uint64_t seed = 1;
};

struct Replica {
  NodeId id;
  std::unique_ptr<Store> store;
};

int Run(const Options& o) {
  std::vector<Replica> replicas;
  for (uint32_t i = 0; i < o.replicas; ++i) {
    LevelDbOptions lopts;
    lopts.object_cache_bytes = o.object_cache_mb << 20;
    lopts.write_buffer_bytes = o.write_buffer_mb << 20;
    std::string dir = fmt::format("{}/r{}", o.dir, i + 1);
    std::filesystem::create_directories(dir);
    auto store = OpenLevelDbStore(dir, lopts);
    if (!store.ok()) {
      fmt::print(stderr, "ringkv-storebench: {}\n", store.status().message());
      return 1;
    }
    replicas.push_back({fmt::format("n{}", i + 1), std::move(store).value()});
  }
  std::mt19937_64 rng(o.seed);
  std::string value(o.value_size, 'v');
  uint64_t now_ms = 1;

  // One put as the replicas of a key do it: the first coordinates (reads,
  // mints the dot, writes), the others read and merge what it sends.
  // (Reads before a write View the store's copy, as node/replica.cc does.)
  auto put = [&](const std::string& key) -> Status {
    const DvvSet* local = nullptr;
    DvvSet scratch;
    Status s = replicas[0].store->View(key, &local, &scratch);
    if (!s.ok() && !s.IsNotFound()) return s;
    // lww: the write replaces what it read (as a client passing its context,
    // or redis-benchmark's SET in lww mode): objects keep one sibling.
    VersionVector context = o.lww ? local->clock() : VersionVector();
    DvvSet now = DvvSet::Update(*local, context, replicas[0].id, value, false, ++now_ms);
    if (o.lww) now = DvvSet::CollapseLww(now);
    if (s = replicas[0].store->Put(key, now); !s.ok()) return s;
    for (size_t r = 1; r < replicas.size(); ++r) {
      const DvvSet* held = nullptr;
      s = replicas[r].store->View(key, &held, &scratch);
      if (!s.ok() && !s.IsNotFound()) return s;
      DvvSet merged = DvvSet::Sync(*held, now);
      if (s.ok() && merged == *held) continue;
      if (s = replicas[r].store->Put(key, merged); !s.ok()) return s;
    }
    return Status::OK();
  };
  auto commit = [&]() -> Status {
    for (auto& r : replicas) {
      if (Status s = r.store->Commit(); !s.ok()) return s;
    }
    return Status::OK();
  };

  auto fail = [](std::string_view phase, const Status& s) {
    fmt::print(stderr, "ringkv-storebench: {}: {}\n", phase, s.ToString());
    return 1;
  };

  // Every key once, not measured: gets find data, puts read-modify-write.
  for (uint64_t i = 0; i < o.keys; ++i) {
    Status s = put(KeyName(i));
    if (s.ok() && (i + 1) % o.batch == 0) s = commit();
    if (!s.ok()) return fail("preload", s);
  }
  if (Status s = commit(); !s.ok()) return fail("preload", s);
  // Let the preload's compactions finish before the clock starts.
  auto settle = [] {
    double last = CpuSeconds(RUSAGE_SELF);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      double cpu = CpuSeconds(RUSAGE_SELF);
      if (cpu - last < 0.003) return;
      last = cpu;
    }
  };
  if (!o.json) fmt::print(stderr, "preloaded {} keys; running {} operations\n", o.keys, o.ops);
  settle();

  double self0 = CpuSeconds(RUSAGE_SELF), thread0 = CpuSeconds(RUSAGE_THREAD);
  auto t0 = std::chrono::steady_clock::now();
  std::uniform_int_distribution<uint64_t> pick(0, o.keys - 1);
  std::uniform_int_distribution<uint32_t> kind(0, o.gets + o.puts - 1);
  uint64_t gets = 0, puts = 0;
  for (uint64_t i = 0; i < o.ops; ++i) {
    std::string key = KeyName(pick(rng));
    Status s;
    if (kind(rng) < o.gets) {
      ++gets;
      for (auto& r : replicas) {
        DvvSet object;
        s = r.store->Get(key, &object);
        if (!s.ok()) break;
      }
    } else {
      ++puts;
      s = put(key);
    }
    if (s.ok() && (i + 1) % o.batch == 0) s = commit();
    if (!s.ok()) return fail("run", s);
  }
  if (Status s = commit(); !s.ok()) return fail("run", s);
  double loop_thread = CpuSeconds(RUSAGE_THREAD) - thread0;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  settle();  // the compactions these writes caused
  double total = CpuSeconds(RUSAGE_SELF) - self0;
  double background = total - loop_thread;
  double us = 1e6 / static_cast<double>(o.ops);

  if (o.json) {
    nlohmann::json j = {{"replicas", o.replicas},
                        {"keys", o.keys},
                        {"value_size", o.value_size},
                        {"ops", o.ops},
                        {"gets", gets},
                        {"puts", puts},
                        {"batch", o.batch},
                        {"lww", o.lww},
                        {"elapsed_s", elapsed},
                        {"cpu_s", total},
                        {"cpu_us_per_op", total * us},
                        {"loop_thread_us_per_op", loop_thread * us},
                        {"background_us_per_op", background * us},
                        {"replica_writes", puts * o.replicas},
                        {"cpu_us_per_replica_write", puts > 0 ? total * 1e6 / static_cast<double>(puts * o.replicas) : 0.0}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("storage only: {} replicas, {} keys, {}-byte values, get:put {}:{}, {} objects, commit every {} ops\n",
             o.replicas, o.keys, o.value_size, o.gets, o.puts, o.lww ? "lww (one sibling)" : "blind puts (siblings grow)", o.batch);
  fmt::print("{} operations ({} gets, {} puts) in {:.2f} s on the calling thread\n", o.ops, gets, puts, elapsed);
  fmt::print("CPU per operation  {:7.2f} us  (calling thread {:.2f} us: cache, encoding, commits;\n", total * us,
             loop_thread * us);
  fmt::print("                              LevelDB background {:.2f} us: flushes and compactions)\n",
             background * us);
  if (puts > 0) {
    fmt::print("CPU per replica write  {:.2f} us ({} replica writes)\n",
               total * 1e6 / static_cast<double>(puts * o.replicas), puts * o.replicas);
  }
  return 0;
}

}  // namespace
}  // namespace ringkv

int main(int argc, char** argv) {
  ringkv::Options o;
  std::string ratio = "1:1";
  bool blind = false;
  CLI::App app{
      "ringkv-storebench: the CPU that storage alone (LevelDB behind the object cache, as a node uses it)\n"
      "spends per operation when every key has --replicas copies, without network or protocol.\n"
      "The floor under a node's cost per operation; see docs/performance.md."};
  app.add_option("--dir", o.dir, "Directory for the stores (default: a new one under $TMPDIR, removed at exit)");
  app.add_option("--keys", o.keys, "Key space")->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))->capture_default_str();
  app.add_option("--value-size", o.value_size, "Bytes per value")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  app.add_option("--ops", o.ops, "Operations to run (after writing every key once)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000000}))->capture_default_str();
  app.add_option("--replicas", o.replicas, "Copies of each key (one store each)")->check(CLI::Range(1, 9))->capture_default_str();
  app.add_option("--batch", o.batch, "Operations per commit (a node commits once per loop turn)")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--ratio", ratio, "Gets to puts, G:P")->capture_default_str();
  app.add_option("--object-cache-mb", o.object_cache_mb, "Object cache of each store, MiB (a node's default: 64)")
      ->capture_default_str();
  app.add_option("--write-buffer-mb", o.write_buffer_mb, "LevelDB memtable size of each store, MiB (a node's default: 16)")
      ->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_flag("--blind", blind, "Blind puts (no context: siblings accumulate, as ringkv bench's default) instead of lww");
  app.add_option("--seed", o.seed, "Seed of the key choice")->capture_default_str();
  app.add_flag("--json", o.json, "One JSON document on stdout");
  CLI11_PARSE(app, argc, argv);
  o.lww = !blind;
  unsigned g = 0, p = 0;
  char tail = 0;
  if (std::sscanf(ratio.c_str(), "%u:%u%c", &g, &p, &tail) != 2 || g + p == 0 || g > 1000 || p > 1000) {
    std::fprintf(stderr, "ringkv-storebench: --ratio must be G:P with whole numbers up to 1000, not '%s'\n",
                 ratio.c_str());
    return 2;
  }
  o.gets = g;
  o.puts = p;
  bool temporary = o.dir.empty();
  if (temporary) {
    const char* tmp = std::getenv("TMPDIR");
    o.dir = fmt::format("{}/ringkv-storebench.{}", tmp != nullptr ? tmp : "/tmp", getpid());
  } else if (std::filesystem::exists(o.dir) && !std::filesystem::is_empty(o.dir)) {
    std::fprintf(stderr, "ringkv-storebench: --dir %s is not empty; give a new or empty directory\n", o.dir.c_str());
    return 2;
  }
  int rc = ringkv::Run(o);
  if (temporary) std::filesystem::remove_all(o.dir);
  return rc;
}
