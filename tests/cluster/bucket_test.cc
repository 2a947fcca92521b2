// Buckets, the sibling cap, conditional writes, TTL and key listings on real
// nodes, driven through the ringkv CLI, the client library and redis-cli.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "core/codec.h"
#include "harness.h"
#include "report.h"

using nlohmann::json;
using ringkv::test::CliResult;
using ringkv::test::Cluster;
using ringkv::test::RunProgram;

namespace {

json Json(const CliResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  json j = json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

// Waits (up to limit_s) until fn holds.
bool Eventually(const std::function<bool()>& fn, double limit_s = 20) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fn()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return fn();
}

std::string Context(const CliResult& r) {
  auto at = r.out.find("context: ");
  REQUIRE(at != std::string::npos);
  auto end = r.out.find('\n', at);
  return r.out.substr(at + 9, end - at - 9);
}

std::string RedisCliPath() {
  std::string tool;
  for (const char* dir : {"/usr/bin/", "/usr/local/bin/", "/bin/"}) {
    if (tool.empty() && access((std::string(dir) + "redis-cli").c_str(), X_OK) == 0) {
      tool = std::string(dir) + "redis-cli";
    }
  }
  REQUIRE_MESSAGE(!tool.empty(), "redis-cli is not installed: run scripts/install-deps");
  return tool;
}

std::string RedisCli(const Cluster& c, int node, std::vector<std::string> args) {
  std::vector<std::string> argv = {RedisCliPath(), "--no-raw", "-h", "127.0.0.1", "-p",
                                   std::to_string(c.RespPort(node))};
  argv.insert(argv.end(), args.begin(), args.end());
  CliResult r = RunProgram(argv);
  CHECK(r.exit_code == 0);
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

const std::vector<std::string> kFast = {"--gossip-interval-ms", "200", "--tombstone-grace", "2"};

}  // namespace

TEST_CASE("buckets: properties set on one node reach the others, survive restarts; n is fixed") {
  Cluster c(3, kFast);
  CliResult set = c.Cli(1, {"bucket", "set", "users", "--r", "1", "--max-siblings", "50",
                            "--ttl", "3600", "--json"});
  REQUIRE(set.exit_code == 0);
  CHECK(Json(set)["max_siblings"] == 50);
  bool seen = Eventually([&] {
    for (int i : {2, 3}) {
      CliResult r = c.Cli(i, {"bucket", "show", "users", "--json"});
      if (r.exit_code != 0 || Json(r)["max_siblings"] != 50) return false;
    }
    return true;
  });
  CHECK(seen);
  json list = Json(c.Cli(2, {"bucket", "list", "--json"}));
  REQUIRE(list["buckets"].size() == 1);
  json users = list["buckets"][0];
  CHECK(users["name"] == "users");
  CHECK(users["r"] == 1);
  CHECK(users["w"] == 2);  // the node's
  CHECK(users["ttl"] == 3600);
  CHECK(users["changed_by"] == "n1");
  CHECK(c.Cli(2, {"bucket", "show", "users"}).out.find("at most 50 per key") != std::string::npos);

  // Every node restarts: the properties come back from each data dir.
  for (int i = 1; i <= 3; ++i) c.Kill(i);
  for (int i = 1; i <= 3; ++i) c.Start(i);
  c.WaitConverged();
  CHECK(Json(c.Cli(2, {"bucket", "show", "users", "--json"}))["max_siblings"] == 50);

  // n: set at creation only, never for the default bucket, never under keys.
  CliResult change = c.Cli(1, {"bucket", "set", "users", "--n", "2"});
  CHECK(change.exit_code == 4);
  CHECK(change.err.find("does not change a bucket's n") != std::string::npos);
  CHECK(c.Cli(1, {"bucket", "set", "default", "--n", "2"}).exit_code == 4);
  // w=3: the count that guards n asks one replica per partition.
  REQUIRE(c.Cli(1, {"put", "-b", "full", "k", "v", "--w", "3"}).exit_code == 0);
  CliResult under_keys = c.Cli(2, {"bucket", "set", "full", "--n", "2"});
  CHECK(under_keys.exit_code == 4);
  CHECK(under_keys.err.find("already holds 1 key") != std::string::npos);
  CHECK(c.Cli(2, {"bucket", "set", "fresh", "--n", "2"}).exit_code == 0);
  CHECK(c.Cli(2, {"bucket", "set", "bad/name", "--r", "1"}).exit_code == 4);

  // The same key in two buckets is two objects.
  REQUIRE(c.Cli(1, {"put", "k", "in-default"}).exit_code == 0);
  REQUIRE(c.Cli(1, {"put", "--bucket", "users", "k", "in-users"}).exit_code == 0);
  CHECK(c.Cli(2, {"get", "k"}).out.rfind("in-default", 0) == 0);
  CHECK(c.Cli(3, {"get", "-b", "users", "k"}).out.rfind("in-users", 0) == 0);
  CHECK(c.Cli(3, {"get", "-b", "users", "k", "--local"}).out.find("in-users") != std::string::npos);
  CHECK(c.Cli(3, {"get", "-b", "other", "k"}).exit_code == 1);
}

TEST_CASE("sibling cap: the 101st blind write is refused, nothing is stored, get warns above 25") {
  Cluster c(3, kFast);
  auto client = c.Connect(1);
  for (int i = 0; i < 100; ++i) {
    ringkv::PutRequest p;
    p.bucket = "hot";
    p.key = "cart";
    p.value = "v" + std::to_string(i);
    REQUIRE_MESSAGE(client->Put(p).ok(), "write " << i);
  }
  CliResult refused = c.Cli(1, {"put", "-b", "hot", "cart", "one-too-many"});
  CHECK(refused.exit_code == 4);
  CHECK(refused.err.find("101 live siblings") != std::string::npos);
  CHECK(refused.err.find("--context") != std::string::npos);
  CliResult got = c.Cli(2, {"get", "-b", "hot", "cart", "--json"});
  REQUIRE(got.exit_code == 0);
  json doc = Json(got);
  CHECK(doc["siblings"].size() == 100);
  CHECK(doc["sibling_warning"] == 25);
  CHECK(c.Cli(2, {"get", "-b", "hot", "cart"}).err.find("warning: 100 siblings") != std::string::npos);
  json stats = json::parse(*c.Connect(1)->Info("stats"));
  CHECK(stats["sibling_cap_refused"] == 1);
  // Read and write back with the context: one value, and writes go on.
  std::string ctx = doc["context"];
  REQUIRE(c.Cli(3, {"put", "-b", "hot", "cart", "merged", "--context", ctx}).exit_code == 0);
  CHECK(c.Cli(1, {"put", "-b", "hot", "cart", "again"}).exit_code == 0);
  // An lww bucket keeps one.
  REQUIRE(c.Cli(1, {"bucket", "set", "last", "--lww"}).exit_code == 0);
  REQUIRE(Eventually([&] {  // every coordinator must know it first
    for (int i : {2, 3}) {
      if (Json(c.Cli(i, {"bucket", "show", "last", "--json"}))["lww"] != true) return false;
    }
    return true;
  }));
  for (int i = 0; i < 5; ++i) REQUIRE(c.Cli(1 + i % 3, {"put", "-b", "last", "k", "v"}).exit_code == 0);
  CHECK(Json(c.Cli(2, {"get", "-b", "last", "k", "--json"}))["siblings"].size() == 1);
}

TEST_CASE("conditional writes: --if-absent and --if-unchanged exit 6 when the condition fails") {
  Cluster c(3, kFast);
  CHECK(c.Cli(1, {"put", "lock", "me", "--if-absent"}).exit_code == 0);
  CliResult taken = c.Cli(2, {"put", "lock", "you", "--if-absent"});
  CHECK(taken.exit_code == 6);
  CHECK(taken.err.find("condition not met") != std::string::npos);
  CliResult read = c.Cli(3, {"get", "lock"});
  std::string ctx = Context(read);
  REQUIRE(c.Cli(1, {"put", "lock", "me-again", "--context", ctx}).exit_code == 0);
  CHECK(c.Cli(2, {"put", "lock", "stale", "--context", ctx, "--if-unchanged"}).exit_code == 6);
  std::string fresh = Context(c.Cli(3, {"get", "lock"}));
  CHECK(c.Cli(2, {"put", "lock", "mine", "--context", fresh, "--if-unchanged"}).exit_code == 0);
  CHECK(c.Cli(2, {"put", "lock", "x", "--if-unchanged"}).exit_code == 4);  // needs --context
  // A deleted key is absent again.
  std::string last = Context(c.Cli(1, {"get", "lock"}));
  REQUIRE(c.Cli(1, {"delete", "lock", "--context", last}).exit_code == 0);
  CHECK(c.Cli(3, {"put", "lock", "new-owner", "--if-absent"}).exit_code == 0);
  CHECK(Json(c.Cli(2, {"get", "lock", "--json"}))["siblings"].size() == 1);

  // Racing writers through two nodes: both may be acknowledged (not
  // linearizable); then the key holds both as siblings. Counted, not
  // asserted: on loopback the two reads rarely overlap.
  int both = 0;
  for (int k = 0; k < 20; ++k) {
    std::string key = "race-" + std::to_string(k);
    bool ok[2] = {false, false};
    std::thread t1([&] {
      ringkv::PutRequest p;
      p.key = key;
      p.value = "a";
      p.if_absent = true;
      ok[0] = c.Connect(1)->Put(p).ok();
    });
    std::thread t2([&] {
      ringkv::PutRequest p;
      p.key = key;
      p.value = "b";
      p.if_absent = true;
      ok[1] = c.Connect(2)->Put(p).ok();
    });
    t1.join();
    t2.join();
    CHECK((ok[0] || ok[1]));
    if (ok[0] && ok[1]) {
      ++both;
      CHECK(Json(c.Cli(3, {"get", key, "--json"}))["siblings"].size() == 2);
    }
  }
  REPORT("conditional writes on 3 nodes: " << both << " of 20 races of two --if-absent writers "
                                           << "through two nodes had both acknowledged (siblings)");
}

TEST_CASE("ttl: a value expires on every replica at once, is not listed, and is reaped") {
  Cluster c(3, kFast);
  REQUIRE(c.Cli(1, {"put", "session", "token", "--ttl", "4", "--w", "3"}).exit_code == 0);
  REQUIRE(c.Cli(1, {"put", "stays", "v", "--w", "3"}).exit_code == 0);
  for (int i = 1; i <= 3; ++i) {
    CliResult r = c.Cli(i, {"get", "session"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("expires in") != std::string::npos);
  }
  // Each replica stops showing it (by its own clock), though the bytes stay
  // until the reaper erases them.
  CHECK(Eventually([&] {
    for (int i = 1; i <= 3; ++i) {
      if (Json(c.Cli(i, {"get", "session", "--local", "--json"}))["found"] != false) return false;
    }
    return true;
  }, 10));
  for (int i = 1; i <= 3; ++i) {
    CliResult r = c.Cli(i, {"get", "session"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("not found: session") != std::string::npos);
  }
  json keys = Json(c.Cli(2, {"keys", "--json"}));
  CHECK(keys["keys"] == json::array({"stays"}));
  // Past the grace (2 s) the reaper erases it everywhere.
  CHECK(Eventually([&] {
    for (int i = 1; i <= 3; ++i) {
      json local = Json(c.Cli(i, {"get", "session", "--local", "--json"}));
      if (local["clock"] != "{}") return false;
    }
    return true;
  }, 30));
  // A bucket's default ttl applies; --ttl 0 overrides it.
  REQUIRE(c.Cli(1, {"bucket", "set", "short", "--ttl", "1"}).exit_code == 0);
  CHECK(Eventually([&] {
    return Json(c.Cli(3, {"bucket", "show", "short", "--json"}))["ttl"] == 1;
  }));
  REQUIRE(c.Cli(3, {"put", "-b", "short", "gone", "v"}).exit_code == 0);
  REQUIRE(c.Cli(3, {"put", "-b", "short", "kept", "v", "--ttl", "0"}).exit_code == 0);
  CHECK(Eventually([&] { return c.Cli(2, {"get", "-b", "short", "gone"}).exit_code == 1; }, 10));
  CHECK(c.Cli(2, {"get", "-b", "short", "kept"}).exit_code == 0);
}

TEST_CASE("listing: 50 keys in order with a node down; missed partitions are named") {
  Cluster c(5, kFast);
  auto client = c.Connect(1);
  std::set<std::string> expected;
  for (int i = 0; i < 50; ++i) {
    ringkv::PutRequest p;
    p.bucket = "lst";
    p.key = "key" + std::to_string(100 + i * 7 % 50);
    p.value = "v";
    ringkv::Quorum q;
    q.w = 3;
    p.quorum = q;
    REQUIRE(client->Put(p).ok());
    expected.insert(p.key);
  }
  REQUIRE(client->Put("key100", "default bucket").ok());
  c.Kill(2);
  CliResult all = c.Cli(3, {"keys", "-b", "lst", "--json", "--page-size", "7"});
  CHECK(all.exit_code == 0);
  json doc = Json(all);
  CHECK(doc["complete"] == true);
  CHECK(doc["next"].is_null());
  REQUIRE(doc["keys"].size() == 50);
  std::vector<std::string> listed = doc["keys"];
  CHECK(std::is_sorted(listed.begin(), listed.end()));
  CHECK(std::set<std::string>(listed.begin(), listed.end()) == expected);
  // Pages: --limit, then --after the cursor.
  json first = Json(c.Cli(4, {"keys", "-b", "lst", "--limit", "20", "--json"}));
  CHECK(first["keys"].size() == 20);
  REQUIRE(first["next"] == listed[19]);
  json rest = Json(c.Cli(4, {"keys", "-b", "lst", "--after", first["next"], "--json"}));
  CHECK(rest["keys"].size() == 30);
  CHECK(rest["keys"][0] == listed[20]);
  CliResult text = c.Cli(5, {"keys", "-b", "lst", "--prefix", "key11"});
  CHECK(text.exit_code == 0);
  CHECK(text.out == "key110\nkey111\nkey112\nkey113\nkey114\nkey115\nkey116\nkey117\nkey118\nkey119\n");
  CHECK(c.Cli(5, {"keys", "-b", "lst", "--count"}).out == "50\n");

  // Three of five down: partitions whose three primaries are all down have
  // no live replica; the listing says which, and exits 3.
  c.Kill(3);
  c.Kill(4);
  CliResult partial = c.Cli(1, {"keys", "-b", "lst", "--json"});
  CHECK(partial.exit_code == 3);
  json missed = Json(partial);
  CHECK(missed["complete"] == false);
  CHECK(missed["missed_partitions"].size() > 0);
  CHECK(missed["keys"].size() < 50);
  CHECK(partial.err.find("incomplete") != std::string::npos);
  REPORT("listing: 50 keys with 1 of 5 nodes down: complete; with 3 down: "
         << missed["keys"].size() << " keys listed, " << missed["missed_partitions"].size()
         << " partitions missed");
}

TEST_CASE("resp: SET EX/PX/NX/XX, SETNX, TTL, EXPIRE, PERSIST, SCAN, KEYS and DBSIZE via redis-cli") {
  Cluster c(3, kFast, Cluster::Bootstrap::kPeers, /*resp=*/true);
  CHECK(RedisCli(c, 1, {"SET", "a", "1", "EX", "100"}) == "OK");
  std::string ttl = RedisCli(c, 2, {"TTL", "a"});
  CHECK((ttl == "(integer) 100" || ttl == "(integer) 99"));
  CHECK(RedisCli(c, 3, {"TTL", "missing"}) == "(integer) -2");
  CHECK(RedisCli(c, 1, {"SET", "a", "2", "NX"}) == "(nil)");
  CHECK(RedisCli(c, 1, {"SETNX", "b", "1"}) == "(integer) 1");
  CHECK(RedisCli(c, 2, {"SETNX", "b", "2"}) == "(integer) 0");
  CHECK(RedisCli(c, 3, {"TTL", "b"}) == "(integer) -1");
  CHECK(RedisCli(c, 1, {"SET", "nothing", "x", "XX"}) == "(nil)");
  CHECK(RedisCli(c, 1, {"SET", "b", "3", "XX", "PX", "60000"}) == "OK");
  CHECK(RedisCli(c, 2, {"GET", "b"}) == "\"3\"");
  CHECK(RedisCli(c, 2, {"PERSIST", "b"}) == "(integer) 1");
  CHECK(RedisCli(c, 3, {"TTL", "b"}) == "(integer) -1");
  CHECK(RedisCli(c, 1, {"EXPIRE", "b", "1"}) == "(integer) 1");
  CHECK(RedisCli(c, 1, {"PEXPIRE", "nothing", "5"}) == "(integer) 0");
  CHECK(Eventually([&] { return RedisCli(c, 3, {"GET", "b"}) == "(nil)"; }, 10));
  CHECK(RedisCli(c, 2, {"EXISTS", "b"}) == "(integer) 0");
  for (int i = 0; i < 30; ++i) REQUIRE(RedisCli(c, 1 + i % 3, {"SET", "user:" + std::to_string(i), "v"}) == "OK");
  // A listing asks one replica per partition (always the same one): wait
  // for the third copies of the w=2 writes.
  CHECK(Eventually([&] { return RedisCli(c, 2, {"DBSIZE"}) == "(integer) 31"; }, 10));  // 30 users, a
  // redis-cli --scan follows the integer cursors to the end.
  std::string tool_out;
  {
    std::vector<std::string> argv = {RedisCliPath(), "-h", "127.0.0.1", "-p",
                                     std::to_string(c.RespPort(3)), "--scan", "--pattern",
                                     "user:1*"};
    CliResult r = RunProgram(argv);
    REQUIRE(r.exit_code == 0);
    tool_out = r.out;
  }
  std::set<std::string> scanned;
  std::istringstream lines(tool_out);
  for (std::string line; std::getline(lines, line);) scanned.insert(line);
  CHECK(scanned.size() == 11);  // user:1 and user:10..19
  CHECK(scanned.count("user:1") == 1);
  CHECK(scanned.count("user:19") == 1);
  std::string page = RedisCli(c, 1, {"SCAN", "0", "COUNT", "5"});
  CHECK(page.rfind("1) \"", 0) == 0);
  std::string keys = RedisCli(c, 1, {"KEYS", "user:2?"});
  CHECK(keys.find("\"user:20\"") != std::string::npos);
  CHECK(keys.find("\"user:29\"") != std::string::npos);
  CHECK(keys.find("\"user:2\"") == std::string::npos);
}
