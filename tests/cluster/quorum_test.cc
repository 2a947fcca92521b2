// Five real nodes on loopback: placement, quorums, staleness, read repair and
// siblings, observed the way a user would (client library and CLI).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <thread>

#include "core/codec.h"
#include "harness.h"
#include "report.h"

using nlohmann::json;
using ringkv::Quorum;
using ringkv::test::Cluster;

namespace {

std::vector<std::string> Primaries(Cluster& c, const std::string& key) {
  auto info = c.Connect(1)->Info("preflist", key);
  REQUIRE(info.ok());
  std::vector<std::string> out;
  json doc = json::parse(*info);
  for (const auto& p : doc["primaries"]) out.push_back(p["id"]);
  return out;
}

int Index(const std::string& id) { return std::stoi(id.substr(1)); }

// What node i itself stores for key.
json Local(Cluster& c, int i, const std::string& key) {
  auto info = c.Connect(i)->Info("local", key);
  REQUIRE_MESSAGE(info.ok(), info.status().ToString());
  return json::parse(*info);
}

std::vector<std::string> Values(const ringkv::DvvSet& o) {
  std::vector<std::string> v;
  for (auto* s : o.LiveSiblings()) v.push_back(s->value);
  std::sort(v.begin(), v.end());
  return v;
}

json Stats(Cluster& c, int i) { return json::parse(*c.Connect(i)->Info("stats")); }

}  // namespace

TEST_CASE("five nodes: each key is stored on exactly its three primaries") {
  Cluster c(5);
  auto client = c.Connect(1);
  std::map<std::string, int> per_node;
  for (int k = 0; k < 200; ++k) {
    std::string key = "key-" + std::to_string(k);
    REQUIRE(client->Put(key, "v").ok());
  }
  // w=2 acknowledges before the third copy lands; let it arrive.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int k = 0; k < 200; ++k) {
    std::string key = "key-" + std::to_string(k);
    auto primaries = Primaries(c, key);
    REQUIRE(primaries.size() == 3);
    for (int i = 1; i <= 5; ++i) {
      bool is_primary = std::count(primaries.begin(), primaries.end(), c.Id(i)) == 1;
      CHECK_MESSAGE(Local(c, i, key)["found"] == is_primary, key << " on " << c.Id(i));
      per_node[c.Id(i)] += is_primary;
    }
  }
  std::string counts;
  for (auto& [id, n] : per_node) counts += id + "=" + std::to_string(n) + " ";
  REPORT("keys per node (200 keys, n=3): " << counts);
}

TEST_CASE("five nodes: strict w=3 with a primary killed fails with the quorum error; w=2 succeeds") {
  Cluster c(5);
  auto primaries = Primaries(c, "k");
  c.Kill(Index(primaries[2]));
  int coordinator = Index(primaries[0]);
  auto r = c.Cli(coordinator, {"put", "k", "v", "--w", "3", "--strict"});
  CHECK(r.exit_code == 3);
  CHECK_MESSAGE(r.err.find("write quorum not met") != std::string::npos, r.err);
  CHECK(r.err.find("w=3") != std::string::npos);
  CHECK(r.err.find(primaries[2]) != std::string::npos);
  auto ok = c.Cli(coordinator, {"put", "k", "v", "--w", "2"});
  CHECK_MESSAGE(ok.exit_code == 0, ok.err);
  // Through a coordinator that is not a replica, too.
  int other = 0;
  for (int i = 1; i <= 5; ++i) {
    if (std::count(primaries.begin(), primaries.end(), c.Id(i)) == 0) other = i;
  }
  CHECK(c.Cli(other, {"put", "k", "v", "--w", "3", "--strict"}).exit_code == 3);
  CHECK(c.Cli(other, {"put", "k", "v", "--w", "2"}).exit_code == 0);
  CHECK(Stats(c, coordinator)["write_quorum_failures"].get<int>() >= 1);
}

TEST_CASE("five nodes: r=1 after a w=1 write can be stale; r+w>n never is") {
  Cluster c(5);
  auto primaries = Primaries(c, "reg");
  int a = Index(primaries[0]), b = Index(primaries[1]), x = Index(primaries[2]);
  Quorum w1;
  w1.w = 1;
  auto first = c.Connect(a)->Put("reg", "old", "", w1);
  REQUIRE(first.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // x misses the next write (strict: no one stands in for it).
  c.Kill(x);
  Quorum strict_w1 = w1;
  strict_w1.mode = ringkv::Mode::kStrict;
  REQUIRE(c.Connect(a)->Put("reg", "new", first->context, strict_w1).ok());
  c.Start(x);
  Quorum r1;
  r1.r = 1;
  auto stale = c.Connect(x)->Get("reg", r1);
  REQUIRE(stale.ok());
  CHECK(Values(stale->object) == std::vector<std::string>{"old"});  // x answered first: itself
  Quorum r2;
  r2.r = 2;
  r2.n = 3;
  // ...but w=1 + r=2 is not > n=3 either; with w=2, r=2 every read is fresh:

  // 1000 write/read pairs, w=2 r=2 n=3, rotating coordinators, one replica
  // killed midway. Every read must return exactly the last acknowledged write.
  Quorum w2;
  w2.w = 2;
  std::vector<std::unique_ptr<ringkv::Client>> clients;
  for (int i = 1; i <= 5; ++i) clients.push_back(c.Connect(i));
  std::string context;
  int stale_reads = 0, failures = 0;
  for (int i = 0; i < 1000; ++i) {
    if (i == 500) {
      c.Kill(b);
      clients[b - 1].reset();
    }
    auto pick = [&](int salt) {
      int n = (i * 7 + salt) % 5 + 1;
      while (!clients[n - 1]) n = n % 5 + 1;
      return n;
    };
    std::string value = "v" + std::to_string(i);
    auto put = clients[pick(0) - 1]->Put("linear", value, context, w2);
    if (!put.ok()) {
      ++failures;
      continue;
    }
    context = put->context;
    auto got = clients[pick(3) - 1]->Get("linear", r2);
    if (!got.ok()) {  // show each node's view of its peers before failing
      for (int j = 1; j <= 5; ++j) {
        if (clients[j - 1]) MESSAGE(*clients[j - 1]->Info("status"));
      }
    }
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    if (Values(got->object) != std::vector<std::string>{value}) ++stale_reads;
  }
  REPORT("r=2 w=2 n=3: 1000 pairs, " << stale_reads << " stale reads, " << failures
                                      << " failed writes (one replica killed at pair 500)");
  CHECK(stale_reads == 0);
  CHECK(failures == 0);
}

TEST_CASE("five nodes: read repair brings a restarted replica up to date and is counted") {
  Cluster c(5);
  auto primaries = Primaries(c, "rr");
  int down = Index(primaries[1]);
  c.Kill(down);
  Quorum strict;
  strict.w = 2;
  strict.mode = ringkv::Mode::kStrict;
  REQUIRE(c.Connect(Index(primaries[0]))->Put("rr", "value", "", strict).ok());
  c.Start(down);
  CHECK(Local(c, down, "rr")["found"] == false);
  int coordinator = Index(primaries[2]);
  Quorum r3;
  r3.r = 3;
  auto got = c.Connect(coordinator)->Get("rr", r3);
  REQUIRE(got.ok());
  CHECK(Values(got->object) == std::vector<std::string>{"value"});
  bool repaired = false;
  for (int attempt = 0; attempt < 100 && !repaired; ++attempt) {
    repaired = Local(c, down, "rr")["found"] == true;
    if (!repaired) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(repaired);
  CHECK(Stats(c, coordinator)["read_repairs"] == 1);
}

TEST_CASE("five nodes: concurrent blind writes through different coordinators become siblings everywhere") {
  Cluster c(5);
  std::thread t1([&] { REQUIRE(c.Connect(1)->Put("cart", "milk").ok()); });
  std::thread t2([&] { REQUIRE(c.Connect(4)->Put("cart", "eggs").ok()); });
  t1.join();
  t2.join();
  Quorum r3;
  r3.r = 3;
  for (int i = 1; i <= 5; ++i) {
    auto got = c.Connect(i)->Get("cart", r3);
    REQUIRE(got.ok());
    CHECK(Values(got->object) == std::vector<std::string>{"eggs", "milk"});
  }
  auto json_get = c.Cli(2, {"get", "cart", "--json"});
  REQUIRE_MESSAGE(json_get.exit_code == 0, json_get.err);
  auto j = json::parse(json_get.out);
  CHECK(j["siblings"].size() == 2);
  CHECK(Stats(c, 2)["siblings_seen"].get<int>() >= 1);
}
