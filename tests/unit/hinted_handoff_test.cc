// Sloppy quorums and hinted handoff, on the simulator.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "core/codec.h"
#include "report.h"
#include "sim/sim.h"

using namespace ringkv;
using ringkv::sim::World;

namespace {

NodeConfig Base() {
  NodeConfig c;
  c.n = 3;
  c.r = 2;
  c.w = 2;
  c.timeout_ms = 500;
  c.mode = Mode::kSloppy;
  return c;
}

Reply Put(World& w, int via, const std::string& key, const std::string& value, Mode mode) {
  PutRequest p;
  p.key = key;
  p.value = value;
  p.quorum.mode = mode;
  auto env = w.Call(via, p);
  REQUIRE(env.has_value());
  return std::get<Reply>(env->body);
}

std::vector<NodeId> Primaries(World& w, const std::string& key) {
  return w.ring().Primaries(w.ring().PartitionOfKey(key), 3);
}

int Index(const NodeId& id) { return std::stoi(id.substr(1)); }

bool Holds(World& w, const NodeId& id, const std::string& key) {
  DvvSet obj;
  return w.ByName(id)->store().Get(key, &obj).ok();
}

int Outsider(World& w, const std::string& key) {
  auto p = Primaries(w, key);
  for (int i = 1; i <= w.size(); ++i) {
    if (std::find(p.begin(), p.end(), w.node(i).id()) == p.end()) return i;
  }
  return -1;
}

}  // namespace

TEST_CASE("sloppy: with two primaries down a sloppy w=2 write succeeds and a strict one fails") {
  World w(21, 5, Base());
  auto p = Primaries(w, "k");
  w.node(Index(p[1])).Crash();
  w.node(Index(p[2])).Crash();
  Reply strict = Put(w, Index(p[0]), "k", "v", Mode::kStrict);
  CHECK(strict.status.IsUnavailable());
  CHECK(strict.status.message().find("write quorum not met: 1 of w=2") == 0);
  Reply sloppy = Put(w, Index(p[0]), "k", "v", Mode::kSloppy);
  CHECK_MESSAGE(sloppy.status.ok(), sloppy.status.ToString());
  w.RunFor(100);
  // The fallbacks hold the write as hints, not as their own objects.
  CHECK(w.HintsQueued() >= 1);
  for (int i = 1; i <= 5; ++i) {
    if (std::count(p.begin(), p.end(), w.node(i).id()) == 0) CHECK(!Holds(w, w.node(i).id(), "k"));
  }
  // A sloppy read finds it through the fallbacks.
  GetRequest g{"k", {}};
  g.quorum.mode = Mode::kSloppy;
  auto got = w.Call(Outsider(w, "k"), g);
  REQUIRE(got.has_value());
  CHECK_MESSAGE(std::get<Reply>(got->body).status.ok(), std::get<Reply>(got->body).status.ToString());
}

TEST_CASE("sloppy: hints drain to primaries when they return, also after the holder crashes") {
  World w(22, 5, Base());
  std::vector<std::string> keys;
  for (int k = 0; k < 60; ++k) keys.push_back("key" + std::to_string(k));
  w.node(2).Crash();
  w.node(4).Crash();
  for (size_t k = 0; k < keys.size(); ++k) {
    int via = (k % 2 == 0) ? 1 : 3;
    REQUIRE(Put(w, via, keys[k], "v", Mode::kSloppy).status.ok());
  }
  w.RunFor(200);
  uint64_t queued = w.HintsQueued();
  CHECK(queued > 0);
  // Every hint holder crashes and comes back: hints are durable.
  for (int i : {1, 3, 5}) {
    w.node(i).Crash();
    w.node(i).Restart();
  }
  CHECK(w.HintsQueued() == queued);
  w.node(2).Restart();
  w.node(4).Restart();
  w.RunFor(30000);
  CHECK(w.HintsQueued() == 0);
  for (const auto& key : keys) {
    for (const auto& id : Primaries(w, key)) CHECK_MESSAGE(Holds(w, id, key), key << " on " << id);
  }
  REPORT("sloppy: " << queued << " hints for 60 keys drained after the holders restarted");
}

TEST_CASE("sloppy: in a 3-node cluster the coordinator keeps the hint for a down primary") {
  World w(23, 3, Base());
  w.node(2).Crash();
  for (int k = 0; k < 100; ++k) {
    REQUIRE(Put(w, k % 2 == 0 ? 1 : 3, "k" + std::to_string(k), "v", Mode::kSloppy).status.ok());
  }
  w.RunFor(100);
  CHECK(w.HintsQueued() == 100);
  w.node(2).Restart();
  w.RunFor(30000);
  CHECK(w.HintsQueued() == 0);
  for (int k = 0; k < 100; ++k) CHECK(Holds(w, "n2", "k" + std::to_string(k)));
}

TEST_CASE("sloppy: random crash and restart schedules: hints drain and every key reaches its primaries") {
  int seeds = 30;
  uint64_t total_acked = 0, total_hints = 0;
  for (int seed = 1; seed <= seeds; ++seed) {
    World w(1000 + seed, 5, Base());
    std::mt19937_64& rng = w.rng();
    std::set<std::string> acked;
    std::set<int> down;
    uint64_t peak_hints = 0;
    for (int step = 0; step < 150; ++step) {
      int action = static_cast<int>(rng() % 10);
      if (action == 0 && down.size() < 2) {
        int victim = 1 + static_cast<int>(rng() % 5);
        if (!down.contains(victim)) {
          w.node(victim).Crash();
          down.insert(victim);
        }
      } else if (action == 1 && !down.empty()) {
        int back = *down.begin();
        w.node(back).Restart();
        down.erase(back);
      } else {
        int via = 1 + static_cast<int>(rng() % 5);
        if (down.contains(via)) continue;
        std::string key = "key" + std::to_string(rng() % 40);
        if (Put(w, via, key, "v" + std::to_string(step), Mode::kSloppy).status.ok()) acked.insert(key);
      }
      w.RunFor(rng() % 50);
      peak_hints = std::max(peak_hints, w.HintsQueued());
    }
    for (int i : down) w.node(i).Restart();
    w.RunFor(60000);
    INFO("seed " << 1000 + seed);
    CHECK(w.HintsQueued() == 0);
    for (const auto& key : acked) {
      for (const auto& id : Primaries(w, key)) CHECK_MESSAGE(Holds(w, id, key), key << " on " << id);
    }
    total_acked += acked.size();
    total_hints += peak_hints;
  }
  REPORT("sloppy: " << seeds << " crash/restart schedules, " << total_acked
                    << " acknowledged keys all on their primaries after healing; peak hints summed "
                    << total_hints << ", all drained");
}
