// Tombstone reaping (node/tombstone_reaper.h) on the simulator: deleted keys
// disappear from every node after the grace period, never before, never
// while a member is down, and never come back — not from a fallback's hint
// of an older version, not from a message that arrives after the reap, not
// by a new write losing to a tombstone a primary kept.
#include <doctest/doctest.h>

#include <algorithm>

#include "core/codec.h"
#include "report.h"
#include "sim/sim.h"
#include "unit/replies.h"

using namespace ringkv;
using ringkv::sim::World;
using ringkv::test::AsReply;

namespace {

constexpr uint64_t kGraceMs = 30'000;

NodeConfig Base() {
  NodeConfig c;
  c.n = 3;
  c.r = 2;
  c.w = 2;
  c.timeout_ms = 500;
  c.mode = Mode::kSloppy;
  c.aae.interval_ms = 1000;
  c.tombstones.grace_ms = kGraceMs;
  return c;
}

Reply Put(World& w, int via, const std::string& key, const std::string& value) {
  PutRequest p;
  p.key = key;
  p.value = value;
  return AsReply(w.Call(via, p));
}

Reply Get(World& w, int via, const std::string& key, Quorum q = {}) {
  return AsReply(w.Call(via, GetRequest{key, q}));
}

// A delete with the context of a read, as a client does it.
Reply Delete(World& w, int via, const std::string& key) {
  Reply got = Get(w, via, key);
  REQUIRE_MESSAGE((got.status.ok() || got.status.IsNotFound()), got.status.ToString());
  PutRequest p;
  p.key = key;
  p.tombstone = true;
  if (got.object) p.context = EncodeContext(got.object->clock());
  return AsReply(w.Call(via, p));
}

std::vector<NodeId> Primaries(World& w, const std::string& key) {
  return w.ring().Primaries(w.ring().PartitionOfKey(key), 3);
}

int Index(const NodeId& id) { return std::stoi(id.substr(1)); }

bool Holds(World& w, int i, const std::string& key, DvvSet* out = nullptr) {
  DvvSet obj;
  bool ok = w.node(i).store().Get(key, &obj).ok();
  if (out) *out = obj;
  return ok;
}

// Nodes whose store holds an object for key.
int Holders(World& w, const std::string& key) {
  int n = 0;
  for (int i = 1; i <= w.size(); ++i) n += Holds(w, i, key);
  return n;
}

int HoldersOfAny(World& w, const std::vector<std::string>& keys) {
  int n = 0;
  for (const auto& k : keys) n += Holders(w, k);
  return n;
}

uint64_t Erased(World& w) {
  uint64_t n = 0;
  for (int i = 1; i <= w.size(); ++i) {
    if (w.node(i).up()) n += w.node(i).node()->reaper().stats().erased;
  }
  return n;
}

// Runs until no node holds any of keys (or limit_ms); the time it took.
uint64_t RunUntilReaped(World& w, const std::vector<std::string>& keys, uint64_t limit_ms) {
  uint64_t start = w.now_us();
  while (HoldersOfAny(w, keys) > 0 && w.now_us() - start < limit_ms * 1000) w.RunFor(500);
  return (w.now_us() - start) / 1000;
}

// Every key reads as not found through every node, with r=3.
void CheckAllNotFound(World& w, const std::vector<std::string>& keys) {
  Quorum q;
  q.r = 3;
  for (const auto& k : keys) {
    for (int i = 1; i <= w.size(); ++i) {
      Reply r = Get(w, i, k, q);
      CHECK_MESSAGE(r.status.IsNotFound(), k << " via n" << i << ": " << r.status.ToString());
      if (r.object) CHECK(r.object->LiveSiblings().empty());
    }
  }
}

std::vector<std::string> WriteAndDelete(World& w, int count, const std::string& prefix) {
  std::vector<std::string> keys;
  for (int k = 0; k < count; ++k) {
    std::string key = prefix + std::to_string(k);
    int via = 1 + k % w.size();
    REQUIRE(Put(w, via, key, "v" + std::to_string(k)).status.ok());
    Reply d = Delete(w, 1 + (k + 2) % w.size(), key);
    REQUIRE_MESSAGE(d.status.ok(), d.status.ToString());
    keys.push_back(key);
  }
  return keys;
}

}  // namespace

TEST_CASE("tombstones: reaped from every node after the grace period, not before") {
  World w(61, 5, Base());
  w.RunFor(3000);  // the failure detectors hear from everyone
  auto keys = WriteAndDelete(w, 40, "gone-");
  uint64_t deleted_at = w.now_us();
  w.RunFor(kGraceMs - 5000);
  // Before the grace: every primary holds the tombstone, nothing is reaped.
  CHECK(Erased(w) == 0);
  for (const auto& k : keys) {
    for (const NodeId& p : Primaries(w, k)) {
      DvvSet obj;
      REQUIRE_MESSAGE(Holds(w, Index(p), k, &obj), k << " on " << p);
      CHECK(obj.IsDeleted());
    }
  }
  uint64_t took = RunUntilReaped(w, keys, 60'000);
  CHECK(HoldersOfAny(w, keys) == 0);
  CHECK(Erased(w) == keys.size() * 3);  // each primary's copy, once
  CHECK(w.HintsQueued() == 0);
  CheckAllNotFound(w, keys);
  uint64_t checks = 0, aborted = 0;
  for (int i = 1; i <= w.size(); ++i) {
    checks += w.node(i).node()->reaper().stats().checks_sent;
    aborted += w.node(i).node()->reaper().stats().keys_aborted;
  }
  CHECK(aborted == 0);
  REPORT("tombstones: " << keys.size() << " deleted keys on 5 nodes reaped "
                        << (w.now_us() - deleted_at) / 1000 << " ms after the deletes (grace "
                        << kGraceMs << " ms; last one " << took << " ms after the grace - 5 s); "
                        << Erased(w) << " tombstones erased, " << checks
                        << " ReapCheck messages");
}

TEST_CASE("tombstones: nothing is reaped while a node is down; everything once it is back") {
  World w(62, 5, Base());
  w.RunFor(3000);
  std::vector<std::string> keys;
  for (int k = 0; k < 30; ++k) {
    keys.push_back("down-" + std::to_string(k));
    REQUIRE(Put(w, 1 + k % 5, keys.back(), "old").status.ok());
  }
  w.RunFor(1000);
  // n3 goes down holding the old values; the deletes reach it as hints.
  w.node(3).Crash();
  w.RunFor(5000);
  for (size_t k = 0; k < keys.size(); ++k) {
    Reply d = Delete(w, 1 + static_cast<int>(k % 2) * 3, keys[k]);  // via n1 or n4
    REQUIRE_MESSAGE(d.status.ok(), d.status.ToString());
  }
  uint64_t hinted = w.HintsQueued();
  w.RunFor(3 * kGraceMs);
  CHECK(Erased(w) == 0);
  uint64_t skipped = 0;
  for (int i : {1, 2, 4, 5}) skipped += w.node(i).node()->reaper().stats().keys_skipped;
  CHECK(skipped > 0);  // the reapers found them and waited
  int n3_old = 0;
  for (const auto& k : keys) {
    DvvSet obj;
    if (Holds(w, 3, k, &obj)) {
      CHECK(!obj.LiveSiblings().empty());  // n3's disk still has the old value
      ++n3_old;
    }
  }
  w.node(3).Restart();
  uint64_t took = RunUntilReaped(w, keys, 120'000);
  CHECK(HoldersOfAny(w, keys) == 0);
  CHECK(w.HintsQueued() == 0);
  CheckAllNotFound(w, keys);
  REPORT("tombstones: with n3 down for " << 3 * kGraceMs / 1000 << " s, 0 of " << keys.size()
                                         << " deleted keys reaped (" << skipped
                                         << " candidates deferred; n3 kept " << n3_old
                                         << " old values, " << hinted
                                         << " delete hints waited); all reaped " << took
                                         << " ms after n3 returned");
}

TEST_CASE("tombstones: an older version in a fallback's hint never brings a reaped key back") {
  World w(63, 5, Base());
  w.RunFor(3000);
  const std::string key = "hinted";
  auto p = Primaries(w, key);
  int p0 = Index(p[0]), p2 = Index(p[2]);
  // 1. p2 is down: the write of v lands on a fallback F as a hint for p2.
  w.node(p2).Crash();
  w.RunFor(5000);
  Reply v = Put(w, p0, key, "v");
  REQUIRE(v.status.ok());
  REQUIRE(v.object.has_value());
  w.RunFor(300);
  int f = -1;
  for (int i = 1; i <= w.size(); ++i) {
    Hint h;
    if (w.node(i).store().GetHint(p[2], key, &h).ok()) f = i;
  }
  REQUIRE(f > 0);
  // 2. F is down too when the key is deleted: the delete's hint for p2 goes
  //    elsewhere, and F keeps the hint of v, older than the tombstone.
  w.node(f).Crash();
  w.RunFor(5000);
  Reply d = Delete(w, p0, key);
  REQUIRE_MESSAGE(d.status.ok(), d.status.ToString());
  w.RunFor(1000);
  // 3. Everyone is back, but F cannot reach p2, so its hint of v stays.
  w.node(f).Restart();
  w.Cut(w.node(f).id(), p[2]);
  w.node(p2).Restart();
  w.RunFor(kGraceMs + 30'000);
  {
    Hint h;
    REQUIRE(w.node(f).store().GetHint(p[2], key, &h).ok());
    // The reaper's check merged the tombstone into F's hint and, seeing a
    // hint waiting, did not reap.
    CHECK(h.object.IsDeleted());
    CHECK(Holders(w, key) == 3);
    CHECK(Erased(w) == 0);
  }
  // 4. F delivers (the tombstone, not v); then the key is reaped everywhere.
  w.Uncut(w.node(f).id(), p[2]);
  uint64_t took = RunUntilReaped(w, {key}, 90'000);
  CHECK(Holders(w, key) == 0);
  CHECK(w.HintsQueued() == 0);
  CheckAllNotFound(w, {key});
  // 5. The old version arrives again, late, as a replayed hint at F and as a
  //    replica write at a primary (a message delayed past the reap): the
  //    fences turn both into the tombstone; they are reaped again.
  w.node(f).node()->OnMessage(0, Envelope{0, p[0], "ringkv", ReplicaWrite{key, *v.object, p[2]}});
  w.node(Index(p[1])).node()->OnMessage(0, Envelope{0, p[0], "ringkv", ReplicaWrite{key, *v.object, {}}});
  CheckAllNotFound(w, {key});
  for (int i = 1; i <= w.size(); ++i) {
    DvvSet obj;
    if (Holds(w, i, key, &obj)) CHECK(obj.LiveSiblings().empty());
  }
  uint64_t again = RunUntilReaped(w, {key}, 90'000);
  CHECK(Holders(w, key) == 0);
  CHECK(w.HintsQueued() == 0);
  CheckAllNotFound(w, {key});
  REPORT("tombstones: a fallback's hint of the deleted value blocked reaping until it was "
         "delivered (as a tombstone); reaped " << took << " ms after the link healed; a late "
         "copy of the old value came back as a tombstone and was reaped again in " << again
         << " ms");
}

TEST_CASE("tombstones: a write after a reap survives a tombstone a primary kept (no dot reuse)") {
  World w(64, 5, Base());
  w.RunFor(3000);
  const std::string key = "reborn";
  auto p = Primaries(w, key);
  int p0 = Index(p[0]), p2 = Index(p[2]);
  REQUIRE(Put(w, p0, key, "v1").status.ok());  // dot p0:1
  REQUIRE(Delete(w, p0, key).status.ok());     // dot p0:2
  w.RunFor(500);
  DvvSet tombstone;
  REQUIRE(Holds(w, p0, key, &tombstone));
  REQUIRE(tombstone.IsDeleted());
  REQUIRE(tombstone.clock().Get(p[0]) == 2);
  RunUntilReaped(w, {key}, 90'000);
  REQUIRE(Holders(w, key) == 0);
  w.RunFor(TombstoneReaper::kFenceMs + 1000);  // the nodes forget the key entirely
  // p2 "missed the Reap": it has the tombstone again.
  w.node(p2).node()->OnMessage(0, Envelope{0, p[1], "ringkv", ReplicaWrite{key, tombstone, {}}});
  REQUIRE(Holds(w, p2, key));
  // A blind write of the reborn key, coordinated by p0, which forgot it.
  Reply v2 = Put(w, p0, key, "v2");
  REQUIRE(v2.status.ok());
  REQUIRE(v2.dot.has_value());
  CHECK(v2.dot->actor == p[0]);
  CHECK(v2.dot->counter > 2);  // not p0:1, which the kept tombstone covers
  w.RunFor(20'000);            // anti-entropy, and the reaper, run
  Quorum q;
  q.r = 3;
  Reply got = Get(w, p0, key, q);
  REQUIRE_MESSAGE(got.status.ok(), got.status.ToString());
  REQUIRE(got.object.has_value());
  auto live = got.object->LiveSiblings();
  REQUIRE(live.size() == 1);
  CHECK(live[0]->value == "v2");
  for (const NodeId& id : p) {
    DvvSet obj;
    REQUIRE(Holds(w, Index(id), key, &obj));
    CHECK(obj.LiveSiblings().size() == 1);
  }
  REPORT("tombstones: after a reap, a new write got dot " << v2.dot->ToString()
                                                          << " (the reaped clock had "
                                                          << tombstone.clock().ToString()
                                                          << ") and survived a kept tombstone");
}

TEST_CASE("tombstones: a write racing the reap wins (compare-and-delete)") {
  World w(65, 5, Base());
  w.RunFor(3000);
  auto keys = WriteAndDelete(w, 20, "race-");
  w.RunFor(kGraceMs - 1000);
  // Blind writes land while the reapers start their rounds.
  std::vector<std::string> rewritten;
  for (size_t k = 0; k < keys.size(); k += 2) {
    REQUIRE(Put(w, 1 + static_cast<int>(k) % 5, keys[k], "again").status.ok());
    rewritten.push_back(keys[k]);
    w.RunFor(100);
  }
  w.RunFor(60'000);
  for (size_t k = 0; k < keys.size(); ++k) {
    Quorum q;
    q.r = 3;
    Reply r = Get(w, 1, keys[k], q);
    if (k % 2 == 0) {
      REQUIRE_MESSAGE(r.status.ok(), keys[k] << ": " << r.status.ToString());
      auto live = r.object->LiveSiblings();
      REQUIRE(live.size() == 1);
      CHECK(live[0]->value == "again");
      for (const NodeId& id : Primaries(w, keys[k])) CHECK(Holds(w, Index(id), keys[k]));
    } else {
      CHECK(r.status.IsNotFound());
      CHECK(Holders(w, keys[k]) == 0);
    }
  }
  REPORT("tombstones: " << rewritten.size() << " keys written again around the grace all kept "
                        << "their new value; the other " << keys.size() - rewritten.size()
                        << " were reaped");
}

TEST_CASE("tombstones: a grace of 0 never reaps") {
  NodeConfig c = Base();
  c.tombstones.grace_ms = 0;
  World w(66, 4, c);
  w.RunFor(3000);
  auto keys = WriteAndDelete(w, 10, "kept-");
  w.RunFor(120'000);
  CHECK(Erased(w) == 0);
  for (const auto& k : keys) CHECK(Holders(w, k) == 3);
  CheckAllNotFound(w, keys);
}

TEST_CASE("tombstones: malformed reap messages are refused by the codec") {
  DvvSet live = DvvSet::Update({}, {}, "n1", "v", false, 1);
  auto bad = DecodeEnvelope(EncodeEnvelope(Envelope{1, "n1", "c", ReapCheck{{{"k", live}}}}));
  CHECK(bad.status().IsInvalidArgument());
  bad = DecodeEnvelope(EncodeEnvelope(Envelope{1, "n1", "c", Reap{{{"k", live}}}}));
  CHECK(bad.status().IsInvalidArgument());
  DvvSet tomb = DvvSet::Update(live, live.clock(), "n1", "", true, 2);
  bad = DecodeEnvelope(EncodeEnvelope(Envelope{1, "n1", "c", Reap{{{"", tomb}}}}));
  CHECK(bad.status().IsInvalidArgument());
  auto good = DecodeEnvelope(EncodeEnvelope(Envelope{1, "n1", "c", Reap{{{"k", tomb}}}}));
  REQUIRE(good.ok());
  CHECK(std::get<Reap>(good->body).entries[0].object == tomb);
}
