// Merkle-tree anti-entropy with real processes: our versions of Riak's
// verify_aae and Cassandra's repair test.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

#include "harness.h"
#include "report.h"

using nlohmann::json;
using ringkv::Quorum;
using ringkv::test::Cluster;

namespace {

const std::vector<std::string> kFastAae = {"--aae-interval-ms", "50", "--aae-max-keys-per-sec",
                                           "200000", "--gossip-interval-ms", "200"};

json Aae(Cluster& c, int i) { return json::parse(*c.Connect(i)->Info("aae-status")); }

// Pipelined writes of keys [from, to) through node `via`.
void Load(Cluster& c, int via, int from, int to, Quorum q) {
  auto client = c.Connect(via);
  const int kDepth = 64;
  for (int start = from; start < to; start += kDepth) {
    int end = std::min(to, start + kDepth);
    std::string batch;
    for (int k = start; k < end; ++k) {
      ringkv::PutRequest p;
      p.key = "key-" + std::to_string(k);
      p.value = "value-" + std::to_string(k);
      p.quorum = q;
      ringkv::AppendFrame(ringkv::Envelope{static_cast<uint64_t>(k + 1), {}, {}, p}, &batch);
    }
    REQUIRE(client->SendBytes(batch).ok());
    for (int k = start; k < end; ++k) {
      auto env = client->Receive();
      REQUIRE(env.ok());
      auto& reply = std::get<ringkv::Reply>(env->body);
      REQUIRE_MESSAGE(reply.status.ok(), reply.status.ToString());
    }
  }
}

// How many of keys [0, n) node i itself holds (no quorum, no read repair).
int CountLocal(Cluster& c, int i, int n) {
  auto client = c.Connect(i);
  const int kDepth = 128;
  int found = 0;
  for (int start = 0; start < n; start += kDepth) {
    int end = std::min(n, start + kDepth);
    std::string batch;
    for (int k = start; k < end; ++k) {
      ringkv::AppendFrame(ringkv::Envelope{static_cast<uint64_t>(k + 1), {}, {},
                                           ringkv::InfoRequest{"local", "key-" + std::to_string(k)}},
                          &batch);
    }
    REQUIRE(client->SendBytes(batch).ok());
    for (int k = start; k < end; ++k) {
      auto env = client->Receive();
      REQUIRE(env.ok());
      found += json::parse(std::get<ringkv::InfoReply>(env->body).json)["found"].get<bool>();
    }
  }
  return found;
}

uint64_t TotalRepaired(Cluster& c) {
  uint64_t n = 0;
  for (int i = 1; i <= c.size(); ++i) {
    if (c.Running(i)) n += Aae(c, i)["keys_repaired"].get<uint64_t>();
  }
  return n;
}

double WaitUntilHolds(Cluster& c, int i, int n, double limit_s) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    int have = CountLocal(c, i, n);
    if (have == n) return t;
    REQUIRE_MESSAGE(t < limit_s, "n" << i << " holds " << have << " of " << n << " after " << limit_s << " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

// Polls node i's object count (cheap) every 50 ms until it reaches n;
// returns seconds waited.
double WaitUntilCount(Cluster& c, int i, uint64_t n, double limit_s) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto doc = c.Connect(i)->Info("status");
    uint64_t have = doc.ok() ? json::parse(*doc)["objects"].get<uint64_t>() : 0;
    if (have >= n) return t;
    REQUIRE_MESSAGE(t < limit_s, "n" << i << " holds " << have << " of " << n << " objects after " << limit_s << " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

TEST_CASE("anti-entropy: a node that missed 10 000 writes gets every one back without reads") {
  Cluster c(3, kFastAae);
  c.Stop(3);
  Quorum q;
  q.w = 1;
  q.mode = ringkv::Mode::kStrict;  // no hints: only anti-entropy can repair
  Load(c, 1, 0, 10000, q);
  CHECK(c.Connect(1)->Info("hints").ok());
  auto started = std::chrono::steady_clock::now();
  c.Start(3);
  double took = WaitUntilCount(c, 3, 10000, 120);
  double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() - took;
  WaitUntilHolds(c, 3, 10000, 10);  // every key, read from n3 alone
  uint64_t repaired = TotalRepaired(c);
  REPORT("anti-entropy: n3 missed 10000 writes; all back " << took << " s after it answered ("
         << up << " s to start; bound: aae interval 50 ms x 64 partitions = 3.2 s); keys repaired "
         << repaired);
  CHECK(repaired >= 10000);
  CHECK(repaired <= 20000);  // each missing key at most once per peer
  // Converged and idle: further exchanges repair nothing.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  uint64_t settled = TotalRepaired(c);
  uint64_t exchanges_before = 0, exchanges_after = 0;
  for (int i = 1; i <= 3; ++i) exchanges_before += Aae(c, i)["exchanges"].get<uint64_t>();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  for (int i = 1; i <= 3; ++i) exchanges_after += Aae(c, i)["exchanges"].get<uint64_t>();
  CHECK(exchanges_after > exchanges_before);
  CHECK(TotalRepaired(c) == settled);
  REPORT("anti-entropy: idle cluster ran " << exchanges_after - exchanges_before
                                           << " more exchanges with 0 repairs");
}

TEST_CASE("anti-entropy: a wiped data dir is restored by anti-entropy alone") {
  Cluster c(3, kFastAae);
  Quorum q;
  q.w = 3;
  Load(c, 1, 0, 5000, q);
  c.Kill(2);
  std::filesystem::remove_all(c.DataDir(2));
  c.Start(2);
  double took = WaitUntilHolds(c, 2, 5000, 120);
  REPORT("anti-entropy: wiped n2 (5000 keys) restored in " << took << " s");
}
