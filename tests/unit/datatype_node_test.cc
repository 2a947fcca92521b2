// Counters, sets and maps through real nodes on the simulator
// (node/coordinator.h StartDataType, node/replica.h MintDataTypeWrite): the
// write path, forwarding, wrong types, deletes, partitions and fallbacks.
#include <doctest/doctest.h>

#include <algorithm>

#include "core/codec.h"
#include "sim/sim.h"
#include "unit/replies.h"

using namespace ringkv;
using ringkv::sim::World;
using ringkv::test::AsReply;

namespace {

NodeConfig Base(Mode mode = Mode::kStrict) {
  NodeConfig c;
  c.n = 3;
  c.r = 2;
  c.w = 2;
  c.timeout_ms = 500;
  c.mode = mode;
  return c;
}

DataTypeReply AsDataTypeReply(const std::optional<Envelope>& env) {
  REQUIRE(env.has_value());
  auto* r = std::get_if<DataTypeReply>(&env->body);
  REQUIRE_MESSAGE(r != nullptr, BodyName(env->body));
  return *r;
}

DataTypeReply Op(World& w, int via, const std::string& key, DataType type, DataTypeOpCode op,
                 std::vector<std::string> args = {}, int64_t delta = 0, Quorum q = {}) {
  DataTypeRequest req;
  req.key = key;
  req.type = type;
  req.op = op;
  req.args = std::move(args);
  req.delta = delta;
  req.quorum = q;
  return AsDataTypeReply(w.Call(via, req));
}

DataTypeReply Incr(World& w, int via, const std::string& key, int64_t by = 1) {
  return Op(w, via, key, DataType::kCounter, DataTypeOpCode::kIncrement, {}, by);
}

// A quorum read of key: what it holds.
KeyContents Read(World& w, int via, const std::string& key, Quorum q = {}) {
  DataTypeRequest req;
  req.key = key;
  req.type = DataType::kCounter;
  req.op = DataTypeOpCode::kRead;
  req.quorum = q;
  Reply r = AsReply(w.Call(via, req));
  REQUIRE((r.status.ok() || r.status.IsNotFound()));
  if (!r.object) return KeyContents{};
  auto k = ReadKeyContents(*r.object);
  REQUIRE(k.ok());
  return *k;
}

int64_t CounterAt(World& w, const NodeId& id, const std::string& key, size_t* siblings = nullptr) {
  DvvSet obj;
  if (!w.ByName(id)->store().Get(key, &obj).ok()) return 0;
  if (siblings) *siblings = obj.LiveSiblings().size();
  auto k = ReadKeyContents(obj);
  REQUIRE(k.ok());
  return k->state.counter().Value();
}

int IndexOf(const NodeId& id) { return std::stoi(id.substr(1)); }

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

}  // namespace

TEST_CASE("data types: INCR through every node adds up; each answer is the coordinator's value") {
  World w(21, 5, Base());
  int64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    DataTypeReply r = Incr(w, 1 + i % 5, "hits", 2);
    REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
    REQUIRE(r.dot.has_value());
    // Dots are minted by a primary, as its data-type actor "<id>~d<epoch>".
    auto p = Primaries(w, "hits");
    CHECK(std::any_of(p.begin(), p.end(),
                      [&](const NodeId& id) { return r.dot->actor.rfind(id + "~d", 0) == 0; }));
    CHECK(r.integer > last);
    last = r.integer;
    w.RunUntilIdle();
  }
  CHECK(Read(w, 3, "hits").state.counter().Value() == 40);
  // Every primary holds the same object, one state.
  for (const NodeId& id : Primaries(w, "hits")) {
    size_t siblings = 0;
    CHECK(CounterAt(w, id, "hits", &siblings) == 40);
    CHECK(siblings == 1);
  }
  // A non-replica forwarded, and stores nothing.
  int other = NonReplica(w, "hits");
  CHECK(w.node(other).node()->stats().datatype_ops > 0);
  DvvSet none;
  CHECK(w.node(other).store().Get("hits", &none).IsNotFound());
}

TEST_CASE("data types: an operation of another type is WRONGTYPE; so is a put over a data type") {
  World w(22, 5, Base());
  REQUIRE(Incr(w, 1, "c").status.ok());
  w.RunUntilIdle();
  DataTypeReply r = Op(w, 2, "c", DataType::kSet, DataTypeOpCode::kAdd, {"x"});
  CHECK(r.status.code() == Status::Code::kWrongType);
  CHECK(r.status.message() == "the key holds a counter, not a set");
  PutRequest put;
  put.key = "c";
  put.value = "plain";
  Reply pr = AsReply(w.Call(3, put));
  CHECK(pr.status.code() == Status::Code::kWrongType);
  // A plain value's key refuses data-type operations.
  put.key = "plain";
  REQUIRE(AsReply(w.Call(3, put)).status.ok());
  w.RunUntilIdle();
  CHECK(Incr(w, 4, "plain").status.code() == Status::Code::kWrongType);
}

TEST_CASE("data types: the codec refuses malformed data-type requests; the answers round-trip") {
  DataTypeRequest req;
  req.key = "s";
  req.type = DataType::kSet;
  req.op = DataTypeOpCode::kIncrement;  // not an operation on a set
  auto bad = DecodeEnvelope(EncodeEnvelope(Envelope{1, {}, {}, req}));
  CHECK(bad.status().IsInvalidArgument());
  CHECK(bad.status().message() == "increment is not an operation on a set");
  req.op = DataTypeOpCode::kAdd;  // with no member
  CHECK(DecodeEnvelope(EncodeEnvelope(Envelope{1, {}, {}, req})).status().IsInvalidArgument());
  req.args = {"a", std::string("\0b", 2)};
  req.bucket = "web";
  req.quorum.w = 3;
  auto good = DecodeEnvelope(EncodeEnvelope(Envelope{7, {}, {}, req}));
  REQUIRE(good.ok());
  const auto& back = std::get<DataTypeRequest>(good->body);
  CHECK(back.args == req.args);
  CHECK(back.bucket == "web");
  CHECK(back.quorum == req.quorum);
  req.type = static_cast<DataType>(9);
  CHECK(DecodeEnvelope(EncodeEnvelope(Envelope{1, {}, {}, req})).status().IsInvalidArgument());
  DataTypeReply answer{Status::OK(), -42, Dot{"n1~dab", 3}};
  auto r = DecodeEnvelope(EncodeEnvelope(Envelope{7, {}, {}, answer}));
  REQUIRE(r.ok());
  CHECK(std::get<DataTypeReply>(r->body).integer == -42);
  CHECK(std::get<DataTypeReply>(r->body).dot == answer.dot);
}

TEST_CASE("data types: a forwarded increment delivered twice counts once") {
  World w(23, 5, Base());
  w.network().duplicate_probability = 1.0;
  int other = NonReplica(w, "k");
  for (int i = 0; i < 5; ++i) REQUIRE(Incr(w, other, "k").status.ok());
  w.RunUntilIdle();
  w.network().duplicate_probability = 0;
  CHECK(Read(w, other, "k").state.counter().Value() == 5);
  CHECK(w.node(other).node()->stats().duplicate_forwards == 0);  // counted by the receivers
  uint64_t dups = 0;
  for (const NodeId& id : Primaries(w, "k")) {
    dups += w.node(IndexOf(id)).node()->stats().duplicate_forwards;
  }
  CHECK(dups >= 5);
}

TEST_CASE("data types: increments on both sides of a partition converge to the sum") {
  World w(24, 5, Base(Mode::kSloppy));
  auto p = Primaries(w, "votes");
  // p[0] alone with two non-replicas; p[1], p[2] on the other side.
  std::vector<NodeId> a{p[0]}, b{p[1], p[2]};
  for (int i = 1; i <= 5; ++i) {
    const NodeId& id = w.node(i).id();
    if (std::find(p.begin(), p.end(), id) != p.end()) continue;
    (a.size() < 3 ? a : b).push_back(id);
  }
  w.Partition(a, b);
  int acked = 0;
  for (int i = 0; i < 10; ++i) {
    // Sloppy quorums: both sides reach w=2 (with fallbacks holding hints).
    const NodeId& via = i % 2 == 0 ? a[i % a.size()] : b[i % b.size()];
    DataTypeReply r = Incr(w, IndexOf(via), "votes");
    if (r.status.ok()) ++acked;
  }
  CHECK(acked == 10);
  w.RunFor(1000);
  w.Heal();
  w.RunFor(60000);  // hints delivered
  Quorum all;
  all.r = 3;
  KeyContents k = Read(w, IndexOf(p[0]), "votes", all);
  CHECK(k.state.counter().Value() == 10);
  w.RunUntilIdle();
  for (const NodeId& id : p) CHECK(CounterAt(w, id, "votes") == 10);
  // The states of the two sides are joined on read; the next increment at a
  // primary stores them as one.
  REQUIRE(Incr(w, IndexOf(p[1]), "votes").status.ok());
  w.RunUntilIdle();
  size_t siblings = 0;
  CHECK(CounterAt(w, p[1], "votes", &siblings) == 11);
  CHECK(siblings == 1);
}

TEST_CASE("data types: a fallback counts as a one-write actor; nothing is lost when its hint lands") {
  World w(25, 5, Base(Mode::kSloppy));
  auto p = Primaries(w, "k");
  REQUIRE(Incr(w, IndexOf(p[0]), "k", 5).status.ok());
  w.RunUntilIdle();
  w.node(IndexOf(p[0])).Crash();
  w.node(IndexOf(p[1])).Crash();
  w.RunFor(20000);  // the failure detector sees them down
  // Only p[2] is up: the fallbacks stand in for the others.
  for (int i = 0; i < 3; ++i) {
    DataTypeReply r = Incr(w, IndexOf(p[2]), "k");
    REQUIRE_MESSAGE(r.status.ok(), r.status.ToString());
  }
  int other = NonReplica(w, "k");
  DataTypeReply via_fallback = Incr(w, other, "k");
  REQUIRE(via_fallback.status.ok());
  w.node(IndexOf(p[0])).Restart();
  w.node(IndexOf(p[1])).Restart();
  w.RunFor(60000);
  w.RunUntilIdle();
  Quorum all;
  all.r = 3;
  CHECK(Read(w, IndexOf(p[0]), "k", all).state.counter().Value() == 9);
  for (const NodeId& id : p) CHECK(CounterAt(w, id, "k") == 9);
}

TEST_CASE("data types: a delete with the read's context removes the value; a stale copy does not revive it") {
  World w(26, 5, Base());
  auto p = Primaries(w, "s");
  REQUIRE(Op(w, 1, "s", DataType::kSet, DataTypeOpCode::kAdd, {"a", "b"}).status.ok());
  w.RunUntilIdle();
  // p[2] misses the delete.
  w.Cut(p[0], p[2]);
  w.Cut(p[1], p[2]);
  Reply got = AsReply(w.Call(IndexOf(p[0]), GetRequest{"s", {}}));
  REQUIRE(got.object.has_value());
  PutRequest del;
  del.key = "s";
  del.tombstone = true;
  del.context = EncodeContext(got.object->clock());
  REQUIRE(AsReply(w.Call(IndexOf(p[0]), del)).status.ok());
  w.RunUntilIdle();
  w.Heal();
  Quorum all;
  all.r = 3;
  CHECK_FALSE(Read(w, IndexOf(p[0]), "s", all).found());
  w.RunUntilIdle();  // read repair reaches p[2]
  CHECK_FALSE(Read(w, IndexOf(p[2]), "s", all).found());
  // A new add starts a new set: the old members stay deleted.
  DataTypeReply r = Op(w, IndexOf(p[2]), "s", DataType::kSet, DataTypeOpCode::kAdd, {"c"});
  REQUIRE(r.status.ok());
  CHECK(r.integer == 1);
  w.RunUntilIdle();
  CHECK(Read(w, IndexOf(p[1]), "s", all).state.set().Members() == std::vector<std::string>{"c"});
}

TEST_CASE("data types: an update concurrent with a delete survives with its coordinator's state") {
  World w(27, 5, Base());
  auto p = Primaries(w, "c");
  REQUIRE(Incr(w, IndexOf(p[0]), "c", 5).status.ok());
  w.RunUntilIdle();
  Reply got = AsReply(w.Call(IndexOf(p[0]), GetRequest{"c", {}}));
  // p[1] increments while the delete goes through p[0] and p[2] only.
  w.Cut(p[0], p[1]);
  w.Cut(p[2], p[1]);
  w.Cut(p[1], p[0]);
  w.Cut(p[1], p[2]);
  PutRequest del;
  del.key = "c";
  del.tombstone = true;
  del.context = EncodeContext(got.object->clock());
  REQUIRE(AsReply(w.Call(IndexOf(p[0]), del)).status.ok());
  Quorum w1;
  w1.w = 1;
  REQUIRE(Op(w, IndexOf(p[1]), "c", DataType::kCounter, DataTypeOpCode::kIncrement, {}, 1, w1)
              .status.ok());
  w.Heal();
  w.RunFor(5000);
  Quorum all;
  all.r = 3;
  // The increment's state (5 + 1) survives the delete, as in Riak.
  CHECK(Read(w, IndexOf(p[2]), "c", all).state.counter().Value() == 6);
  w.RunUntilIdle();  // read repair: every primary holds the tombstone and the survivor
  // Increments after that are not hidden by the old counts.
  REQUIRE(Incr(w, IndexOf(p[0]), "c", 1).status.ok());
  w.RunUntilIdle();
  CHECK(Read(w, IndexOf(p[2]), "c", all).state.counter().Value() == 7);
}

TEST_CASE("data types: SREM of a member the coordinator does not hold writes nothing") {
  World w(28, 5, Base());
  DataTypeReply r = Op(w, 1, "s", DataType::kSet, DataTypeOpCode::kRemove, {"nobody"});
  REQUIRE(r.status.ok());
  CHECK(r.integer == 0);
  CHECK_FALSE(r.dot.has_value());
  w.RunUntilIdle();
  for (int i = 1; i <= 5; ++i) {
    DvvSet o;
    CHECK(w.node(i).store().Get("s", &o).IsNotFound());
  }
}

TEST_CASE("data types: maps: HSET, HINCRBY and HDEL through different nodes") {
  World w(29, 5, Base());
  REQUIRE(Op(w, 1, "m", DataType::kMap, DataTypeOpCode::kSetFields, {"name", "ada", "age", "36"}).integer == 2);
  w.RunUntilIdle();
  DataTypeReply inc = Op(w, 2, "m", DataType::kMap, DataTypeOpCode::kIncrementField, {"age"}, 1);
  REQUIRE(inc.status.ok());
  CHECK(inc.integer == 37);
  w.RunUntilIdle();
  CHECK(Op(w, 3, "m", DataType::kMap, DataTypeOpCode::kRemoveFields, {"name", "x"}).integer == 1);
  w.RunUntilIdle();
  KeyContents k = Read(w, 4, "m");
  CHECK(k.type == DataType::kMap);
  CHECK(k.state.map().Fields() == std::vector<std::pair<std::string, std::string>>{{"age", "37"}});
}

TEST_CASE("data types: a state over the value limit is refused and nothing is written") {
  NodeConfig c = Base();
  c.max_value_bytes = 2000;
  World w(30, 3, c);
  REQUIRE(Op(w, 1, "s", DataType::kSet, DataTypeOpCode::kAdd, {std::string(500, 'a')}).status.ok());
  DataTypeReply r = Op(w, 1, "s", DataType::kSet, DataTypeOpCode::kAdd,
                       {std::string(1000, 'b'), std::string(1000, 'c')});
  CHECK(r.status.IsInvalidArgument());
  CHECK(r.status.message().find("the set would take") == 0);
  w.RunUntilIdle();
  CHECK(Read(w, 2, "s").state.set().size() == 1);
}

TEST_CASE("data types: a node whose data dir was wiped counts as a new actor: no increment is lost") {
  World w(31, 3, Base());
  DataTypeReply first;
  for (int i = 0; i < 5; ++i) {
    first = Incr(w, 1, "k");
    REQUIRE(first.status.ok());
  }
  w.RunUntilIdle();
  // n1 loses everything (a new disk) and comes back under the same id.
  w.node(1).Crash();
  w.node(1).store() = MemoryStore();
  w.RunFor(2000);
  w.node(1).Restart();
  w.RunFor(5000);
  DataTypeReply again = Incr(w, 1, "k");
  REQUIRE(again.status.ok());
  REQUIRE(again.dot.has_value());
  // A new actor: its dots cannot collide with the ones n1 made before (with
  // the node id as the actor, n1:1 would be taken for the write the cluster
  // already has, and dropped).
  CHECK(again.dot->actor.rfind("n1~d", 0) == 0);
  CHECK(again.dot->actor != first.dot->actor);
  for (int i = 0; i < 2; ++i) REQUIRE(Incr(w, 1, "k").status.ok());
  w.RunUntilIdle();
  Quorum all;
  all.r = 3;
  CHECK(Read(w, 2, "k", all).state.counter().Value() == 8);
}
