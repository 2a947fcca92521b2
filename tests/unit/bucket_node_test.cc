// Buckets, the sibling cap, conditional writes, TTL and key listings on
// simulated nodes (tests/sim): real Node objects, virtual time and network,
// the real codec on every message.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/bucket_key.h"
#include "core/codec.h"
#include "core/expiry.h"
#include "report.h"
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
  c.mode = Mode::kStrict;
  c.gossip_interval_ms = 200;
  return c;
}

InfoReply Info(World& w, int via, std::string topic, std::string arg = {}) {
  auto env = w.Call(via, InfoRequest{std::move(topic), std::move(arg)});
  REQUIRE(env.has_value());
  auto* r = std::get_if<InfoReply>(&env->body);
  REQUIRE(r != nullptr);
  return *r;
}

Status SetBucket(World& w, int via, const std::string& json) {
  return Info(w, via, "bucket-set", json).status;
}

Reply Put(World& w, int via, const std::string& bucket, const std::string& key,
          const std::string& value, std::string context = {}, Quorum q = {}) {
  PutRequest p;
  p.bucket = bucket;
  p.key = key;
  p.value = value;
  p.context = std::move(context);
  p.quorum = q;
  return AsReply(w.Call(via, p));
}

Reply Get(World& w, int via, const std::string& bucket, const std::string& key, Quorum q = {}) {
  return AsReply(w.Call(via, GetRequest{key, q, bucket}));
}

ListKeysReply List(World& w, int via, const std::string& bucket, std::string after = {},
                   uint32_t limit = 0, std::string prefix = {}) {
  ListKeysRequest req;
  req.bucket = bucket;
  req.after = std::move(after);
  req.limit = limit;
  req.prefix = std::move(prefix);
  auto env = w.Call(via, req, 30000);
  REQUIRE(env.has_value());
  auto* r = std::get_if<ListKeysReply>(&env->body);
  REQUIRE(r != nullptr);
  return *r;
}

std::vector<NodeId> Primaries(World& w, const std::string& internal_key) {
  return w.ring().Primaries(w.ring().PartitionOfKey(internal_key), 3);
}

int IndexOf(const NodeId& id) { return std::stoi(id.substr(1)); }

size_t Live(const Reply& r) { return r.object ? r.object->LiveSiblings().size() : 0; }

// Lists every key of a bucket by paging through it.
std::vector<std::string> ListAll(World& w, int via, const std::string& bucket, uint32_t page,
                                 std::vector<uint32_t>* missed = nullptr) {
  std::vector<std::string> all;
  std::string after;
  for (int pages = 0; pages < 1000; ++pages) {
    ListKeysReply r = List(w, via, bucket, after, page);
    REQUIRE(r.status.ok());
    if (missed) missed->insert(missed->end(), r.missed.begin(), r.missed.end());
    all.insert(all.end(), r.keys.begin(), r.keys.end());
    if (!r.more || r.keys.empty()) break;
    after = r.keys.back();
  }
  return all;
}

}  // namespace

TEST_CASE("buckets: a property set on one node reaches every node by gossip and survives a restart") {
  World w(1, 5, Base());
  REQUIRE(SetBucket(w, 2, R"({"name":"users","r":1,"max_siblings":7,"ttl":60})").ok());
  w.RunFor(3000);
  for (int i = 1; i <= 5; ++i) {
    BucketProps p = w.node(i).node()->buckets().PropsOf("users");
    CHECK(p.r == 1);
    CHECK(p.max_siblings == 7);
    CHECK(p.ttl_s == 60);
  }
  w.node(4).Crash();
  w.node(4).Restart();
  CHECK(w.node(4).node()->buckets().PropsOf("users").max_siblings == 7);
  auto shown = nlohmann::json::parse(Info(w, 5, "bucket-show", "users").json);
  CHECK(shown["changed_by"] == "n2");
  CHECK(shown["w"] == 2);  // not set: the node's
}

TEST_CASE("buckets: changes made on two nodes at once converge on the later (by wall clock)") {
  World w(2, 4, Base());
  w.node(3).SetClockSkew(5000);  // n3's change carries the later time
  w.Request(1, InfoRequest{"bucket-set", R"({"name":"b","r":1})"}, [](Envelope) {});
  w.Request(3, InfoRequest{"bucket-set", R"({"name":"b","w":1})"}, [](Envelope) {});
  w.RunFor(4000);
  for (int i = 1; i <= 4; ++i) {
    const BucketEntry* e = w.node(i).node()->buckets().Find("b");
    REQUIRE(e != nullptr);
    CHECK(e->changed_by == "n3");
    CHECK(e->props.w == 1);
    CHECK(e->props.r == 0);  // n1's change is lost whole: last writer wins per bucket
  }
}

TEST_CASE("buckets: request flags override the bucket's properties, which override the node's") {
  World w(3, 5, Base());
  REQUIRE(SetBucket(w, 1, R"({"name":"b","r":3,"lww":true})").ok());
  w.RunFor(2000);
  std::string key = "k";
  auto internal = *InternalKey("b", key);
  REQUIRE(Put(w, 1, "b", key, "one").status.ok());
  w.RunFor(500);
  NodeId down = Primaries(w, internal)[2];
  w.ByName(down)->Crash();
  w.RunFor(3000);
  // The bucket says r=3: a read with a primary down fails; r=1 on the request wins.
  CHECK(Get(w, 1, "b", key).status.IsUnavailable());
  Quorum r1;
  r1.r = 1;
  CHECK(Get(w, 1, "b", key, r1).status.ok());
  // The same key in the default bucket is another object (and r=2 from the node).
  CHECK(Get(w, 1, "", key).status.IsNotFound());
  // The bucket says lww: blind writes keep one sibling.
  w.ByName(down)->Restart();
  w.RunFor(3000);
  for (int i = 0; i < 4; ++i) REQUIRE(Put(w, 1 + i % 5, "b", "l", "v" + std::to_string(i)).status.ok());
  Reply got = Get(w, 2, "b", "l", r1);
  CHECK(Live(got) == 1);
}

TEST_CASE("sibling cap: the write past max_siblings is refused and nothing is stored") {
  World w(4, 3, Base());
  REQUIRE(SetBucket(w, 1, R"({"name":"b","max_siblings":3,"warn_siblings":2})").ok());
  w.RunFor(2000);
  for (int i = 0; i < 3; ++i) REQUIRE(Put(w, 1 + i % 3, "b", "k", "v" + std::to_string(i)).status.ok());
  w.RunUntilIdle(2000);
  Reply refused = Put(w, 2, "b", "k", "v4");
  CHECK(refused.status.code() == Status::Code::kTooManySiblings);
  CHECK(refused.status.message().find("context") != std::string::npos);
  w.RunUntilIdle(2000);
  Reply got = Get(w, 3, "b", "k");
  REQUIRE(got.status.ok());
  CHECK(Live(got) == 3);  // nothing of v4 anywhere
  CHECK(got.warn_siblings == 2);
  for (int i = 1; i <= 3; ++i) {
    DvvSet o;
    REQUIRE(w.node(i).store().Get(*InternalKey("b", "k"), &o).ok());
    CHECK(o.siblings().size() == 3);
  }
  // Writing back with the context resolves them.
  REQUIRE(Put(w, 1, "b", "k", "merged", EncodeContext(got.object->clock())).status.ok());
  CHECK(Live(Get(w, 2, "b", "k")) == 1);
  uint64_t refusals = 0;
  for (int i = 1; i <= 3; ++i) refusals += w.node(i).node()->stats().sibling_cap_refused;
  CHECK(refusals == 1);
}

TEST_CASE("sibling cap: read repair, hints and anti-entropy still move an object over the cap") {
  NodeConfig c = Base();
  c.mode = Mode::kSloppy;
  c.aae.enabled = true;
  c.aae.interval_ms = 200;
  World w(5, 4, c);
  const std::string key = "hot";
  const std::string internal = *InternalKey("b", key);
  auto primaries = Primaries(w, internal);
  int a = IndexOf(primaries[0]), b = IndexOf(primaries[1]), lagging = IndexOf(primaries[2]);
  // Ten siblings while the cap is the default (100); the third primary is
  // down, so a fallback keeps them as hints for it.
  w.node(lagging).Crash();
  w.RunFor(3000);
  for (int i = 0; i < 10; ++i) REQUIRE(Put(w, i % 2 ? a : b, "b", key, "v" + std::to_string(i)).status.ok());
  w.RunFor(500);
  // Now the cap drops below what the key holds.
  REQUIRE(SetBucket(w, a, R"({"name":"b","max_siblings":3})").ok());
  w.RunFor(2000);
  CHECK(Put(w, a, "b", key, "blind").status.code() == Status::Code::kTooManySiblings);
  // Hints: the lagging primary comes back and receives all ten.
  w.node(lagging).Restart();
  w.RunFor(8000);
  DvvSet o;
  REQUIRE(w.node(lagging).store().Get(internal, &o).ok());
  CHECK(o.LiveSiblings().size() == 10);
  // Anti-entropy: its copy is lost, and exchanges bring the object back.
  w.node(lagging).store().Erase(internal);
  w.node(lagging).node()->anti_entropy().RebuildAll();
  for (int i = 0; i < 60 && !w.node(lagging).store().Get(internal, &o).ok(); ++i) w.RunFor(1000);
  REQUIRE(w.node(lagging).store().Get(internal, &o).ok());
  CHECK(o.LiveSiblings().size() == 10);
  // Read repair: lost again, and a read of all three replicas repairs it.
  w.node(lagging).store().Erase(internal);
  Quorum all;
  all.r = 3;
  Reply got = Get(w, a, "b", key, all);
  REQUIRE(got.status.ok());
  CHECK(Live(got) == 10);
  w.RunFor(1000);
  REQUIRE(w.node(lagging).store().Get(internal, &o).ok());
  CHECK(o.LiveSiblings().size() == 10);
  // A client resolves the siblings with the context: allowed, it leaves one.
  REQUIRE(Put(w, b, "b", key, "one", EncodeContext(got.object->clock())).status.ok());
}

TEST_CASE("conditional writes: two if-absent writes at once both succeed and leave siblings") {
  World w(6, 3, Base());
  const std::string key = "lock";
  auto primaries = Primaries(w, key);
  std::vector<Reply> answers;
  for (int i = 0; i < 2; ++i) {
    PutRequest p;
    p.key = key;
    p.value = "owner" + std::to_string(i);
    p.if_absent = true;
    w.Request(IndexOf(primaries[i]), p, [&answers](Envelope e) {
      answers.push_back(std::get<Reply>(e.body));
    });
  }
  w.RunUntilIdle(5000);
  REQUIRE(answers.size() == 2);
  CHECK(answers[0].status.ok());
  CHECK(answers[1].status.ok());  // both read "absent" before either wrote: not linearizable
  Reply got = Get(w, 1, "", key);
  CHECK(Live(got) == 2);
  // Once the key has a value, if-absent fails with ConditionFailed.
  PutRequest late;
  late.key = key;
  late.value = "late";
  late.if_absent = true;
  Reply refused = AsReply(w.Call(3, late));
  CHECK(refused.status.code() == Status::Code::kConditionFailed);
  REPORT("conditional writes: two concurrent --if-absent writes both acknowledged, leaving "
         << Live(got) << " siblings; a third one was refused");
}

TEST_CASE("conditional writes: if-absent replaces tombstones; if-unchanged checks the context") {
  World w(7, 3, Base());
  REQUIRE(Put(w, 1, "", "k", "v1").status.ok());
  Reply first = Get(w, 2, "", "k");
  std::string ctx1 = EncodeContext(first.object->clock());
  PutRequest del;
  del.key = "k";
  del.tombstone = true;
  del.context = ctx1;
  REQUIRE(AsReply(w.Call(1, del)).status.ok());
  PutRequest absent;
  absent.key = "k";
  absent.value = "v2";
  absent.if_absent = true;
  REQUIRE(AsReply(w.Call(2, absent)).status.ok());
  Reply now = Get(w, 3, "", "k");
  REQUIRE(now.object.has_value());
  CHECK(now.object->siblings().size() == 1);  // the tombstone was replaced, not kept beside
  // if-unchanged with a context from before the last write: refused.
  PutRequest stale;
  stale.key = "k";
  stale.value = "v3";
  stale.context = ctx1;
  stale.if_unchanged = true;
  CHECK(AsReply(w.Call(1, stale)).status.code() == Status::Code::kConditionFailed);
  stale.context = EncodeContext(now.object->clock());
  REQUIRE(AsReply(w.Call(1, stale)).status.ok());
  CHECK(Get(w, 2, "", "k").object->LiveSiblings()[0]->value == "v3");
  // A forwarded conditional write (through a non-replica) works the same.
  World five(8, 5, Base());
  auto p = Primaries(five, "f");
  int outsider = 0;
  for (int i = 1; i <= 5 && !outsider; ++i) {
    if (std::find(p.begin(), p.end(), five.node(i).id()) == p.end()) outsider = i;
  }
  absent.key = "f";
  REQUIRE(AsReply(five.Call(outsider, absent)).status.ok());
  CHECK(AsReply(five.Call(outsider, absent)).status.code() == Status::Code::kConditionFailed);
}

TEST_CASE("ttl: an expired value reads as not found everywhere, its bytes stay alike, the reaper erases it") {
  NodeConfig c = Base();
  c.tombstones.grace_ms = 2000;
  World w(9, 4, c);
  PutRequest p;
  p.key = "session";
  p.value = "token";
  p.ttl_ms = 3000;
  Reply put = AsReply(w.Call(1, p));
  REQUIRE(put.status.ok());
  const Sibling* mine = put.object->FindSibling(*put.dot);
  REQUIRE(mine != nullptr);
  CHECK(mine->expires_ms != 0);
  w.RunFor(500);
  for (int i = 1; i <= 4; ++i) CHECK(Get(w, i, "", "session").status.ok());
  w.RunFor(3000);
  auto primaries = Primaries(w, "session");
  std::optional<DvvSet> first;
  for (const NodeId& id : primaries) {
    DvvSet o;
    REQUIRE(w.ByName(id)->store().Get("session", &o).ok());
    if (first) CHECK(o == *first);  // expiry changed no byte: the Merkle trees agree
    first = o;
  }
  for (int i = 1; i <= 4; ++i) {
    Reply r = Get(w, i, "", "session");
    CHECK(r.status.IsNotFound());
    CHECK(r.status.message().find("expired") != std::string::npos);
  }
  CHECK(ListAll(w, 1, "", 10).empty());
  // After the grace the reaper erases it on every primary.
  bool gone = false;
  for (int s = 0; s < 60 && !gone; ++s) {
    w.RunFor(1000);
    gone = true;
    for (const NodeId& id : primaries) {
      DvvSet o;
      gone = gone && w.ByName(id)->store().Get("session", &o).IsNotFound();
    }
  }
  CHECK(gone);
  uint64_t reaped = 0;
  for (int i = 1; i <= 4; ++i) reaped += w.node(i).node()->reaper().stats().expired_erased;
  CHECK(reaped == 3);
}

TEST_CASE("ttl: a value that replaced an older one expires without the older one coming back") {
  NodeConfig c = Base();
  c.tombstones.grace_ms = 2000;
  c.aae.enabled = true;
  c.aae.interval_ms = 200;
  World w(10, 3, c);
  REQUIRE(Put(w, 1, "", "k", "old").status.ok());
  w.RunFor(500);
  Reply read = Get(w, 1, "", "k");
  // The third replica misses the replacing write (strict: no hint for it).
  NodeId lagging = Primaries(w, "k")[2];
  w.ByName(lagging)->Crash();
  PutRequest p;
  p.key = "k";
  p.value = "new";
  p.context = EncodeContext(read.object->clock());
  p.ttl_ms = 1000;
  int via = IndexOf(Primaries(w, "k")[0]);
  REQUIRE(AsReply(w.Call(via, p)).status.ok());
  w.RunFor(2500);
  w.ByName(lagging)->Restart();  // holds "old" only
  // Anti-entropy and the reaper run; "old" must never be read again.
  for (int s = 0; s < 40; ++s) {
    w.RunFor(1000);
    for (int i = 1; i <= 3; ++i) {
      Reply r = Get(w, i, "", "k");
      REQUIRE_MESSAGE(r.status.IsNotFound(), "second " << s << " via n" << i << ": " << r.status.ToString());
    }
  }
  for (int i = 1; i <= 3; ++i) {
    DvvSet o;
    Status s = w.node(i).store().Get("k", &o);
    CHECK((s.IsNotFound() || LiveCount(o, w.node(i).WallMillis()) == 0));
  }
}

TEST_CASE("ttl: a node whose clock runs ahead hides a value early; others still read it") {
  World w(11, 3, Base());
  PutRequest p;
  p.key = "k";
  p.value = "v";
  p.ttl_ms = 10'000;
  REQUIRE(AsReply(w.Call(1, p)).status.ok());
  w.RunFor(500);
  w.node(2).SetClockSkew(20'000);
  CHECK(Get(w, 2, "", "k").status.IsNotFound());
  CHECK(Get(w, 1, "", "k").status.ok());
}

TEST_CASE("listing: every key of a bucket in key order, in pages, without deleted or expired ones") {
  World w(12, 5, Base());
  std::set<std::string> expected;
  for (int i = 0; i < 120; ++i) {
    std::string key = fmt::format("key{:03}", (i * 37) % 120);
    REQUIRE(Put(w, 1 + i % 5, "b", key, "v").status.ok());
    expected.insert(key);
  }
  REQUIRE(Put(w, 1, "", "key001", "other bucket").status.ok());
  // One deleted, one expired.
  Reply got = Get(w, 2, "b", "key005");
  PutRequest del;
  del.bucket = "b";
  del.key = "key005";
  del.tombstone = true;
  del.context = EncodeContext(got.object->clock());
  REQUIRE(AsReply(w.Call(3, del)).status.ok());
  expected.erase("key005");
  PutRequest ttl;
  ttl.bucket = "b";
  ttl.key = "key006";
  ttl.value = "short";
  ttl.ttl_ms = 1000;
  ttl.context = EncodeContext(Get(w, 2, "b", "key006").object->clock());
  REQUIRE(AsReply(w.Call(3, ttl)).status.ok());
  expected.erase("key006");
  w.RunFor(2000);
  std::vector<std::string> all = ListAll(w, 4, "b", 7);
  CHECK(std::is_sorted(all.begin(), all.end()));
  CHECK(std::set<std::string>(all.begin(), all.end()) == expected);
  CHECK(all.size() == expected.size());
  ListKeysReply page = List(w, 2, "b", "key100", 5, "key1");
  CHECK(page.keys == std::vector<std::string>{"key101", "key102", "key103", "key104", "key105"});
  CHECK(page.more);
  ListKeysReply prefixed = List(w, 2, "b", "", 100, "key11");
  CHECK(prefixed.keys.size() == 10);
  CHECK_FALSE(prefixed.more);
  ListKeysRequest count;
  count.bucket = "b";
  count.count_only = true;
  auto env = w.Call(5, count);
  CHECK(std::get<ListKeysReply>(env->body).count == expected.size());
}

TEST_CASE("listing: complete with a node down; missed partitions are named when all their primaries are") {
  World w(13, 5, Base());
  for (int i = 0; i < 50; ++i) REQUIRE(Put(w, 1 + i % 5, "b", fmt::format("k{:02}", i), "v").status.ok());
  w.RunFor(1000);
  w.node(2).Crash();
  w.RunFor(5000);
  std::vector<uint32_t> missed;
  std::vector<std::string> all = ListAll(w, 1, "b", 20, &missed);
  CHECK(all.size() == 50);
  CHECK(missed.empty());
  w.node(3).Crash();
  w.node(4).Crash();
  w.RunFor(5000);
  std::set<uint32_t> orphaned;
  for (uint32_t p = 0; p < w.ring().ring_size(); ++p) {
    auto prim = w.ring().Primaries(p, 3);
    if (std::all_of(prim.begin(), prim.end(), [](const NodeId& id) { return id == "n2" || id == "n3" || id == "n4"; })) {
      orphaned.insert(p);
    }
  }
  REQUIRE_FALSE(orphaned.empty());
  missed.clear();
  all = ListAll(w, 1, "b", 20, &missed);
  CHECK(std::set<uint32_t>(missed.begin(), missed.end()) == orphaned);
  CHECK(all.size() < 50);
}
