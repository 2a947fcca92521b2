// Buckets: the internal key mapping (core/bucket_key.h), expiry at read time
// (core/expiry.h), and bucket properties as converging cluster metadata
// (node/buckets.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>

#include <fmt/format.h>

#include "core/bucket_key.h"
#include "core/expiry.h"
#include "core/hash.h"
#include "node/buckets.h"
#include "node/key_listing.h"
#include "store/memory_store.h"

using namespace ringkv;

namespace {

std::string Nul() { return std::string(1, '\0'); }

BucketEntry Entry(std::string name, uint64_t ms, NodeId by, uint32_t r) {
  BucketEntry e;
  e.name = std::move(name);
  e.changed_ms = ms;
  e.changed_by = std::move(by);
  e.props.r = r;
  return e;
}

NodeConfig Config() {
  NodeConfig c;
  c.id = "n1";
  c.n = 3;
  c.r = 2;
  c.w = 2;
  return c;
}

}  // namespace

TEST_CASE("bucket keys: the default bucket keeps the raw key, its hash and placement") {
  for (std::string_view b : {"", "default"}) {
    auto k = InternalKey(b, "cart");
    REQUIRE(k.ok());
    CHECK(*k == "cart");
    CHECK(KeyHash(*k) == KeyHash("cart"));
  }
  auto other = InternalKey("users", "cart");
  REQUIRE(other.ok());
  CHECK(*other == Nul() + "users" + Nul() + "cart");
  CHECK(*other != "cart");  // the same key in two buckets is two objects
}

TEST_CASE("bucket keys: encoding is unambiguous and splits back") {
  // Keys may hold NUL bytes anywhere but at the start of a default-bucket key.
  std::vector<std::pair<std::string, std::string>> cases = {
      {"default", "k"},          {"a", Nul() + "x"},         {"a.b_c-D9", "k" + Nul() + "z"},
      {std::string(64, 'z'), "k"}, {"users", Nul() + "b" + Nul()}};
  std::set<std::string> seen;
  for (const auto& [bucket, key] : cases) {
    auto k = InternalKey(bucket, key);
    REQUIRE(k.ok());
    CHECK(seen.insert(*k).second);
    std::string b2, k2;
    REQUIRE(SplitInternalKey(*k, &b2, &k2));
    CHECK(b2 == bucket);
    CHECK(k2 == key);
    std::string_view user;
    CHECK(KeyInBucket(*k, bucket, &user));
    CHECK(user == key);
    for (const auto& [other, unused] : cases) {
      if (other != bucket) CHECK_FALSE(KeyInBucket(*k, other, &user));
    }
  }
  // A bucket whose name is a prefix of another's.
  std::string_view user;
  CHECK_FALSE(KeyInBucket(*InternalKey("ab", "k"), "a", &user));
  CHECK_FALSE(KeyInBucket(*InternalKey("a", "k"), "ab", &user));
}

TEST_CASE("bucket keys: bad names, empty and oversize keys, and NUL-led default keys are refused") {
  CHECK(InternalKey("", Nul() + "k").status().IsInvalidArgument());
  CHECK(InternalKey("default", Nul() + "k").status().message().find("NUL") != std::string::npos);
  CHECK(InternalKey("users", "").status().IsInvalidArgument());
  CHECK(InternalKey("users", std::string(kMaxKeyBytes + 1, 'k')).status().IsInvalidArgument());
  CHECK(InternalKey("users", std::string(kMaxKeyBytes, 'k')).ok());  // the limit is the user's key
  for (std::string bad : {std::string("a b"), std::string("a/b"), std::string(65, 'a'),
                          std::string("caf\xc3\xa9"), std::string("a") + Nul()}) {
    CHECK(InternalKey(bad, "k").status().IsInvalidArgument());
    CHECK_FALSE(ValidateBucketName(bad).ok());
  }
  std::string b, k;
  CHECK_FALSE(SplitInternalKey(Nul() + "users", &b, &k));       // no key
  CHECK_FALSE(SplitInternalKey(Nul() + "bad name" + Nul() + "k", &b, &k));
}

TEST_CASE("expiry: an expired sibling reads as a tombstone; the clock stays whole") {
  Sibling a;
  a.value = "a";
  a.timestamp_ms = 1000;
  a.expires_ms = 5000;
  DvvSet o = DvvSet::Update({}, {}, "n1", a);
  Sibling b;
  b.value = "b";
  b.timestamp_ms = 1000;
  o = DvvSet::Update(o, {}, "n2", b);  // a blind sibling that never expires
  CHECK(LiveCount(o, 4999) == 2);
  CHECK(LiveCount(o, 5000) == 1);
  DvvSet seen = VisibleAt(o, 6000);
  CHECK(seen.clock() == o.clock());
  REQUIRE(seen.siblings().size() == 1);
  CHECK(seen.siblings()[0].value == "b");
  CHECK(DeadSince(o, 6000) == 0);  // b lives
  DvvSet only_a = DvvSet::Update({}, {}, "n1", a);
  CHECK(DeadSince(only_a, 4000) == 0);
  CHECK(DeadSince(only_a, 9000) == 5000);
  CHECK(VisibleAt(only_a, 9000).IsDeleted());
  CHECK(OnlyEndingSiblings(only_a));
  CHECK_FALSE(OnlyEndingSiblings(o));
  // A write with the context of what was seen replaces the expired sibling.
  DvvSet next = DvvSet::Update(only_a, VisibleAt(only_a, 9000).clock(), "n1", "c", false, 9000);
  CHECK(next.siblings().size() == 1);
}

TEST_CASE("bucket properties: a merge keeps the later change, ties to the greater node id") {
  NodeConfig c = Config();
  Buckets x(&c);
  CHECK(x.Merge({Entry("b", 100, "n1", 1)}));
  CHECK_FALSE(x.Merge({Entry("b", 99, "n9", 3)}));  // older
  CHECK(x.PropsOf("b").r == 1);
  CHECK(x.Merge({Entry("b", 100, "n2", 2)}));       // same time, greater id
  CHECK(x.PropsOf("b").r == 2);
  CHECK_FALSE(x.Merge({Entry("b", 100, "n2", 2)}));  // idempotent
  CHECK(x.Merge({Entry("b", 101, "n1", 3)}));
  CHECK(x.PropsOf("b").r == 3);
}

TEST_CASE("bucket properties: merges in any order and grouping converge (random)") {
  std::mt19937_64 rng(7);
  NodeConfig c = Config();
  for (int round = 0; round < 200; ++round) {
    std::vector<BucketEntry> changes;
    for (int i = 0; i < 12; ++i) {
      changes.push_back(Entry("b" + std::to_string(rng() % 3), rng() % 5, "n" + std::to_string(rng() % 3),
                              static_cast<uint32_t>(rng() % 4)));
    }
    Buckets a(&c), b(&c);
    for (const auto& e : changes) a.Merge({e});
    std::vector<BucketEntry> shuffled = changes;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    b.Merge({shuffled.begin(), shuffled.begin() + 5});
    b.Merge({shuffled.begin() + 5, shuffled.end()});
    b.Merge(a.Entries());
    CHECK(a.Entries() == b.Entries());
    Buckets again(&c);
    again.Merge(b.Entries());
    again.Merge(a.Entries());
    CHECK(again.Entries() == a.Entries());
  }
}

TEST_CASE("bucket properties: a change is stamped above what its node holds, even with a slow clock") {
  NodeConfig c = Config();
  Buckets x(&c);
  x.Merge({Entry("b", 5000, "n9", 1)});
  Buckets::Patch p;
  p.r = 2;
  auto e = x.Set("b", p, /*now_ms=*/1000);  // this node's clock is behind
  REQUIRE(e.ok());
  CHECK(e->changed_ms == 5001);
  CHECK(e->changed_by == "n1");
  CHECK(x.PropsOf("b").r == 2);
  Buckets y(&c);
  y.Merge({Entry("b", 5000, "n9", 1)});
  y.Merge(x.Entries());
  CHECK(y.PropsOf("b").r == 2);  // the change wins everywhere
}

TEST_CASE("bucket properties: only given fields change; n is fixed; bad values are refused") {
  NodeConfig c = Config();
  Buckets x(&c);
  Buckets::Patch first;
  first.n = 2;
  first.ttl_s = 60;
  REQUIRE(x.Set("users", first, 1).ok());
  Buckets::Patch more;
  more.r = 1;
  more.lww = true;
  REQUIRE(x.Set("users", more, 2).ok());
  BucketProps p = x.PropsOf("users");
  CHECK(p.n == 2);
  CHECK(p.ttl_s == 60);
  CHECK(p.r == 1);
  CHECK(p.lww);
  Buckets::Patch change_n;
  change_n.n = 3;
  Status s = x.Set("users", change_n, 3).status();
  CHECK(s.IsInvalidArgument());
  CHECK(s.message().find("does not change a bucket's n") != std::string::npos);
  Buckets::Patch same_n;
  same_n.n = 2;
  CHECK(x.Set("users", same_n, 4).ok());
  Buckets::Patch big;
  big.n = 4;
  CHECK(x.Set("new", big, 5).status().IsInvalidArgument());  // above the cluster's n
  Buckets::Patch default_n;
  default_n.n = 2;
  CHECK(x.Set("default", default_n, 6).status().IsInvalidArgument());
  Buckets::Patch r_over_n;
  r_over_n.r = 3;
  CHECK(x.Set("users", r_over_n, 7).status().IsInvalidArgument());  // users has n=2
  CHECK(x.Set("bad name", more, 8).status().IsInvalidArgument());
  // Zero puts a property back to the node's default.
  Buckets::Patch unset;
  unset.r = 0;
  unset.ttl_s = 0;
  REQUIRE(x.Set("users", unset, 9).ok());
  CHECK(x.PropsOf("users").r == 0);
  CHECK(x.PropsOf("users").ttl_s == 0);
  CHECK(x.MaxSiblings(x.PropsOf("users")) == 100);
  CHECK(x.WarnSiblings(x.PropsOf("users")) == 25);
}

TEST_CASE("bucket properties: at most 1024 buckets; a merge past it keeps the smallest names") {
  NodeConfig c = Config();
  Buckets x(&c);
  Buckets::Patch p;
  p.r = 1;
  for (size_t i = 0; i < kMaxBuckets; ++i) REQUIRE(x.Set(fmt::format("b{:05}", i), p, 1).ok());
  CHECK(x.Set("one-more", p, 2).status().IsInvalidArgument());
  CHECK(x.Set("b00001", p, 2).ok());  // changing one still works
  x.Merge({Entry("a-first", 1, "n2", 1)});
  CHECK(x.size() == kMaxBuckets);
  CHECK(x.Find("a-first") != nullptr);
  CHECK(x.Find(fmt::format("b{:05}", kMaxBuckets - 1)) == nullptr);
}

TEST_CASE("bucket properties: persisted and loaded unchanged; bad JSON is refused") {
  NodeConfig c = Config();
  Buckets x(&c);
  Buckets::Patch p;
  p.mode = Mode::kStrict;
  p.max_siblings = 7;
  p.ttl_s = 30;
  REQUIRE(x.Set("users", p, 10).ok());
  x.Merge({Entry("other", 3, "n2", 2)});
  Buckets y(&c);
  REQUIRE(y.Load(x.Serialize()).ok());
  CHECK(y.Entries() == x.Entries());
  CHECK_FALSE(y.Load("{").ok());
  CHECK_FALSE(y.Load("{\"buckets\":[{\"name\":\"x\"}]}").ok());

  auto parsed = Buckets::ParseSetRequest(R"({"name":"b","n":2,"mode":"strict","lww":true,"ttl":5})");
  REQUIRE(parsed.ok());
  CHECK(parsed->first == "b");
  CHECK(*parsed->second.n == 2);
  CHECK(*parsed->second.mode == Mode::kStrict);
  CHECK(*parsed->second.lww);
  CHECK(*parsed->second.ttl_s == 5);
  CHECK_FALSE(parsed->second.r.has_value());
  CHECK_FALSE(Buckets::ParseSetRequest(R"({"name":"b","colour":"red"})").ok());
  CHECK_FALSE(Buckets::ParseSetRequest(R"({"name":"b","r":-1})").ok());
  CHECK_FALSE(Buckets::ParseSetRequest(R"({"name":"b","mode":"fast"})").ok());
  CHECK_FALSE(Buckets::ParseSetRequest(R"({"r":1})").ok());
}

TEST_CASE("key scan: the same page whatever the slice size; truncated means nothing below was left out") {
  MemoryStore store;
  auto ring = Ring::Build(16, 3, {"n1", "n2", "n3"});
  REQUIRE(ring.ok());
  std::set<std::string> live;
  for (int i = 0; i < 500; ++i) {
    std::string key = fmt::format("k{:04}", i);
    std::string bucket = i % 5 == 0 ? "other" : "b";
    DvvSet o = DvvSet::Update({}, {}, "n1", "v", /*tombstone=*/i % 7 == 0, 1000);
    REQUIRE(store.Put(*InternalKey(bucket, key), o).ok());
    if (bucket == "b" && i % 7 != 0) live.insert(key);
  }
  PartitionKeysRequest req;
  for (uint32_t p = 0; p < 16; ++p) req.partitions.push_back(p);
  req.bucket = "b";
  req.limit = 30;
  req.after = "k0100";
  req.prefix = "k0";
  std::vector<std::string> expected;
  for (const auto& k : live) {
    if (k > "k0100" && expected.size() < 30) expected.push_back(k);
  }
  for (size_t budget : {size_t{1}, size_t{7}, size_t{100000}}) {
    KeyScan scan(req, 5000);
    int steps = 0;
    while (!scan.Step(&store, *ring, budget)) ++steps;
    PartitionKeysReply r = scan.TakeReply();
    CHECK(r.status.ok());
    CHECK(r.keys == expected);
    CHECK(r.truncated);
    if (budget == 1) CHECK(steps >= 499);  // a slice of one object per turn
  }
  req.count_only = true;
  KeyScan count(req, 5000);
  while (!count.Step(&store, *ring, 50)) {
  }
  size_t with_prefix = std::count_if(live.begin(), live.end(),
                                     [](const std::string& k) { return k.starts_with("k0"); });
  CHECK(count.TakeReply().count == with_prefix);
}
