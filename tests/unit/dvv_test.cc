// Tests for core/dvv.h: dotted version vector sets (DESIGN.md, "Data model
// and versions").
#include "core/dvv.h"

#include <doctest/doctest.h>

#include "core/codec.h"
#include "core/datatypes.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

using ringkv::Dot;
using ringkv::DvvSet;
using ringkv::NodeId;
using ringkv::Sibling;
using ringkv::VersionVector;

namespace {

// (dot, value) pairs of every sibling, tombstones as "<deleted>", in the
// object's order (which is canonical: sorted by dot).
using Contents = std::vector<std::pair<std::string, std::string>>;

Contents ContentsOf(const DvvSet& object) {
  Contents out;
  for (const Sibling& s : object.siblings()) {
    out.emplace_back(s.dot.ToString(), s.tombstone ? "<deleted>" : s.value);
  }
  return out;
}

std::vector<std::string> LiveValues(const DvvSet& object) {
  std::vector<std::string> out;
  for (const Sibling* s : object.LiveSiblings()) out.push_back(s->value);
  return out;
}

VersionVector Vv(std::initializer_list<std::pair<NodeId, uint64_t>> entries) {
  VersionVector vv;
  for (const auto& [actor, counter] : entries) vv.Set(actor, counter);
  return vv;
}

Sibling MakeSibling(const NodeId& actor, uint64_t counter, std::string value,
                    uint64_t timestamp_ms = 0, bool tombstone = false) {
  Sibling s;
  s.dot = Dot{actor, counter};
  s.value = std::move(value);
  s.tombstone = tombstone;
  s.timestamp_ms = timestamp_ms;
  return s;
}

// The dot Update minted: the actor's entry in the result's clock.
Dot MintedDot(const DvvSet& after, const NodeId& actor) {
  return Dot{actor, after.clock().Get(actor)};
}

// Structural invariants every object must satisfy: each sibling's dot is
// covered by the clock, siblings are strictly sorted by dot (canonical, no
// duplicates), and the clock has no zero entries.
void CheckInvariants(const DvvSet& object) {
  const auto& sibs = object.siblings();
  for (size_t i = 0; i < sibs.size(); ++i) {
    INFO(object.ToString());
    REQUIRE(object.clock().Covers(sibs[i].dot));
    if (i > 0) REQUIRE(sibs[i - 1].dot < sibs[i].dot);
    if (sibs[i].tombstone) REQUIRE(sibs[i].value.empty());
  }
  for (const auto& [actor, counter] : object.clock().entries()) REQUIRE(counter > 0);
}

const std::array<NodeId, 3> kReplicas = {"r1", "r2", "r3"};

}  // namespace

// ---------------------------------------------------------------------------
// 1. DDIA figure 5-13: one server (r1), two clients, five writes.

TEST_CASE("dvv: the DDIA figure 5-13 shopping cart keeps exactly the concurrent carts") {
  const NodeId r1 = "r1";
  DvvSet cart;  // what the single server r1 stores

  // Write 1: client 1 adds milk; it has never read the cart (no context).
  cart = DvvSet::Update(cart, VersionVector(), r1, "milk", false, 1);
  CHECK(ContentsOf(cart) == Contents{{"r1:1", "milk"}});
  CHECK(cart.clock() == Vv({{r1, 1}}));
  const VersionVector client1_v1 = cart.clock();  // "version 1"

  // Write 2: client 2 adds eggs, unaware of milk (no context): a sibling.
  cart = DvvSet::Update(cart, VersionVector(), r1, "eggs", false, 2);
  CHECK(ContentsOf(cart) == Contents{{"r1:1", "milk"}, {"r1:2", "eggs"}});
  CHECK(cart.clock() == Vv({{r1, 2}}));
  // Client 2 receives both values and version 2.
  const VersionVector client2_v2 = cart.clock();
  CHECK(LiveValues(cart) == std::vector<std::string>{"milk", "eggs"});

  // Write 3: client 1 adds flour to what it knew ([milk]) with version 1:
  // replaces [milk], stays concurrent with [eggs].
  cart = DvvSet::Update(cart, client1_v1, r1, "milk,flour", false, 3);
  CHECK(ContentsOf(cart) == Contents{{"r1:2", "eggs"}, {"r1:3", "milk,flour"}});
  CHECK(cart.clock() == Vv({{r1, 3}}));
  const VersionVector client1_v3 = cart.clock();  // with [eggs] and [milk,flour]

  // Write 4: client 2 merges what it received at write 2 ([milk] + [eggs]),
  // adds ham, and writes with version 2: replaces [eggs] (milk is already
  // gone), stays concurrent with [milk,flour].
  cart = DvvSet::Update(cart, client2_v2, r1, "eggs,milk,ham", false, 4);
  CHECK(ContentsOf(cart) == Contents{{"r1:3", "milk,flour"}, {"r1:4", "eggs,milk,ham"}});
  CHECK(cart.clock() == Vv({{r1, 4}}));

  // Write 5: client 1 merges what it received at write 3 ([milk,flour] +
  // [eggs]), adds bacon, writes with version 3: replaces [milk,flour], stays
  // concurrent with [eggs,milk,ham].
  cart = DvvSet::Update(cart, client1_v3, r1, "milk,flour,eggs,bacon", false, 5);
  CHECK(ContentsOf(cart) ==
        Contents{{"r1:4", "eggs,milk,ham"}, {"r1:5", "milk,flour,eggs,bacon"}});
  CHECK(cart.clock() == Vv({{r1, 5}}));
  CHECK_FALSE(cart.IsDeleted());
  CheckInvariants(cart);

  // A reader that merges both carts and writes with the final context
  // resolves the conflict to a single value.
  cart = DvvSet::Update(cart, cart.clock(), r1, "milk,flour,eggs,bacon,ham", false, 6);
  CHECK(ContentsOf(cart) == Contents{{"r1:6", "milk,flour,eggs,bacon,ham"}});
}

// ---------------------------------------------------------------------------
// 2. Context semantics and deletes.

TEST_CASE("dvv: a write with the read's context replaces its siblings") {
  DvvSet obj;
  obj = DvvSet::Update(obj, {}, "r1", "a", false, 1);
  obj = DvvSet::Update(obj, {}, "r1", "b", false, 2);
  REQUIRE(obj.siblings().size() == 2);
  const VersionVector read = obj.clock();

  DvvSet after = DvvSet::Update(obj, read, "r1", "c", false, 3);
  CHECK(ContentsOf(after) == Contents{{"r1:3", "c"}});
  CHECK(after.clock() == Vv({{"r1", 3}}));

  // The same context at another replica of the key (which holds the same
  // object via sync) gives a single sibling with that replica's dot.
  DvvSet at_r2 = DvvSet::Update(obj, read, "r2", "c", false, 3);
  CHECK(ContentsOf(at_r2) == Contents{{"r2:1", "c"}});
  CHECK(at_r2.clock() == Vv({{"r1", 2}, {"r2", 1}}));
}

TEST_CASE("dvv: a write with the read's context keeps writes the reader did not see") {
  DvvSet obj = DvvSet::Update({}, {}, "r1", "a", false, 1);
  const VersionVector read = obj.clock();            // saw r1:1
  obj = DvvSet::Update(obj, {}, "r1", "b", false, 2);  // r1:2, unseen by reader
  DvvSet after = DvvSet::Update(obj, read, "r1", "c", false, 3);
  CHECK(ContentsOf(after) == Contents{{"r1:2", "b"}, {"r1:3", "c"}});
}

TEST_CASE("dvv: a write without context adds a sibling") {
  DvvSet obj = DvvSet::Update({}, {}, "r1", "a", false, 1);
  DvvSet after = DvvSet::Update(obj, {}, "r1", "b", false, 2);
  CHECK(ContentsOf(after) == Contents{{"r1:1", "a"}, {"r1:2", "b"}});
  after = DvvSet::Update(after, {}, "r2", "c", false, 3);
  CHECK(ContentsOf(after) == Contents{{"r1:1", "a"}, {"r1:2", "b"}, {"r2:1", "c"}});
  CHECK(after.LiveSiblings().size() == 3);
}

TEST_CASE("dvv: a delete with context leaves only a tombstone, and a later blind put is live") {
  DvvSet obj = DvvSet::Update({}, {}, "r1", "a", false, 1);
  obj = DvvSet::Update(obj, {}, "r2", "b", false, 2);
  CHECK_FALSE(obj.IsDeleted());
  CHECK_FALSE(obj.empty());

  DvvSet deleted = DvvSet::Update(obj, obj.clock(), "r1", "ignored", true, 3);
  CHECK(ContentsOf(deleted) == Contents{{"r1:2", "<deleted>"}});
  CHECK(deleted.siblings()[0].tombstone);
  CHECK(deleted.siblings()[0].value.empty());
  CHECK(deleted.LiveSiblings().empty());
  CHECK(deleted.IsDeleted());
  CHECK_FALSE(deleted.empty());
  CheckInvariants(deleted);

  // A replica that still has the old values learns of the delete by sync.
  CHECK(DvvSet::Sync(obj, deleted) == deleted);
  CHECK(DvvSet::Sync(deleted, obj) == deleted);

  // A blind put after the delete is concurrent with it: live again.
  DvvSet blind = DvvSet::Update(deleted, {}, "r1", "c", false, 4);
  CHECK(ContentsOf(blind) == Contents{{"r1:2", "<deleted>"}, {"r1:3", "c"}});
  CHECK(LiveValues(blind) == std::vector<std::string>{"c"});
  CHECK_FALSE(blind.IsDeleted());

  // A put with the delete's context replaces the tombstone.
  DvvSet put = DvvSet::Update(deleted, deleted.clock(), "r2", "d", false, 5);
  CHECK(ContentsOf(put) == Contents{{"r2:2", "d"}});
  CHECK_FALSE(put.IsDeleted());
}

TEST_CASE("dvv: a never-written object is empty, not deleted") {
  DvvSet obj;
  CHECK(obj.empty());
  CHECK_FALSE(obj.IsDeleted());
  CHECK(obj.LiveSiblings().empty());
  CHECK(obj.FindSibling(Dot{"r1", 1}) == nullptr);
  CHECK(DvvSet::Sync(obj, obj) == obj);
}

// ---------------------------------------------------------------------------
// 3 + 4. Random histories: sync algebra, invariants, no lost writes.

namespace {

struct WriteRecord {
  std::string value;
  bool tombstone = false;
};

// A random history over 3 replicas r1..r3 and a few clients. Clients read
// from a random replica (remembering the clock), then write at a random
// replica with that context or with none; replicas sync pairwise at random.
struct RandomHistory {
  std::array<DvvSet, 3> replicas;
  std::map<Dot, WriteRecord> written;       // every acknowledged write
  std::vector<VersionVector> contexts;      // context of every write
  std::vector<DvvSet> snapshots;            // replica states seen during the run

  bool Superseded(const Dot& dot) const {
    return std::any_of(contexts.begin(), contexts.end(),
                       [&](const VersionVector& c) { return c.Covers(dot); });
  }
};

RandomHistory RunRandomHistory(std::mt19937_64& rng, int num_ops, int num_clients) {
  RandomHistory h;
  std::vector<std::optional<VersionVector>> read_ctx(num_clients);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  uint64_t now = 0;
  for (int op = 0; op < num_ops; ++op) {
    const int kind = pick(10);
    const int client = pick(num_clients);
    if (kind < 3) {  // read
      read_ctx[client] = h.replicas[pick(3)].clock();
    } else if (kind < 7) {  // write
      const int r = pick(3);
      VersionVector ctx;
      if (read_ctx[client] && pick(4) != 0) ctx = *read_ctx[client];
      const bool tombstone = pick(8) == 0;
      std::string value = "v" + std::to_string(op);
      DvvSet after = DvvSet::Update(h.replicas[r], ctx, kReplicas[r], value, tombstone, ++now);
      const Dot dot = MintedDot(after, kReplicas[r]);
      const Sibling* mine = after.FindSibling(dot);
      REQUIRE(mine != nullptr);
      REQUIRE(mine->tombstone == tombstone);
      REQUIRE(h.written.count(dot) == 0);  // never reuse a dot
      h.written[dot] = WriteRecord{tombstone ? std::string() : value, tombstone};
      h.contexts.push_back(ctx);
      h.replicas[r] = std::move(after);
    } else {  // sync: two-way or one-way (push)
      const int a = pick(3);
      const int b = pick(3);
      DvvSet merged = DvvSet::Sync(h.replicas[a], h.replicas[b]);
      h.replicas[b] = merged;
      if (pick(2) == 0) h.replicas[a] = merged;
    }
    for (const DvvSet& r : h.replicas) CheckInvariants(r);
    if (pick(4) == 0) h.snapshots.push_back(h.replicas[pick(3)]);
  }
  for (const DvvSet& r : h.replicas) h.snapshots.push_back(r);
  return h;
}

}  // namespace

TEST_CASE("dvv: sync is commutative, associative and idempotent over random histories") {
  std::mt19937_64 rng(0x5eed'd0775ULL);
  int nontrivial = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    RandomHistory h = RunRandomHistory(rng, 40, 3);
    const auto& pool = h.snapshots;
    for (int t = 0; t < 8; ++t) {
      const DvvSet& a = pool[rng() % pool.size()];
      const DvvSet& b = pool[rng() % pool.size()];
      const DvvSet& c = pool[rng() % pool.size()];
      INFO("a=" << a.ToString() << " b=" << b.ToString() << " c=" << c.ToString());
      const DvvSet ab = DvvSet::Sync(a, b);
      const DvvSet bc = DvvSet::Sync(b, c);
      CheckInvariants(ab);
      REQUIRE(ab == DvvSet::Sync(b, a));
      REQUIRE(DvvSet::Sync(ab, c) == DvvSet::Sync(a, bc));
      REQUIRE(DvvSet::Sync(a, a) == a);
      REQUIRE(DvvSet::Sync(a, ab) == ab);
      REQUIRE(DvvSet::Sync(ab, b) == ab);
      // The merge's clock is the join and it descends both inputs.
      REQUIRE(ab.clock().Descends(a.clock()));
      REQUIRE(ab.clock().Descends(b.clock()));
      if (!(a == b) && ab.siblings().size() > 1) ++nontrivial;
    }
  }
  CHECK(nontrivial > 1000);  // the histories exercise real concurrency
}

TEST_CASE("dvv: no acknowledged write is lost unless a later write's context covered it") {
  std::mt19937_64 rng(0xacc'0ULL);
  int survivors = 0;
  int superseded = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    RandomHistory h = RunRandomHistory(rng, 40, 3);
    // Sync all replicas together, in a random order.
    std::array<int, 3> order = {0, 1, 2};
    std::shuffle(order.begin(), order.end(), rng);
    const DvvSet all = DvvSet::Sync(DvvSet::Sync(h.replicas[order[0]], h.replicas[order[1]]),
                                    h.replicas[order[2]]);
    CheckInvariants(all);
    INFO(all.ToString());
    for (const auto& [dot, rec] : h.written) {
      INFO("dot " << dot.ToString());
      const Sibling* s = all.FindSibling(dot);
      REQUIRE(all.clock().Covers(dot));
      if (h.Superseded(dot)) {
        ++superseded;
        REQUIRE(s == nullptr);
      } else {
        ++survivors;
        REQUIRE(s != nullptr);
        REQUIRE(s->tombstone == rec.tombstone);
        REQUIRE(s->value == rec.value);
      }
    }
    // Nothing appears that was not written.
    for (const Sibling& s : all.siblings()) REQUIRE(h.written.count(s.dot) == 1);
    // Every replica ends up identical after a full anti-entropy round.
    for (DvvSet& r : h.replicas) r = DvvSet::Sync(r, all);
    REQUIRE(h.replicas[0] == all);
    REQUIRE(h.replicas[1] == all);
    REQUIRE(h.replicas[2] == all);
  }
  CHECK(survivors > 1000);
  CHECK(superseded > 1000);
}

// ---------------------------------------------------------------------------
// 5. Bounded siblings.
//
// Property: K clients each repeatedly read (from a random replica) and then
// write (at a random replica) with a context that is the join of that read's
// clock and the clock returned by the client's own previous write (a session
// context, so each client's write covers its own earlier writes). Sync is
// random. Then at every step, on every replica, the object holds at most K
// siblings (at most one per client), and after a full sync of all replicas it
// holds at most K live siblings.

TEST_CASE("dvv: siblings never exceed the number of concurrent writers passing contexts back") {
  std::mt19937_64 rng(0xb0bb1e5ULL);
  for (int k = 1; k <= 5; ++k) {
    size_t max_seen = 0;
    for (int iter = 0; iter < 150; ++iter) {
      std::array<DvvSet, 3> replicas;
      std::vector<VersionVector> session(k);                // from own last write
      std::vector<std::optional<VersionVector>> pending(k);  // read, not yet written
      auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
      for (int op = 0; op < 60; ++op) {
        const int kind = pick(3);
        const int c = pick(k);
        if (kind == 0) {
          const int a = pick(3);
          const int b = pick(3);
          replicas[b] = DvvSet::Sync(replicas[a], replicas[b]);
        } else if (!pending[c]) {  // read
          VersionVector ctx = replicas[pick(3)].clock();
          ctx.Join(session[c]);
          pending[c] = std::move(ctx);
        } else {  // write with the context
          const int r = pick(3);
          replicas[r] = DvvSet::Update(replicas[r], *pending[c], kReplicas[r],
                                       "c" + std::to_string(c) + "." + std::to_string(op),
                                       false, static_cast<uint64_t>(op));
          session[c] = replicas[r].clock();
          pending[c].reset();
        }
        for (const DvvSet& rep : replicas) {
          INFO("k=" << k << " " << rep.ToString());
          REQUIRE(rep.siblings().size() <= static_cast<size_t>(k));
          max_seen = std::max(max_seen, rep.siblings().size());
        }
      }
      const DvvSet all = DvvSet::Sync(DvvSet::Sync(replicas[0], replicas[1]), replicas[2]);
      REQUIRE(all.LiveSiblings().size() <= static_cast<size_t>(k));
      // At most one sibling per client.
      std::set<std::string> writers;
      for (const Sibling* s : all.LiveSiblings()) {
        REQUIRE(writers.insert(s->value.substr(0, s->value.find('.'))).second);
      }
    }
    CHECK(max_seen == static_cast<size_t>(k));  // the bound is reached, not vacuous
  }
}

// ---------------------------------------------------------------------------
// 6. Last-write-wins collapse.

TEST_CASE("dvv: lww collapse keeps only the newest sibling and loses the concurrent one") {
  DvvSet a = DvvSet::Update({}, {}, "r1", "older", false, 100);
  DvvSet b = DvvSet::Update({}, {}, "r2", "newer", false, 200);
  DvvSet merged = DvvSet::Sync(a, b);
  REQUIRE(merged.LiveSiblings().size() == 2);  // concurrent: both kept causally

  DvvSet lww = DvvSet::CollapseLww(merged);
  CHECK(ContentsOf(lww) == Contents{{"r2:1", "newer"}});
  CHECK(lww.clock() == merged.clock());
  CHECK(lww.FindSibling(Dot{"r1", 1}) == nullptr);  // the concurrent write is gone
  // The loss sticks: syncing with the replica that still has it does not
  // bring it back (its dot is covered).
  CHECK(DvvSet::Sync(lww, a) == lww);

  // The newest wins regardless of dot order.
  DvvSet c = DvvSet::Update({}, {}, "r1", "newest", false, 300);
  DvvSet d = DvvSet::Update({}, {}, "r2", "old", false, 50);
  CHECK(ContentsOf(DvvSet::CollapseLww(DvvSet::Sync(c, d))) == Contents{{"r1:1", "newest"}});

  // Equal timestamps: the greater dot wins, deterministically.
  DvvSet e = DvvSet::Update({}, {}, "r1", "x", false, 7);
  DvvSet f = DvvSet::Update({}, {}, "r3", "y", false, 7);
  CHECK(ContentsOf(DvvSet::CollapseLww(DvvSet::Sync(e, f))) == Contents{{"r3:1", "y"}});

  // A single sibling is unchanged; so is an empty object.
  CHECK(DvvSet::CollapseLww(a) == a);
  CHECK(DvvSet::CollapseLww(DvvSet()) == DvvSet());
}

// ---------------------------------------------------------------------------
// 7. FromParts.

TEST_CASE("dvv: FromParts rejects a sibling its clock does not cover") {
  DvvSet out;
  CHECK_FALSE(DvvSet::FromParts(Vv({{"r1", 2}}), {MakeSibling("r1", 3, "x")}, &out));
  CHECK_FALSE(DvvSet::FromParts(Vv({{"r1", 2}}), {MakeSibling("r2", 1, "x")}, &out));
  CHECK_FALSE(DvvSet::FromParts(VersionVector(), {MakeSibling("r1", 1, "x")}, &out));
  CHECK(DvvSet::FromParts(Vv({{"r1", 3}}), {MakeSibling("r1", 3, "x")}, &out));
}

TEST_CASE("dvv: FromParts rejects duplicate dots") {
  DvvSet out;
  CHECK_FALSE(DvvSet::FromParts(Vv({{"r1", 2}}),
                                {MakeSibling("r1", 1, "x"), MakeSibling("r1", 1, "y")}, &out));
  CHECK_FALSE(DvvSet::FromParts(
      Vv({{"r1", 2}, {"r2", 1}}),
      {MakeSibling("r1", 1, "x"), MakeSibling("r2", 1, "z"), MakeSibling("r1", 1, "x")}, &out));
}

TEST_CASE("dvv: FromParts gives the canonical object regardless of sibling order") {
  std::vector<Sibling> sibs = {MakeSibling("r1", 2, "a", 1), MakeSibling("r2", 1, "b", 2),
                               MakeSibling("r3", 4, "", 3, /*tombstone=*/true),
                               MakeSibling("r1", 10, "c", 4)};
  const VersionVector clock = Vv({{"r1", 10}, {"r2", 3}, {"r3", 4}});
  DvvSet reference;
  REQUIRE(DvvSet::FromParts(clock, sibs, &reference));
  CheckInvariants(reference);
  // Sorted by dot: r1:2 < r1:10 numerically, then r2, then r3.
  CHECK(ContentsOf(reference) ==
        Contents{{"r1:2", "a"}, {"r1:10", "c"}, {"r2:1", "b"}, {"r3:4", "<deleted>"}});

  std::mt19937_64 rng(7);
  for (int i = 0; i < 50; ++i) {
    std::shuffle(sibs.begin(), sibs.end(), rng);
    DvvSet out;
    REQUIRE(DvvSet::FromParts(clock, sibs, &out));
    CHECK(out == reference);
  }

  // An object built by Update/Sync round-trips through its parts.
  DvvSet x = DvvSet::Update({}, {}, "r2", "p", false, 1);
  x = DvvSet::Sync(x, DvvSet::Update({}, {}, "r1", "q", false, 2));
  std::vector<Sibling> parts = x.siblings();
  std::reverse(parts.begin(), parts.end());
  DvvSet rebuilt;
  REQUIRE(DvvSet::FromParts(x.clock(), parts, &rebuilt));
  CHECK(rebuilt == x);
}

// ---------------------------------------------------------------------------
// 8. Data loss at the coordinator.

TEST_CASE("dvv: a replica that lost its data mints past the counter in the client's context") {
  const DvvSet lost;  // r1's store is empty
  const VersionVector ctx = Vv({{"r1", 5}, {"r2", 2}});
  DvvSet after = DvvSet::Update(lost, ctx, "r1", "v", false, 1);
  CHECK(ContentsOf(after) == Contents{{"r1:6", "v"}});
  CHECK(after.clock() == Vv({{"r1", 6}, {"r2", 2}}));

  // Another replica still holding r1:5 (which the client read) drops it on
  // sync and keeps the new write; the fresh dot does not collide.
  DvvSet r2 = DvvSet::Update({}, {}, "r1", "old", false, 0);
  for (int i = 0; i < 4; ++i) r2 = DvvSet::Update(r2, r2.clock(), "r1", "old", false, 0);
  REQUIRE(ContentsOf(r2) == Contents{{"r1:5", "old"}});
  CHECK(ContentsOf(DvvSet::Sync(r2, after)) == Contents{{"r1:6", "v"}});
}

TEST_CASE("dvv: sync stays commutative and associative when a wiped replica re-mints a dot") {
  // r1 lost its data and took a blind write (no context), reusing r1:1 for a
  // different value; copies of the old r1:1 live elsewhere. Replicas must
  // still converge to the same bytes whatever the merge order.
  const DvvSet a = DvvSet::Update({}, {}, "r1", "before-wipe", false, 10);
  const DvvSet b = DvvSet::Update({}, {}, "r1", "after-wipe", false, 20);
  const DvvSet c = DvvSet::Update({}, {}, "r1", "after-wipe-too", false, 20);
  REQUIRE(a.siblings()[0].dot == b.siblings()[0].dot);
  CHECK(DvvSet::Sync(a, b) == DvvSet::Sync(b, a));
  CHECK(DvvSet::Sync(b, c) == DvvSet::Sync(c, b));
  CHECK(DvvSet::Sync(DvvSet::Sync(a, b), c) == DvvSet::Sync(a, DvvSet::Sync(b, c)));
  CHECK(DvvSet::Sync(DvvSet::Sync(c, a), b) == DvvSet::Sync(DvvSet::Sync(a, b), c));
  CHECK(DvvSet::Sync(a, b).siblings().size() == 1);
}

TEST_CASE("dvv: a version vector keeps its entries sorted by actor, whatever order they come in") {
  VersionVector v;
  v.Set("n3", 1);
  v.Set("n1", 4);
  v.Set("n2~a.1", 2);
  v.Set("n2", 7);
  CHECK(v.ToString() == "{n1:4,n2:7,n2~a.1:2,n3:1}");
  v.Set("n2", 9);  // replaces
  v.Set("n3", 0);  // a zero entry is no entry
  v.Set("n9", 0);
  CHECK(v.ToString() == "{n1:4,n2:9,n2~a.1:2}");
  CHECK(v.Get("n2") == 9);
  CHECK(v.Get("n3") == 0);
  CHECK(v.Get("n0") == 0);

  VersionVector w;
  w.Set("n0", 1);
  w.Set("n2", 3);
  w.Set("n4", 5);
  VersionVector joined = v;
  joined.Join(w);  // pointwise maximum, sorted
  CHECK(joined.ToString() == "{n0:1,n1:4,n2:9,n2~a.1:2,n4:5}");
  CHECK(joined.Descends(v));
  CHECK(joined.Descends(w));
  CHECK_FALSE(v.Descends(w));
  VersionVector same = joined;
  same.Join(v);  // nothing new
  CHECK(same == joined);
}

// ---------------------------------------------------------------------------
// Data-type siblings (core/datatypes.h): a state per write, joined on read.

namespace {

// What a replica does for INCR (Replica::MintDataTypeWrite): join the live
// states it holds, add as the dot its write gets, store it with its own
// clock as the context.
DvvSet IncrementAt(const DvvSet& local, const NodeId& actor, int64_t by) {
  auto contents = ringkv::ReadKeyContents(local);
  REQUIRE(contents.ok());
  ringkv::DataTypeState st = contents->type == ringkv::DataType::kNone
                                 ? ringkv::DataTypeState(ringkv::DataType::kCounter, 1)
                                 : contents->state;
  Dot dot{actor, local.clock().Get(actor) + 1};
  REQUIRE(st.counter().Add(dot, by).ok());
  Sibling write;
  write.value = st.Encode();
  write.datatype = static_cast<uint8_t>(ringkv::DataType::kCounter);
  DvvSet out = DvvSet::Update(local, local.clock(), actor, write);
  REQUIRE(MintedDot(out, actor) == dot);
  return out;
}

int64_t CounterValue(const DvvSet& object) {
  auto contents = ringkv::ReadKeyContents(object);
  REQUIRE(contents.ok());
  return contents->state.counter().Value();
}

}  // namespace

TEST_CASE("dvv: data-type siblings: sync in any order gives the same bytes and counts every increment once") {
  std::mt19937_64 rng(0xc0ffee);
  size_t most_siblings = 0;
  for (int history = 0; history < 300; ++history) {
    std::array<DvvSet, 3> replicas;
    int64_t total = 0;
    for (int step = 0; step < 40; ++step) {
      int r = static_cast<int>(rng() % 3);
      if (rng() % 3 == 0) {
        int other = static_cast<int>(rng() % 3);
        replicas[r] = DvvSet::Sync(replicas[r], replicas[other]);
      } else {
        int64_t by = 1 + static_cast<int64_t>(rng() % 5);
        replicas[r] = IncrementAt(replicas[r], kReplicas[r], by);
        total += by;
      }
      for (const DvvSet& x : replicas) CheckInvariants(x);
    }
    for (const DvvSet& x : replicas) most_siblings = std::max(most_siblings, x.siblings().size());
    const DvvSet& a = replicas[0];
    const DvvSet& b = replicas[1];
    const DvvSet& c = replicas[2];
    DvvSet abc = DvvSet::Sync(DvvSet::Sync(a, b), c);
    REQUIRE(abc == DvvSet::Sync(a, DvvSet::Sync(b, c)));
    REQUIRE(abc == DvvSet::Sync(DvvSet::Sync(c, a), b));
    REQUIRE(abc == DvvSet::Sync(abc, b));
    REQUIRE(ringkv::EncodeStoredObject("k", abc) ==
            ringkv::EncodeStoredObject("k", DvvSet::Sync(c, DvvSet::Sync(b, a))));
    // Never more states than writers that did not see each other.
    CHECK(abc.LiveSiblings().size() <= 3);
    CHECK(CounterValue(abc) == total);
  }
  CHECK(most_siblings > 1);  // the histories do leave concurrent states
}

TEST_CASE("dvv: concurrent data-type states keep their dots: folding them into one would lose an increment") {
  // R1 and R2 increment concurrently, both acknowledged; R3 receives both.
  DvvSet r1 = IncrementAt(DvvSet(), "R1", 1);
  DvvSet r2 = IncrementAt(DvvSet(), "R2", 1);
  DvvSet r3 = DvvSet::Sync(r1, r2);
  CHECK(r3.LiveSiblings().size() == 2);  // one state per concurrent write
  CHECK(CounterValue(r3) == 2);
  // R2 increments again from its own copy, which never saw R1's write.
  r2 = IncrementAt(r2, "R2", 1);
  r3 = DvvSet::Sync(r3, r2);
  CHECK(CounterValue(r3) == 3);  // R1's increment is still there
  CHECK(CounterValue(DvvSet::Sync(r3, r1)) == 3);

  // Had R3 folded both states into one sibling with the greater dot (R2:1),
  // that sibling would carry R1's count under R2's dot; R2:2 replaces R2:1
  // and R1's count would be gone, with R3's clock claiming to have seen it.
  DvvSet folded;
  {
    auto joined = ringkv::ReadKeyContents(DvvSet::Sync(IncrementAt(DvvSet(), "R1", 1),
                                                       IncrementAt(DvvSet(), "R2", 1)));
    REQUIRE(joined.ok());
    Sibling s;
    s.dot = Dot{"R2", 1};
    s.value = joined->state.Encode();
    s.datatype = 1;
    REQUIRE(DvvSet::FromParts(Vv({{"R1", 1}, {"R2", 1}}), {s}, &folded));
  }
  DvvSet lost = DvvSet::Sync(folded, IncrementAt(IncrementAt(DvvSet(), "R2", 1), "R2", 1));
  CHECK(CounterValue(lost) == 2);  // 3 were acknowledged
  CHECK(CounterValue(DvvSet::Sync(lost, IncrementAt(DvvSet(), "R1", 1))) == 2);
}
