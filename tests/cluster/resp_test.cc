// The Redis-protocol front end on real nodes, driven by Debian's redis-cli
// and redis-benchmark (package redis-tools, installed by scripts/install-deps).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "report.h"

using ringkv::test::CliResult;
using ringkv::test::Cluster;
using ringkv::test::RunProgram;

namespace {

// The full path of a program on $PATH (RunProgram does not search), or "".
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

std::string RequireTool(const std::string& name) {
  std::string path = FindTool(name);
  REQUIRE_MESSAGE(!path.empty(), name << " is not installed: run scripts/install-deps "
                                         "(it installs Debian's redis-tools)");
  return path;
}

// `redis-cli --no-raw -p PORT args...` (stdin: input); --no-raw shows the
// reply types: "value" in quotes, (nil), (integer) N, (error) ...
std::string RedisCli(const Cluster& c, int node, std::vector<std::string> args,
                     const std::string& input = "") {
  std::vector<std::string> argv = {
      RequireTool("redis-cli"),        "--no-raw", "-h", "127.0.0.1", "-p",
      std::to_string(c.RespPort(node))};
  argv.insert(argv.end(), args.begin(), args.end());
  CliResult r = RunProgram(argv, input);
  INFO("redis-cli " << args.size() << " args: stderr " << r.err);
  CHECK(r.exit_code == 0);
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Sends bytes to a RESP port, half-closes, and returns everything the node
// sends back until it closes the connection (or 10 s pass).
std::string Exchange(uint16_t port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the node may close early (protocol error)
    sent += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// The number after "name:" in an INFO answer, or -1.
long InfoField(const std::string& info, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(info, m, std::regex("(^|\n)" + name + ":([0-9]+)"))) return -1;
  return std::stol(m[2]);
}

}  // namespace

TEST_CASE("resp: redis-cli SET, GET, MGET, EXISTS, DEL, PING and INFO through different nodes") {
  Cluster c(3, {}, Cluster::Bootstrap::kPeers, /*resp=*/true);
  CHECK(RedisCli(c, 1, {"PING"}) == "PONG");
  CHECK(RedisCli(c, 2, {"PING", "hello"}) == "\"hello\"");
  CHECK(RedisCli(c, 1, {"SET", "fruit", "apple"}) == "OK");
  CHECK(RedisCli(c, 2, {"GET", "fruit"}) == "\"apple\"");
  CHECK(RedisCli(c, 3, {"SET", "veg", "leek"}) == "OK");
  CHECK(RedisCli(c, 3, {"MGET", "fruit", "nothing", "veg"}) ==
        "1) \"apple\"\n2) (nil)\n3) \"leek\"");
  CHECK(RedisCli(c, 1, {"EXISTS", "fruit", "nothing", "veg", "fruit"}) == "(integer) 3");

  // The same store as the native protocol.
  CliResult native = c.Cli(3, {"get", "fruit"});
  CHECK(native.exit_code == 0);
  CHECK(native.out.find("apple") != std::string::npos);

  CHECK(RedisCli(c, 2, {"DEL", "fruit", "nothing"}) == "(integer) 1");
  CHECK(RedisCli(c, 3, {"GET", "fruit"}) == "(nil)");
  CHECK(RedisCli(c, 1, {"EXISTS", "fruit"}) == "(integer) 0");
  CHECK(c.Cli(1, {"get", "fruit"}).exit_code == 1);  // deleted for native clients too

  // Errors in Redis's words.
  CHECK(RedisCli(c, 1, {"GET"}) == "(error) ERR wrong number of arguments for 'get' command");
  CHECK(RedisCli(c, 1, {"LPUSH", "l", "v"}).rfind("(error) ERR unknown command 'LPUSH'", 0) ==
        0);

  // INFO: key:value lines from the node's status and stats.
  std::vector<std::string> info_argv = {RequireTool("redis-cli"),      "-h",  "127.0.0.1", "-p",
                                        std::to_string(c.RespPort(2)), "INFO"};
  CliResult info = RunProgram(info_argv);
  CHECK(info.exit_code == 0);
  CHECK(info.out.find("node:n2") != std::string::npos);
  CHECK(InfoField(info.out, "members") == 3);
  CHECK(InfoField(info.out, "members_alive") == 3);
  CHECK(InfoField(info.out, "gets") >= 1);
  CHECK(InfoField(info.out, "resp_commands") >= 1);

  // A pipeline through stdin, with SELECT, ECHO and CLIENT GETNAME.
  CHECK(RedisCli(c, 3, {}, "SELECT 0\nECHO hi\nCLIENT SETNAME me\nCLIENT GETNAME\n") ==
        "OK\n\"hi\"\nOK\n\"me\"");
}

TEST_CASE("resp: inline commands, QUIT and garbage over a raw socket") {
  Cluster c(1, {"--n", "1", "--r", "1", "--w", "1"}, Cluster::Bootstrap::kPeers, /*resp=*/true);
  // What a person types into nc: inline commands; QUIT closes after its +OK.
  CHECK(Exchange(c.RespPort(1), "PING\r\nSET k \"a b\"\r\nGET k\r\nQUIT\r\nPING\r\n") ==
        "+PONG\r\n+OK\r\n$3\r\na b\r\n+OK\r\n");
  // Malformed input: the error, then the connection is closed.
  CHECK(Exchange(c.RespPort(1), "*1\r\n$4\r\nPING\r\n*2\r\n$x\r\n") ==
        "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
  CHECK(Exchange(c.RespPort(1), "SET k \"open\r\n") ==
        "-ERR Protocol error: unbalanced quotes in request\r\n");
  // A bulk string over --max-value-bytes is a protocol error (Redis's
  // proto-max-bulk-len): answered, then the connection is closed before a
  // byte of the value is buffered.
  std::string big(2 * 1024 * 1024, 'v');
  Cluster small(1, {"--n", "1", "--r", "1", "--w", "1", "--max-value-bytes", "1048576"},
                Cluster::Bootstrap::kPeers, /*resp=*/true);
  CHECK(Exchange(small.RespPort(1), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(big.size()) +
                                        "\r\n" + big + "\r\nPING\r\nQUIT\r\n") ==
        "-ERR Protocol error: bulk string of 2097152 bytes; the limit is 1048576\r\n");
  // The nodes are still fine.
  CHECK(RedisCli(c, 1, {"GET", "k"}) == "\"a b\"");
  CHECK(RedisCli(small, 1, {"PING"}) == "PONG");
}

TEST_CASE("resp: GET of a key with siblings is a CONFLICT error unless the connection chose lww") {
  Cluster c(3, {}, Cluster::Bootstrap::kPeers, /*resp=*/true);
  // Two blind SETs through different nodes: concurrent, both kept.
  CHECK(RedisCli(c, 1, {"SET", "cart", "milk"}) == "OK");
  CHECK(RedisCli(c, 2, {"SET", "cart", "eggs"}) == "OK");
  std::string got = RedisCli(c, 3, {"GET", "cart"});
  CHECK(got.rfind("(error) CONFLICT key 'cart' has 2 siblings", 0) == 0);
  CHECK(RedisCli(c, 3, {"MGET", "cart"}).rfind("(error) CONFLICT", 0) == 0);
  CHECK(RedisCli(c, 1, {"EXISTS", "cart"}) == "(integer) 1");

  // The native client sees both siblings.
  CliResult native = c.Cli(1, {"get", "cart"});
  CHECK(native.out.find("2 siblings") != std::string::npos);

  // lww for this connection: the newest sibling (eggs was written last).
  CHECK(RedisCli(c, 3, {}, "CLIENT SETNAME lww\nGET cart\nCLIENT SETNAME other\nGET cart\n")
            .rfind("OK\n\"eggs\"\nOK\n(error) CONFLICT", 0) == 0);
  CHECK(RedisCli(c, 1, {}, "RINGKV LWW ON\nGET cart\n") == "OK\n\"eggs\"");
  // The lww read dropped nothing: siblings are still there for others.
  CHECK(RedisCli(c, 2, {"GET", "cart"}).rfind("(error) CONFLICT", 0) == 0);

  // An lww SET keeps only the newest value.
  CHECK(RedisCli(c, 2, {}, "CLIENT SETNAME lww\nSET cart bread\n") == "OK\nOK");
  CHECK(RedisCli(c, 3, {"GET", "cart"}) == "\"bread\"");

  // DEL deletes what it read, siblings included.
  CHECK(RedisCli(c, 1, {"SET", "pair", "a"}) == "OK");
  CHECK(RedisCli(c, 3, {"SET", "pair", "b"}) == "OK");
  CHECK(RedisCli(c, 2, {"DEL", "pair"}) == "(integer) 1");
  CHECK(RedisCli(c, 1, {"GET", "pair"}) == "(nil)");
}

TEST_CASE("resp: redis-benchmark -t set,get with 50 clients, with and without pipelining") {
  std::string bench = RequireTool("redis-benchmark");
  // redis-benchmark cannot name its connections and stops at the first error
  // reply, so the nodes start RESP connections in lww mode: its SETs all
  // write one key ("key:__rand_int__"), which blind writes would fill with
  // siblings.
  Cluster c(3, {"--resp-lww"}, Cluster::Bootstrap::kPeers, /*resp=*/true);
  for (int pipeline : {1, 16}) {
    CAPTURE(pipeline);
    CliResult r =
        RunProgram({bench, "-h", "127.0.0.1", "-p", std::to_string(c.RespPort(1)), "-t", "set,get",
                    "-n", "20000", "-c", "50", "-P", std::to_string(pipeline), "-q"});
    INFO("stdout: " << r.out.substr(r.out.size() > 2000 ? r.out.size() - 2000 : 0)
                    << "\nstderr: " << r.err << "\nnode log: " << c.LogTail(1));
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Error") == std::string::npos);
    CHECK(r.err.find("Error") == std::string::npos);
    CHECK(r.err.find("WARNING") == std::string::npos);  // e.g. "Could not fetch server CONFIG"
    for (const std::string test : {"SET", "GET"}) {
      std::smatch m;
      bool found =
          std::regex_search(r.out, m, std::regex(test + ": ([0-9.]+) requests per second"));
      CHECK_MESSAGE(found, test << " has no requests per second");
      if (found)
        REPORT("redis-benchmark " << test << " -P " << pipeline
                                  << " -c 50, 3 nodes n3 r2 w2 (lww): " << m[1] << " ops/s");
    }
  }
  std::vector<std::string> info_argv = {RequireTool("redis-cli"),      "-h",  "127.0.0.1", "-p",
                                        std::to_string(c.RespPort(1)), "INFO"};
  CliResult info = RunProgram(info_argv);
  CHECK(InfoField(info.out, "resp_error_replies") == 0);
  CHECK(InfoField(info.out, "resp_commands") >= 80000);
  CHECK(InfoField(info.out, "max_siblings") <= 1);
}
