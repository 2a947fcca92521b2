// ringkv-node's HTTP port (--http-listen) over real sockets: the JSON API is
// the CLI's --json, /metrics passes promtool, and the dashboard shows the
// cluster in headless Chromium. The promtool and Chromium cases exit 77
// (ctest: skipped) when the tool is missing; scripts/install-deps installs
// both.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster/harness.h"

using namespace ringkv;
using namespace ringkv::test;
using json = nlohmann::json;

namespace {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
  bool complete = false;
};

// Parses responses with http-parser (no hand-written HTTP parsing here
// either).
class ResponseReader {
 public:
  ResponseReader() {
    http_parser_init(&parser_, HTTP_RESPONSE);
    parser_.data = this;
    http_parser_settings_init(&settings_);
    settings_.on_header_field = [](http_parser* p, const char* at, size_t len) {
      auto* r = static_cast<ResponseReader*>(p->data);
      if (r->value_done_) r->field_.clear();
      r->value_done_ = false;
      r->field_.append(at, len);
      return 0;
    };
    settings_.on_header_value = [](http_parser* p, const char* at, size_t len) {
      auto* r = static_cast<ResponseReader*>(p->data);
      std::string name;
      for (char c : r->field_) name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r->reply_.headers[name].append(at, len);
      r->value_done_ = true;
      return 0;
    };
    settings_.on_body = [](http_parser* p, const char* at, size_t len) {
      static_cast<ResponseReader*>(p->data)->reply_.body.append(at, len);
      return 0;
    };
    settings_.on_message_complete = [](http_parser* p) {
      auto* r = static_cast<ResponseReader*>(p->data);
      r->reply_.status = static_cast<int>(p->status_code);
      r->reply_.complete = true;
      http_parser_pause(p, 1);  // one response at a time
      return 0;
    };
  }
  // Feeds bytes; returns how many were used (the rest belong to the next
  // response).
  size_t Feed(const char* data, size_t len) {
    return http_parser_execute(&parser_, &settings_, data, len);
  }
  void FeedEof() { http_parser_execute(&parser_, &settings_, nullptr, 0); }
  HttpReply Take() {
    HttpReply r = std::move(reply_);
    reply_ = HttpReply();
    http_parser_pause(&parser_, 0);
    return r;
  }
  bool complete() const { return reply_.complete; }
  bool head_response = false;

 private:
  http_parser parser_;
  http_parser_settings settings_;
  HttpReply reply_;
  std::string field_;
  bool value_done_ = false;
};

// One keep-alive connection to 127.0.0.1:port.
class HttpConnection {
 public:
  explicit HttpConnection(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    timeval tv{30, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~HttpConnection() { close(fd_); }

  void SendRaw(const std::string& bytes) {
    REQUIRE(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
  }
  // Reads one response (closed: the connection ended before one came).
  HttpReply Read() {
    while (true) {
      if (!pending_.empty()) {
        size_t used = reader_.Feed(pending_.data(), pending_.size());
        pending_.erase(0, used);
        if (reader_.complete()) return reader_.Take();
      }
      char buf[65536];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        reader_.FeedEof();
        closed_ = true;
        return reader_.complete() ? reader_.Take() : HttpReply();
      }
      pending_.append(buf, static_cast<size_t>(n));
    }
  }
  HttpReply Get(const std::string& path) {
    SendRaw("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    return Read();
  }
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  ResponseReader reader_;
  std::string pending_;
  bool closed_ = false;
};

HttpReply HttpGet(uint16_t port, const std::string& path) {
  HttpConnection c(port);
  return c.Get(path);
}

json CliJson(Cluster& c, int i, const std::string& command) {
  CliResult r = c.Cli(i, {command, "--json"});
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

// The program's path, or empty.
std::string Which(const std::vector<std::string>& names) {
  for (const auto& n : names) {
    CliResult r = RunProgram({"/bin/sh", "-c", "command -v " + n});
    if (r.exit_code == 0 && !r.out.empty()) return r.out.substr(0, r.out.find('\n'));
  }
  return {};
}

// Skips the whole test program (ctest SKIP_RETURN_CODE 77).
[[noreturn]] void Skip(const std::string& why) {
  std::printf("skipped: %s\n", why.c_str());
  std::fflush(stdout);
  std::_Exit(77);
}

std::string Value(const std::string& metrics, const std::string& sample) {
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(sample + " ")) return line.substr(sample.size() + 1);
  }
  return {};
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("http api: /api/status, /api/ring and /api/stats are the CLI's --json documents") {
  Cluster c(3, {}, Cluster::Bootstrap::kPeers, false, true);
  for (int i = 0; i < 3; ++i) REQUIRE(c.Cli(1, {"put", "k" + std::to_string(i), "v"}).exit_code == 0);

  HttpReply ring = HttpGet(c.HttpPort(2), "/api/ring");
  CHECK(ring.status == 200);
  CHECK(ring.headers["content-type"] == "application/json");
  CHECK(json::parse(ring.body) == CliJson(c, 2, "ring"));

  json status = json::parse(HttpGet(c.HttpPort(2), "/api/status").body);
  json cli_status = CliJson(c, 2, "status");
  CHECK(status["node"] == "n2");
  for (const auto& [key, value] : cli_status.items()) CHECK_MESSAGE(status.contains(key), key);
  CHECK(status["members"].size() == 3);
  CHECK(status["ring_size"] == cli_status["ring_size"]);

  json stats = json::parse(HttpGet(c.HttpPort(1), "/api/stats").body);
  json cli_stats = CliJson(c, 1, "stats");
  for (const auto& [key, value] : cli_stats.items()) CHECK_MESSAGE(stats.contains(key), key);
  CHECK(stats["puts"] == 3);
  json hints = json::parse(HttpGet(c.HttpPort(1), "/api/hints").body);
  CHECK(hints["node"] == "n1");
}

TEST_CASE("http api: metrics, the dashboard's files, errors, keep-alive") {
  Cluster c(3, {}, Cluster::Bootstrap::kPeers, false, true);
  for (int i = 0; i < 4; ++i) REQUIRE(c.Cli(1, {"put", "m" + std::to_string(i), "v"}).exit_code == 0);
  REQUIRE(c.Cli(1, {"get", "m0"}).exit_code == 0);
  REQUIRE(c.Cli(1, {"get", "nothing-here"}).exit_code == 1);

  HttpConnection conn(c.HttpPort(1));
  HttpReply m = conn.Get("/metrics");
  CHECK(m.status == 200);
  CHECK(m.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(Value(m.body, "ringkv_requests_total{op=\"put\",outcome=\"ok\"}") == "4");
  CHECK(Value(m.body, "ringkv_requests_total{op=\"get\",outcome=\"ok\"}") == "1");
  CHECK(Value(m.body, "ringkv_requests_total{op=\"get\",outcome=\"not_found\"}") == "1");
  CHECK(Value(m.body, "ringkv_request_duration_seconds_count{op=\"put\"}") == "4");
  CHECK(Value(m.body, "ringkv_member_up{member=\"n3\"}") == "1");
  CHECK(Value(m.body, "ringkv_connections_open{listener=\"http\"}") == "1");
  CHECK_FALSE(Value(m.body, "ringkv_store_memory_bytes").empty());

  // The same connection serves the dashboard (keep-alive).
  HttpReply page = conn.Get("/");
  CHECK(page.status == 200);
  CHECK(page.headers["content-type"] == "text/html; charset=utf-8");
  CHECK(page.body.find("<title>ringkv dashboard</title>") != std::string::npos);
  HttpReply js = conn.Get("/dashboard.js");
  CHECK(js.status == 200);
  CHECK(js.headers["content-type"] == "text/javascript; charset=utf-8");
  CHECK(js.body.find("data-partition") != std::string::npos);
  CHECK(conn.Get("/dashboard.css").status == 200);
  CHECK(conn.Get("/nope").status == 404);
  conn.SendRaw("DELETE /api/status HTTP/1.1\r\nHost: x\r\n\r\n");
  HttpReply del = conn.Read();
  CHECK(del.status == 405);
  CHECK(del.headers["allow"] == "GET, HEAD");
  CHECK_FALSE(conn.closed());

  // Garbage: 400 and the connection closes; the node serves on.
  HttpConnection bad(c.HttpPort(1));
  bad.SendRaw("NOT HTTP AT ALL\r\n\r\n");
  CHECK(bad.Read().status == 400);
  bad.Read();
  CHECK(bad.closed());
  HttpConnection big(c.HttpPort(1));
  big.SendRaw("GET / HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
  CHECK(big.Read().status == 431);
  CHECK(HttpGet(c.HttpPort(1), "/api/status").status == 200);
}

TEST_CASE("http metrics: /metrics passes promtool check metrics") {
  std::string promtool = Which({"promtool"});
  if (promtool.empty()) Skip("promtool not found (Debian package prometheus; scripts/install-deps installs it)");
  Cluster c(3, {}, Cluster::Bootstrap::kPeers, false, true);
  for (int i = 0; i < 5; ++i) REQUIRE(c.Cli(1, {"put", "p" + std::to_string(i), "v"}).exit_code == 0);
  REQUIRE(c.Cli(2, {"get", "p1"}).exit_code == 0);
  c.Kill(3);  // a member down, hints queued for it
  for (int i = 0; i < 5; ++i) REQUIRE(c.Cli(1, {"put", "q" + std::to_string(i), "v"}).exit_code == 0);
  for (int i = 1; i <= 2; ++i) {
    HttpReply m = HttpGet(c.HttpPort(i), "/metrics");
    REQUIRE(m.status == 200);
    CliResult r = RunProgram({promtool, "check", "metrics"}, m.body);
    INFO("promtool: ", r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.empty());
    CHECK(r.err.empty());
    MESSAGE("[figure] /metrics of n", i, ": ", m.body.size(), " bytes, ",
            Count(m.body, "\n") - Count(m.body, "\n#"), " samples; promtool check metrics: clean");
  }
}

TEST_CASE("http dashboard: headless chromium shows every member, every partition, a dead node in red") {
  std::string chromium = Which({"chromium", "chromium-browser", "google-chrome"});
  if (chromium.empty()) Skip("chromium not found (Debian package chromium; scripts/install-deps installs it)");
  Cluster c(3, {}, Cluster::Bootstrap::kPeers, false, true);
  for (int i = 0; i < 20; ++i) REQUIRE(c.Cli(1, {"put", "d" + std::to_string(i), "v"}).exit_code == 0);
  char tmpl[] = "/tmp/ringkv-chromium-XXXXXX";
  std::string profile = mkdtemp(tmpl);
  std::string url = "http://127.0.0.1:" + std::to_string(c.HttpPort(1)) + "/";
  auto run = [&](std::vector<std::string> extra) {
    // coreutils' timeout ends a browser that hangs (Spawn does not search PATH).
    std::vector<std::string> argv = {"/usr/bin/timeout", "120", chromium, "--headless", "--no-sandbox",
                                     "--disable-gpu", "--disable-quic", "--no-first-run",
                                     "--disable-background-networking", "--disable-component-update",
                                     "--disable-sync", "--disable-dev-shm-usage",
                                     "--user-data-dir=" + profile, "--virtual-time-budget=4000",
                                     "--window-size=1400,1050", "--hide-scrollbars"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    return RunProgram(argv);
  };
  auto t0 = std::chrono::steady_clock::now();
  CliResult dom = run({"--dump-dom"});
  INFO("chromium stderr: ", dom.err.substr(0, 2000));
  REQUIRE(dom.exit_code == 0);
  CHECK(Count(dom.out, "data-partition=\"") == 64);
  for (int i = 1; i <= 3; ++i) {
    CHECK(dom.out.find("data-member=\"n" + std::to_string(i) + "\" data-alive=\"true\"") != std::string::npos);
  }
  CHECK(dom.out.find("class=\"link ok\"") != std::string::npos);

  // Kill n3: once n1 sees it down, the page shows it red, and writes leave
  // hints for it.
  c.Kill(3);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (true) {
    json st = json::parse(HttpGet(c.HttpPort(1), "/api/status").body);
    bool down = false;
    for (const auto& m : st["members"]) down |= m["id"] == "n3" && m["alive"] == false;
    if (down) break;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (int i = 0; i < 10; ++i) REQUIRE(c.Cli(1, {"put", "e" + std::to_string(i), "v"}).exit_code == 0);
  dom = run({"--dump-dom"});
  REQUIRE(dom.exit_code == 0);
  CHECK(dom.out.find("data-member=\"n3\" data-alive=\"false\" class=\"down\"") != std::string::npos);
  CHECK(dom.out.find("data-hint-target=\"n3\"") != std::string::npos);
  CHECK(Count(dom.out, "owner-down") > 0);

  std::string shot = std::string(RINGKV_BUILD_DIR) + "/dashboard.png";
  std::filesystem::remove(shot);
  CliResult png = run({"--screenshot=" + shot});
  CHECK(png.exit_code == 0);
  CHECK(std::filesystem::exists(shot));
  CHECK(std::filesystem::file_size(shot) > 10000);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("[figure] dashboard in headless chromium: 64 partitions, 3 members, n3 red after kill; "
          "screenshot ", shot, " (", std::filesystem::file_size(shot), " bytes); ", s, " s");
  std::filesystem::remove_all(profile);
}

TEST_CASE("http security: with TLS and users the port speaks https and asks every request for a user") {
  std::string curl = Which({"curl"});
  if (curl.empty()) {
    MESSAGE("curl not installed (scripts/install-deps installs it): skipped");
    return;
  }
  ClusterSecurity sec;
  sec.tls = true;
  sec.users = {{"admin", "admin", "admin-pw"}, {"reader", "read", "reader-pw"}};
  Cluster c(3, {}, Cluster::Bootstrap::kPeers, false, sec, true);
  std::string url = "https://127.0.0.1:" + std::to_string(c.HttpPort(1));
  // Credentials go in a curl config file, not on the command line.
  auto get = [&](const std::string& path, const std::string& user_pw) {
    std::string cfg = c.CertsDir() + "/curl.cfg";
    std::ofstream(cfg) << (user_pw.empty() ? "" : "user = \"" + user_pw + "\"\n");
    return RunProgram({curl, "-sS", "--cacert", c.CaFile(), "-K", cfg, "-o", "/dev/stdout", "-w",
                       "\n%{http_code}", url + path});
  };
  auto code = [](const CliResult& r) { return r.out.substr(r.out.rfind('\n') + 1); };

  CliResult none = get("/metrics", "");
  CHECK(code(none) == "401");
  CliResult wrong = get("/metrics", "reader:nope");
  CHECK(code(wrong) == "401");
  CliResult reader = get("/metrics", "reader:reader-pw");
  CHECK(code(reader) == "200");
  CHECK(reader.out.find("ringkv_member_up{member=\"n3\"}") != std::string::npos);
  // The password is checked once, then remembered: many requests stay fast.
  for (int i = 0; i < 5; ++i) CHECK(code(get("/api/status", "admin:admin-pw")) == "200");
  // Plaintext HTTP to the TLS port: an answer that says so, and nothing else.
  HttpReply plain = HttpGet(c.HttpPort(1), "/metrics");
  CHECK(plain.status == 400);
  CHECK(plain.body.find("TLS") != std::string::npos);
  json stats = json::parse(c.Cli(1, {"stats", "--json"}).out);
  CHECK(stats["auth_failures"].get<int>() >= 1);
}
