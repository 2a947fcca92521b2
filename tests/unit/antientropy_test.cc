// Tests for antientropy/merkle_tree.h and antientropy/exchange.h: Merkle trees
// over a partition and the tree exchange that finds differing keys
// (DESIGN.md, "Anti-entropy"). Replicas here are ordered maps standing in for
// the store; every message crosses the real codec.
#include <doctest/doctest.h>

#include "report.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "antientropy/exchange.h"
#include "antientropy/merkle_tree.h"
#include "core/codec.h"
#include "core/hash.h"

using ringkv::AaeHashesReply;
using ringkv::AaeHashesRequest;
using ringkv::AaeSegmentReply;
using ringkv::AaeSegmentRequest;
using ringkv::DigestScan;
using ringkv::DigestVisitor;
using ringkv::Dot;
using ringkv::DvvSet;
using ringkv::ExchangeDone;
using ringkv::ExchangeOptions;
using ringkv::ExchangeStats;
using ringkv::ExchangeStep;
using ringkv::KeyDifference;
using ringkv::KeyDigest;
using ringkv::KeyHash;
using ringkv::MerkleTree;
using ringkv::MerkleTreeOptions;
using ringkv::ObjectDigest;
using ringkv::Sibling;
using ringkv::Status;
using ringkv::TreeExchange;
using ringkv::VersionVector;

namespace {

MerkleTree MakeTree(uint32_t ring_size, uint32_t partition,
                    MerkleTreeOptions options = {}) {
  auto tree = MerkleTree::Create(ring_size, partition, options);
  REQUIRE(tree.ok());
  return std::move(tree).value();
}

// One replica of one partition: objects in store order (KeyHash, key) and
// the tree kept up to date on every write, as the node does.
class Replica {
 public:
  Replica(uint32_t ring_size, uint32_t partition,
          MerkleTreeOptions options = {})
      : tree_(MakeTree(ring_size, partition, options)) {}

  void Put(const std::string& key, const DvvSet& object) {
    const uint64_t hash = KeyHash(key);
    Stored& stored = objects_[{hash, key}];
    std::string digest = ObjectDigest(object);
    if (!tree_.Apply(key, hash, stored.digest, digest))
      FAIL("key outside the partition: ", key);
    stored = Stored{object, std::move(digest)};
  }

  void Erase(const std::string& key) {
    const uint64_t hash = KeyHash(key);
    auto it = objects_.find({hash, key});
    if (it == objects_.end()) return;
    if (!tree_.Apply(key, hash, it->second.digest, ""))
      FAIL("key outside the partition: ", key);
    objects_.erase(it);
  }

  const DvvSet* Find(const std::string& key) const {
    auto it = objects_.find({KeyHash(key), key});
    return it == objects_.end() ? nullptr : &it->second.object;
  }

  // The store scan the node would run: [first, last] in hash order.
  DigestScan Scanner() const {
    return [this](uint64_t first, uint64_t last, const DigestVisitor& visit) {
      for (auto it = objects_.lower_bound({first, std::string()});
           it != objects_.end() && it->first.first <= last; ++it) {
        visit(it->first.second, it->second.digest);
      }
      return Status::OK();
    };
  }

  std::vector<KeyDigest> AllDigests() const {
    std::vector<KeyDigest> out;
    for (const auto& [hk, stored] : objects_) {
      out.push_back(
          KeyDigest{tree_.SegmentOf(hk.first), hk.second, stored.digest});
    }
    return out;
  }

  std::vector<std::string> Keys() const {
    std::vector<std::string> out;
    for (const auto& [hk, stored] : objects_) out.push_back(hk.second);
    return out;
  }

  const MerkleTree& tree() const { return tree_; }
  MerkleTree& tree() { return tree_; }
  size_t size() const { return objects_.size(); }

 private:
  struct Stored {
    DvvSet object;
    std::string digest;  // ObjectDigest(object), as a node might cache it
  };
  std::map<std::pair<uint64_t, std::string>, Stored> objects_;
  MerkleTree tree_;
};

// Sends a message through the wire codec, as the node would.
template <typename Message>
Message ThroughWire(const Message& message) {
  ringkv::Envelope env;
  env.body = message;
  auto decoded = ringkv::DecodeEnvelope(ringkv::EncodeEnvelope(env));
  REQUIRE(decoded.ok());
  REQUIRE(std::holds_alternative<Message>(decoded->body));
  return std::get<Message>(decoded->body);
}

template <typename Message>
uint64_t WireBytes(const Message& message) {
  ringkv::Envelope env;
  env.body = message;
  return ringkv::EncodeEnvelope(env).size();
}

struct Outcome {
  std::vector<KeyDifference> differences;
  std::vector<std::string> keys;
  ExchangeStats stats;
  bool asked_segments = false;
};

// One full exchange initiated by `local` against `peer`.
Outcome RunExchange(const Replica& local, const Replica& peer,
                    ExchangeOptions options = {}) {
  TreeExchange exchange(local.tree(), options);
  ExchangeStep step = exchange.Start();
  Outcome outcome;
  for (int rounds = 0; !exchange.done(); ++rounds) {
    REQUIRE(rounds <= static_cast<int>(local.tree().levels()));
    if (const auto* request = std::get_if<AaeHashesRequest>(&step)) {
      AaeHashesReply reply =
          ThroughWire(AnswerHashes(peer.tree(), ThroughWire(*request)));
      auto next = exchange.OnHashes(local.tree(), reply);
      REQUIRE(next.ok());
      step = *next;
    } else if (const auto* request = std::get_if<AaeSegmentRequest>(&step)) {
      outcome.asked_segments = true;
      AaeSegmentReply reply = ThroughWire(
          AnswerSegments(peer.tree(), ThroughWire(*request), peer.Scanner()));
      REQUIRE(exchange.OnSegments(local.tree(), reply, local.Scanner()).ok());
    } else {
      FAIL("ExchangeDone returned but done() is false");
    }
  }
  outcome.differences = exchange.differences();
  outcome.keys = exchange.DifferingKeys();
  outcome.stats = exchange.stats();
  return outcome;
}

// Keys whose digests differ between the replicas (missing on one side
// included), sorted.
std::vector<std::string> TrulyDiffering(const Replica& a, const Replica& b) {
  std::set<std::string> all;
  for (const std::string& k : a.Keys()) all.insert(k);
  for (const std::string& k : b.Keys()) all.insert(k);
  std::vector<std::string> out;
  for (const std::string& k : all) {
    const DvvSet* x = a.Find(k);
    const DvvSet* y = b.Find(k);
    if (!x || !y || ObjectDigest(*x) != ObjectDigest(*y)) out.push_back(k);
  }
  return out;
}

// What the node does with an exchange's result: sync each key both ways.
void Repair(Replica& a, Replica& b, const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    const DvvSet* x = a.Find(key);
    const DvvSet* y = b.Find(key);
    DvvSet merged = DvvSet::Sync(x ? *x : DvvSet(), y ? *y : DvvSet());
    a.Put(key, merged);
    b.Put(key, merged);
  }
}

DvvSet Write(const DvvSet& local, const std::string& actor,
             const std::string& value, bool tombstone = false,
             bool blind = false) {
  return DvvSet::Update(local, blind ? VersionVector() : local.clock(), actor,
                        value, tombstone,
                        /*timestamp_ms=*/0);
}

// `count` distinct keys that fall in the tree's partition.
std::vector<std::string> KeysIn(const MerkleTree& tree, size_t count,
                                const std::string& prefix) {
  std::vector<std::string> keys;
  for (uint64_t i = 0; keys.size() < count; ++i) {
    std::string key = prefix + std::to_string(i);
    if (tree.Contains(KeyHash(key))) keys.push_back(std::move(key));
  }
  return keys;
}

const std::string kZeroHash(ringkv::kAaeHashBytes, '\0');

}  // namespace

TEST_CASE("aae: segments tile the partition's hash range for any ring size") {
  std::mt19937_64 rng(7);
  for (uint32_t ring_size : {1u, 2u, 64u, 1u << 20}) {
    for (MerkleTreeOptions options :
         {MerkleTreeOptions{}, MerkleTreeOptions{2, 1},
          MerkleTreeOptions{4, 5}}) {
      const uint32_t partition =
          ring_size - 1 - static_cast<uint32_t>(rng() % ring_size);
      MerkleTree tree = MakeTree(ring_size, partition, options);
      CAPTURE(ring_size);
      CAPTURE(partition);
      CHECK(tree.levels() == options.depth + 1);
      const uint32_t bits = static_cast<uint32_t>(std::countr_zero(ring_size));
      const uint64_t start = bits == 0 ? 0 : uint64_t{partition} << (64 - bits);
      const uint64_t end =
          start +
          ((bits == 0 ? 0 : uint64_t{1} << (64 - bits)) - 1);  // inclusive
      CHECK(tree.SegmentRange(0).first == start);
      CHECK(tree.SegmentRange(tree.segments() - 1).second == end);
      for (uint32_t s = 1; s < tree.segments(); ++s) {
        CHECK(tree.SegmentRange(s).first ==
              tree.SegmentRange(s - 1).second + 1);
      }
      CHECK(tree.Contains(start));
      CHECK(tree.Contains(end));
      if (ring_size > 1) {
        CHECK_FALSE(tree.Contains(start - 1));
        CHECK_FALSE(tree.Contains(end + 1));
      }
      for (int i = 0; i < 1000; ++i) {
        const uint64_t hash = start + (rng() & (end - start));
        const uint32_t segment = tree.SegmentOf(hash);
        REQUIRE(segment < tree.segments());
        const auto [first, last] = tree.SegmentRange(segment);
        CHECK(first <= hash);
        CHECK(hash <= last);
      }
    }
  }
  CHECK_FALSE(MerkleTree::Create(3, 0).ok());
  CHECK_FALSE(MerkleTree::Create(4, 4).ok());
  CHECK_FALSE(MerkleTree::Create(4, 0, {3, 3}).ok());
  CHECK_FALSE(MerkleTree::Create(4, 0, {16, 0}).ok());
  CHECK_FALSE(MerkleTree::Create(4, 0, {16, 6}).ok());  // 2^24 segments
}

TEST_CASE("aae: the same objects written in any order give the same root") {
  std::mt19937_64 rng(11);
  Replica a(8, 5);
  Replica b(8, 5);
  CHECK(a.tree().Root() == kZeroHash);  // empty partition: all-zero root
  const std::vector<std::string> keys = KeysIn(a.tree(), 2000, "key-");
  std::map<std::string, DvvSet> final_objects;
  for (const std::string& key : keys) {
    DvvSet object = Write(DvvSet(), "n1", "v1-" + key);
    if (rng() % 2) object = Write(object, "n2", "v2-" + key);
    final_objects[key] = object;
  }
  // a: straight to the final objects, in key order.
  for (const auto& [key, object] : final_objects) a.Put(key, object);
  // b: shuffled, with intermediate versions and deleted-then-restored keys.
  std::vector<std::string> order = keys;
  std::shuffle(order.begin(), order.end(), rng);
  for (const std::string& key : order) {
    b.Put(key, Write(DvvSet(), "n3", "junk"));
    if (rng() % 3 == 0) b.Erase(key);
  }
  std::shuffle(order.begin(), order.end(), rng);
  for (const std::string& key : order) b.Put(key, final_objects[key]);

  CHECK(a.tree().key_count() == keys.size());
  CHECK(b.tree().key_count() == keys.size());
  CHECK(a.tree().Root() != kZeroHash);
  CHECK(a.tree().Root() == b.tree().Root());
  for (uint32_t level = 0; level < a.tree().levels(); ++level) {
    for (uint32_t i = 0; i < a.tree().NodesAt(level); ++i) {
      REQUIRE(a.tree().NodeHash(level, i) == b.tree().NodeHash(level, i));
    }
  }

  SUBCASE("an update and its reversal restore the root") {
    const std::string before = a.tree().Root();
    const std::string& key = keys[17];
    const std::string old_digest = ObjectDigest(final_objects[key]);
    const std::string new_digest =
        ObjectDigest(Write(final_objects[key], "n1", "x"));
    a.tree().Apply(key, KeyHash(key), old_digest, new_digest);
    CHECK(a.tree().Root() != before);
    a.tree().Apply(key, KeyHash(key), new_digest, old_digest);
    CHECK(a.tree().Root() == before);
    a.tree().Apply(key, KeyHash(key), old_digest, "");
    CHECK(a.tree().Root() != before);
    a.tree().Apply(key, KeyHash(key), "", old_digest);
    CHECK(a.tree().Root() == before);
  }
  SUBCASE("a hash outside the partition is refused") {
    const std::string before = a.tree().Root();
    const std::string outsider = [] {
      MerkleTree other = MakeTree(8, 6);
      return KeysIn(other, 1, "out-")[0];
    }();
    CHECK_FALSE(a.tree().Apply(outsider, KeyHash(outsider), "",
                               ObjectDigest(DvvSet())));
    CHECK(a.tree().Root() == before);
  }
  SUBCASE("Clear empties the tree") {
    a.tree().Clear();
    CHECK(a.tree().Root() == kZeroHash);
    CHECK(a.tree().key_count() == 0);
  }
}

TEST_CASE("aae: ObjectDigest follows the causal history, not the values") {
  DvvSet base =
      Write(Write(DvvSet(), "n1", "a"), "n2", "b", false, /*blind=*/true);
  REQUIRE(base.siblings().size() == 2);
  const std::string d = ObjectDigest(base);
  CHECK(d.size() == ringkv::kAaeHashBytes);

  // The same history reached in different ways: same digest.
  DvvSet left = Write(DvvSet(), "n1", "a");
  DvvSet right = Write(DvvSet(), "n2", "b");
  CHECK(ObjectDigest(DvvSet::Sync(left, right)) == d);
  CHECK(ObjectDigest(DvvSet::Sync(right, left)) == d);
  CHECK(ObjectDigest(DvvSet::Sync(base, base)) == d);

  // Any write changes it: an overwrite, a blind sibling, a delete.
  std::set<std::string> seen = {d};
  CHECK(seen.insert(ObjectDigest(Write(base, "n1", "c"))).second);
  CHECK(seen.insert(ObjectDigest(Write(base, "n3", "c", false, /*blind=*/true)))
            .second);
  CHECK(seen.insert(ObjectDigest(Write(base, "n1", "", /*tombstone=*/true)))
            .second);
  CHECK(seen.insert(ObjectDigest(DvvSet())).second);

  // Values and timestamps are not hashed: the same clock and dots with other
  // values digest the same (a dot names one write, so real replicas never
  // hold different values under it). The tombstone flag is hashed.
  auto with = [&](std::string value, uint64_t ts, bool tombstone) {
    std::vector<Sibling> siblings = base.siblings();
    siblings[0].value = tombstone ? "" : value;
    siblings[0].timestamp_ms = ts;
    siblings[0].tombstone = tombstone;
    DvvSet out;
    REQUIRE(DvvSet::FromParts(base.clock(), siblings, &out));
    return ObjectDigest(out);
  };
  CHECK(with("other value", 12345, false) == d);
  CHECK(with("", 0, true) != d);
}

TEST_CASE("aae: identical replicas end the exchange at the root") {
  Replica a(16, 3);
  Replica b(16, 3);
  SUBCASE("empty") {}
  SUBCASE("full") {
    for (const std::string& key : KeysIn(a.tree(), 500, "k")) {
      DvvSet object = Write(DvvSet(), "n1", key);
      a.Put(key, object);
      b.Put(key, object);
    }
  }
  Outcome outcome = RunExchange(a, b);
  CHECK(outcome.differences.empty());
  CHECK_FALSE(outcome.asked_segments);
  CHECK(outcome.stats.hash_requests == 1);
  CHECK(outcome.stats.hashes_exchanged == 1);
  CHECK(outcome.stats.segments_fetched == 0);
}

TEST_CASE("aae: a full exchange finds exactly the keys whose digests differ") {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    const uint32_t ring_size = std::vector<uint32_t>{1, 4, 64}[seed % 3];
    const uint32_t partition = static_cast<uint32_t>(rng() % ring_size);
    // Small trees too, so several keys share a segment.
    const MerkleTreeOptions options =
        seed % 2 ? MerkleTreeOptions{} : MerkleTreeOptions{4, 2};
    Replica a(ring_size, partition, options);
    Replica b(ring_size, partition, options);
    const std::vector<std::string> keys =
        KeysIn(a.tree(), 1500, "s" + std::to_string(seed) + "-");
    for (const std::string& key : keys) {
      DvvSet object = Write(DvvSet(), "n1", "v" + key);
      a.Put(key, object);
      b.Put(key, object);
    }
    // Random divergences on a random tenth of the keys.
    for (const std::string& key : keys) {
      if (rng() % 10) continue;
      const DvvSet base = *a.Find(key);
      switch (rng() % 8) {
        case 0:
          a.Erase(key);
          break;  // missing on a
        case 1:
          b.Erase(key);
          break;  // missing on b
        case 2:
          a.Put(key, Write(base, "n1", "newer"));
          break;  // b is older
        case 3:
          b.Put(key, Write(base, "n2", "newer"));
          break;  // a is older
        case 4:
          a.Put(key, Write(base, "n2", "sib", false, true));
          break;  // extra sibling
        case 5:
          b.Put(key, Write(base, "n3", "", /*tombstone=*/true));
          break;  // deleted on b
        case 6:   // concurrent writes on both sides
          a.Put(key, Write(base, "n1", "x"));
          b.Put(key, Write(base, "n2", "y"));
          break;
        case 7: {  // the same write reached both: no difference
          DvvSet same = Write(base, "n3", "same");
          a.Put(key, same);
          b.Put(key, same);
          break;
        }
      }
    }
    // Keys only one side ever saw.
    for (const std::string& key :
         KeysIn(a.tree(), 40, "only-" + std::to_string(seed) + "-")) {
      (rng() % 2 ? a : b).Put(key, Write(DvvSet(), "n2", "lonely"));
    }

    const std::vector<std::string> expected = TrulyDiffering(a, b);
    REQUIRE(expected.size() > 100);
    ExchangeOptions unbounded;
    unbounded.max_segments = a.tree().segments();
    Outcome outcome = RunExchange(a, b, unbounded);
    CHECK(outcome.keys == expected);
    CHECK(outcome.stats.keys_differing == expected.size());
    CHECK_FALSE(outcome.stats.truncated());
    for (const KeyDifference& d : outcome.differences) {
      using Kind = KeyDifference::Kind;
      CHECK((d.kind == Kind::kMissingLocally) == (a.Find(d.key) == nullptr));
      CHECK((d.kind == Kind::kMissingRemotely) == (b.Find(d.key) == nullptr));
    }
    // The other direction finds the same keys.
    CHECK(RunExchange(b, a, unbounded).keys == expected);

    // Repairing them converges the replicas: the next exchange stops at the
    // root.
    Repair(a, b, outcome.keys);
    CHECK(a.tree().Root() == b.tree().Root());
    Outcome after = RunExchange(a, b);
    CHECK(after.differences.empty());
    CHECK(after.stats.hashes_exchanged == 1);
  }
}

TEST_CASE(
    "aae: a capped exchange fetches a bounded batch and later ones find the "
    "rest") {
  std::mt19937_64 rng(5);
  Replica a(1, 0);
  Replica b(1, 0);
  const std::vector<std::string> keys = KeysIn(a.tree(), 3000, "c");
  for (const std::string& key : keys) {
    DvvSet object = Write(DvvSet(), "n1", key);
    a.Put(key, object);
    b.Put(key, object);
  }
  for (const std::string& key : keys) {
    if (rng() % 10 == 0) b.Put(key, Write(*b.Find(key), "n2", "changed"));
  }
  const size_t total = TrulyDiffering(a, b).size();
  REQUIRE(total > 200);

  ExchangeOptions options;
  options.max_segments = 8;
  size_t repaired = 0;
  int exchanges = 0;
  for (;; ++exchanges) {
    REQUIRE(exchanges < 200);
    options.first_segment =
        static_cast<uint32_t>(exchanges) * 997;  // vary the start
    Outcome outcome = RunExchange(a, b, options);
    CHECK(outcome.stats.segments_fetched <= 8);
    // At most 8 differing nodes descended into per level.
    CHECK(outcome.stats.hashes_exchanged <= 1 + 16 + 2 * 8 * 16);
    if (outcome.differences.empty()) break;
    repaired += outcome.keys.size();
    Repair(a, b, outcome.keys);
  }
  REPORT("capped exchange: " << total << " differing keys repaired in "
                              << exchanges
                              << " exchanges of at most 8 segments");
  CHECK(repaired == total);
  CHECK(a.tree().Root() == b.tree().Root());
  CHECK(exchanges >=
        static_cast<int>(total / (8 * 3)));  // bounded batches really happened
}

TEST_CASE("aae: hashes exchanged grow with the differences, not the keys") {
  auto build = [](size_t count) {
    Replica replica(1, 0);
    for (size_t i = 0; i < count; ++i) {
      replica.Put("user:" + std::to_string(i), Write(DvvSet(), "n1", "value"));
    }
    return replica;
  };
  ExchangeOptions unbounded;
  unbounded.max_segments = 1u << 20;

  std::map<std::pair<size_t, size_t>, uint64_t>
      hashes;  // (keys, differences) -> hashes
  for (size_t key_count : {size_t{1000}, size_t{100000}}) {
    const Replica a = build(key_count);
    Replica b = a;
    const std::vector<std::string> keys = a.Keys();
    AaeSegmentReply everything;  // the naive alternative: ship every key digest
    everything.entries = a.AllDigests();
    const uint64_t naive_bytes = WireBytes(everything);
    for (size_t differences : {size_t{1}, size_t{10}, size_t{100}}) {
      // b = a with `differences` keys overwritten; restored afterwards.
      std::mt19937_64 rng(differences);
      std::set<size_t> picked;
      while (picked.size() < differences) picked.insert(rng() % keys.size());
      for (size_t i : picked)
        b.Put(keys[i], Write(*a.Find(keys[i]), "n2", "new"));

      Outcome outcome = RunExchange(a, b, unbounded);
      REQUIRE(outcome.keys.size() == differences);
      hashes[{key_count, differences}] = outcome.stats.hashes_exchanged;
      REPORT(
          "keys " << key_count << ", differences " << differences
                  << ": hashes exchanged " << outcome.stats.hashes_exchanged
                  << " in " << outcome.stats.hash_requests
                  << " requests, segments " << outcome.stats.segments_fetched
                  << ", key digests received " << outcome.stats.digests_received
                  << ", bytes " << outcome.stats.bytes() << " (requests "
                  << outcome.stats.request_bytes << ", replies "
                  << outcome.stats.reply_bytes << ") vs " << naive_bytes
                  << " to send all key digests");
      // 16-way tree: the root, its 16 children, then at most 16 hashes per
      // differing node on each of the two lower levels, whatever the keys.
      CHECK(outcome.stats.hashes_exchanged <= 1 + 16 + 2 * 16 * differences);
      if (key_count == 100000) CHECK(outcome.stats.bytes() * 20 < naive_bytes);

      for (size_t i : picked) b.Put(keys[i], *a.Find(keys[i]));
      REQUIRE(b.tree().Root() == a.tree().Root());
    }
  }
  // 100x the keys, the same number of differences: hashes of the same order
  // (which nodes the differences share is random, the key count is not a
  // factor)...
  for (size_t differences : {size_t{1}, size_t{10}, size_t{100}}) {
    const double ratio = static_cast<double>(hashes[{100000, differences}]) /
                         static_cast<double>(hashes[{1000, differences}]);
    CHECK(ratio < 2.0);
    CHECK(ratio > 0.5);
  }
  // ...while more differences cost more hashes.
  CHECK(hashes[{100000, 1}] < hashes[{100000, 10}]);
  CHECK(hashes[{100000, 10}] < hashes[{100000, 100}]);
}

TEST_CASE("aae: bad requests and replies are refused, not trusted") {
  Replica a(4, 1);
  Replica b(4, 1);
  for (const std::string& key : KeysIn(a.tree(), 50, "k")) {
    a.Put(key, Write(DvvSet(), "n1", "x"));
  }
  // Responder.
  CHECK_FALSE(AnswerHashes(a.tree(), AaeHashesRequest{2, 0, {0}}).status.ok());
  CHECK(AnswerHashes(a.tree(), AaeHashesRequest{1, 0, {1}})
            .status.IsInvalidArgument());
  CHECK(AnswerHashes(a.tree(), AaeHashesRequest{1, 9, {0}})
            .status.IsInvalidArgument());
  CHECK(AnswerSegments(a.tree(), AaeSegmentRequest{1, {4096}}, a.Scanner())
            .status.IsInvalidArgument());
  CHECK(AnswerSegments(a.tree(), AaeSegmentRequest{0, {1}}, a.Scanner())
            .status.IsInvalidArgument());
  auto failing_scan = [](uint64_t, uint64_t, const DigestVisitor&) {
    return Status::IOError("disk on fire");
  };
  CHECK(AnswerSegments(a.tree(), AaeSegmentRequest{1, {1}}, failing_scan)
            .status.code() == Status::Code::kIOError);

  // Initiator: a reply to another request fails the exchange.
  {
    TreeExchange exchange(a.tree());
    exchange.Start();
    AaeHashesReply wrong = AnswerHashes(b.tree(), AaeHashesRequest{1, 1, {0}});
    CHECK_FALSE(exchange.OnHashes(a.tree(), wrong).ok());
    CHECK(exchange.failed());
  }
  // Initiator: an error reply fails it too.
  {
    TreeExchange exchange(a.tree());
    exchange.Start();
    AaeHashesReply error;
    error.status = Status::Unavailable("busy");
    error.partition = 1;
    CHECK(exchange.OnHashes(a.tree(), error).status().IsUnavailable());
    CHECK(exchange.failed());
  }
  // Initiator: key digests nobody asked for.
  {
    TreeExchange exchange(a.tree());
    CHECK_FALSE(
        exchange.OnSegments(a.tree(), AaeSegmentReply{}, a.Scanner()).ok());
    CHECK(exchange.failed());
  }
  // Initiator: the peer sends a key outside the requested segments.
  {
    TreeExchange exchange(a.tree(), {.max_segments = 1});
    ExchangeStep step = exchange.Start();
    while (std::holds_alternative<AaeHashesRequest>(step)) {
      auto next = exchange.OnHashes(
          a.tree(), AnswerHashes(b.tree(), std::get<AaeHashesRequest>(step)));
      REQUIRE(next.ok());
      step = *next;
    }
    REQUIRE(std::holds_alternative<AaeSegmentRequest>(step));
    REQUIRE(exchange.requested_segments().size() == 1);
    const uint32_t wanted = exchange.requested_segments()[0];
    std::string stray;
    for (const std::string& key : a.Keys()) {
      if (a.tree().SegmentOf(KeyHash(key)) != wanted) stray = key;
    }
    AaeSegmentReply reply;
    reply.partition = 1;
    reply.entries.push_back(KeyDigest{a.tree().SegmentOf(KeyHash(stray)), stray,
                                      ObjectDigest(DvvSet())});
    CHECK(
        exchange.OnSegments(a.tree(), reply, a.Scanner()).IsInvalidArgument());
    CHECK(exchange.failed());
  }
}
