// Tests for core/datatypes.h: the convergent data types (PN-counter, ORSWOT
// set, map), their merges over random histories, and their encoding.
#include "core/datatypes.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace ringkv;

namespace {

// A replica's actor and its dots: each operation gets the next counter, as
// DvvSet::Update mints dots for one actor.
struct Actor {
  std::string name;
  uint64_t counter = 0;
  Dot Next() { return Dot{name, ++counter}; }
};

DataTypeState Joined(std::vector<DataTypeState> states, const std::vector<size_t>& order) {
  DataTypeState out = states[order[0]];
  for (size_t i = 1; i < order.size(); ++i) out.Join(states[order[i]]);
  return out;
}

// Checks that joining `states` gives the same bytes whatever the order, the
// grouping, and with duplicates.
void CheckJoinLaws(const std::vector<DataTypeState>& states, std::mt19937_64& rng) {
  std::vector<size_t> order(states.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::string reference = Joined(states, order).Encode();
  for (int round = 0; round < 8; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    CHECK(Joined(states, order).Encode() == reference);  // commutative
    // Grouped differently: join two halves, then the halves.
    size_t cut = 1 + rng() % std::max<size_t>(1, order.size() - 1);
    cut = std::min(cut, order.size() - 1);
    if (order.size() >= 2) {
      std::vector<size_t> a(order.begin(), order.begin() + cut), b(order.begin() + cut, order.end());
      DataTypeState left = Joined(states, a), right = Joined(states, b);
      DataTypeState lr = left;
      lr.Join(right);
      DataTypeState rl = right;
      rl.Join(left);
      CHECK(lr.Encode() == reference);  // associative
      CHECK(rl.Encode() == reference);
    }
    // Duplicated: every state twice.
    std::vector<size_t> twice = order;
    twice.insert(twice.end(), order.begin(), order.end());
    std::shuffle(twice.begin(), twice.end(), rng);
    CHECK(Joined(states, twice).Encode() == reference);  // idempotent
  }
  // Encoding round-trips to an equal state.
  DataTypeState all = Joined(states, order);
  auto decoded = DataTypeState::Decode(all.type(), reference);
  REQUIRE(decoded.ok());
  CHECK(decoded->Encode() == reference);
  CHECK(*decoded == all);
}

}  // namespace

// --- counter -----------------------------------------------------------------------

TEST_CASE("datatypes: a counter sums increments and decrements of every actor") {
  Actor a{"n1"}, b{"n2"};
  DataTypeState x(DataType::kCounter, 1), y(DataType::kCounter, 1);
  REQUIRE(x.counter().Add(a.Next(), 5).ok());
  REQUIRE(x.counter().Add(a.Next(), -2).ok());
  REQUIRE(y.counter().Add(b.Next(), 10).ok());
  x.Join(y);
  CHECK(x.counter().Value() == 13);
  x.Join(y);  // again: nothing counted twice
  CHECK(x.counter().Value() == 13);
}

TEST_CASE("datatypes: a counter refuses to leave the int64 range, as Redis does") {
  Actor a{"n1"};
  PnCounter c;
  REQUIRE(c.Add(a.Next(), std::numeric_limits<int64_t>::max()).ok());
  Status s = c.Add(a.Next(), 1);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message() == "increment or decrement would overflow");
  CHECK(c.Value() == std::numeric_limits<int64_t>::max());
  REQUIRE(c.Add(a.Next(), std::numeric_limits<int64_t>::min()).ok());
  CHECK(c.Value() == -1);
}

TEST_CASE("datatypes: an actor's later entry replaces its earlier one (a key deleted and counted again)") {
  // n1 counted 5, the key was deleted, n1 counts 1 from zero with a higher
  // dot; a concurrent state that still holds n1's 5 must not hide the 1.
  PnCounter old_life, new_life;
  REQUIRE(old_life.Add(Dot{"n1", 7}, 5).ok());
  REQUIRE(old_life.Add(Dot{"n2", 3}, 2).ok());
  REQUIRE(new_life.Add(Dot{"n1", 20}, 1).ok());
  PnCounter joined = old_life;
  joined.Join(new_life);
  CHECK(joined.Value() == 3);  // n1's 1 and n2's concurrent 2
  PnCounter other = new_life;
  other.Join(old_life);
  CHECK(other == joined);
}

TEST_CASE("datatypes: counter merges are commutative, associative, idempotent over random histories") {
  std::mt19937_64 rng(11);
  for (int history = 0; history < 50; ++history) {
    int replicas = 2 + static_cast<int>(rng() % 4);
    std::vector<Actor> actors;
    std::vector<DataTypeState> states;
    for (int r = 0; r < replicas; ++r) {
      actors.push_back(Actor{"n" + std::to_string(r)});
      states.emplace_back(DataType::kCounter, 100 + rng() % 10);
    }
    int64_t expected = 0;
    for (int step = 0; step < 60; ++step) {
      int r = static_cast<int>(rng() % replicas);
      if (rng() % 3 == 0) {
        states[r].Join(states[rng() % replicas]);  // gossip
      } else {
        int64_t delta = static_cast<int64_t>(rng() % 21) - 10;
        REQUIRE(states[r].counter().Add(actors[r].Next(), delta).ok());
        expected += delta;
      }
    }
    CheckJoinLaws(states, rng);
    std::vector<size_t> all(states.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    CHECK(Joined(states, all).counter().Value() == expected);  // every increment, once
  }
}

// --- set ---------------------------------------------------------------------------

TEST_CASE("datatypes: a remove removes what it saw; a concurrent add wins") {
  Actor a{"n1"}, b{"n2"};
  DataTypeState x(DataType::kSet, 1);
  x.set().Add(a.Next(), "milk");
  DataTypeState y = x;  // b has seen milk
  // Concurrently: a adds milk again, b removes the milk it saw.
  CHECK_FALSE(x.set().Add(a.Next(), "milk"));  // already a member
  CHECK(y.set().Remove(b.Next(), "milk"));
  DataTypeState xy = x, yx = y;
  xy.Join(y);
  yx.Join(x);
  CHECK(xy.set().Contains("milk"));  // add wins
  CHECK(xy.Encode() == yx.Encode());

  // Without a concurrent add, the remove holds, and a stale copy does not
  // bring it back.
  DataTypeState z(DataType::kSet, 1);
  z.set().Add(a.Next(), "eggs");
  DataTypeState stale = z;
  CHECK(z.set().Remove(b.Next(), "eggs"));
  z.Join(stale);
  CHECK_FALSE(z.set().Contains("eggs"));
  CHECK(z.set().size() == 0);
}

TEST_CASE("datatypes: set members are exactly the adds no later operation saw, over random histories") {
  // The model: every add of e makes a dot; any later add or remove of e at a
  // replica whose state holds that dot observed it. After every replica has
  // merged everything, e is a member iff one of its dots was never observed.
  std::mt19937_64 rng(7);
  for (int history = 0; history < 60; ++history) {
    int replicas = 2 + static_cast<int>(rng() % 4);
    std::vector<Actor> actors;
    std::vector<DataTypeState> states;
    for (int r = 0; r < replicas; ++r) {
      actors.push_back(Actor{"n" + std::to_string(r)});
      states.emplace_back(DataType::kSet, 100);
    }
    std::map<std::string, std::set<Dot>> dots_of;  // element -> every add's dot
    std::set<Dot> observed;
    // Dots a state holds for element e: found through a probe of its model
    // (the states record adds as (replica, counter); we track it beside).
    std::vector<std::map<std::string, std::set<Dot>>> held(replicas);
    auto merge_held = [&](int into, int from) {
      // Mirrors the ORSWOT merge on the model's dots.
      std::map<std::string, std::set<Dot>> out;
      auto seen = [&](int r, const Dot& d) {
        // A replica has seen d iff its state's clock covers it.
        int i = states[r].set().clock().Find(d.actor);
        return i >= 0 && states[r].set().clock().counters()[i] >= d.counter;
      };
      std::set<std::string> elems;
      for (auto& [e, ds] : held[into]) elems.insert(e);
      for (auto& [e, ds] : held[from]) elems.insert(e);
      for (const auto& e : elems) {
        std::set<Dot> a = held[into][e], b = held[from][e], keep;
        for (const Dot& d : a) {
          if (b.count(d) || !seen(from, d)) keep.insert(d);
        }
        for (const Dot& d : b) {
          if (a.count(d) || !seen(into, d)) keep.insert(d);
        }
        if (!keep.empty()) out[e] = keep;
      }
      held[into] = out;
    };
    for (int step = 0; step < 80; ++step) {
      int r = static_cast<int>(rng() % replicas);
      std::string e = "e" + std::to_string(rng() % 6);
      switch (rng() % 4) {
        case 0:
        case 1: {
          Dot d = actors[r].Next();
          for (const Dot& o : held[r][e]) observed.insert(o);
          states[r].set().Add(d, e);
          held[r][e] = {d};
          dots_of[e].insert(d);
          break;
        }
        case 2: {
          Dot d = actors[r].Next();
          for (const Dot& o : held[r][e]) observed.insert(o);
          states[r].set().Remove(d, e);
          held[r].erase(e);
          break;
        }
        case 3: {
          int from = static_cast<int>(rng() % replicas);
          if (from == r) break;
          merge_held(r, from);
          states[r].Join(states[from]);
          break;
        }
      }
      // The state's members are the model's elements with dots.
      std::vector<std::string> model;
      for (const auto& [el, ds] : held[r]) {
        if (!ds.empty()) model.push_back(el);
      }
      REQUIRE(states[r].set().Members() == model);
    }
    CheckJoinLaws(states, rng);
    std::vector<size_t> all(states.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    DataTypeState final_state = Joined(states, all);
    for (const auto& [e, ds] : dots_of) {
      bool alive = std::any_of(ds.begin(), ds.end(), [&](const Dot& d) { return !observed.count(d); });
      CHECK_MESSAGE(final_state.set().Contains(e) == alive, "element " << e);
    }
  }
}

// --- map ---------------------------------------------------------------------------

TEST_CASE("datatypes: a map's fields: HSET, HGET, HDEL, the latest write wins") {
  Actor a{"n1"}, b{"n2"};
  DataTypeState x(DataType::kMap, 1);
  CHECK(x.map().SetRegister(a.Next(), 1000, "name", "ada"));
  CHECK_FALSE(x.map().SetRegister(a.Next(), 1001, "name", "ada lovelace"));
  CHECK(x.map().Get("name") == "ada lovelace");
  DataTypeState y = x;
  // Concurrent writes of one field: the later timestamp wins everywhere.
  x.map().SetRegister(a.Next(), 2000, "city", "london");
  y.map().SetRegister(b.Next(), 2500, "city", "paris");
  DataTypeState xy = x, yx = y;
  xy.Join(y);
  yx.Join(x);
  CHECK(xy.map().Get("city") == "paris");
  CHECK(xy.Encode() == yx.Encode());
  // A write that saw the field comes after it even with a slow clock.
  xy.map().SetRegister(a.Next(), 1, "city", "rome");
  CHECK(xy.map().Get("city") == "rome");
  CHECK(xy.map().Remove(a.Next(), "name"));
  CHECK_FALSE(xy.map().Get("name").has_value());
  CHECK(xy.map().Fields() ==
        std::vector<std::pair<std::string, std::string>>{{"city", "rome"}});
}

TEST_CASE("datatypes: HINCRBY fields are counters: concurrent increments add up") {
  Actor a{"n1"}, b{"n2"};
  DataTypeState x(DataType::kMap, 1);
  REQUIRE(x.map().IncrementField(a.Next(), 10, "visits", 1).ok());
  DataTypeState y = x;
  REQUIRE(x.map().IncrementField(a.Next(), 11, "visits", 5).ok());
  REQUIRE(y.map().IncrementField(b.Next(), 12, "visits", 10).ok());
  x.Join(y);
  CHECK(x.map().Get("visits") == "16");
  // A register holding an integer becomes a counter from it, as in Redis.
  x.map().SetRegister(a.Next(), 20, "age", "41");
  auto v = x.map().IncrementField(a.Next(), 21, "age", 1);
  REQUIRE(v.ok());
  CHECK(*v == 42);
  CHECK(x.map().Get("age") == "42");
  x.map().SetRegister(a.Next(), 22, "name", "ada");
  auto bad = x.map().IncrementField(a.Next(), 23, "name", 1);
  CHECK(bad.status().message() == "hash value is not an integer");
  CHECK(x.map().Get("name") == "ada");
}

TEST_CASE("datatypes: a field removed while another replica updates it comes back with that update") {
  Actor a{"n1"}, b{"n2"};
  DataTypeState x(DataType::kMap, 1);
  x.map().SetRegister(a.Next(), 10, "f", "v1");
  DataTypeState y = x;
  CHECK(x.map().Remove(a.Next(), "f"));
  y.map().SetRegister(b.Next(), 11, "f", "v2");
  x.Join(y);
  CHECK(x.map().Get("f") == "v2");
  // A stale copy of the removed value does not come back.
  DataTypeState z(DataType::kMap, 1);
  z.map().SetRegister(a.Next(), 10, "g", "old");
  DataTypeState stale = z;
  z.map().Remove(a.Next(), "g");
  z.Join(stale);
  CHECK_FALSE(z.map().Get("g").has_value());
}

TEST_CASE("datatypes: map merges are commutative, associative, idempotent over random histories") {
  std::mt19937_64 rng(5);
  for (int history = 0; history < 60; ++history) {
    int replicas = 2 + static_cast<int>(rng() % 4);
    std::vector<Actor> actors;
    std::vector<DataTypeState> states;
    for (int r = 0; r < replicas; ++r) {
      actors.push_back(Actor{"n" + std::to_string(r)});
      states.emplace_back(DataType::kMap, 100);
    }
    uint64_t now = 1000;
    for (int step = 0; step < 80; ++step) {
      int r = static_cast<int>(rng() % replicas);
      std::string f = "f" + std::to_string(rng() % 5);
      now += rng() % 3;
      switch (rng() % 5) {
        case 0: states[r].map().SetRegister(actors[r].Next(), now, f, std::to_string(rng() % 100)); break;
        case 1: (void)states[r].map().IncrementField(actors[r].Next(), now, f, static_cast<int64_t>(rng() % 7)); break;
        case 2: states[r].map().Remove(actors[r].Next(), f); break;
        default: states[r].Join(states[rng() % replicas]); break;
      }
    }
    CheckJoinLaws(states, rng);
  }
}

TEST_CASE("datatypes: set merges are canonical with many actors and binary members") {
  std::mt19937_64 rng(3);
  std::vector<DataTypeState> states;
  std::vector<Actor> actors;
  for (int r = 0; r < 6; ++r) {
    actors.push_back(Actor{std::string("n") + static_cast<char>('z' - r)});
    states.emplace_back(DataType::kSet, 50 + r);
  }
  for (int step = 0; step < 300; ++step) {
    int r = static_cast<int>(rng() % 6);
    std::string m(1 + rng() % 3, static_cast<char>(rng() % 256));
    if (rng() % 4 == 0) {
      states[r].set().Remove(actors[r].Next(), m);
    } else if (rng() % 3 == 0) {
      states[r].Join(states[rng() % 6]);
    } else {
      states[r].set().Add(actors[r].Next(), m);
    }
  }
  CheckJoinLaws(states, rng);
}

// --- encoding and keys -------------------------------------------------------------

TEST_CASE("datatypes: decoding refuses bad bytes with an error, never a crash") {
  Actor a{"n1"};
  DataTypeState s(DataType::kSet, 5);
  s.set().Add(a.Next(), "x");
  s.set().Add(a.Next(), "y");
  std::string good = s.Encode();
  CHECK(DataTypeState::Decode(DataType::kSet, good).ok());
  CHECK_FALSE(DataTypeState::Decode(DataType::kCounter, good).ok());  // another type
  CHECK_FALSE(DataTypeState::Decode(DataType::kSet, "").ok());
  CHECK_FALSE(DataTypeState::Decode(DataType::kSet, "not a state at all").ok());
  CHECK_FALSE(DataTypeState::Decode(DataType::kSet, good.substr(0, good.size() / 2)).ok());
  std::mt19937_64 rng(1);
  int refused = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bad = good;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
      bad[rng() % bad.size()] = static_cast<char>(rng() % 256);
    }
    for (DataType t : {DataType::kCounter, DataType::kSet, DataType::kMap}) {
      auto d = DataTypeState::Decode(t, bad);
      if (!d.ok()) {
        ++refused;
        CHECK(d.status().code() == Status::Code::kCorruption);
      } else {
        // Whatever decodes re-encodes to a state that decodes again.
        CHECK(DataTypeState::Decode(t, d->Encode()).ok());
      }
    }
  }
  CHECK(refused > 0);
}

TEST_CASE("datatypes: a key's type is its first write's, and its states are joined") {
  auto sibling = [](const std::string& actor, uint64_t counter, const DataTypeState* st,
                    uint64_t ts, std::string plain = {}) {
    Sibling s;
    s.dot = Dot{actor, counter};
    s.timestamp_ms = ts;
    if (st != nullptr) {
      s.value = st->Encode();
      s.datatype = static_cast<uint8_t>(st->type());
    } else {
      s.value = std::move(plain);
    }
    return s;
  };
  DataTypeState c1(DataType::kCounter, 100), c2(DataType::kCounter, 90);
  REQUIRE(c1.counter().Add(Dot{"n1", 1}, 3).ok());
  REQUIRE(c2.counter().Add(Dot{"n2", 1}, 4).ok());
  DataTypeState set(DataType::kSet, 200);
  set.set().Add(Dot{"n3", 1}, "m");
  VersionVector clock;
  clock.Set("n1", 1);
  clock.Set("n2", 1);
  clock.Set("n3", 1);
  clock.Set("n4", 1);
  DvvSet object;
  // Two counter states and a later set: a counter of 7; the set is ignored.
  REQUIRE(DvvSet::FromParts(clock,
                            {sibling("n1", 1, &c1, 500), sibling("n2", 1, &c2, 600),
                             sibling("n3", 1, &set, 50)},
                            &object));
  auto k = ReadKeyContents(object);
  REQUIRE(k.ok());
  CHECK(k->type == DataType::kCounter);
  CHECK(k->joined == 2);
  CHECK(k->state.counter().Value() == 7);
  // A plain value written before the first counter write: plain values.
  REQUIRE(DvvSet::FromParts(clock, {sibling("n1", 1, &c1, 500), sibling("n4", 1, nullptr, 80, "v")},
                            &object));
  k = ReadKeyContents(object);
  REQUIRE(k.ok());
  CHECK(k->opaque);
  CHECK(k->type == DataType::kNone);
  // Nothing live: not found.
  CHECK_FALSE(ReadKeyContents(DvvSet()).value().found());
}

TEST_CASE("datatypes: operations answer as Redis does and check their arguments") {
  Dot d{"n1", 1};
  DataTypeState set(DataType::kSet, 1);
  auto r = ApplyOperation(&set, DataTypeOpCode::kAdd, {"a", "b", "a"}, 0, d, 1);
  REQUIRE(r.ok());
  CHECK(r->answer == 2);
  r = ApplyOperation(&set, DataTypeOpCode::kRemove, {"zz"}, 0, Dot{"n1", 2}, 1);
  REQUIRE(r.ok());
  CHECK(r->answer == 0);
  CHECK_FALSE(r->changed);  // a remove of nothing needs no write
  DataTypeState map(DataType::kMap, 1);
  r = ApplyOperation(&map, DataTypeOpCode::kSetFields, {"f", "1", "g", "2", "f", "3"}, 0, d, 5);
  REQUIRE(r.ok());
  CHECK(r->answer == 2);
  CHECK(map.map().Get("f") == "3");
  r = ApplyOperation(&map, DataTypeOpCode::kIncrementField, {"f"}, 4, Dot{"n1", 2}, 5);
  REQUIRE(r.ok());
  CHECK(r->answer == 7);
  CHECK(ApplyOperation(&map, DataTypeOpCode::kAdd, {"x"}, 0, Dot{"n1", 3}, 5).status().IsInvalidArgument());
  CHECK(ValidateOperation(DataType::kMap, DataTypeOpCode::kSetFields, {"odd"}).IsInvalidArgument());
  CHECK(ValidateOperation(DataType::kSet, DataTypeOpCode::kAdd, {}).IsInvalidArgument());
  CHECK(ValidateOperation(DataType::kCounter, DataTypeOpCode::kIncrement, {}).ok());
  int64_t v = 0;
  CHECK(ParseInt64("-42", &v));
  CHECK(v == -42);
  CHECK(ParseInt64("9223372036854775807", &v));
  CHECK_FALSE(ParseInt64("9223372036854775808", &v));
  CHECK(ParseInt64("-9223372036854775808", &v));
  CHECK_FALSE(ParseInt64("012", &v));
  CHECK_FALSE(ParseInt64(" 1", &v));
  CHECK_FALSE(ParseInt64("-0", &v));
  CHECK_FALSE(ParseInt64("", &v));
}
