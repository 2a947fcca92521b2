// ringkv-etcdbench: puts into etcd, in the shape `ringkv bench` drives ringkv.
//
// bench/compare --etcd uses it to set ringkv beside etcd at equal durability
// (both acknowledge a write once a majority of three has it on disk, fsynced).
// `--clients` HTTP/1.1 keep-alive connections, spread round-robin over
// `--endpoints`, each with one request in flight (a closed loop, as
// `ringkv bench --pipeline 1`), PUT the keys `key:` + 12 digits with
// `--value-size`-byte values through etcd's v3 JSON gateway
// (POST /v3/kv/put). One thread waits on all of them with epoll.
//
// The JSON gateway costs etcd more CPU per request than its native gRPC
// clients; with fsync on every commit, etcd's rate on a small machine is set
// by its disk and its Raft batching more than by that. docs/performance.md
// says how to read the rows.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/histogram.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::string> endpoints;
  int clients = 50;
  double duration_s = 10;
  uint64_t requests = 0;
  uint64_t keys = 100000;
  size_t value_size = 100;
  uint64_t seed = 1;
  bool json = false;
};

std::string Base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

struct Conn {
  int fd = -1;
  size_t endpoint = 0;
  std::string out;
  size_t sent = 0;
  std::string in;
  Clock::time_point start;
  bool busy = false;
};

// A connected, non-blocking TCP socket to host:port, or -1 (errno set).
int Dial(const std::string& endpoint, std::string* error) {
  size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos) {
    *error = fmt::format("endpoint '{}' is not HOST:PORT", endpoint);
    return -1;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string host = endpoint.substr(0, colon), port = endpoint.substr(colon + 1);
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    *error = fmt::format("cannot resolve {}: {}", endpoint, gai_strerror(rc));
    return -1;
  }
  int fd = socket(res->ai_family, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    *error = fmt::format("cannot connect to {}: {}", endpoint, std::strerror(errno));
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// Parses one complete HTTP response at the front of buf. Returns its length
// (0: incomplete) and sets status.
size_t ParseResponse(const std::string& buf, int* status) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  if (buf.compare(0, 9, "HTTP/1.1 ") != 0 && buf.compare(0, 9, "HTTP/1.0 ") != 0) {
    *status = -1;
    return end + 4;
  }
  *status = std::atoi(buf.c_str() + 9);
  size_t length = 0;
  for (size_t pos = buf.find("\r\n"); pos < end; pos = buf.find("\r\n", pos + 2)) {
    static constexpr std::string_view kLength = "content-length:";
    if (buf.size() >= pos + 2 + kLength.size() &&
        strncasecmp(buf.c_str() + pos + 2, kLength.data(), kLength.size()) == 0) {
      length = std::strtoull(buf.c_str() + pos + 2 + kLength.size(), nullptr, 10);
    }
  }
  if (buf.size() < end + 4 + length) return 0;
  return end + 4 + length;
}

int Run(const Options& o) {
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<uint64_t> pick(0, o.keys - 1);
  std::string value_b64 = Base64(std::string(o.value_size, 'x'));
  auto request = [&](const std::string& endpoint) {
    std::string body = fmt::format(R"({{"key":"{}","value":"{}"}})",
                                   Base64(fmt::format("key:{:012d}", pick(rng))), value_b64);
    return fmt::format(
        "POST /v3/kv/put HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n"
        "Content-Length: {}\r\n\r\n{}",
        endpoint, body.size(), body);
  };

  int ep = epoll_create1(0);
  std::vector<Conn> conns(static_cast<size_t>(o.clients));
  for (size_t i = 0; i < conns.size(); ++i) {
    std::string error;
    conns[i].endpoint = i % o.endpoints.size();
    conns[i].fd = Dial(o.endpoints[conns[i].endpoint], &error);
    if (conns[i].fd < 0) {
      fmt::print(stderr, "ringkv-etcdbench: {}\n", error);
      return 2;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }

  ringkv::Histogram latency;
  std::map<std::string, uint64_t> errors;
  uint64_t started = 0, done = 0;
  rusage ru0{};
  getrusage(RUSAGE_SELF, &ru0);
  const Clock::time_point t0 = Clock::now();
  const Clock::time_point deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(o.duration_s));
  auto more = [&] { return o.requests > 0 ? started < o.requests : Clock::now() < deadline; };
  auto send = [&](size_t i) {
    Conn& c = conns[i];
    c.out = request(o.endpoints[c.endpoint]);
    c.sent = 0;
    c.start = Clock::now();
    c.busy = true;
    ++started;
    while (c.sent < c.out.size()) {
      ssize_t n = write(c.fd, c.out.data() + c.sent, c.out.size() - c.sent);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;  // the small request fits the socket buffer; a reset shows on read
      c.sent += static_cast<size_t>(n);
    }
  };
  for (size_t i = 0; i < conns.size() && more(); ++i) send(i);

  size_t busy = started;
  Clock::time_point last_progress = t0;
  std::vector<epoll_event> events(conns.size());
  char buf[65536];
  while (busy > 0) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
    for (int k = 0; k < n; ++k) {
      size_t i = events[k].data.u64;
      Conn& c = conns[i];
      ssize_t got = read(c.fd, buf, sizeof buf);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0) {
        // Lost: count the request in flight and reconnect.
        ++errors["connection"];
        ++done;
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        close(c.fd);
        c.in.clear();
        c.busy = false;
        --busy;
        std::string error;
        c.fd = Dial(o.endpoints[c.endpoint], &error);
        if (c.fd < 0) continue;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
        if (more()) {
          send(i);
          ++busy;
        }
        continue;
      }
      c.in.append(buf, static_cast<size_t>(got));
      int status = 0;
      size_t used = ParseResponse(c.in, &status);
      if (used == 0) continue;
      c.in.erase(0, used);
      ++done;
      c.busy = false;
      --busy;
      if (status == 200) {
        latency.Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.start).count()));
      } else {
        ++errors[status < 0 ? "bad_response" : fmt::format("http_{}", status)];
      }
      if (more()) {
        send(i);
        ++busy;
      }
    }
    if (!o.json && Clock::now() - last_progress >= std::chrono::seconds(1)) {
      last_progress = Clock::now();
      fmt::print(stderr, "  {:.0f} s: {} puts\n",
                 std::chrono::duration<double>(last_progress - t0).count(), done);
    }
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  rusage ru1{};
  getrusage(RUSAGE_SELF, &ru1);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  double cpu = secs(ru1.ru_utime) - secs(ru0.ru_utime) + secs(ru1.ru_stime) - secs(ru0.ru_stime);
  for (Conn& c : conns) close(c.fd);
  close(ep);

  uint64_t failed = 0;
  for (const auto& [kind, count] : errors) failed += count;
  auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
  double rate = elapsed > 0 ? static_cast<double>(latency.count()) / elapsed : 0;
  if (o.json) {
    nlohmann::json j = {{"ops", latency.count()},
                        {"errors", failed},
                        {"errors_by_kind", errors},
                        {"elapsed_s", elapsed},
                        {"ops_per_s", rate},
                        {"client_cpu_s", cpu},
                        {"latency_ms",
                         {{"p50", ms(latency.Percentile(0.50))},
                          {"p90", ms(latency.Percentile(0.90))},
                          {"p99", ms(latency.Percentile(0.99))},
                          {"p999", ms(latency.Percentile(0.999))},
                          {"max", ms(latency.max())},
                          {"mean", latency.mean() / 1000.0}}}};
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("throughput  {:.0f} puts/s  ({} puts in {:.2f} s, {} failed)\n", rate, latency.count(), elapsed,
               failed);
    fmt::print("latency ms  p50 {:.3f}  p90 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  max {:.3f}\n",
               ms(latency.Percentile(0.50)), ms(latency.Percentile(0.90)), ms(latency.Percentile(0.99)),
               ms(latency.Percentile(0.999)), ms(latency.max()));
    for (const auto& [kind, count] : errors) fmt::print("errors      {}: {}\n", kind, count);
    fmt::print("client CPU  {:.2f} s\n", cpu);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string endpoints;
  CLI::App app{
      "ringkv-etcdbench: puts into an etcd cluster through its v3 JSON gateway, in the shape of\n"
      "`ringkv bench --ratio 0:1` (closed loop, one request in flight per client). Used by bench/compare --etcd."};
  app.add_option("--endpoints", endpoints, "etcd client URLs' HOST:PORT, H1,H2,... (clients spread over them)")
      ->required();
  app.add_option("--clients", o.clients, "Connections")->check(CLI::Range(1, 10000))->capture_default_str();
  auto* duration = app.add_option("--duration", o.duration_s, "Seconds to run")->check(CLI::PositiveNumber)
                       ->capture_default_str();
  app.add_option("--requests", o.requests, "Run this many puts instead of for --duration")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000000}))->excludes(duration);
  app.add_option("--keys", o.keys, "Key space: key:000000000000 ..")->check(CLI::Range(uint64_t{1}, uint64_t{1000000000000}))
      ->capture_default_str();
  app.add_option("--value-size", o.value_size, "Bytes per value")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the key choice")->capture_default_str();
  app.add_flag("--json", o.json, "One JSON document on stdout");
  CLI11_PARSE(app, argc, argv);
  for (size_t start = 0; start <= endpoints.size();) {
    size_t comma = endpoints.find(',', start);
    if (comma == std::string::npos) comma = endpoints.size();
    if (comma > start) o.endpoints.push_back(endpoints.substr(start, comma - start));
    start = comma + 1;
  }
  if (o.endpoints.empty()) {
    fmt::print(stderr, "ringkv-etcdbench: --endpoints names no endpoint\n");
    return 2;
  }
  return Run(o);
}
