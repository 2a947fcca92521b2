// One real node, driven through the `ringkv` CLI and raw sockets.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <set>
#include <thread>

#include "core/codec.h"
#include "harness.h"

using nlohmann::json;
using ringkv::test::CliResult;
using ringkv::test::Cluster;

namespace {

json Json(const CliResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(!r.out.empty());
  return json::parse(r.out);
}

std::vector<std::string> Values(const json& get) {
  std::vector<std::string> v;
  for (const auto& s : get["siblings"]) v.push_back(s["value"]);
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("one node: put, siblings, context, delete and restart through the CLI") {
  Cluster c(1, {"--n", "1", "--r", "1", "--w", "1"});

  // Round trip.
  CliResult put = c.Cli(1, {"put", "greeting", "hello", "--json"});
  REQUIRE_MESSAGE(put.exit_code == 0, put.err);
  json got = Json(c.Cli(1, {"get", "greeting", "--json"}));
  CHECK(got["found"] == true);
  CHECK(got["key"] == "greeting");
  CHECK(Values(got) == std::vector<std::string>{"hello"});

  // Two blind puts: two siblings, each with its own dot.
  REQUIRE(c.Cli(1, {"put", "cart", "milk"}).exit_code == 0);
  REQUIRE(c.Cli(1, {"put", "cart", "eggs"}).exit_code == 0);
  got = Json(c.Cli(1, {"get", "cart", "--json"}));
  CHECK(Values(got) == std::vector<std::string>{"eggs", "milk"});
  CHECK(got["siblings"][0]["dot"] != got["siblings"][1]["dot"]);

  // A put with the read's context replaces both.
  std::string ctx = got["context"];
  REQUIRE(c.Cli(1, {"put", "cart", "eggs,milk", "--context", ctx}).exit_code == 0);
  got = Json(c.Cli(1, {"get", "cart", "--json"}));
  CHECK(Values(got) == std::vector<std::string>{"eggs,milk"});

  // Text output shows the value and the context to pass back.
  CliResult text = c.Cli(1, {"get", "cart"});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("eggs,milk") != std::string::npos);
  CHECK(text.out.find("context") != std::string::npos);

  // Delete with the context: not found, exit code 1.
  ctx = got["context"];
  REQUIRE(c.Cli(1, {"delete", "cart", "--context", ctx}).exit_code == 0);
  CliResult gone = c.Cli(1, {"get", "cart"});
  CHECK(gone.exit_code == 1);
  CHECK(gone.err.find("not found") != std::string::npos);
  CHECK(Json(c.Cli(1, {"get", "cart", "--json"}))["found"] == false);

  // Restart (SIGTERM, clean exit) keeps every acknowledged write.
  CHECK(c.StopAndStatus(1) == 0);
  CHECK(c.Cli(1, {"get", "greeting"}).exit_code == 2);  // node down: connection error
  c.Start(1);
  got = Json(c.Cli(1, {"get", "greeting", "--json"}));
  CHECK(Values(got) == std::vector<std::string>{"hello"});
  CHECK(c.Cli(1, {"get", "cart"}).exit_code == 1);  // still deleted

  // kill -9 loses nothing acknowledged either.
  REQUIRE(c.Cli(1, {"put", "after-kill", "v"}).exit_code == 0);
  c.Kill(1);
  c.Start(1);
  CHECK(Values(Json(c.Cli(1, {"get", "after-kill", "--json"}))) == std::vector<std::string>{"v"});
}

TEST_CASE("one node: values that are not UTF-8 come back as base64") {
  Cluster c(1, {"--n", "1", "--r", "1", "--w", "1"});
  auto client = c.Connect(1);
  std::string binary("\x00\xff\x10zz", 5);
  REQUIRE(client->Put("bin", binary).ok());
  json got = Json(c.Cli(1, {"get", "bin", "--json"}));
  REQUIRE(got["siblings"].size() == 1);
  CHECK(got["siblings"][0]["encoding"] == "base64");
  CHECK(got["siblings"][0]["value"] == ringkv::Base64Encode(binary));
}

TEST_CASE("one node: connection errors name the address and exit 2") {
  auto port = ringkv::test::FreePorts(1)[0];
  std::string addr = "127.0.0.1:" + std::to_string(port);
  CliResult r = ringkv::test::RunProgram({RINGKV_CLI_BIN, "-H", addr, "get", "k"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(addr) != std::string::npos);
}

TEST_CASE("one node: pipelined requests on one connection are all answered by id") {
  Cluster c(1, {"--n", "1", "--r", "1", "--w", "1"});
  auto client = c.Connect(1);
  const int kRequests = 200;
  std::string batch;
  for (int i = 0; i < kRequests; ++i) {
    ringkv::PutRequest put;
    put.key = "p" + std::to_string(i);
    put.value = "v" + std::to_string(i);
    ringkv::AppendFrame(ringkv::Envelope{static_cast<uint64_t>(1000 + i), {}, {}, put}, &batch);
  }
  REQUIRE(client->SendBytes(batch).ok());  // all written before any reply is read
  std::set<uint64_t> ids;
  for (int i = 0; i < kRequests; ++i) {
    auto env = client->Receive();
    REQUIRE(env.ok());
    auto* reply = std::get_if<ringkv::Reply>(&env->body);
    REQUIRE(reply != nullptr);
    CHECK(reply->status.ok());
    ids.insert(env->request_id);
  }
  CHECK(ids.size() == kRequests);
  CHECK(*ids.begin() == 1000);
  CHECK(*ids.rbegin() == 1000 + kRequests - 1);
  // And each value landed under its own key.
  batch.clear();
  for (int i = 0; i < kRequests; ++i) {
    ringkv::AppendFrame(ringkv::Envelope{static_cast<uint64_t>(i + 1), {}, {},
                                         ringkv::GetRequest{"p" + std::to_string(i), {}}},
                        &batch);
  }
  REQUIRE(client->SendBytes(batch).ok());
  for (int i = 0; i < kRequests; ++i) {
    auto env = client->Receive();
    REQUIRE(env.ok());
    auto& reply = std::get<ringkv::Reply>(env->body);
    REQUIRE(reply.object.has_value());
    auto live = reply.object->LiveSiblings();
    REQUIRE(live.size() == 1);
    CHECK(live[0]->value == "v" + std::to_string(env->request_id - 1));
  }
}

namespace {

// The node still serves a fresh client normally.
void CheckStillServing(Cluster& c, const std::string& key) {
  auto fresh = c.Connect(1);
  REQUIRE(fresh->Put(key, "fine").ok());
  auto got = fresh->Get(key);
  REQUIRE(got.ok());
  CHECK(got->found);
  REQUIRE(c.Running(1));
}

std::string LengthPrefix(uint32_t len) {
  std::string p(4, '\0');
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  return p;
}

}  // namespace

TEST_CASE("one node: bad input gets an error or a closed connection, never a crash") {
  Cluster c(1, {"--n", "1", "--r", "1", "--w", "1"});

  SUBCASE("garbage bytes in a well-formed frame") {
    auto client = c.Connect(1);
    std::string junk = "this is not a flatbuffer at all, just text";
    REQUIRE(client->SendBytes(LengthPrefix(junk.size()) + junk).ok());
    auto env = client->Receive();
    REQUIRE(env.ok());
    auto& reply = std::get<ringkv::Reply>(env->body);
    CHECK(reply.status.IsInvalidArgument());
    CHECK(reply.status.message().find("malformed") != std::string::npos);
    // The same connection keeps working: the frame boundary was intact.
    auto got = client->Get("nothing-here");
    REQUIRE(got.ok());
    CHECK(!got->found);
    CheckStillServing(c, "after-garbage");
  }
  SUBCASE("random frames of random bytes") {
    auto client = c.Connect(1);
    std::mt19937 rng(7);
    for (int i = 0; i < 300; ++i) {
      std::string junk(1 + rng() % 200, '\0');
      for (auto& ch : junk) ch = static_cast<char>(rng());
      REQUIRE(client->SendBytes(LengthPrefix(junk.size()) + junk).ok());
      auto env = client->Receive();
      REQUIRE(env.ok());
      CHECK(!std::get<ringkv::Reply>(env->body).status.ok());
    }
    CheckStillServing(c, "after-random");
  }
  SUBCASE("a valid envelope cut short, then the connection closed") {
    {
      auto client = c.Connect(1);
      std::string frame;
      ringkv::AppendFrame(ringkv::Envelope{1, {}, {}, ringkv::PutRequest{"k", "v", false, "", {}, false}}, &frame);
      REQUIRE(client->SendBytes(frame.substr(0, frame.size() - 5)).ok());
    }
    CheckStillServing(c, "after-truncated");
    CHECK(c.Connect(1)->Get("k")->found == false);  // nothing partial was written
  }
  SUBCASE("a truncated body inside a complete frame") {
    auto client = c.Connect(1);
    std::string body = ringkv::EncodeEnvelope(
        ringkv::Envelope{1, {}, {}, ringkv::PutRequest{"k2", "v", false, "", {}, false}});
    body.resize(body.size() / 2);
    REQUIRE(client->SendBytes(LengthPrefix(body.size()) + body).ok());
    auto env = client->Receive();
    REQUIRE(env.ok());
    CHECK(std::get<ringkv::Reply>(env->body).status.IsInvalidArgument());
    CHECK(client->Get("k2")->found == false);
  }
  SUBCASE("an oversize length closes the connection after an error") {
    auto client = c.Connect(1);
    REQUIRE(client->SendBytes(LengthPrefix(0xFFFFFFF0u) + "abcd").ok());
    auto env = client->Receive();
    REQUIRE(env.ok());
    auto& reply = std::get<ringkv::Reply>(env->body);
    CHECK(reply.status.message().find("exceeds the limit") != std::string::npos);
    CHECK(!client->Receive().ok());  // closed
    CheckStillServing(c, "after-oversize");
  }
  SUBCASE("a message type clients may not send") {
    auto client = c.Connect(1);
    ringkv::DvvSet obj;
    REQUIRE(client->Send(ringkv::Envelope{9, {}, {}, ringkv::ReplicaWrite{"k3", obj, {}}}).ok());
    auto env = client->Receive();
    REQUIRE(env.ok());
    CHECK(env->request_id == 9);
    CHECK(std::get<ringkv::Reply>(env->body).status.IsInvalidArgument());
    REQUIRE(client->Send(ringkv::Envelope{10, {}, {}, ringkv::Reply{}}).ok());
    env = client->Receive();
    REQUIRE(env.ok());
    CHECK(std::get<ringkv::Reply>(env->body).status.IsInvalidArgument());
    CheckStillServing(c, "after-wrong-type");
  }
  SUBCASE("a peer message from another cluster is refused") {
    auto client = c.Connect(1);
    ringkv::DvvSet obj = ringkv::DvvSet::Update({}, {}, "evil", "x", false, 1);
    REQUIRE(client->Send(ringkv::Envelope{5, "evil", "other-cluster", ringkv::ReplicaWrite{"k4", obj, {}}}).ok());
    auto env = client->Receive();
    REQUIRE(env.ok());
    auto& reply = std::get<ringkv::Reply>(env->body);
    CHECK(reply.status.code() == ringkv::Status::Code::kWrongCluster);
    CHECK(client->Get("k4")->found == false);
  }
  SUBCASE("a huge key and a malformed context are refused with clear errors") {
    auto client = c.Connect(1);
    std::string huge(70 * 1024, 'k');
    auto put = client->Put(huge, "v");
    CHECK(put.status().IsInvalidArgument());
    CHECK(put.status().message().find("limit") != std::string::npos);
    auto bad_ctx = client->Put("k5", "v", "\x01garbage-context");
    CHECK(bad_ctx.status().IsInvalidArgument());
    CHECK(client->Get("k5")->found == false);
    CHECK(client->Get("").status().IsInvalidArgument());
    CheckStillServing(c, "after-huge");
  }
  CHECK(c.Running(1));
}
