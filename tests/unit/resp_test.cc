// The Redis-protocol front end: the RESP2 parser and encoder (resp/parser.h)
// and the session that turns commands into node requests and replies back
// into RESP, in command order (resp/session.h). No sockets: bytes and
// node answers are crafted here.
#include "resp/parser.h"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "core/codec.h"
#include "resp/glob.h"
#include "resp/session.h"

using namespace ringkv;

namespace {

using Args = std::vector<std::string>;

// Feeds `chunks` one after the other and collects every command (an
// oversize-argument error comes out as {"<error>", message}); stops at a
// protocol error, which is returned in *error.
std::vector<Args> ParseChunks(const std::vector<std::string>& chunks, std::string* error,
                              RespLimits limits = {}) {
  RespParser parser(limits);
  std::vector<Args> out;
  error->clear();
  for (const std::string& chunk : chunks) {
    parser.Append(chunk);
    while (true) {
      RespCommand cmd;
      auto r = parser.Next(&cmd, error);
      if (r == RespParser::Result::kNeedMore) break;
      if (r == RespParser::Result::kError) return out;
      out.push_back(cmd.error.empty() ? cmd.args : Args{"<error>", cmd.error});
    }
  }
  return out;
}

std::vector<Args> ParseAll(const std::string& bytes, std::string* error, RespLimits limits = {}) {
  return ParseChunks({bytes}, error, limits);
}

std::string Array(const Args& args) {
  std::string out;
  AppendArrayHeader(&out, args.size());
  for (const auto& a : args) AppendBulkString(&out, a);
  return out;
}

// A pipeline with every shape the parser knows: arrays with binary and empty
// arguments, inline commands with quotes, empty lines, "*0".
std::string MixedStream() {
  std::string s;
  s += Array({"SET", "k1", std::string("v\r\n\0x", 5)});
  s += Array({"GET", ""});
  s += "PING\r\n";
  s += "\r\n";
  s += "*0\r\n";
  s += "SET   \"a b\"  'c d'\n";
  s += Array({"MGET", "a", "b", "c"});
  s += "ECHO \"x\\x41\\n\"\r\n";
  return s;
}

std::vector<Args> MixedExpected() {
  return {{"SET", "k1", std::string("v\r\n\0x", 5)},
          {"GET", ""},
          {"PING"},
          {"SET", "a b", "c d"},
          {"MGET", "a", "b", "c"},
          {"ECHO", "xA\n"}};
}

// Plays the node for a session: keeps its requests, answers them on demand.
struct FakeNode {
  RespStats stats;
  RespSession session;
  std::vector<Envelope> requests;

  explicit FakeNode(RespOptions o = {}) : session(o, &stats) {}

  // Feeds bytes and returns what the session answered at once.
  std::string Send(const std::string& bytes) {
    session.Feed(bytes);
    Collect();
    return session.TakeOutput();
  }
  void Collect() {
    for (auto& e : session.TakeRequests()) requests.push_back(std::move(e));
  }
  // Answers request i (in the order made) and returns the output it released.
  std::string Answer(size_t i, Body body) {
    session.OnReply(Envelope{requests.at(i).request_id, {}, {}, std::move(body)});
    Collect();
    return session.TakeOutput();
  }
};

DvvSet OneValue(const std::string& v, uint64_t ts = 1000) {
  return DvvSet::Update({}, {}, "n1", v, false, ts);
}

DvvSet TwoSiblings() {
  DvvSet o = DvvSet::Update({}, {}, "n1", "old", false, 1000);
  return DvvSet::Update(o, {}, "n2", "new", false, 2000);  // blind: a sibling
}

Reply Found(DvvSet o) { return Reply{Status::OK(), std::move(o), std::nullopt}; }
Reply Missing() { return Reply{Status::NotFound("key not found"), std::nullopt, std::nullopt}; }
Reply Written() { return Reply{Status::OK(), std::nullopt, Dot{"n1", 1}}; }

}  // namespace

// --- parser -------------------------------------------------------------------------

TEST_CASE("resp parser: a mixed pipeline parses the same split at every byte boundary") {
  const std::string stream = MixedStream();
  std::string error;
  REQUIRE(ParseAll(stream, &error) == MixedExpected());
  CHECK(error.empty());
  for (size_t i = 0; i <= stream.size(); ++i) {
    auto got = ParseChunks({stream.substr(0, i), stream.substr(i)}, &error);
    CHECK_MESSAGE(got == MixedExpected(), "split at " << i);
    CHECK(error.empty());
  }
  // Three pieces, every pair of split points.
  for (size_t i = 0; i <= stream.size(); i += 3) {
    for (size_t j = i; j <= stream.size(); j += 5) {
      auto got =
          ParseChunks({stream.substr(0, i), stream.substr(i, j - i), stream.substr(j)}, &error);
      CHECK_MESSAGE(got == MixedExpected(), "split at " << i << " and " << j);
    }
  }
  // One byte at a time.
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  CHECK(ParseChunks(bytes, &error) == MixedExpected());
}

TEST_CASE("resp parser: inline commands follow Redis's quoting rules") {
  Args args;
  CHECK(SplitInlineArgs("  get   key  ", &args));
  CHECK(args == Args{"get", "key"});
  CHECK(SplitInlineArgs("set k \"a \\\"quoted\\\" \\t\\x7a\"", &args));
  CHECK(args == Args{"set", "k", "a \"quoted\" \tz"});
  CHECK(SplitInlineArgs("set k 'it\\'s'", &args));
  CHECK(args == Args{"set", "k", "it's"});
  CHECK(SplitInlineArgs("set k \"\"", &args));
  CHECK(args == Args{"set", "k", ""});
  CHECK(SplitInlineArgs("", &args));
  CHECK(args.empty());
  CHECK_FALSE(SplitInlineArgs("set k \"open", &args));
  CHECK_FALSE(SplitInlineArgs("set k 'open", &args));
  CHECK_FALSE(SplitInlineArgs("set k \"a\"b", &args));  // a closing quote must end the word

  std::string error;
  CHECK(ParseAll("SET k \"open\r\n", &error).empty());
  CHECK(error == "Protocol error: unbalanced quotes in request");
}

TEST_CASE("resp parser: malformed input is a protocol error, and stays one") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"*abc\r\n", "invalid multibulk length"},
      {"*1x\r\n", "invalid multibulk length"},
      {"*+1\r\n", "invalid multibulk length"},
      {"*1\r\nGET\r\n", "expected '$', got 'G'"},
      {"*1\r\n$-3\r\n", "invalid bulk length"},
      {"*1\r\n$x\r\n", "invalid bulk length"},
      {"*1\r\n$99999999999999999999999\r\n", "invalid bulk length"},
      {"*1\r\n$3\r\nabcXY", "bulk string not followed by CRLF"},
      {"*" + std::string(100, '1'), "too big multibulk count string"},
      {"*1\r\n$" + std::string(100, '1'), "too big bulk count string"},
      {"*1\r\n$1000000000000\r\n", "bulk string of 1000000000000 bytes"},
      {"*99999999\r\n", "command of 99999999 arguments"},
  };
  for (const auto& [input, expected] : cases) {
    RespParser parser;
    parser.Append(input);
    RespCommand cmd;
    std::string error;
    auto r = parser.Next(&cmd, &error);
    CHECK_MESSAGE(r == RespParser::Result::kError, input);
    CHECK_MESSAGE(error.find(expected) != std::string::npos, input << " -> " << error);
    CHECK(error.rfind("Protocol error: ", 0) == 0);
    // Nothing after the error is parsed, even a valid command.
    parser.Append(Array({"PING"}));
    CHECK(parser.Next(&cmd, &error) == RespParser::Result::kError);
    CHECK(parser.buffered() == 0);
  }
}

TEST_CASE("resp parser: random and mangled bytes never crash it") {
  std::mt19937_64 rng(7);
  const std::string valid = MixedStream() + Array({"DEL", "a", "b"});
  const std::string alphabet = "*$\r\n0123456789-+ \"'\\xabcGETSET";
  int errors = 0, commands = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string input;
    if (round % 2 == 0) {
      // Pure noise from an alphabet rich in protocol characters.
      size_t len = rng() % 200;
      for (size_t i = 0; i < len; ++i) input += alphabet[rng() % alphabet.size()];
    } else {
      // A valid stream with a few bytes changed, dropped or duplicated.
      input = valid;
      for (int k = 0; k < 3; ++k) {
        size_t at = rng() % input.size();
        switch (rng() % 3) {
          case 0:
            input[at] = static_cast<char>(rng());
            break;
          case 1:
            input.erase(at, 1);
            break;
          default:
            input.insert(at, 1, input[at]);
            break;
        }
      }
    }
    RespLimits limits;
    limits.max_bulk_bytes = 16;
    limits.max_args = 8;
    limits.max_inline_bytes = 64;
    RespParser parser(limits);
    size_t pos = 0;
    bool failed = false;
    while (pos < input.size() && !failed) {
      size_t n = 1 + rng() % 16;
      parser.Append(std::string_view(input).substr(pos, n));
      pos += n;
      while (true) {
        RespCommand cmd;
        std::string error;
        auto r = parser.Next(&cmd, &error);
        if (r == RespParser::Result::kNeedMore) break;
        if (r == RespParser::Result::kError) {
          CHECK(!error.empty());
          failed = true;
          ++errors;
          break;
        }
        CHECK(!cmd.args.empty());
        CHECK(cmd.args.size() <= limits.max_args);
        ++commands;
      }
    }
    // Never more buffered than one incomplete command can hold.
    CHECK(parser.buffered() <= limits.max_inline_bytes + 200);
  }
  CHECK(errors > 0);
  CHECK(commands > 0);
}

TEST_CASE("resp parser: an argument over the limit is skipped unbuffered and its command fails") {
  RespLimits limits;
  limits.max_bulk_bytes = 10;
  RespParser parser(limits);
  const std::string big(1000, 'v');
  std::string stream = Array({"SET", "k", big}) + Array({"GET", "k"});
  RespCommand cmd;
  std::string error;
  size_t max_buffered = 0;
  std::vector<RespCommand> got;
  for (size_t i = 0; i < stream.size(); i += 7) {
    parser.Append(std::string_view(stream).substr(i, 7));
    max_buffered = std::max(max_buffered, parser.buffered());
    while (parser.Next(&cmd, &error) == RespParser::Result::kCommand) got.push_back(cmd);
  }
  REQUIRE(got.size() == 2);
  CHECK(got[0].error == "ERR argument 3 is 1000 bytes; the limit is 10");
  CHECK(got[0].args.size() == 3);
  CHECK(got[1].error.empty());
  CHECK(got[1].args == Args{"GET", "k"});
  CHECK(max_buffered < 40);  // the 1000 bytes were never held

  // Too many arguments, too long an inline line: protocol errors.
  limits = RespLimits{};
  limits.max_args = 3;
  CHECK(ParseAll(Array({"DEL", "a", "b", "c"}), &error, limits).empty());
  CHECK(error == "Protocol error: command of 4 arguments; the limit is 3");
  CHECK(ParseAll("DEL a b c\r\n", &error, limits).empty());
  CHECK(error == "Protocol error: 4 arguments; the limit is 3");
  limits = RespLimits{};
  limits.max_inline_bytes = 100;
  CHECK(ParseAll(std::string(200, 'x'), &error, limits).empty());
  CHECK(error.find("too big inline request") != std::string::npos);
}

// --- encoder --------------------------------------------------------------------------

TEST_CASE("resp encoder: every reply type, and no line breaks inside line replies") {
  std::string out;
  AppendSimpleString(&out, "OK");
  AppendError(&out, "ERR bad\r\nthing");
  AppendInteger(&out, -42);
  AppendBulkString(&out, std::string("a\r\nb\0", 5));
  AppendBulkString(&out, "");
  AppendNil(&out);
  AppendArrayHeader(&out, 2);
  std::string expected = "+OK\r\n-ERR bad  thing\r\n:-42\r\n$5\r\na\r\nb";
  expected += '\0';
  expected += "\r\n$0\r\n\r\n$-1\r\n*2\r\n";
  CHECK(out == expected);
}

// --- session ----------------------------------------------------------------------------

TEST_CASE("resp session: commands answered at once keep their order") {
  FakeNode node;
  std::string out = node.Send(Array({"PING"}) + Array({"ping", "hi"}) + Array({"ECHO", "e"}) +
                              Array({"SELECT", "0"}) + Array({"SELECT", "1"}) + Array({"GET"}) +
                              Array({"FLUSHALL", "now"}) + Array({"COMMAND", "DOCS"}) +
                              Array({"SET", "k", "v", "KEEPTTL"}));
  CHECK(out ==
        "+PONG\r\n$2\r\nhi\r\n$1\r\ne\r\n+OK\r\n"
        "-ERR DB index is out of range (ringkv has only database 0)\r\n"
        "-ERR wrong number of arguments for 'get' command\r\n"
        "-ERR unknown command 'FLUSHALL', with args beginning with: 'now' \r\n"
        "*0\r\n"
        "-ERR syntax error: ringkv's SET takes NX, XX, EX and PX, not KEEPTTL\r\n");
  CHECK(node.requests.empty());
  CHECK(node.stats.commands == 9);
  CHECK(node.stats.error_replies == 4);
}

TEST_CASE("resp session: GET maps values, misses, siblings and node errors") {
  FakeNode node;
  CHECK(node.Send(Array({"GET", "a"}) + Array({"GET", "b"}) + Array({"GET", "c"}) +
                  Array({"GET", "d"}) + Array({"GET", "e"}) + Array({"GET", "f"})) == "");
  REQUIRE(node.requests.size() == 6);
  auto* get = std::get_if<GetRequest>(&node.requests[0].body);
  REQUIRE(get != nullptr);
  CHECK(get->key == "a");
  CHECK(get->quorum == Quorum{});  // the node's defaults
  DvvSet deleted = DvvSet::Update(OneValue("x"), OneValue("x").clock(), "n1", "", true, 2000);
  std::string out;
  out += node.Answer(0, Found(OneValue("va")));
  out += node.Answer(1, Missing());
  out += node.Answer(2, Found(TwoSiblings()));
  out += node.Answer(
      3, Reply{Status::Unavailable("read quorum not met: 1 of r=2"), std::nullopt, std::nullopt});
  out += node.Answer(4, Reply{Status::Timeout("no answer in 2000 ms"), std::nullopt, std::nullopt});
  out += node.Answer(5, Reply{Status::NotFound("key not found (deleted)"), deleted, std::nullopt});
  CHECK(out ==
        "$2\r\nva\r\n"
        "$-1\r\n"
        "-CONFLICT key 'c' has 2 siblings; read it with 'ringkv get' to merge them (or CLIENT "
        "SETNAME lww for the newest)\r\n"
        "-UNAVAILABLE read quorum not met: 1 of r=2\r\n"
        "-TIMEOUT no answer in 2000 ms\r\n"
        "$-1\r\n");
  CHECK(node.stats.conflicts == 1);
}

TEST_CASE(
    "resp session: pipelined replies go out in command order whatever order they complete in") {
  FakeNode node;
  std::string in;
  for (int i = 0; i < 5; ++i) in += Array({"GET", "k" + std::to_string(i)});
  in += Array({"PING"});
  CHECK(node.Send(in) == "");  // PING waits behind the GETs
  REQUIRE(node.requests.size() == 5);
  CHECK(node.Answer(4, Found(OneValue("v4"))) == "");
  CHECK(node.Answer(2, Found(OneValue("v2"))) == "");
  CHECK(node.Answer(0, Found(OneValue("v0"))) == "$2\r\nv0\r\n");
  CHECK(node.Answer(1, Missing()) == "$-1\r\n$2\r\nv2\r\n");
  CHECK(node.Answer(3, Found(OneValue("v3"))) == "$2\r\nv3\r\n$2\r\nv4\r\n+PONG\r\n");
  CHECK(node.session.queued() == 0);
  // A stale or unknown answer changes nothing.
  CHECK(node.Answer(3, Found(OneValue("again"))) == "");
}

TEST_CASE("resp session: MGET gathers its GETs in key order; one failing key fails it") {
  FakeNode node;
  node.Send(Array({"MGET", "a", "b", "c"}));
  REQUIRE(node.requests.size() == 3);
  CHECK(node.Answer(2, Found(OneValue("vc"))) == "");
  CHECK(node.Answer(0, Found(OneValue("va"))) == "");
  CHECK(node.Answer(1, Missing()) == "*3\r\n$2\r\nva\r\n$-1\r\n$2\r\nvc\r\n");

  node.Send(Array({"MGET", "a", "b"}));
  node.Answer(3, Found(OneValue("va")));
  std::string out = node.Answer(4, Found(TwoSiblings()));
  CHECK(out.rfind("-CONFLICT key 'b' has 2 siblings", 0) == 0);
}

TEST_CASE("resp session: SET is a blind write, in lww mode an lww write") {
  FakeNode node;
  node.Send(Array({"SET", "k", "v1"}));
  REQUIRE(node.requests.size() == 1);
  auto* put = std::get_if<PutRequest>(&node.requests[0].body);
  REQUIRE(put != nullptr);
  CHECK(put->key == "k");
  CHECK(put->value == "v1");
  CHECK(put->context.empty());
  CHECK_FALSE(put->tombstone);
  CHECK_FALSE(put->quorum.lww);
  CHECK(node.Answer(0, Written()) == "+OK\r\n");

  CHECK(node.Send(Array({"CLIENT", "SETNAME", "lww"}) + Array({"CLIENT", "GETNAME"}) +
                  Array({"SET", "k", "v2"})) == "+OK\r\n$3\r\nlww\r\n");
  put = std::get_if<PutRequest>(&node.requests[1].body);
  REQUIRE(put != nullptr);
  CHECK(put->quorum.lww);
  CHECK(node.Answer(1, Reply{Status::InvalidArgument("value is 20 bytes; the limit is 10"),
                             std::nullopt, std::nullopt}) ==
        "-ERR value is 20 bytes; the limit is 10\r\n");
}

TEST_CASE("resp session: in lww mode GET answers the newest sibling, and nil if it is a delete") {
  FakeNode node;
  node.Send(Array({"GET", "k"}) + Array({"CLIENT", "SETNAME", "lww"}) + Array({"GET", "k"}) +
            Array({"GET", "gone"}) + Array({"CLIENT", "SETNAME", "alice"}) + Array({"GET", "k"}));
  REQUIRE(node.requests.size() == 4);
  // lww reads are plain reads: the node's read repair keeps every sibling.
  CHECK_FALSE(std::get<GetRequest>(node.requests[1].body).quorum.lww);
  DvvSet newest_deleted = DvvSet::Update(OneValue("old", 1000), {}, "n2", "", true, 3000);
  std::string out;
  for (size_t i = 0; i < 4; ++i) {
    out += node.Answer(i, Found(i == 2 ? newest_deleted : TwoSiblings()));
  }
  CHECK(out.find("-CONFLICT key 'k' has 2 siblings") == 0);
  CHECK(out.find("+OK\r\n$3\r\nnew\r\n$-1\r\n+OK\r\n-CONFLICT") != std::string::npos);

  // RINGKV LWW switches too, and says which mode is on.
  FakeNode other;
  CHECK(other.Send(Array({"RINGKV", "LWW", "ON"}) + Array({"RINGKV", "LWW"}) +
                   Array({"RINGKV", "LWW", "OFF"}) + Array({"RINGKV", "LWW"}) +
                   Array({"RINGKV", "FOO"})) ==
        "+OK\r\n$2\r\non\r\n+OK\r\n$3\r\noff\r\n-ERR usage: RINGKV LWW [ON|OFF]\r\n");

  RespOptions o;
  o.lww = true;  // --resp-lww
  FakeNode lww(o);
  CHECK(lww.session.lww());
  lww.Send(Array({"GET", "k"}));
  CHECK(lww.Answer(0, Found(TwoSiblings())) == "$3\r\nnew\r\n");
}

TEST_CASE("resp session: DEL reads each key, deletes it with that context, counts what existed") {
  FakeNode node;
  node.Send(Array({"DEL", "a", "b", "c"}));
  REQUIRE(node.requests.size() == 3);
  DvvSet a = TwoSiblings();
  CHECK(node.Answer(0, Found(a)) == "");  // siblings: it exists, delete both
  CHECK(node.Answer(1, Missing()) == "");
  CHECK(node.Answer(2, Found(OneValue("c"))) == "");
  REQUIRE(node.requests.size() == 5);
  auto* del = std::get_if<PutRequest>(&node.requests[3].body);
  REQUIRE(del != nullptr);
  CHECK(del->key == "a");
  CHECK(del->tombstone);
  CHECK(del->context == EncodeContext(a.clock()));
  CHECK(std::get<PutRequest>(node.requests[4].body).key == "c");
  CHECK(node.Answer(4, Written()) == "");
  CHECK(node.Answer(3, Written()) == ":2\r\n");

  // A failed delete fails the command.
  node.Send(Array({"DEL", "x"}));
  node.Answer(5, Found(OneValue("x")));
  CHECK(node.Answer(6, Reply{Status::Unavailable("write quorum not met"), std::nullopt,
                             std::nullopt}) == "-UNAVAILABLE write quorum not met\r\n");
}

TEST_CASE("resp session: EXISTS counts keys with values, repeats included") {
  FakeNode node;
  node.Send(Array({"EXISTS", "a", "b", "a", "c"}));
  REQUIRE(node.requests.size() == 4);
  node.Answer(0, Found(OneValue("x")));
  node.Answer(1, Missing());
  node.Answer(2, Found(OneValue("x")));
  CHECK(node.Answer(3, Found(TwoSiblings())) == ":3\r\n");  // siblings exist too
}

TEST_CASE("resp session: keys and values over the limits are refused with -ERR") {
  RespOptions o;
  o.limits.max_bulk_bytes = 100 * 1024;
  FakeNode node(o);
  std::string out = node.Send(Array({"SET", std::string(70000, 'k'), "v"}) + Array({"GET", ""}) +
                              Array({"SET", "k", std::string(200 * 1024, 'v')}) + Array({"PING"}));
  CHECK(out ==
        "-ERR key is 70000 bytes; the limit is 65536\r\n"
        "-ERR key is empty\r\n"
        "-ERR argument 3 is 204800 bytes; the limit is 102400\r\n"
        "+PONG\r\n");
  CHECK(node.requests.empty());
}

TEST_CASE(
    "resp session: a protocol error is answered after earlier replies, then the session ends") {
  FakeNode node;
  CHECK(node.Send(Array({"GET", "k"}) + "*1\r\n$x\r\n" + Array({"PING"})) == "");
  CHECK_FALSE(node.session.finished());
  CHECK(node.Answer(0, Missing()) == "$-1\r\n-ERR Protocol error: invalid bulk length\r\n");
  CHECK(node.session.finished());
  CHECK(node.stats.protocol_errors == 1);
  CHECK(node.Send(Array({"PING"})) == "");  // nothing more is read

  FakeNode quit;
  CHECK(quit.Send(Array({"PING"}) + Array({"QUIT"}) + Array({"PING"})) == "+PONG\r\n+OK\r\n");
  CHECK(quit.session.finished());
}

TEST_CASE("resp session: a full queue stops parsing until replies drain it") {
  RespOptions o;
  o.max_pending = 4;
  FakeNode node(o);
  std::string in;
  for (int i = 0; i < 10; ++i) in += Array({"GET", "k" + std::to_string(i)});
  node.Send(in);
  CHECK(node.requests.size() == 4);
  CHECK(node.session.full());
  std::string out;
  for (size_t i = 0; i < 10; ++i) {
    REQUIRE(i < node.requests.size());
    out += node.Answer(i, Found(OneValue("v" + std::to_string(i))));
    CHECK(node.session.queued() <= 4);
  }
  std::string expected;
  for (int i = 0; i < 10; ++i) AppendBulkString(&expected, "v" + std::to_string(i));
  CHECK(out == expected);
  CHECK_FALSE(node.session.full());

  // Node requests in flight count too: one MGET of many keys fills it.
  o.max_keys = 6;
  FakeNode fan(o);
  fan.Send(Array({"MGET", "a", "b", "c", "d", "e"}) + Array({"GET", "f"}) +
           Array({"MGET", "a", "b", "c", "d", "e", "f", "g"}));
  CHECK(fan.requests.size() == 5);  // the GET waits
  CHECK(fan.session.full());
  for (size_t i = 0; i < 5; ++i) fan.Answer(i, Missing());
  CHECK(fan.requests.size() == 6);
  CHECK(fan.Answer(5, Missing()) ==
        "$-1\r\n-ERR 7 keys in one command; ringkv takes at most 6\r\n");
}

TEST_CASE("resp session: INFO asks the node for status and stats and answers key:value lines") {
  FakeNode node;
  node.Send(Array({"INFO"}));
  REQUIRE(node.requests.size() == 2);
  CHECK(std::get<InfoRequest>(node.requests[0].body).topic == "status");
  CHECK(std::get<InfoRequest>(node.requests[1].body).topic == "stats");
  node.Answer(1, InfoReply{Status::OK(), R"({"gets":7,"get_latency":{"p50_ms":0.5}})"});
  std::string out =
      node.Answer(0, InfoReply{Status::OK(),
                               R"({"node":"n1","cluster":"c","version":"0.1.0","defaults":{"n":3},
                       "members":[{"id":"n1","address":"h:1","state":"up","alive":true},
                                  {"id":"n2","address":"h:2","state":"up","alive":false}]})"});
  REQUIRE(out.rfind("$", 0) == 0);
  for (const char* line : {"node:n1\r\n", "cluster:c\r\n", "default_n:3\r\n", "members:2\r\n",
                           "members_alive:1\r\n", "member_n2:address=h:2,state=up,alive=0\r\n",
                           "gets:7\r\n", "get_latency_p50_ms:0.5\r\n", "resp_mode:siblings\r\n"}) {
    CHECK_MESSAGE(out.find(line) != std::string::npos, line);
  }
  // The CONFIG GET redis-benchmark sends.
  CHECK(node.Send(Array({"CONFIG", "GET", "save"}) + Array({"CONFIG", "GET", "appendonly"})) ==
        "*2\r\n$4\r\nsave\r\n$0\r\n\r\n*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
}

// --- expiry, conditional writes, listings ------------------------------------------------

namespace {

DvvSet Expiring(const std::string& v, uint64_t expires_ms) {
  Sibling s;
  s.value = v;
  s.timestamp_ms = 1000;
  s.expires_ms = expires_ms;
  return DvvSet::Update({}, {}, "n1", s);
}

RespOptions AtTime(uint64_t* now) {
  RespOptions o;
  o.wall_ms = [now] { return *now; };
  return o;
}

ListKeysReply Page(std::vector<std::string> keys, bool more) {
  ListKeysReply r;
  r.keys = std::move(keys);
  r.more = more;
  return r;
}

}  // namespace

TEST_CASE("resp glob: Redis patterns and their literal prefix") {
  CHECK(GlobMatch("*", ""));
  CHECK(GlobMatch("user:*", "user:42"));
  CHECK_FALSE(GlobMatch("user:*", "users:42"));
  CHECK(GlobMatch("h?llo", "hallo"));
  CHECK(GlobMatch("h[ae]llo", "hello"));
  CHECK_FALSE(GlobMatch("h[^e]llo", "hello"));
  CHECK(GlobMatch("h[a-c]llo", "hbllo"));
  CHECK(GlobMatch("a\\*b", "a*b"));
  CHECK_FALSE(GlobMatch("a\\*b", "axb"));
  CHECK(GlobMatch("*a*b*c*", "xxaxxbxxcxx"));
  CHECK_FALSE(GlobMatch("[abc", "a"));  // unterminated set: no match, no crash
  // A hostile pattern stays linear in practice.
  CHECK_FALSE(GlobMatch(std::string(200, '*') + "b", std::string(20000, 'a')));
  CHECK(GlobLiteralPrefix("user:*") == "user:");
  CHECK(GlobLiteralPrefix("a?c") == "a");
  CHECK(GlobLiteralPrefix("*") == "");
  CHECK(GlobLiteralPrefix("plain") == "plain");
}

TEST_CASE("resp session: SET EX/PX writes a ttl; NX is an if-absent write; SETNX answers 1/0") {
  FakeNode node;
  node.Send(Array({"SET", "k", "v", "EX", "10"}) + Array({"SET", "k", "v", "PX", "1500", "NX"}) +
            Array({"SETNX", "k", "v"}) + Array({"SET", "k", "v", "NX", "XX"}) +
            Array({"SET", "k", "v", "EX", "0"}) + Array({"SET", "k", "v", "EX", "x"}));
  REQUIRE(node.requests.size() == 3);
  const auto& ex = std::get<PutRequest>(node.requests[0].body);
  CHECK(ex.ttl_ms == 10000);
  CHECK_FALSE(ex.if_absent);
  const auto& nx = std::get<PutRequest>(node.requests[1].body);
  CHECK(nx.ttl_ms == 1500);
  CHECK(nx.if_absent);
  CHECK(std::get<PutRequest>(node.requests[2].body).if_absent);
  std::string out = node.Answer(0, Written());
  out += node.Answer(1, Reply{Status::ConditionFailed("the key has a live value"), std::nullopt,
                              std::nullopt});
  out += node.Answer(2, Written());
  CHECK(out ==
        "+OK\r\n$-1\r\n:1\r\n-ERR syntax error\r\n"
        "-ERR invalid expire time in 'set' command\r\n"
        "-ERR value is not an integer or out of range\r\n");
}

TEST_CASE("resp session: SET XX reads, then writes with the read's context; nil when missing") {
  FakeNode node;
  node.Send(Array({"SET", "k", "new", "XX", "EX", "5"}) + Array({"SET", "gone", "v", "XX"}));
  REQUIRE(node.requests.size() == 2);
  CHECK(std::holds_alternative<GetRequest>(node.requests[0].body));
  DvvSet two = TwoSiblings();
  node.Answer(0, Found(two));  // siblings are no conflict: XX replaces them all
  REQUIRE(node.requests.size() == 3);
  const auto& w = std::get<PutRequest>(node.requests[2].body);
  CHECK(w.value == "new");
  CHECK(w.ttl_ms == 5000);
  CHECK(*DecodeContext(w.context) == two.clock());
  CHECK(node.Answer(1, Missing()).empty());  // waits behind the first
  CHECK(node.Answer(2, Written()) == "+OK\r\n$-1\r\n");
}

TEST_CASE("resp session: TTL and PTTL: -2 missing, -1 no expiry, else what is left") {
  uint64_t now = 10'000;
  FakeNode node(AtTime(&now));
  node.Send(Array({"TTL", "a"}) + Array({"TTL", "b"}) + Array({"PTTL", "c"}) + Array({"TTL", "c"}) +
            Array({"TTL", "d"}));
  REQUIRE(node.requests.size() == 5);
  std::string out = node.Answer(0, Missing());
  out += node.Answer(1, Found(OneValue("v")));
  out += node.Answer(2, Found(Expiring("v", 12'345)));
  out += node.Answer(3, Found(Expiring("v", 12'345)));
  out += node.Answer(4, Found(TwoSiblings()));
  CHECK(out ==
        ":-2\r\n:-1\r\n:2345\r\n:2\r\n"
        "-CONFLICT key 'd' has 2 siblings; read it with 'ringkv get' to merge them (or CLIENT "
        "SETNAME lww for the newest)\r\n");
}

TEST_CASE("resp session: EXPIRE and PERSIST write the value back with the read's context") {
  FakeNode node;
  node.Send(Array({"EXPIRE", "k", "30"}) + Array({"PEXPIRE", "m", "250"}) +
            Array({"PERSIST", "p"}) + Array({"PERSIST", "q"}) + Array({"EXPIRE", "gone", "5"}) +
            Array({"EXPIRE", "d", "-1"}) + Array({"EXPIRE", "k", "1", "NX"}));
  REQUIRE(node.requests.size() == 6);
  DvvSet k = OneValue("kv");
  node.Answer(0, Found(k));
  node.Answer(1, Found(OneValue("mv")));
  node.Answer(2, Found(Expiring("pv", 99'999)));
  node.Answer(3, Found(OneValue("qv")));  // no expiry: nothing to persist
  node.Answer(4, Missing());
  node.Answer(5, Found(OneValue("dv")));
  REQUIRE(node.requests.size() == 10);
  const auto& e = std::get<PutRequest>(node.requests[6].body);
  CHECK(e.key == "k");
  CHECK(e.value == "kv");
  CHECK(e.ttl_ms == 30'000);
  CHECK(*DecodeContext(e.context) == k.clock());
  CHECK(std::get<PutRequest>(node.requests[7].body).ttl_ms == 250);
  const auto& p = std::get<PutRequest>(node.requests[8].body);
  CHECK(p.persist);
  CHECK(p.value == "pv");
  CHECK(std::get<PutRequest>(node.requests[9].body).tombstone);  // a time <= 0 deletes
  std::string out = node.Answer(6, Written());
  out += node.Answer(7, Written());
  out += node.Answer(8, Written());
  out += node.Answer(9, Written());
  CHECK(out ==
        ":1\r\n:1\r\n:1\r\n:0\r\n:0\r\n:1\r\n"
        "-ERR ringkv's EXPIRE takes no options (NX, XX, GT, LT)\r\n");
}

TEST_CASE("resp session: SCAN pages by coverage with integer cursors; MATCH filters; KEYS and DBSIZE") {
  FakeNode node;
  node.Send(Array({"SCAN", "0", "MATCH", "user:*", "COUNT", "2"}));
  REQUIRE(node.requests.size() == 1);
  const auto& first = std::get<ListKeysRequest>(node.requests[0].body);
  CHECK(first.prefix == "user:");
  CHECK(first.after.empty());
  CHECK(first.limit == 2);
  std::string out = node.Answer(0, Page({"user:1", "user:2"}, true));
  CHECK(out == "*2\r\n$1\r\n1\r\n*2\r\n$6\r\nuser:1\r\n$6\r\nuser:2\r\n");
  node.Send(Array({"SCAN", "1", "MATCH", "user:[3-4]"}));
  const auto& second = std::get<ListKeysRequest>(node.requests[1].body);
  CHECK(second.after == "user:2");
  CHECK(node.Answer(1, Page({"user:3", "user:5"}, false)) ==
        "*2\r\n$1\r\n0\r\n*1\r\n$6\r\nuser:3\r\n");
  CHECK(node.Send(Array({"SCAN", "77"})).rfind("-ERR invalid cursor", 0) == 0);
  CHECK(node.Send(Array({"SCAN", "x"})) == "-ERR invalid cursor\r\n");

  // KEYS pages until the listing ends; DBSIZE counts.
  node.Send(Array({"KEYS", "*a*"}) + Array({"DBSIZE"}));
  REQUIRE(node.requests.size() == 4);
  node.Answer(2, Page({"a1", "b1"}, true));
  REQUIRE(node.requests.size() == 5);
  CHECK(std::get<ListKeysRequest>(node.requests[3].body).count_only);
  CHECK(std::get<ListKeysRequest>(node.requests[4].body).after == "b1");
  std::string listed = node.Answer(4, Page({"ba"}, false));
  ListKeysReply count;
  count.count = 3;
  listed += node.Answer(3, count);
  CHECK(listed == "*2\r\n$2\r\na1\r\n$2\r\nba\r\n:3\r\n");

  // A listing that misses partitions is an error: RESP cannot say "incomplete".
  node.Send(Array({"DBSIZE"}));
  ListKeysReply missed;
  missed.missed = {3, 9};
  CHECK(node.Answer(5, missed).rfind("-UNAVAILABLE the listing is incomplete", 0) == 0);
}

TEST_CASE("resp session: SCAN cursors are bounded per connection") {
  FakeNode node;
  for (int i = 0; i < 1100; ++i) {
    node.Send(Array({"SCAN", "0"}));
    node.Answer(node.requests.size() - 1, Page({"k" + std::to_string(i)}, true));
  }
  CHECK(node.Send(Array({"SCAN", "1"})).rfind("-ERR invalid cursor", 0) == 0);  // evicted
  node.Send(Array({"SCAN", "1100"}));
  CHECK(std::get<ListKeysRequest>(node.requests.back().body).after == "k1099");
}
