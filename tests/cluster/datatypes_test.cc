// Counters, sets and maps on real nodes: the `ringkv counter|set|map`
// commands, redis-cli through two different nodes, and `ringkv bench --type`.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "report.h"

using ringkv::test::CliResult;
using ringkv::test::Cluster;
using ringkv::test::RunProgram;
using json = nlohmann::json;

namespace {

std::string Tool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  FAIL(name << " is not installed: run scripts/install-deps (it installs Debian's redis-tools)");
  return "";
}

// `redis-cli --no-raw -p <node's RESP port> args...`, its output without the
// last newline.
std::string Redis(const Cluster& c, int node, std::vector<std::string> args) {
  std::vector<std::string> argv = {Tool("redis-cli"), "--no-raw", "-h", "127.0.0.1", "-p",
                                   std::to_string(c.RespPort(node))};
  argv.insert(argv.end(), args.begin(), args.end());
  CliResult r = RunProgram(argv);
  INFO("redis-cli stderr: " << r.err);
  CHECK(r.exit_code == 0);
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string Out(const CliResult& r) {
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

json Json(const CliResult& r) {
  INFO("stdout: " << r.out << " stderr: " << r.err);
  json j = json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

}  // namespace

TEST_CASE("datatypes: ringkv counter, set and map through different nodes") {
  Cluster c(3);
  CHECK(Out(c.Cli(1, {"counter", "incr", "hits"})) == "1");
  CHECK(Out(c.Cli(2, {"counter", "incr", "hits", "--by", "10"})) == "11");
  CHECK(Out(c.Cli(3, {"counter", "decr", "hits", "--by", "3"})) == "8");
  CHECK(Out(c.Cli(3, {"counter", "get", "hits", "--r", "3"})) == "8");
  json j = Json(c.Cli(2, {"counter", "get", "hits", "--json"}));
  CHECK(j["value"] == 8);
  CHECK(j["found"] == true);
  CHECK(Out(c.Cli(1, {"counter", "get", "nothing"})) == "0");  // a missing counter reads 0
  // The same name in another bucket is another counter.
  CHECK(Out(c.Cli(3, {"counter", "incr", "hits", "-b", "web"})) == "1");
  CHECK(Out(c.Cli(1, {"counter", "get", "hits", "-b", "web"})) == "1");

  CHECK(Out(c.Cli(1, {"set", "add", "cart", "milk", "eggs"})) == "2 added");
  CHECK(Out(c.Cli(2, {"set", "add", "cart", "eggs", "jam"})) == "1 added");
  CHECK(Out(c.Cli(3, {"set", "remove", "cart", "milk"})) == "1 removed");
  CHECK(Out(c.Cli(1, {"set", "members", "cart", "--r", "3"})) == "eggs\njam");
  CHECK(Json(c.Cli(2, {"set", "members", "cart", "--json"}))["members"] ==
        json::array({"eggs", "jam"}));
  CliResult yes = c.Cli(3, {"set", "contains", "cart", "jam"});
  CHECK(yes.exit_code == 0);
  CHECK(Out(yes) == "true");
  CliResult no = c.Cli(3, {"set", "contains", "cart", "milk"});
  CHECK(no.exit_code == 1);
  CHECK(Out(no) == "false");

  CHECK(Out(c.Cli(1, {"map", "set", "user:1", "name", "ada"})) == "ok (new field)");
  CHECK(Out(c.Cli(2, {"map", "set", "user:1", "lang", "en"})) == "ok (new field)");
  CHECK(Out(c.Cli(3, {"map", "set", "user:1", "name", "ada lovelace"})) == "ok");
  CHECK(Out(c.Cli(1, {"map", "get", "user:1", "name"})) == "ada lovelace");
  CHECK(Out(c.Cli(2, {"map", "del", "user:1", "lang"})) == "1 removed");
  CHECK(Json(c.Cli(3, {"map", "get", "user:1", "--json", "--r", "3"}))["fields"] ==
        json({{"name", "ada lovelace"}}));
  CHECK(c.Cli(1, {"map", "get", "user:1", "lang"}).exit_code == 1);

  // The wrong type is refused with exit 4, and changes nothing.
  CliResult wrong = c.Cli(1, {"set", "add", "hits", "x"});
  CHECK(wrong.exit_code == 4);
  CHECK(wrong.err.find("the key holds a counter, not a set") != std::string::npos);
  CHECK(c.Cli(2, {"put", "hits", "plain"}).exit_code == 4);
  CHECK(c.Cli(2, {"counter", "get", "cart"}).exit_code == 4);
  CHECK(Out(c.Cli(3, {"counter", "get", "hits"})) == "8");

  // `get` shows the value, not the states it is made of, and the context a
  // delete needs.
  CliResult got = c.Cli(2, {"get", "cart", "--json"});
  json g = Json(got);
  CHECK(g["type"] == "set");
  CHECK(g["members"] == json::array({"eggs", "jam"}));
  CliResult del = c.Cli(2, {"delete", "cart", "--context", g["context"].get<std::string>()});
  CHECK(del.exit_code == 0);
  CHECK(Out(c.Cli(1, {"set", "members", "cart", "--r", "3"})) == "");
  CHECK(Out(c.Cli(3, {"set", "add", "cart", "bread"})) == "1 added");
  CHECK(Out(c.Cli(1, {"set", "members", "cart"})) == "bread");
}

TEST_CASE("datatypes: redis-cli INCR through two nodes: both see the sum") {
  Cluster c(3, {}, Cluster::Bootstrap::kPeers, /*resp=*/true);
  for (int i = 0; i < 5; ++i) {
    Redis(c, 1, {"INCR", "visits"});
    Redis(c, 2, {"INCRBY", "visits", "10"});
  }
  CHECK(Redis(c, 1, {"GET", "visits"}) == "\"55\"");
  CHECK(Redis(c, 2, {"GET", "visits"}) == "\"55\"");
  CHECK(Redis(c, 3, {"DECRBY", "visits", "5"}) == "(integer) 50");
  CHECK(Redis(c, 3, {"TYPE", "visits"}) == "string");

  CHECK(Redis(c, 1, {"SADD", "tags", "a", "b"}) == "(integer) 2");
  CHECK(Redis(c, 2, {"SADD", "tags", "b", "c"}) == "(integer) 1");
  CHECK(Redis(c, 3, {"SCARD", "tags"}) == "(integer) 3");
  CHECK(Redis(c, 1, {"SREM", "tags", "a"}) == "(integer) 1");
  CHECK(Redis(c, 2, {"SMEMBERS", "tags"}) == "1) \"b\"\n2) \"c\"");
  CHECK(Redis(c, 3, {"SISMEMBER", "tags", "c"}) == "(integer) 1");
  CHECK(Redis(c, 3, {"TYPE", "tags"}) == "set");

  CHECK(Redis(c, 1, {"HSET", "user", "name", "ada", "visits", "1"}) == "(integer) 2");
  CHECK(Redis(c, 2, {"HINCRBY", "user", "visits", "4"}) == "(integer) 5");
  CHECK(Redis(c, 3, {"HGET", "user", "visits"}) == "\"5\"");
  CHECK(Redis(c, 1, {"HGETALL", "user"}) == "1) \"name\"\n2) \"ada\"\n3) \"visits\"\n4) \"5\"");
  CHECK(Redis(c, 2, {"HLEN", "user"}) == "(integer) 2");
  CHECK(Redis(c, 3, {"HEXISTS", "user", "nope"}) == "(integer) 0");
  CHECK(Redis(c, 1, {"HDEL", "user", "name"}) == "(integer) 1");
  CHECK(Redis(c, 2, {"TYPE", "user"}) == "hash");
  CHECK(Redis(c, 2, {"TYPE", "nothing"}) == "none");

  CHECK(Redis(c, 1, {"SADD", "visits", "x"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
  CHECK(Redis(c, 2, {"GET", "tags"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
  CHECK(Redis(c, 3, {"DEL", "tags", "visits"}) == "(integer) 2");
  CHECK(Redis(c, 1, {"SMEMBERS", "tags"}) == "(empty array)");
  CHECK(Redis(c, 2, {"GET", "visits"}) == "(nil)");
}

TEST_CASE("datatypes: bench --type counter and set: every acknowledged increment is counted") {
  Cluster c(3);
  std::string hosts = c.Address(1) + "," + c.Address(2) + "," + c.Address(3);
  CliResult r = c.Cli(1, {"bench", "--hosts", hosts, "--json", "--type", "counter", "--clients", "6",
                          "--requests", "1200", "--keys", "20", "--ratio", "1:3", "--pipeline", "4"});
  json j = Json(r);
  CHECK(j["type"] == "counter");
  CHECK(j["errors"] == 0);
  uint64_t puts = j["puts"].get<uint64_t>();
  CHECK(puts > 600);
  REPORT("ringkv bench --type counter, 3 nodes, 6 clients, pipeline 4: "
         << j["ops_per_s"].get<double>() << " ops/s, p99 " << j["latency_ms"]["p99"].get<double>()
         << " ms");
  // The counters add up to the increments acknowledged.
  int64_t sum = 0;
  for (int k = 0; k < 20; ++k) {
    char key[32];
    std::snprintf(key, sizeof key, "key:%012d", k);
    sum += std::stoll(Out(c.Cli(1 + k % 3, {"counter", "get", key, "--r", "3"})));
  }
  CHECK(sum == static_cast<int64_t>(puts));

  // Another cluster: the keys of the run above are counters now.
  Cluster sets(3);
  hosts = sets.Address(1) + "," + sets.Address(2) + "," + sets.Address(3);
  r = sets.Cli(2, {"bench", "--hosts", hosts, "--json", "--type", "set", "--clients", "6",
                   "--requests", "1200", "--keys", "20"});
  j = Json(r);
  CHECK(j["type"] == "set");
  CHECK(j["errors"] == 0);
  REPORT("ringkv bench --type set, 3 nodes, 6 clients: " << j["ops_per_s"].get<double>()
                                                         << " ops/s, p99 "
                                                         << j["latency_ms"]["p99"].get<double>() << " ms");
  CHECK(sets.Cli(1, {"bench", "--type", "set", "--rmw", "--requests", "1"}).exit_code == 4);
  // The keys hold sets now: members drawn from the key space.
  CHECK(sets.Cli(1, {"counter", "get", "key:000000000003"}).exit_code == 4);
  json members = Json(sets.Cli(3, {"set", "members", "key:000000000003", "--json"}));
  CHECK(members["members"].size() > 0);
  CHECK(members["members"][0].get<std::string>().rfind("member:", 0) == 0);
}
