// Security pieces without sockets: the ACL file and password hashing
// (core/acl.h), the permission table and protected mode (server/access.h),
// certificates (client/certs.h) and TLS between two in-memory ends
// (server/tls.h), the output queue (server/output_queue.h), and AUTH over
// the Redis protocol (resp/session.h).
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "client/certs.h"
#include "core/acl.h"
#include "core/codec.h"
#include "resp/session.h"
#include "server/access.h"
#include "server/output_queue.h"
#include "server/tls.h"

using namespace ringkv;

namespace {

// Fast hashes for tests (the floor the file accepts).
constexpr uint32_t kTestIterations = kMinPbkdf2Iterations;

AclUser User(const std::string& name, Role role, const std::string& password) {
  auto h = HashPassword(password, kTestIterations);
  REQUIRE(h.ok());
  return AclUser{name, role, *h};
}

std::string TempDir() {
  char tmpl[] = "/tmp/ringkv-unit-XXXXXX";
  return mkdtemp(tmpl);
}

}  // namespace

TEST_CASE("a password hash verifies its password and nothing else") {
  auto h = HashPassword("correct horse", kTestIterations);
  REQUIRE(h.ok());
  CHECK(h->salt.size() == 16);
  CHECK(h->key.size() == 32);
  CHECK(VerifyPassword("correct horse", *h));
  CHECK_FALSE(VerifyPassword("correct hors", *h));
  CHECK_FALSE(VerifyPassword("", *h));
  // Same password, new salt: a different hash.
  auto h2 = HashPassword("correct horse", kTestIterations);
  REQUIRE(h2.ok());
  CHECK(h2->salt != h->salt);
  CHECK(h2->key != h->key);
  // The text form round-trips.
  auto parsed = ParsePasswordHash(FormatPasswordHash(*h));
  REQUIRE(parsed.ok());
  CHECK(VerifyPassword("correct horse", *parsed));
  CHECK(FormatPasswordHash(*h).rfind("pbkdf2-sha256$1000$", 0) == 0);
  // Empty and oversized passwords are refused when hashing.
  CHECK_FALSE(HashPassword("", kTestIterations).ok());
  CHECK_FALSE(HashPassword(std::string(kMaxPasswordBytes + 1, 'x'), kTestIterations).ok());
}

TEST_CASE("the ACL file round-trips and never holds a password") {
  Acl acl;
  REQUIRE(acl.Add(User("bob", Role::kRead, "bob-secret"), false).ok());
  REQUIRE(acl.Add(User("alice", Role::kAdmin, "alice-secret"), false).ok());
  CHECK_FALSE(acl.Add(User("bob", Role::kWrite, "x1"), false).ok());  // exists
  std::string text = acl.Serialize();
  CHECK(text.find("bob-secret") == std::string::npos);
  CHECK(text.find("alice-secret") == std::string::npos);
  auto back = Acl::Parse(text);
  REQUIRE(back.ok());
  REQUIRE(back->users().size() == 2);
  CHECK(back->users()[0].name == "alice");  // sorted by name
  CHECK(back->Find("bob")->role == Role::kRead);
  CHECK(VerifyPassword("alice-secret", back->Find("alice")->hash));
  CHECK(back->Find("carol") == nullptr);
  CHECK(back->Remove("bob"));
  CHECK_FALSE(back->Remove("bob"));

  // Saved with mode 0600, loaded back.
  std::string dir = TempDir();
  std::string path = dir + "/users.acl";
  REQUIRE(acl.Save(path).ok());
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto loaded = Acl::Load(path);
  REQUIRE(loaded.ok());
  CHECK(loaded->users().size() == 2);
  CHECK_FALSE(Acl::Load(dir + "/missing").ok());
  std::filesystem::remove_all(dir);
}

TEST_CASE("a bad ACL file is refused with the line and what is wrong") {
  std::string good = FormatPasswordHash(User("x", Role::kRead, "pw").hash);
  auto error = [](const std::string& text) {
    auto r = Acl::Parse(text);
    return r.ok() ? std::string("ok") : r.status().message();
  };
  CHECK(error("# only a comment\n\n") == "ok");
  CHECK(error("alice admin " + good + "\n") == "ok");
  CHECK(error("alice admin\n") == "line 1: expected NAME ROLE HASH (3 fields)");
  CHECK(error("\nalice boss " + good) == "line 2: the role must be read, write or admin");
  CHECK(error("al!ce read " + good).rfind("line 1: a user name is", 0) == 0);
  CHECK(error("alice read md5$abc").rfind("line 1: the password hash is not", 0) == 0);
  CHECK(error("alice read pbkdf2-sha256$10$AAAAAAAAAAA=$AAAA").rfind(
            "line 1: the iteration count must be", 0) == 0);
  CHECK(error("alice read " + good + "\nalice write " + good) == "line 2: user 'alice' appears twice");
  // The message never repeats the hash.
  CHECK(error("alice read pbkdf2-sha256$1000$c2FsdA==$short").find("c2FsdA") == std::string::npos);
}

TEST_CASE("roles include the ones below them") {
  CHECK(RoleAllows(Role::kAdmin, Role::kWrite));
  CHECK(RoleAllows(Role::kWrite, Role::kRead));
  CHECK_FALSE(RoleAllows(Role::kRead, Role::kWrite));
  CHECK_FALSE(RoleAllows(Role::kWrite, Role::kAdmin));
  CHECK(*ParseRole("write") == Role::kWrite);
  CHECK_FALSE(ParseRole("root").has_value());
}

TEST_CASE("the permission table: what each request needs") {
  CHECK(*RequiredRole(GetRequest{"k", {}}) == Role::kRead);
  CHECK(*RequiredRole(PutRequest{}) == Role::kWrite);
  PutRequest del;
  del.tombstone = true;
  CHECK(*RequiredRole(del) == Role::kWrite);
  CHECK(DescribeRequest(del) == "delete");
  for (const char* topic : {"status", "ring", "stats", "preflist", "hints", "aae-status", "reaper", "local"}) {
    CAPTURE(topic);
    CHECK(*RequiredRole(InfoRequest{topic, ""}) == Role::kRead);
  }
  for (const char* topic : {"admin-leave", "admin-remove", "aae-rebuild", "aae-exchange", "whatever"}) {
    CAPTURE(topic);
    CHECK(*RequiredRole(InfoRequest{topic, ""}) == Role::kAdmin);
  }
  CHECK_FALSE(RequiredRole(AuthRequest{"u", "p"}).has_value());
  // Peer messages are never client requests: admin, and the node refuses them anyway.
  CHECK(*RequiredRole(ReplicaRead{"k", ""}) == Role::kAdmin);
  CHECK(DescribeRequest(InfoRequest{"stats", ""}) == "info 'stats'");
}

TEST_CASE("protected mode: beyond loopback a node needs TLS and users, or --insecure") {
  CHECK(IsLoopback("127.0.0.1"));
  CHECK(IsLoopback("127.1.2.3"));
  CHECK(IsLoopback("::1"));
  CHECK(IsLoopback("localhost"));
  CHECK_FALSE(IsLoopback("0.0.0.0"));
  CHECK_FALSE(IsLoopback("10.0.0.1"));
  CHECK_FALSE(IsLoopback("::"));
  std::vector<Listener> local = {{"--listen", "127.0.0.1"}, {"--resp-listen", "127.0.0.1"}};
  std::vector<Listener> open = {{"--listen", "127.0.0.1"}, {"--resp-listen", "0.0.0.0"}};
  CHECK(CheckProtectedMode(local, false, false, false).ok());
  Status s = CheckProtectedMode(open, false, false, false);
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("--resp-listen 0.0.0.0") != std::string::npos);
  CHECK(s.message().find("--tls-cert FILE --tls-key FILE --tls-ca FILE") != std::string::npos);
  CHECK(s.message().find("--acl FILE") != std::string::npos);
  CHECK(s.message().find("--insecure") != std::string::npos);
  Status only_users = CheckProtectedMode(open, true, false, false);
  REQUIRE_FALSE(only_users.ok());
  CHECK(only_users.message().find("--tls-cert") == std::string::npos);
  CHECK(CheckProtectedMode(open, true, true, false).ok());
  CHECK(CheckProtectedMode(open, false, false, true).ok());
}

TEST_CASE("an AuthRequest crosses the wire") {
  std::string frame = EncodeEnvelope(Envelope{7, {}, {}, AuthRequest{"alice", "pw"}});
  auto env = DecodeEnvelope(frame);
  REQUIRE(env.ok());
  auto* auth = std::get_if<AuthRequest>(&env->body);
  REQUIRE(auth != nullptr);
  CHECK(auth->user == "alice");
  CHECK(auth->password == "pw");
  CHECK(std::string(BodyName(env->body)) == "AuthRequest");
}

// --- certificates and TLS --------------------------------------------------------

namespace {

struct Pki {
  KeyAndCert ca, n1, n2, alice, other_ca, rogue_n2;
};

const Pki& TestPki() {
  static const Pki pki = [] {
    Pki p;
    p.ca = *MakeCa("test");
    p.n1 = *MakeNodeCert(p.ca, "n1", {"127.0.0.1", "localhost"});
    p.n2 = *MakeNodeCert(p.ca, "n2", {"127.0.0.1"});
    p.alice = *MakeClientCert(p.ca, "alice");
    p.other_ca = *MakeCa("other");
    p.rogue_n2 = *MakeNodeCert(p.other_ca, "n2", {"127.0.0.1"});
    return p;
  }();
  return pki;
}

std::shared_ptr<const TlsContext> Context(const KeyAndCert& kc, const KeyAndCert& ca) {
  auto ctx = TlsContext::FromPem(kc.cert_pem, kc.key_pem, ca.cert_pem);
  REQUIRE(ctx.ok());
  return *ctx;
}

// Moves bytes between the two ends until neither has anything to send.
// Returns the first error either end reports.
Status Pump(TlsSession& client, TlsSession& server, std::string* to_server_plain,
            std::string* to_client_plain) {
  for (int round = 0; round < 50; ++round) {
    std::string a, b;
    bool moved = client.TakeOutput(&a) | server.TakeOutput(&b);
    if (!moved) return Status::OK();
    if (!a.empty()) {
      Status s = server.Receive(a, to_server_plain);
      if (!s.ok()) return s;
    }
    if (!b.empty()) {
      Status s = client.Receive(b, to_client_plain);
      if (!s.ok()) return s;
    }
  }
  return Status::Internal("no end to the exchange");
}

}  // namespace

TEST_CASE("certificates carry the identity a node reads") {
  const Pki& p = TestPki();
  auto n1 = Context(p.n1, p.ca);
  CHECK(n1->identity() == PeerIdentity{PeerKind::kNode, "n1"});
  CHECK(Context(p.alice, p.ca)->identity() == PeerIdentity{PeerKind::kClient, "alice"});
  CHECK(Context(p.ca, p.ca)->identity().kind == PeerKind::kNone);  // a CA is nobody
  // Bad input is refused with a reason.
  CHECK_FALSE(MakeNodeCert(p.ca, "n 1", {"h"}).ok());
  CHECK_FALSE(MakeNodeCert(p.ca, "n1", {}).ok());
  CHECK_FALSE(MakeNodeCert(p.ca, "n1", {"bad,host"}).ok());
  CHECK_FALSE(MakeClientCert(p.ca, "a/b").ok());
  KeyAndCert mixed{p.other_ca.key_pem, p.ca.cert_pem};
  CHECK_FALSE(MakeNodeCert(mixed, "n1", {"h"}).ok());  // key and certificate do not match
  CHECK_FALSE(TlsContext::FromPem(p.n1.cert_pem, p.n2.key_pem, p.ca.cert_pem).ok());
}

TEST_CASE("certs files: keys are 0600, nothing is overwritten without force, a missing CA is named") {
  std::string dir = TempDir() + "/certs";
  const Pki& p = TestPki();
  auto missing = ReadCa(dir);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("ringkv certs ca") != std::string::npos);
  REQUIRE(WriteKeyAndCert(dir, "ca", p.ca, false).ok());
  struct stat st {};
  REQUIRE(stat((dir + "/ca.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat((dir + "/ca.pem").c_str(), &st) == 0);
  CHECK((st.st_mode & 0044) != 0);  // the certificate is public
  Status again = WriteKeyAndCert(dir, "ca", p.other_ca, false);
  CHECK_FALSE(again.ok());
  CHECK(again.message().find("--force") != std::string::npos);
  auto ca = ReadCa(dir);
  REQUIRE(ca.ok());
  CHECK(ca->cert_pem == p.ca.cert_pem);  // untouched
  REQUIRE(WriteKeyAndCert(dir, "ca", p.other_ca, true).ok());
  REQUIRE(stat((dir + "/ca.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(ReadCa(dir)->cert_pem == p.other_ca.cert_pem);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

TEST_CASE("TLS between two nodes in memory: the handshake, data both ways, identities") {
  const Pki& p = TestPki();
  TlsSession client(Context(p.n1, p.ca), TlsSession::Side::kClient, "n2");
  TlsSession server(Context(p.n2, p.ca), TlsSession::Side::kServer);
  REQUIRE(client.Start().ok());
  std::string at_server, at_client;
  REQUIRE(Pump(client, server, &at_server, &at_client).ok());
  REQUIRE(client.handshake_done());
  REQUIRE(server.handshake_done());
  CHECK(std::string(client.version()) == "TLSv1.3");
  CHECK(server.peer() == PeerIdentity{PeerKind::kNode, "n1"});
  CHECK(client.peer() == PeerIdentity{PeerKind::kNode, "n2"});
  std::string big(200000, 'z');
  REQUIRE(client.Send("hello ").ok());
  REQUIRE(client.Send(big).ok());
  REQUIRE(server.Send("pong").ok());
  REQUIRE(Pump(client, server, &at_server, &at_client).ok());
  CHECK(at_server == "hello " + big);
  CHECK(at_client == "pong");
}

TEST_CASE("TLS refuses a node of another CA, a certificate for another id, and tells clients apart") {
  const Pki& p = TestPki();
  std::string a, b;
  {
    // A rogue "n2" with another CA's certificate: our client refuses it.
    TlsSession client(Context(p.n1, p.ca), TlsSession::Side::kClient, "n2");
    TlsSession server(Context(p.rogue_n2, p.other_ca), TlsSession::Side::kServer);
    REQUIRE(client.Start().ok());
    Status s = Pump(client, server, &a, &b);
    REQUIRE_FALSE(s.ok());
    CHECK(s.message().find("certificate verify failed") != std::string::npos);
  }
  {
    // ... and as a client, our server refuses it.
    TlsSession client(Context(p.rogue_n2, p.other_ca), TlsSession::Side::kClient, "n1");
    TlsSession server(Context(p.n1, p.ca), TlsSession::Side::kServer);
    REQUIRE(client.Start().ok());
    CHECK_FALSE(Pump(client, server, &a, &b).ok());
    CHECK_FALSE(server.handshake_done());
  }
  {
    // Dialling n2 but reaching n1 (same CA, another id): refused.
    TlsSession client(Context(p.n2, p.ca), TlsSession::Side::kClient, "n2");
    TlsSession server(Context(p.n1, p.ca), TlsSession::Side::kServer);
    REQUIRE(client.Start().ok());
    Status s = Pump(client, server, &a, &b);
    REQUIRE_FALSE(s.ok());
    CHECK(s.message().find("is for node n1, not node n2") != std::string::npos);
  }
  {
    // A client certificate is a client, never a node.
    TlsSession client(Context(p.alice, p.ca), TlsSession::Side::kClient);
    TlsSession server(Context(p.n1, p.ca), TlsSession::Side::kServer);
    REQUIRE(client.Start().ok());
    REQUIRE(Pump(client, server, &a, &b).ok());
    CHECK(server.peer() == PeerIdentity{PeerKind::kClient, "alice"});
  }
}

TEST_CASE("TLS: garbage instead of a handshake is an error, not a crash") {
  const Pki& p = TestPki();
  TlsSession server(Context(p.n1, p.ca), TlsSession::Side::kServer);
  std::string plain;
  Status s = server.Receive(std::string("\x16\x03\x01\x00\x05hello", 10), &plain);
  CHECK_FALSE(s.ok());
  TlsSession server2(Context(p.n1, p.ca), TlsSession::Side::kServer);
  CHECK_FALSE(server2.Receive("GET / HTTP/1.1\r\n\r\n", &plain).ok());
}

// --- the output queue ---------------------------------------------------------------

TEST_CASE("the output queue appends without copying what is queued and consumes without shifting") {
  OutputQueue q;
  std::string big(1 << 20, 'b');
  const char* big_data = big.data();
  q.Append(std::string_view("ab"));
  q.Append(std::move(big));  // a large chunk is taken over, not copied
  q.AppendWith([](std::string* s) { s->append("cd"); });
  CHECK(q.bytes() == 2 + (1u << 20) + 2);
  std::vector<std::string_view> views;
  q.Peek(&views, 16);
  REQUIRE(views.size() == 3);
  CHECK(views[0] == "ab");
  CHECK(views[1].data() == big_data);
  // Thousands of appends keep every queued chunk where it is.
  for (int i = 0; i < 5000; ++i) q.Append(std::string_view("0123456789"));
  q.Peek(&views, 16);
  CHECK(views[1].data() == big_data);
  CHECK(q.bytes() == 2 + (1u << 20) + 2 + 50000);
  // Consuming part of a chunk moves an offset; the rest stays in place.
  q.Consume(3);
  q.Peek(&views, 16);
  CHECK(views[0].data() == big_data + 1);
  CHECK(q.Front().size() == (1u << 20) - 1);
  q.Consume((1u << 20) - 1);
  CHECK(q.Front().substr(0, 2) == "cd");
  size_t offset = 0;
  q.Consume(1);
  std::vector<std::string> chunks = q.TakeAll(&offset);
  CHECK(q.empty());
  std::string rest;
  for (size_t i = 0; i < chunks.size(); ++i) rest += chunks[i].substr(i == 0 ? offset : 0);
  CHECK(rest.size() == 1 + 50000);
  CHECK(rest.substr(0, 3) == "d01");
}

// --- AUTH over the Redis protocol ------------------------------------------------------

namespace {

struct RespHarness {
  RespStats stats;
  RespSession session;
  explicit RespHarness(RespOptions o) : session(o, &stats) {}
  std::string Feed(const std::string& bytes) {
    session.Feed(bytes);
    return session.TakeOutput();
  }
};

RespOptions WithUsers() {
  RespOptions o;
  o.auth_required = true;
  return o;
}

}  // namespace

TEST_CASE("resp: before AUTH only AUTH, PING and QUIT run; the rest is NOAUTH and reaches nothing") {
  RespHarness h(WithUsers());
  CHECK(h.Feed("PING\r\nGET k\r\nSET k v\r\nINFO\r\nCLIENT SETNAME x\r\n") ==
        "+PONG\r\n-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n"
        "-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n");
  CHECK(h.session.TakeRequests().empty());
  // A large argument before AUTH is not buffered: the parser's limits are small.
  CHECK(h.Feed("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n") ==
        "-ERR Protocol error: bulk string of 100000 bytes; the limit is 16384\r\n");
  CHECK(h.session.finished());
}

TEST_CASE("resp: AUTH is answered before the commands after it run, and opens the connection") {
  RespHarness h(WithUsers());
  CHECK(h.Feed("AUTH alice s3cret\r\nGET k\r\n").empty());
  auto reqs = h.session.TakeRequests();
  REQUIRE(reqs.size() == 1);  // the GET waits behind the AUTH
  auto* auth = std::get_if<AuthRequest>(&reqs[0].body);
  REQUIRE(auth != nullptr);
  CHECK(auth->user == "alice");
  CHECK(auth->password == "s3cret");
  h.session.OnReply(Envelope{reqs[0].request_id, {}, {}, Reply{Status::OK(), {}, {}}});
  CHECK(h.session.authenticated());
  auto after = h.session.TakeRequests();
  REQUIRE(after.size() == 1);
  CHECK(std::holds_alternative<GetRequest>(after[0].body));
  h.session.OnReply(Envelope{after[0].request_id, {}, {}, Reply{Status::NotFound("k"), {}, {}}});
  CHECK(h.session.TakeOutput() == "+OK\r\n$-1\r\n");
}

TEST_CASE("resp: a wrong password is WRONGPASS; AUTH password logs in as default") {
  RespHarness h(WithUsers());
  h.Feed("AUTH nope\r\n");
  auto reqs = h.session.TakeRequests();
  REQUIRE(reqs.size() == 1);
  CHECK(std::get<AuthRequest>(reqs[0].body).user == "default");
  h.session.OnReply(
      Envelope{reqs[0].request_id, {}, {}, Reply{Status::Unauthenticated("no"), {}, {}}});
  CHECK(h.session.TakeOutput() ==
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  CHECK_FALSE(h.session.authenticated());
  CHECK(h.Feed("GET k\r\n") == "-NOAUTH Authentication required.\r\n");
  CHECK(h.Feed("AUTH a b c\r\n") == "-ERR wrong number of arguments for 'auth' command\r\n");
}

TEST_CASE("resp: a turn runs a bounded number of commands; the rest waits for RunBacklog") {
  RespOptions o;
  o.commands_per_turn = 4;
  RespHarness h(o);
  std::string pings;
  for (int i = 0; i < 10; ++i) pings += "PING\r\n";
  CHECK(h.Feed(pings) == "+PONG\r\n+PONG\r\n+PONG\r\n+PONG\r\n");
  CHECK(h.session.backlogged());
  h.session.RunBacklog();
  CHECK(h.session.TakeOutput().size() == 4 * 7);
  h.session.RunBacklog();
  CHECK(h.session.TakeOutput() == "+PONG\r\n+PONG\r\n");
  CHECK_FALSE(h.session.backlogged());
}

TEST_CASE("resp parser: the arguments of one command have a byte limit") {
  RespLimits limits;
  limits.max_command_bytes = 1000;
  RespParser parser(limits);
  std::string arg(400, 'a');
  std::string cmd = "*4\r\n$4\r\nMGET\r\n";
  for (int i = 0; i < 3; ++i) cmd += "$400\r\n" + arg + "\r\n";
  parser.Append(cmd);
  RespCommand out;
  std::string error;
  CHECK(parser.Next(&out, &error) == RespParser::Result::kError);
  CHECK(error.find("command of over") != std::string::npos);
}

TEST_CASE("the frame reader holds a slow large frame in what it takes, and splits frames anywhere") {
  FrameReader reader(64u << 20);
  // A 40 MB frame announced and sent in 64 KB pieces: memory grows with what
  // arrived, never to a doubled buffer.
  std::string header = {'\x00', '\x00', '\x80', '\x02'};  // 40 MiB
  reader.Append(header);
  CHECK(reader.memory() == 4096);
  std::string piece(64 * 1024, 'x');
  for (int i = 0; i < 320; ++i) reader.Append(piece);  // 20 MiB
  std::string frame;
  CHECK(reader.Next(&frame) == 0);
  CHECK(reader.buffered() == 4 + 320 * piece.size());
  CHECK(reader.memory() <= reader.buffered() + 2 * 64 * 1024);
  CHECK(reader.memory() >= reader.buffered());

  // Real frames, cut at every byte boundary, come out whole.
  std::string stream;
  for (int i = 0; i < 50; ++i) {
    AppendFrame(Envelope{static_cast<uint64_t>(i), {}, {}, GetRequest{"key" + std::to_string(i), {}}},
                &stream);
  }
  for (size_t cut : {1u, 3u, 7u, 100u, 5000u}) {
    FrameReader r(1 << 20);
    int got = 0;
    for (size_t at = 0; at < stream.size(); at += cut) {
      r.Append(std::string_view(stream).substr(at, cut));
      while (r.Next(&frame) == 1) {
        auto env = DecodeEnvelope(frame);
        REQUIRE(env.ok());
        CHECK(env->request_id == static_cast<uint64_t>(got));
        ++got;
      }
    }
    CHECK(got == 50);
    CHECK(r.buffered() == 0);
    CHECK(r.memory() == 0);
  }
  CHECK(reader.Peek(4) == header);
}
