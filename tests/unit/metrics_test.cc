// The Prometheus formatter (node/metrics.h) over nodes of the simulator, the
// histogram's cumulative counts, and the replica-delay testing knob.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "core/histogram.h"
#include "node/metrics.h"
#include "sim/sim.h"
#include "unit/replies.h"

using namespace ringkv;
using ringkv::sim::World;
using ringkv::test::AsReply;

namespace {

NodeConfig Base() {
  NodeConfig c;
  c.n = 3;
  c.r = 2;
  c.w = 2;
  c.timeout_ms = 500;
  return c;
}

// Every sample line "name{labels} value" as name{labels} -> value.
std::map<std::string, std::string> Samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.rfind(' ');
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("histogram: cumulative counts below a bound and the sum") {
  Histogram h;
  for (uint64_t v : {1, 5, 5, 100, 1000, 5000}) h.Record(v);
  CHECK(h.sum() == 6111);
  CHECK(h.CountAtMost(0) == 0);
  CHECK(h.CountAtMost(1) == 1);
  CHECK(h.CountAtMost(5) == 3);
  CHECK(h.CountAtMost(99) == 3);
  CHECK(h.CountAtMost(100) == 4);
  CHECK(h.CountAtMost(1000) == 5);
  CHECK(h.CountAtMost(4000) == 5);
  CHECK(h.CountAtMost(1u << 30) == 6);
  uint64_t last = 0;
  for (uint64_t b = 0; b < 10000; b += 7) {
    CHECK(h.CountAtMost(b) >= last);
    last = h.CountAtMost(b);
  }
}

TEST_CASE("prometheus text: label values are escaped, values formatted") {
  CHECK(PrometheusText::EscapeLabel("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(PrometheusText::FormatValue(3.0) == "3");
  CHECK(PrometheusText::FormatValue(0.25) == "0.25");
  CHECK(PrometheusText::FormatValue(1.0 / 0.0) == "+Inf");
  PrometheusText p;
  p.Family("x_total", "counter", "help with \\ and\nnewline");
  p.Sample("x_total", {{"peer", "we\"ird"}}, uint64_t{7});
  CHECK(p.text() ==
        "# HELP x_total help with \\\\ and\\nnewline\n# TYPE x_total counter\n"
        "x_total{peer=\"we\\\"ird\"} 7\n");
}

TEST_CASE("metrics: requests by op and outcome, latency histograms, hints per target, phi") {
  World w(7, 3, Base());
  w.RunFor(3000);  // gossip: every peer heard from
  PutRequest put;
  put.key = "k";
  put.value = "v";
  CHECK(AsReply(w.Call(1, put)).status.ok());
  CHECK(AsReply(w.Call(1, GetRequest{"k", {}})).status.ok());
  CHECK(AsReply(w.Call(1, GetRequest{"missing", {}})).status.IsNotFound());
  Quorum too_many;
  too_many.r = 9;
  CHECK(AsReply(w.Call(1, GetRequest{"k", too_many})).status.IsInvalidArgument());
  // A write while n3 is down leaves a hint for it on n1 or n2.
  w.node(3).Crash();
  w.RunFor(30000);
  put.key = "while-down";
  for (int i = 0; i < 5; ++i) {
    put.key = "while-down-" + std::to_string(i);
    CHECK(AsReply(w.Call(1, put)).status.ok());
  }

  MetricsInputs in;
  in.connections = {{"native", 10, 2}, {"http", 3, 1}};
  in.store = w.node(1).store().ApproximateSizes();
  std::string text = PrometheusMetrics(*w.node(1).node(), in);
  auto s = Samples(text);

  CHECK(s["ringkv_requests_total{op=\"get\",outcome=\"ok\"}"] == "1");
  CHECK(s["ringkv_requests_total{op=\"get\",outcome=\"not_found\"}"] == "1");
  CHECK(s["ringkv_requests_total{op=\"get\",outcome=\"invalid\"}"] == "1");
  CHECK(s["ringkv_requests_total{op=\"put\",outcome=\"ok\"}"] == "6");
  CHECK(s["ringkv_requests_total{op=\"delete\",outcome=\"ok\"}"] == "0");
  CHECK(s["ringkv_request_duration_seconds_count{op=\"get\"}"] == "3");
  CHECK(s["ringkv_request_duration_seconds_bucket{op=\"get\",le=\"+Inf\"}"] == "3");
  CHECK(s.contains("ringkv_request_duration_seconds_bucket{op=\"put\",le=\"0.001\"}"));
  CHECK(s["ringkv_read_siblings_count"] == "1");
  CHECK(s["ringkv_read_siblings_bucket{le=\"1\"}"] == "1");
  CHECK(s["ringkv_member_up{member=\"n3\"}"] == "0");
  CHECK(s["ringkv_member_up{member=\"n2\"}"] == "1");
  CHECK(s.contains("ringkv_gossip_phi{peer=\"n2\"}"));
  CHECK(s["ringkv_connections_open{listener=\"http\"}"] == "1");
  CHECK(s["ringkv_connections_accepted_total{listener=\"native\"}"] == "10");
  CHECK(std::stoull(s["ringkv_store_bytes{space=\"objects\"}"]) > 0);
  // Hints for n3 on whichever of n1, n2 stood in.
  uint64_t hints = 0;
  for (int i = 1; i <= 2; ++i) {
    auto si = Samples(PrometheusMetrics(*w.node(i).node(), {}));
    if (si.contains("ringkv_hints_queued{target=\"n3\"}")) hints += std::stoull(si["ringkv_hints_queued{target=\"n3\"}"]);
  }
  CHECK(hints >= 5);

  // The format: every sample's family was announced by HELP and TYPE lines
  // before it, once, and a family's samples are contiguous.
  std::set<std::string> announced, finished;
  std::string current;
  std::istringstream lines(text);
  std::string line;
  std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEInfNa]+$)");
  while (std::getline(lines, line)) {
    if (line.starts_with("# HELP ")) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK_FALSE(announced.contains(name));
      announced.insert(name);
      if (!current.empty()) finished.insert(current);
      current = name;
      continue;
    }
    if (line.starts_with("# TYPE ")) continue;
    CAPTURE(line);
    CHECK(std::regex_match(line, sample));
    std::string name = line.substr(0, line.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!announced.contains(name) && name.ends_with(suffix)) name.resize(name.size() - strlen(suffix));
    }
    CHECK(name == current);
  }
  CHECK(announced.size() > 25);
}

TEST_CASE("inject-replica-delay: replicas apply incoming writes late, the coordinator at once") {
  NodeConfig c = Base();
  c.inject_replica_delay_min_ms = 300;
  c.inject_replica_delay_max_ms = 300;
  World w(11, 3, c);
  w.RunFor(2000);
  PutRequest put;
  put.key = "late";
  put.value = "v";
  put.quorum.w = 1;
  Reply r = AsReply(w.Call(1, put, 100));  // w=1: the coordinator's own copy answers
  REQUIRE(r.status.ok());
  int holding = 0;
  for (int i = 1; i <= 3; ++i) {
    DvvSet o;
    holding += w.node(i).store().Get("late", &o).ok();
  }
  CHECK(holding == 1);  // only the coordinating replica, so far
  w.RunFor(400);
  holding = 0;
  for (int i = 1; i <= 3; ++i) {
    DvvSet o;
    holding += w.node(i).store().Get("late", &o).ok();
  }
  CHECK(holding == 3);
}
