// The quorum coordinator (node/node.h) driven through the simulator: no
// sockets, virtual time, real codec on every message.
#include <doctest/doctest.h>

#include <algorithm>

#include "core/codec.h"
#include "sim/sim.h"
#include "unit/replies.h"

using namespace ringkv;
using ringkv::sim::World;
using ringkv::test::AsReply;

namespace {

NodeConfig Base() {
  NodeConfig c;
  c.n = 3;
  c.r = 2;
  c.w = 2;
  c.timeout_ms = 500;
  c.mode = Mode::kStrict;  // sloppy behaviour has its own tests below
  return c;
}

Reply Put(World& w, int via, const std::string& key, const std::string& value, Quorum q = {},
          std::string context = {}) {
  PutRequest p;
  p.key = key;
  p.value = value;
  p.quorum = q;
  p.context = std::move(context);
  return AsReply(w.Call(via, p));
}

Reply Get(World& w, int via, const std::string& key, Quorum q = {}) {
  return AsReply(w.Call(via, GetRequest{key, q}));
}

int IndexOf(World& w, const NodeId& id) { return std::stoi(id.substr(1)); }

std::vector<NodeId> Primaries(World& w, const std::string& key) {
  return w.ring().Primaries(w.ring().PartitionOfKey(key), 3);
}

int NonReplica(World& w, const std::string& key) {
  auto p = Primaries(w, key);
  for (int i = 1; i <= w.size(); ++i) {
    if (std::find(p.begin(), p.end(), w.node(i).id()) == p.end()) return i;
  }
  return -1;
}

bool Holds(World& w, const NodeId& id, const std::string& key, DvvSet* out = nullptr) {
  DvvSet obj;
  bool ok = w.ByName(id)->store().Get(key, &obj).ok();
  if (out) *out = obj;
  return ok;
}

std::vector<std::string> LiveValues(const DvvSet& o) {
  std::vector<std::string> v;
  for (auto* s : o.LiveSiblings()) v.push_back(s->value);
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("coordinator: a put is stored on exactly the key's n primaries") {
  World w(1, 5, Base());
  for (int k = 0; k < 50; ++k) {
    std::string key = "key" + std::to_string(k);
    Reply r = Put(w, 1 + k % 5, key, "v");
    REQUIRE(r.status.ok());
    w.RunUntilIdle();
    auto primaries = Primaries(w, key);
    for (int i = 1; i <= 5; ++i) {
      bool primary = std::count(primaries.begin(), primaries.end(), w.node(i).id()) > 0;
      CHECK_MESSAGE(Holds(w, w.node(i).id(), key) == primary, key << " on " << w.node(i).id());
    }
    // The dot was minted by a primary even when a non-replica took the request.
    REQUIRE(r.dot.has_value());
    CHECK(std::count(primaries.begin(), primaries.end(), r.dot->actor) == 1);
  }
}

TEST_CASE("coordinator: a non-replica forwards puts and coordinates gets itself") {
  World w(2, 5, Base());
  int other = NonReplica(w, "k");
  REQUIRE(other > 0);
  REQUIRE(Put(w, other, "k", "v").status.ok());
  CHECK(w.node(other).node()->stats().forwarded_puts == 1);
  Reply g = Get(w, other, "k");
  REQUIRE(g.status.ok());
  CHECK(LiveValues(*g.object) == std::vector<std::string>{"v"});
  CHECK(!Holds(w, w.node(other).id(), "k"));
}

TEST_CASE("coordinator: w=3 with a primary down fails naming what it got; w=2 succeeds") {
  World w(3, 5, Base());
  auto p = Primaries(w, "k");
  w.node(IndexOf(w, p[2])).Crash();
  Quorum q3;
  q3.w = 3;
  Reply r = Put(w, IndexOf(w, p[0]), "k", "v", q3);
  CHECK(r.status.IsUnavailable());
  // It fails as soon as w=3 became impossible, naming the replica that failed.
  CHECK_MESSAGE(r.status.message().find("write quorum not met: ") == 0, r.status.message());
  CHECK(r.status.message().find("of w=3 acknowledgements from n=3 replicas") != std::string::npos);
  CHECK(r.status.message().find(p[2]) != std::string::npos);
  CHECK(r.status.message().find("1 failed") != std::string::npos);
  Reply ok = Put(w, IndexOf(w, p[0]), "k", "v2");
  CHECK(ok.status.ok());
  CHECK(w.node(IndexOf(w, p[0])).node()->stats().write_quorum_failures == 1);
}

TEST_CASE("coordinator: a silent replica is reported as timed out") {
  World w(4, 5, Base());
  auto p = Primaries(w, "k");
  int coord = IndexOf(w, p[0]);
  w.Cut(p[0], p[1]);
  w.Cut(p[0], p[2]);
  Quorum q;
  q.w = 2;
  Reply r = Put(w, coord, "k", "v", q);
  CHECK(r.status.IsUnavailable());
  // Silent replicas are named in preference-list order.
  CHECK(r.status.message() ==
        "write quorum not met: 1 of w=2 acknowledgements from n=3 replicas (2 timed out: " +
            p[1] + ", " + p[2] + ")");
  // The write is not rolled back: it stays on the coordinator.
  CHECK(Holds(w, p[0], "k"));
}

TEST_CASE("coordinator: r and w count distinct replicas even when messages are duplicated") {
  World w(5, 5, Base());
  w.network().duplicate_probability = 1.0;
  auto p = Primaries(w, "k");
  w.node(IndexOf(w, p[2])).Crash();
  Quorum q3;
  q3.w = 3;
  CHECK(Put(w, IndexOf(w, p[0]), "k", "v", q3).status.IsUnavailable());
  Quorum r3;
  r3.r = 3;
  CHECK(Get(w, IndexOf(w, p[0]), "k", r3).status.IsUnavailable());
  w.RunUntilIdle();
  CHECK(Get(w, IndexOf(w, p[1]), "k").status.ok());
}

TEST_CASE("coordinator: the answer comes after r replies; late replies still feed read repair") {
  World w(6, 5, Base());
  auto p = Primaries(w, "k");
  Reply first = Put(w, IndexOf(w, p[0]), "k", "v1");
  REQUIRE(first.status.ok());
  w.RunUntilIdle();
  // p[2] misses the next write, which replaces v1.
  w.Cut(p[0], p[2]);
  REQUIRE(Put(w, IndexOf(w, p[0]), "k", "v2", {}, EncodeContext(first.object->clock())).status.ok());
  w.RunUntilIdle();
  w.Heal();
  DvvSet stale;
  REQUIRE(Holds(w, p[2], "k", &stale));
  CHECK(LiveValues(stale) == std::vector<std::string>{"v1"});
  // r=1 at p[2] itself answers with its own (stale) copy at once...
  Quorum r1;
  r1.r = 1;
  Reply fast = Get(w, IndexOf(w, p[2]), "k", r1);
  REQUIRE(fast.status.ok());
  CHECK(LiveValues(*fast.object) == std::vector<std::string>{"v1"});
  // ...and the late replies from the others repair it afterwards.
  w.RunUntilIdle();
  DvvSet repaired;
  REQUIRE(Holds(w, p[2], "k", &repaired));
  CHECK_MESSAGE(LiveValues(repaired) == std::vector<std::string>{"v2"}, repaired.ToString());
  CHECK(w.node(IndexOf(w, p[2])).node()->stats().read_repairs == 1);
}

TEST_CASE("coordinator: read repair writes only to replicas that were missing or older") {
  World w(7, 5, Base());
  auto p = Primaries(w, "k");
  w.node(IndexOf(w, p[1])).Crash();
  Quorum strict2;
  strict2.w = 2;
  strict2.mode = Mode::kStrict;
  REQUIRE(Put(w, IndexOf(w, p[0]), "k", "v", strict2).status.ok());
  w.RunUntilIdle();
  w.node(IndexOf(w, p[1])).Restart();
  CHECK(!Holds(w, p[1], "k"));
  int coord = NonReplica(w, "k");
  Quorum r3;
  r3.r = 3;
  Reply g = Get(w, coord, "k", r3);
  REQUIRE(g.status.ok());
  w.RunUntilIdle();
  CHECK(Holds(w, p[1], "k"));
  CHECK(w.node(coord).node()->stats().read_repairs == 1);  // only p[1]
  // A second read finds nothing to repair.
  REQUIRE(Get(w, coord, "k", r3).status.ok());
  w.RunUntilIdle();
  CHECK(w.node(coord).node()->stats().read_repairs == 1);
}

TEST_CASE("coordinator: concurrent blind writes at different replicas merge into siblings") {
  World w(8, 5, Base());
  auto p = Primaries(w, "cart");
  Quorum w1;
  w1.w = 1;
  // Both writes race: neither replica has seen the other's write when it mints.
  std::optional<Envelope> a, b;
  PutRequest pa{"cart", "milk", false, "", w1, false};
  PutRequest pb{"cart", "eggs", false, "", w1, false};
  w.Request(IndexOf(w, p[0]), pa, [&](Envelope e) { a = std::move(e); });
  w.Request(IndexOf(w, p[1]), pb, [&](Envelope e) { b = std::move(e); });
  w.RunUntilIdle();
  REQUIRE(AsReply(a).status.ok());
  REQUIRE(AsReply(b).status.ok());
  for (int i = 1; i <= 5; ++i) {
    Reply g = Get(w, i, "cart");
    REQUIRE(g.status.ok());
    CHECK(LiveValues(*g.object) == std::vector<std::string>{"eggs", "milk"});
  }
  // A write with the merged context resolves them, wherever it goes.
  Reply g = Get(w, 1, "cart");
  Reply resolved = Put(w, 3, "cart", "eggs,milk", {}, EncodeContext(g.object->clock()));
  REQUIRE(resolved.status.ok());
  w.RunUntilIdle();
  Quorum r3;
  r3.r = 3;
  CHECK(LiveValues(*Get(w, 2, "cart", r3).object) == std::vector<std::string>{"eggs,milk"});
}

TEST_CASE("coordinator: an lww read answers with the newest sibling and repairs with all of them") {
  World w(18, 5, Base());
  auto p = Primaries(w, "cart");
  Quorum w1;
  w1.w = 1;
  std::optional<Envelope> a, b;
  w.Request(IndexOf(w, p[0]), PutRequest{"cart", "milk", false, "", w1, false},
            [&](Envelope e) { a = std::move(e); });
  w.Request(IndexOf(w, p[1]), PutRequest{"cart", "eggs", false, "", w1, false},
            [&](Envelope e) { b = std::move(e); });
  w.RunUntilIdle();
  REQUIRE(AsReply(a).status.ok());
  REQUIRE(AsReply(b).status.ok());
  // p[2] misses both, so the read repairs it.
  w.node(IndexOf(w, p[2])).store().Erase("cart");
  Quorum lww;
  lww.r = 3;
  lww.lww = true;
  Reply g = Get(w, NonReplica(w, "cart"), "cart", lww);
  REQUIRE(g.status.ok());
  CHECK(g.object->LiveSiblings().size() == 1);
  w.RunUntilIdle();
  // Nobody else's conflict was resolved by that read.
  for (const NodeId& id : p) {
    DvvSet held;
    REQUIRE(Holds(w, id, "cart", &held));
    CHECK(LiveValues(held) == std::vector<std::string>{"eggs", "milk"});
  }
}

TEST_CASE("coordinator: pr and pw count primaries only and say so") {
  World w(9, 5, Base());
  auto p = Primaries(w, "k");
  REQUIRE(Put(w, IndexOf(w, p[0]), "k", "v").status.ok());
  w.RunUntilIdle();
  w.node(IndexOf(w, p[2])).Crash();
  Quorum q;
  q.r = 3;
  q.pr = 3;
  Reply r = Get(w, IndexOf(w, p[0]), "k", q);
  CHECK(r.status.IsUnavailable());
  CHECK_MESSAGE(r.status.message().find(" of pr=3 from primaries") != std::string::npos, r.status.message());
  Quorum pw;
  pw.w = 2;
  pw.pw = 2;
  CHECK(Put(w, IndexOf(w, p[0]), "k", "v2", pw).status.ok());
}

TEST_CASE("coordinator: impossible quorum settings are refused before anything is written") {
  World w(10, 3, Base());
  Quorum q;
  q.n = 5;
  Reply r = Put(w, 1, "k", "v", q);
  CHECK(r.status.IsInvalidArgument());
  CHECK(r.status.message() == "n=5 but the cluster has 3 nodes");
  q = {};
  q.r = 4;
  CHECK(Get(w, 1, "k", q).status.message() == "r=4 is more than n=3");
  q = {};
  q.n = 2;
  q.w = 3;
  CHECK(Put(w, 1, "k", "v", q).status.message() == "w=3 is more than n=2");
  q = {};
  q.w = 1;
  q.pw = 2;
  CHECK(Put(w, 1, "k", "v", q).status.IsInvalidArgument());
  w.RunUntilIdle();
  for (int i = 1; i <= 3; ++i) CHECK(!Holds(w, w.node(i).id(), "k"));
}

TEST_CASE("coordinator: a request's n takes a prefix of the preference list") {
  World w(11, 5, Base());
  auto p = Primaries(w, "k");
  Quorum q;
  q.n = 2;
  q.w = 2;
  REQUIRE(Put(w, IndexOf(w, p[0]), "k", "v", q).status.ok());
  w.RunUntilIdle();
  CHECK(Holds(w, p[0], "k"));
  CHECK(Holds(w, p[1], "k"));
  CHECK(!Holds(w, p[2], "k"));
  q.r = 2;
  CHECK(Get(w, NonReplica(w, "k"), "k", q).status.ok());
}
