// Security on real nodes (README "Security"): TLS on every connection,
// users and roles, client certificates, peers known by their certificate,
// redis-cli over TLS with AUTH, and protected mode.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "report.h"

using ringkv::test::CliResult;
using ringkv::test::Cluster;
using ringkv::test::ClusterSecurity;
using ringkv::test::FreePorts;
using ringkv::test::RunProgram;

namespace {

using namespace ringkv;

std::string FindTool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

ClusterSecurity SecureUsers() {
  ClusterSecurity s;
  s.tls = true;
  s.users = {{"admin", "admin", "admin-pw"}, {"reader", "read", "reader-pw"}, {"writer", "write", "writer-pw"}};
  return s;
}

nlohmann::json Stats(const Cluster& c, int node) {
  CliResult r = c.Cli(node, {"--json", "stats"});
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

// Waits until `pred` holds (checked every 100 ms), at most limit_s.
template <typename Pred>
bool WaitFor(Pred pred, double limit_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return pred();
}

}  // namespace

TEST_CASE("security: a 3-node TLS+ACL cluster serves its users and refuses everyone else with exit 5") {
  Cluster c(3, {}, Cluster::Bootstrap::kPeers, /*resp=*/true, SecureUsers());
  const std::string addr = c.Address(1);
  const std::string ca = c.CaFile();

  // The admin writes through one node and reads through another.
  CliResult put = c.Cli(1, {"put", "greeting", "hello"});
  CHECK(put.exit_code == 0);
  CliResult get = c.Cli(2, {"get", "greeting"});
  CHECK(get.exit_code == 0);
  CHECK(Has(get.out, "hello"));

  // A plaintext client: the node answers in plaintext that it speaks TLS only.
  CliResult plain = c.RunCli({"-H", addr, "get", "greeting"});
  CHECK(plain.exit_code == 5);
  CHECK(Has(plain.err, "accepts TLS connections only"));
  // TLS but no user.
  CliResult anon = c.RunCli({"-H", addr, "--tls-ca", ca, "get", "greeting"});
  CHECK(anon.exit_code == 5);
  CHECK(Has(anon.err, "authentication required"));
  // A wrong password.
  CliResult wrong = c.RunCli({"-H", addr, "--tls-ca", ca, "--user", "admin", "put", "greeting", "x"},
                             {"RINGKV_PASSWORD=not-it"});
  CHECK(wrong.exit_code == 5);
  CHECK(Has(wrong.err, "wrong user name or password"));
  CHECK_FALSE(Has(wrong.err, "not-it"));
  // A read-only user reads, but may not write or administer.
  std::vector<std::string> reader = {"-H", addr, "--tls-ca", ca, "--user", "reader"};
  std::vector<std::string> reader_env = {"RINGKV_PASSWORD=reader-pw"};
  auto as_reader = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = reader;
    argv.insert(argv.end(), args.begin(), args.end());
    return c.RunCli(argv, reader_env);
  };
  CHECK(as_reader({"get", "greeting"}).exit_code == 0);
  CliResult denied = as_reader({"put", "greeting", "mine"});
  CHECK(denied.exit_code == 5);
  CHECK(Has(denied.err, "permission denied: user 'reader' (role read) may not put"));
  CHECK(as_reader({"admin", "aae", "exchange"}).exit_code == 5);
  CHECK(as_reader({"status"}).exit_code == 0);
  // A writer writes but may not remove nodes.
  CHECK(c.RunCli({"-H", addr, "--tls-ca", ca, "--user", "writer", "put", "w", "1"},
                 {"RINGKV_PASSWORD=writer-pw"})
            .exit_code == 0);
  CHECK(c.RunCli({"-H", addr, "--tls-ca", ca, "--user", "writer", "admin", "remove", "n3"},
                 {"RINGKV_PASSWORD=writer-pw"})
            .exit_code == 5);
  // Nothing refused happened: the value is the admin's.
  CHECK(Has(c.Cli(3, {"get", "greeting"}).out, "hello"));
  CHECK(c.Cli(3, {"get", "greeting"}).out.find("mine") == std::string::npos);

  // A client certificate named after a user logs in as that user.
  CHECK(RunProgram({RINGKV_CLI_BIN, "certs", "client", c.CertsDir(), "--name", "reader"}).exit_code == 0);
  std::vector<std::string> cert = {"-H", addr, "--tls-ca", ca, "--tls-cert",
                                   c.CertsDir() + "/client-reader.pem", "--tls-key",
                                   c.CertsDir() + "/client-reader.key"};
  auto with_cert = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = cert;
    argv.insert(argv.end(), args.begin(), args.end());
    return c.RunCli(argv);
  };
  CHECK(with_cert({"get", "greeting"}).exit_code == 0);
  CHECK(with_cert({"put", "greeting", "x"}).exit_code == 5);

  // A certificate not signed by the cluster's CA is refused by the client.
  CHECK(RunProgram({RINGKV_CLI_BIN, "certs", "ca", c.CertsDir() + "/other"}).exit_code == 0);
  CliResult untrusted =
      c.RunCli({"-H", addr, "--tls-ca", c.CertsDir() + "/other/ca.pem", "--user", "admin", "status"},
               {"RINGKV_PASSWORD=admin-pw"});
  CHECK(untrusted.exit_code == 5);
  CHECK(Has(untrusted.err, "is not trusted"));

  // Before authenticating, a connection may send only small frames.
  {
    ClientOptions tls_only;
    tls_only.tls_ca = ca;
    auto client = Client::Connect(addr, 10000, tls_only);
    REQUIRE(client.ok());
    std::string header = {'\x00', '\x00', '\xc0', '\x03'};  // a 60 MiB frame announced
    REQUIRE((*client)->SendBytes(header).ok());
    auto answer = (*client)->Receive();
    REQUIRE(answer.ok());
    auto* reply = std::get_if<Reply>(&answer->body);
    REQUIRE(reply != nullptr);
    CHECK(Has(reply->status.message(), "before authentication"));
  }

  // ringkv bench over TLS, logged in.
  CliResult bench = c.Cli(1, {"--json", "bench", "--hosts", c.Address(1) + "," + c.Address(2),
                              "--clients", "4", "--requests", "400", "--value-size", "50"});
  REQUIRE(bench.exit_code == 0);
  auto report = nlohmann::json::parse(bench.out);
  CHECK(report["errors"] == 0);
  CHECK(report["ops"] == 400);

  // Every refusal was counted.
  nlohmann::json stats = Stats(c, 1);
  CHECK(stats["auth_failures"] >= 1);
  CHECK(stats["permission_denied"] >= 3);
  CHECK(stats["unauthenticated_refused"] >= 1);
  CHECK(stats["tls_mismatches"] >= 1);
  CHECK(stats["input_limit_disconnects"] >= 1);
  REPORT("security: node n1 counted " << stats["auth_successes"] << " logins, "
                                       << stats["auth_failures"] << " failed, "
                                       << stats["permission_denied"] << " permission denied, "
                                       << stats["unauthenticated_refused"]
                                       << " unauthenticated requests refused");
  // The log names the user and the address, never the password.
  std::string log = c.LogTail(1, 200000);
  CHECK(Has(log, "authentication failed for user 'admin' from 127.0.0.1:"));
  CHECK_FALSE(Has(log, "not-it"));
  CHECK_FALSE(Has(log, "reader-pw"));

  // redis-cli over TLS with AUTH.
  std::string redis_cli = FindTool("redis-cli");
  REQUIRE_MESSAGE(!redis_cli.empty(), "redis-cli is not installed: run scripts/install-deps");
  auto redis = [&](std::vector<std::string> auth, std::vector<std::string> args) {
    std::vector<std::string> argv = {redis_cli, "--no-raw", "--tls", "--cacert", ca, "-h",
                                     "127.0.0.1", "-p", std::to_string(c.RespPort(2))};
    argv.insert(argv.end(), auth.begin(), auth.end());
    argv.insert(argv.end(), args.begin(), args.end());
    CliResult r = RunProgram(argv);
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  };
  CHECK(redis({"--user", "admin", "--pass", "admin-pw"}, {"SET", "fruit", "apple"}) == "OK");
  CHECK(redis({"--user", "reader", "--pass", "reader-pw"}, {"GET", "fruit"}) == "\"apple\"");
  CHECK(redis({}, {"GET", "fruit"}) == "(error) NOAUTH Authentication required.");
  CHECK(redis({}, {"PING"}) == "PONG");
  CHECK(redis({"--user", "reader", "--pass", "reader-pw"}, {"SET", "fruit", "pear"})
            .rfind("(error) NOPERM user 'reader' (role read) may not put", 0) == 0);
  CHECK(Has(redis({"--user", "admin", "--pass", "wrong"}, {"GET", "fruit"}), "NOAUTH"));
  CHECK(Has(c.Cli(1, {"get", "fruit"}).out, "apple"));  // the same store
  // A plaintext redis-cli is told the port speaks TLS.
  CliResult plain_redis = RunProgram({redis_cli, "-h", "127.0.0.1", "-p", std::to_string(c.RespPort(2)), "PING"});
  CHECK(Has(plain_redis.out + plain_redis.err, "speaks TLS only"));
}

TEST_CASE("security: a node with another CA's certificate, or posing as another node, never becomes a member") {
  ClusterSecurity tls_only;
  tls_only.tls = true;
  Cluster c(3, {"--gossip-interval-ms", "200"}, Cluster::Bootstrap::kPeers, false, tls_only);

  // A real node with a certificate from another CA tries to join through n1.
  std::string other = c.CertsDir() + "/other";
  REQUIRE(RunProgram({RINGKV_CLI_BIN, "certs", "ca", other}).exit_code == 0);
  REQUIRE(RunProgram({RINGKV_CLI_BIN, "certs", "node", other, "--id", "n4", "--host", "127.0.0.1"})
              .exit_code == 0);
  uint16_t port = FreePorts(1)[0];
  std::string data = c.CertsDir() + "/../rogue-data";
  std::string log = c.CertsDir() + "/../rogue.log";
  std::vector<std::string> args = {RINGKV_NODE_BIN, "--id", "n4", "--listen",
                                   "127.0.0.1:" + std::to_string(port), "--data-dir", data,
                                   "--join", c.Address(1), "--gossip-interval-ms", "200",
                                   "--tls-cert", other + "/n4.pem", "--tls-key", other + "/n4.key",
                                   "--tls-ca", other + "/ca.pem"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t rogue = fork();
  REQUIRE(rogue >= 0);
  if (rogue == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the test
    if (getppid() != parent) _exit(127);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) _exit(127);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }

  // An impostor with a real certificate of the cluster's CA, but for a
  // client (or for another node), sends gossip in n4's name.
  CHECK(RunProgram({RINGKV_CLI_BIN, "certs", "client", c.CertsDir(), "--name", "mallory"}).exit_code == 0);
  CHECK(RunProgram({RINGKV_CLI_BIN, "certs", "node", c.CertsDir(), "--id", "n9", "--host", "127.0.0.1"})
            .exit_code == 0);
  int refused = 0;
  for (std::string stem : {"client-mallory", "n9"}) {
    ClientOptions o;
    o.tls_ca = c.CaFile();
    o.tls_cert = c.CertsDir() + "/" + stem + ".pem";
    o.tls_key = c.CertsDir() + "/" + stem + ".key";
    auto client = Client::Connect(c.Address(2), 10000, o);
    REQUIRE(client.ok());
    GossipPush push;
    push.ring_size = 64;
    push.n_val = 3;
    push.members.push_back(MemberState{"n4", "127.0.0.1:" + std::to_string(port), 1, 99, MemberStatus::kUp, ""});
    REQUIRE((*client)->Send(Envelope{1, "n4", "ringkv", push}).ok());
    auto answer = (*client)->Receive();
    if (answer.ok()) {
      auto* reply = std::get_if<Reply>(&answer->body);
      REQUIRE(reply != nullptr);
      CHECK(reply->status.code() == Status::Code::kUnauthenticated);
      CHECK(Has(reply->status.message(), "peers are known by their TLS certificate"));
      ++refused;
    }
  }
  CHECK(refused == 2);

  // For several gossip rounds, no node lists n4.
  for (int round = 0; round < 10; ++round) {
    for (int i = 1; i <= 3; ++i) {
      CliResult st = c.Cli(i, {"--json", "status"});
      REQUIRE(st.exit_code == 0);
      CHECK_FALSE(Has(st.out, "\"n4\""));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  kill(rogue, SIGKILL);
  waitpid(rogue, nullptr, 0);
  nlohmann::json s1 = Stats(c, 1), s2 = Stats(c, 2);
  CHECK(s1["tls_failures"] >= 1);  // the rogue's handshakes with n1
  CHECK(s2["peer_identity_refused"] >= 2);
  std::string rogue_log;
  {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    rogue_log = ss.str();
  }
  CHECK(Has(rogue_log, "certificate verify failed"));
  CHECK(Has(c.LogTail(2, 100000), "refused a message from node 'n4'"));
  REPORT("security: n1 refused " << s1["tls_failures"] << " TLS handshakes of a node with another CA; n2 refused "
                                 << s2["peer_identity_refused"] << " peer messages from certificates of other identities");
}

TEST_CASE("security: protected mode and unsafe combinations refuse to start, saying what to add") {
  char tmpl[] = "/tmp/ringkv-protected-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  uint16_t port = FreePorts(1)[0];
  auto node = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {RINGKV_NODE_BIN, "--id", "n1", "--data-dir", dir + "/data"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return RunProgram(argv);
  };
  std::string p = std::to_string(port);
  CliResult open = node({"--listen", "0.0.0.0:" + p, "--advertise", "127.0.0.1:" + p});
  CHECK(open.exit_code == 2);
  CHECK(Has(open.err, "protected mode"));
  CHECK(Has(open.err, "--listen 0.0.0.0"));
  CHECK(Has(open.err, "--tls-cert FILE --tls-key FILE --tls-ca FILE"));
  CHECK(Has(open.err, "--acl FILE"));
  CHECK(Has(open.err, "--insecure"));
  CliResult resp_open = node({"--listen", "127.0.0.1:" + p, "--resp-listen", "0.0.0.0:" + p});
  CHECK(resp_open.exit_code == 2);
  CHECK(Has(resp_open.err, "--resp-listen 0.0.0.0"));

  // --acl without TLS, on loopback too.
  CHECK(RunProgram({RINGKV_CLI_BIN, "acl", "add", dir + "/users.acl", "admin", "--role", "admin",
                    "--iterations", "1000"},
                   "", {"RINGKV_PASSWORD=pw"})
            .exit_code == 0);
  CliResult acl = node({"--listen", "127.0.0.1:" + p, "--acl", dir + "/users.acl"});
  CHECK(acl.exit_code == 2);
  CHECK(Has(acl.err, "--acl needs TLS"));
  // Half of TLS, and a certificate for another node.
  REQUIRE(RunProgram({RINGKV_CLI_BIN, "certs", "ca", dir + "/certs"}).exit_code == 0);
  REQUIRE(RunProgram({RINGKV_CLI_BIN, "certs", "node", dir + "/certs", "--id", "n2", "--host", "127.0.0.1"})
              .exit_code == 0);
  CliResult half = node({"--listen", "127.0.0.1:" + p, "--tls-cert", dir + "/certs/n2.pem"});
  CHECK(half.exit_code == 2);
  CHECK(Has(half.err, "all three"));
  CliResult other_id = node({"--listen", "127.0.0.1:" + p, "--tls-cert", dir + "/certs/n2.pem",
                             "--tls-key", dir + "/certs/n2.key", "--tls-ca", dir + "/certs/ca.pem"});
  CHECK(other_id.exit_code == 2);
  CHECK(Has(other_id.err, "is a certificate for node n2, not node n1"));

  // A TLS client of a plaintext node is told so, at once.
  Cluster plain(1);
  auto t0 = std::chrono::steady_clock::now();
  CliResult tls_to_plain = RunProgram(
      {RINGKV_CLI_BIN, "-H", plain.Address(1), "--timeout-ms", "60000", "--tls-ca",
       dir + "/certs/ca.pem", "status"});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(tls_to_plain.exit_code == 5);
  CHECK(Has(tls_to_plain.err, "closed the connection during the TLS handshake"));
  CHECK(seconds < 30);  // no hang until the 60 s timeout: the node closes at the first bytes
  std::filesystem::remove_all(dir);
}
