// Hinted handoff with real processes: our versions of Riak's gh_riak_core_154
// and Cassandra's hintedhandoff dtest.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

#include "harness.h"
#include "report.h"

using nlohmann::json;
using ringkv::Quorum;
using ringkv::test::Cluster;

namespace {

uint64_t Queued(Cluster& c, int i) {
  auto r = c.Cli(i, {"hints", "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return json::parse(r.out)["queued"].get<uint64_t>();
}

// Waits until no running node holds hints; returns the seconds it took.
double WaitForHintsToDrain(Cluster& c, double limit_s = 60) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    uint64_t total = 0;
    for (int i = 1; i <= c.size(); ++i) {
      if (c.Running(i)) total += Queued(c, i);
    }
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (total == 0) return elapsed;
    REQUIRE_MESSAGE(elapsed < limit_s, total << " hints still queued after " << limit_s << " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int CountLocal(Cluster& c, int i, int keys) {
  auto client = c.Connect(i);
  int found = 0;
  for (int k = 0; k < keys; ++k) {
    auto doc = client->Info("local", "key-" + std::to_string(k));
    REQUIRE(doc.ok());
    found += json::parse(*doc)["found"].get<bool>();
  }
  return found;
}

void WriteKeys(Cluster& c, int via, int keys) {
  auto client = c.Connect(via);
  Quorum q;
  q.w = 2;
  for (int k = 0; k < keys; ++k) {
    auto r = client->Put("key-" + std::to_string(k), "value-" + std::to_string(k), "", q);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  }
}

}  // namespace

TEST_CASE("hinted handoff: a node that was down gets every write back from hints") {
  Cluster c(3);
  c.Stop(2);
  WriteKeys(c, 1, 1000);
  CHECK(Queued(c, 1) + Queued(c, 3) >= 1000);
  c.Start(2);
  double drained = WaitForHintsToDrain(c);
  c.Stop(1);
  c.Stop(3);
  int found = CountLocal(c, 2, 1000);
  REPORT("hinted handoff: 1000 writes while n2 was down; hints drained " << drained
                                                                         << " s after it returned; n2 alone holds "
                                                                         << found);
  CHECK(found == 1000);
}

TEST_CASE("hinted handoff: hints survive kill -9 of the node holding them") {
  Cluster c(3);
  c.Stop(2);
  WriteKeys(c, 1, 1000);
  uint64_t before = Queued(c, 1) + Queued(c, 3);
  CHECK(before >= 1000);
  c.Kill(1);
  c.Kill(3);
  c.Start(1);
  c.Start(3);
  CHECK(Queued(c, 1) + Queued(c, 3) == before);
  c.Start(2);
  WaitForHintsToDrain(c);
  c.Stop(1);
  c.Stop(3);
  CHECK(CountLocal(c, 2, 1000) == 1000);
}

TEST_CASE("hinted handoff: with two primaries down a sloppy w=2 write succeeds and a strict one fails") {
  Cluster c(5);
  auto info = c.Connect(1)->Info("preflist", "k");
  REQUIRE(info.ok());
  json pref = json::parse(*info);
  int p0 = std::stoi(pref["primaries"][0]["id"].get<std::string>().substr(1));
  int p1 = std::stoi(pref["primaries"][1]["id"].get<std::string>().substr(1));
  int p2 = std::stoi(pref["primaries"][2]["id"].get<std::string>().substr(1));
  c.Kill(p1);
  c.Kill(p2);
  auto strict = c.Cli(p0, {"put", "k", "v1", "--w", "2", "--strict"});
  CHECK(strict.exit_code == 3);
  CHECK_MESSAGE(strict.err.find("write quorum not met") != std::string::npos, strict.err);
  auto sloppy = c.Cli(p0, {"put", "k", "v2", "--w", "2", "--sloppy"});
  CHECK_MESSAGE(sloppy.exit_code == 0, sloppy.err);
  // The hints go home when the primaries return.
  c.Start(p1);
  c.Start(p2);
  WaitForHintsToDrain(c);
  for (int p : {p0, p1, p2}) {
    auto doc = c.Connect(p)->Info("local", "k");
    CHECK(json::parse(*doc)["found"] == true);
  }
}
