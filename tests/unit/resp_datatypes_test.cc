// The Redis-protocol commands on counters, sets and maps (resp/session.h,
// resp/session_datatypes.cc): the requests a session makes and the replies it
// gives, byte for byte as Redis does. No sockets: node answers are crafted.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/codec.h"
#include "resp/parser.h"
#include "resp/session.h"

using namespace ringkv;

namespace {

std::string Array(const std::vector<std::string>& args) {
  std::string out;
  AppendArrayHeader(&out, args.size());
  for (const auto& a : args) AppendBulkString(&out, a);
  return out;
}

struct FakeNode {
  RespStats stats;
  RespSession session{RespOptions{}, &stats};
  std::vector<Envelope> requests;

  std::string Send(const std::vector<std::string>& args) {
    session.Feed(Array(args));
    Collect();
    return session.TakeOutput();
  }
  void Collect() {
    for (auto& e : session.TakeRequests()) requests.push_back(std::move(e));
  }
  std::string Answer(size_t i, Body body) {
    session.OnReply(Envelope{requests.at(i).request_id, {}, {}, std::move(body)});
    Collect();
    return session.TakeOutput();
  }
  const DataTypeRequest& DataTypeAt(size_t i) {
    auto* r = std::get_if<DataTypeRequest>(&requests.at(i).body);
    REQUIRE(r != nullptr);
    return *r;
  }
};

// An object holding one state of a data type.
DvvSet Holding(const DataTypeState& st) {
  Sibling s;
  s.value = st.Encode();
  s.datatype = static_cast<uint8_t>(st.type());
  s.timestamp_ms = 1000;
  return DvvSet::Update({}, {}, "n1~dx", std::move(s));
}

// Two concurrent counter states (what a partition leaves), joined on read.
DvvSet TwoCounterStates() {
  DataTypeState a(DataType::kCounter, 10), b(DataType::kCounter, 20);
  REQUIRE(a.counter().Add(Dot{"n1~dx", 1}, 3).ok());
  REQUIRE(b.counter().Add(Dot{"n2~dy", 1}, 4).ok());
  Sibling sa, sb;
  sa.value = a.Encode();
  sa.datatype = 1;
  sb.value = b.Encode();
  sb.datatype = 1;
  DvvSet o = DvvSet::Update({}, {}, "n1~dx", sa);
  return DvvSet::Sync(o, DvvSet::Update({}, {}, "n2~dy", sb));
}

Reply Found(DvvSet o) { return Reply{Status::OK(), std::move(o), std::nullopt}; }
Reply Missing() { return Reply{Status::NotFound("key not found"), std::nullopt, std::nullopt}; }
DataTypeReply Integer(int64_t v) { return DataTypeReply{Status::OK(), v, Dot{"n1~dx", 1}}; }

}  // namespace

TEST_CASE("resp data types: INCR, INCRBY, DECR, DECRBY become counter operations answered with integers") {
  FakeNode n;
  CHECK(n.Send({"INCR", "c"}) == "");
  CHECK(n.Send({"incrby", "c", "10"}) == "");
  CHECK(n.Send({"DECR", "c"}) == "");
  CHECK(n.Send({"DECRBY", "c", "-4"}) == "");
  REQUIRE(n.requests.size() == 4);
  CHECK(n.DataTypeAt(0).type == DataType::kCounter);
  CHECK(n.DataTypeAt(0).op == DataTypeOpCode::kIncrement);
  CHECK(n.DataTypeAt(0).delta == 1);
  CHECK(n.DataTypeAt(1).delta == 10);
  CHECK(n.DataTypeAt(2).delta == -1);
  CHECK(n.DataTypeAt(3).delta == 4);
  // Answers in command order, whatever order the node gives them.
  CHECK(n.Answer(1, Integer(11)) == "");
  CHECK(n.Answer(0, Integer(1)) == ":1\r\n:11\r\n");
  CHECK(n.Answer(3, Integer(14)) == "");
  CHECK(n.Answer(2, Integer(10)) == ":10\r\n:14\r\n");
}

TEST_CASE("resp data types: Redis's errors for bad arguments and wrong types") {
  FakeNode n;
  CHECK(n.Send({"INCRBY", "c", "ten"}) == "-ERR value is not an integer or out of range\r\n");
  CHECK(n.Send({"INCRBY", "c", "99999999999999999999"}) ==
        "-ERR value is not an integer or out of range\r\n");
  CHECK(n.Send({"INCR"}) == "-ERR wrong number of arguments for 'incr' command\r\n");
  CHECK(n.Send({"SADD", "s"}) == "-ERR wrong number of arguments for 'sadd' command\r\n");
  CHECK(n.Send({"HSET", "h", "f"}) == "-ERR wrong number of arguments for 'hset' command\r\n");
  CHECK(n.Send({"HSET", "h", "f", "v", "g"}) == "-ERR wrong number of arguments for 'hset' command\r\n");
  CHECK(n.Send({"HINCRBY", "h", "f", "x"}) == "-ERR value is not an integer or out of range\r\n");
  CHECK(n.Send({"DECRBY", "c", "-9223372036854775808"}) == "-ERR decrement would overflow\r\n");
  CHECK(n.requests.empty());
  CHECK(n.Send({"SADD", "c", "x"}) == "");
  CHECK(n.Answer(0, DataTypeReply{Status::WrongType("the key holds a counter, not a set"), 0,
                                  std::nullopt}) ==
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  CHECK(n.Send({"INCR", "c"}) == "");
  CHECK(n.Answer(1, DataTypeReply{Status::InvalidArgument("increment or decrement would overflow"),
                                  0, std::nullopt}) ==
        "-ERR increment or decrement would overflow\r\n");
}

TEST_CASE("resp data types: GET of a counter answers its value; of a set, WRONGTYPE; MGET, nil") {
  FakeNode n;
  n.Send({"GET", "c"});
  CHECK(n.Answer(0, Found(TwoCounterStates())) == "$1\r\n7\r\n");  // 3 + 4: no CONFLICT
  DataTypeState set(DataType::kSet, 1);
  set.set().Add(Dot{"n1~dx", 1}, "m");
  n.Send({"GET", "s"});
  CHECK(n.Answer(1, Found(Holding(set))) ==
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  n.Send({"MGET", "c", "s"});
  n.Answer(2, Found(TwoCounterStates()));
  CHECK(n.Answer(3, Found(Holding(set))) == "*2\r\n$1\r\n7\r\n$-1\r\n");
  n.Send({"EXISTS", "s", "c"});
  n.Answer(4, Found(Holding(set)));
  CHECK(n.Answer(5, Found(TwoCounterStates())) == ":2\r\n");
}

TEST_CASE("resp data types: SADD, SREM, SMEMBERS, SISMEMBER, SCARD") {
  FakeNode n;
  n.Send({"SADD", "s", "a", "b"});
  const DataTypeRequest& add = n.DataTypeAt(0);
  CHECK(add.type == DataType::kSet);
  CHECK(add.op == DataTypeOpCode::kAdd);
  CHECK(add.args == std::vector<std::string>{"a", "b"});
  CHECK(n.Answer(0, Integer(2)) == ":2\r\n");
  n.Send({"SREM", "s", "a"});
  CHECK(n.DataTypeAt(1).op == DataTypeOpCode::kRemove);
  CHECK(n.Answer(1, Integer(1)) == ":1\r\n");
  DataTypeState set(DataType::kSet, 1);
  set.set().Add(Dot{"n1~dx", 1}, "b");
  set.set().Add(Dot{"n1~dx", 2}, "a");
  n.Send({"SMEMBERS", "s"});
  CHECK(std::holds_alternative<GetRequest>(n.requests.at(2).body));
  CHECK(n.Answer(2, Found(Holding(set))) == "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
  n.Send({"SISMEMBER", "s", "a"});
  CHECK(n.Answer(3, Found(Holding(set))) == ":1\r\n");
  n.Send({"SISMEMBER", "s", "z"});
  CHECK(n.Answer(4, Found(Holding(set))) == ":0\r\n");
  n.Send({"SCARD", "s"});
  CHECK(n.Answer(5, Found(Holding(set))) == ":2\r\n");
  // A missing key is an empty set.
  n.Send({"SMEMBERS", "nothing"});
  CHECK(n.Answer(6, Missing()) == "*0\r\n");
  n.Send({"SCARD", "nothing"});
  CHECK(n.Answer(7, Missing()) == ":0\r\n");
  // A counter is not a set.
  n.Send({"SMEMBERS", "c"});
  CHECK(n.Answer(8, Found(TwoCounterStates())) ==
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
}

TEST_CASE("resp data types: HSET, HGET, HDEL, HGETALL, HLEN, HEXISTS, HINCRBY") {
  FakeNode n;
  n.Send({"HSET", "h", "f", "1", "g", "2"});
  CHECK(n.DataTypeAt(0).op == DataTypeOpCode::kSetFields);
  CHECK(n.DataTypeAt(0).args == std::vector<std::string>{"f", "1", "g", "2"});
  CHECK(n.Answer(0, Integer(2)) == ":2\r\n");
  n.Send({"HINCRBY", "h", "f", "5"});
  CHECK(n.DataTypeAt(1).op == DataTypeOpCode::kIncrementField);
  CHECK(n.DataTypeAt(1).args == std::vector<std::string>{"f"});
  CHECK(n.DataTypeAt(1).delta == 5);
  CHECK(n.Answer(1, Integer(6)) == ":6\r\n");
  n.Send({"HDEL", "h", "g", "x"});
  CHECK(n.DataTypeAt(2).op == DataTypeOpCode::kRemoveFields);
  CHECK(n.Answer(2, Integer(1)) == ":1\r\n");
  DataTypeState map(DataType::kMap, 1);
  map.map().SetRegister(Dot{"n1~dx", 1}, 5, "name", "ada");
  REQUIRE(map.map().IncrementField(Dot{"n1~dx", 2}, 6, "age", 36).ok());
  n.Send({"HGET", "h", "name"});
  CHECK(n.Answer(3, Found(Holding(map))) == "$3\r\nada\r\n");
  n.Send({"HGET", "h", "nope"});
  CHECK(n.Answer(4, Found(Holding(map))) == "$-1\r\n");
  n.Send({"HGETALL", "h"});
  CHECK(n.Answer(5, Found(Holding(map))) == "*4\r\n$3\r\nage\r\n$2\r\n36\r\n$4\r\nname\r\n$3\r\nada\r\n");
  n.Send({"HLEN", "h"});
  CHECK(n.Answer(6, Found(Holding(map))) == ":2\r\n");
  n.Send({"HEXISTS", "h", "age"});
  CHECK(n.Answer(7, Found(Holding(map))) == ":1\r\n");
  n.Send({"HGETALL", "nothing"});
  CHECK(n.Answer(8, Missing()) == "*0\r\n");
}

TEST_CASE("resp data types: TYPE says none, string, set or hash") {
  FakeNode n;
  DataTypeState set(DataType::kSet, 1), map(DataType::kMap, 1);
  set.set().Add(Dot{"n1~dx", 1}, "m");
  map.map().SetRegister(Dot{"n1~dx", 1}, 1, "f", "v");
  n.Send({"TYPE", "a"});
  n.Send({"TYPE", "b"});
  n.Send({"TYPE", "c"});
  n.Send({"TYPE", "d"});
  n.Send({"TYPE", "e"});
  n.Answer(4, Found(DvvSet::Update({}, {}, "n1", "plain", false, 1)));
  n.Answer(3, Found(Holding(map)));
  n.Answer(2, Found(Holding(set)));
  n.Answer(1, Found(TwoCounterStates()));
  CHECK(n.Answer(0, Missing()) == "+none\r\n+string\r\n+set\r\n+hash\r\n+string\r\n");
}
