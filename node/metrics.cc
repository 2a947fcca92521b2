#include "node/metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "node/node.h"

namespace ringkv {

// ---------------------------------------------------------------------------
// The text format

std::string PrometheusText::EscapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string PrometheusText::FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

void PrometheusText::Family(std::string_view name, std::string_view type, std::string_view help) {
  std::string escaped;
  for (char c : help) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escaped, name, type);
}

void PrometheusText::Line(std::string_view name, const Labels& labels, const std::string& value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += k;
      out_ += "=\"";
      out_ += EscapeLabel(v);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

void PrometheusText::Sample(std::string_view name, const Labels& labels, double value) {
  Line(name, labels, FormatValue(value));
}

void PrometheusText::Sample(std::string_view name, const Labels& labels, uint64_t value) {
  Line(name, labels, std::to_string(value));
}

void PrometheusText::HistogramSamples(std::string_view name, const Labels& labels,
                                      const Histogram& h, const std::vector<uint64_t>& bounds,
                                      double divisor) {
  std::string bucket = std::string(name) + "_bucket";
  for (uint64_t b : bounds) {
    Labels l = labels;
    l.emplace_back("le", FormatValue(static_cast<double>(b) / divisor));
    Sample(bucket, l, h.CountAtMost(b));
  }
  Labels inf = labels;
  inf.emplace_back("le", "+Inf");
  Sample(bucket, inf, h.count());
  Sample(std::string(name) + "_sum", labels, static_cast<double>(h.sum()) / divisor);
  Sample(std::string(name) + "_count", labels, h.count());
}

// ---------------------------------------------------------------------------
// The node's families

namespace {

// The outcome label of an answer's status code.
const char* OutcomeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "ok";
    case Status::Code::kNotFound: return "not_found";
    case Status::Code::kInvalidArgument: return "invalid";
    case Status::Code::kUnavailable: return "quorum_failed";
    case Status::Code::kTimeout: return "timeout";
    case Status::Code::kUnauthenticated: return "unauthenticated";
    case Status::Code::kPermissionDenied: return "permission_denied";
    case Status::Code::kConditionFailed: return "condition_failed";
    case Status::Code::kWrongType: return "wrong_type";
    case Status::Code::kTooManySiblings: return "too_many_siblings";
    default: return "error";  // corruption, I/O, internal, wrong cluster
  }
}

// Latency buckets: 100 us .. 10 s, in microseconds.
const std::vector<uint64_t>& LatencyBoundsUs() {
  static const std::vector<uint64_t> kBounds = {100,    250,    500,     1000,    2500,   5000,
                                                10000,  25000,  50000,   100000,  250000, 500000,
                                                1000000, 2500000, 5000000, 10000000};
  return kBounds;
}

uint64_t JsonCount(const nlohmann::json& j, const char* field) {
  if (!j.contains(field)) return 0;
  const auto& v = j.at(field);
  if (v.is_number_unsigned() || v.is_number_integer()) return v.get<uint64_t>();
  if (v.is_array() || v.is_object()) return v.size();
  return 0;
}

}  // namespace

std::string PrometheusMetrics(const Node& node, const MetricsInputs& in) {
  PrometheusText p;
  const NodeStats& s = node.stats();
  const NodeConfig& config = node.config();
  using Labels = PrometheusText::Labels;

  p.Family("ringkv_node_info", "gauge", "This node: its id and cluster (always 1)");
  p.Sample("ringkv_node_info", Labels{{"node", config.id}, {"cluster", config.cluster}}, uint64_t{1});
  p.Family("ringkv_uptime_seconds", "gauge",
           "Seconds since the node started (by its own clock: rates computed from two scrapes "
           "can divide by its difference)");
  p.Sample("ringkv_uptime_seconds", {}, static_cast<double>(node.uptime_us()) / 1e6);

  // Requests, by operation and outcome, and their latency.
  p.Family("ringkv_requests_total", "counter",
           "Client requests answered by this node as the coordinator the client asked, by "
           "operation and outcome");
  for (size_t op = 0; op < kRequestOps; ++op) {
    const char* op_name = RequestOpName(static_cast<RequestOp>(op));
    // Codes that share an outcome label are summed; every label is written,
    // zero or not, so rates start from the first scrape.
    std::vector<std::pair<std::string, uint64_t>> outcomes;
    for (size_t c = 0; c < RequestMetrics::kCodes; ++c) {
      std::string name = OutcomeName(static_cast<Status::Code>(c));
      auto it = std::find_if(outcomes.begin(), outcomes.end(),
                             [&](const auto& o) { return o.first == name; });
      if (it == outcomes.end()) {
        outcomes.emplace_back(name, s.requests.answered[op][c]);
      } else {
        it->second += s.requests.answered[op][c];
      }
    }
    for (const auto& [outcome, n] : outcomes) {
      p.Sample("ringkv_requests_total", Labels{{"op", op_name}, {"outcome", outcome}}, n);
    }
  }
  p.Family("ringkv_request_duration_seconds", "histogram",
           "Time from a client request's arrival to its answer, whatever the outcome");
  for (size_t op = 0; op < kRequestOps; ++op) {
    p.HistogramSamples("ringkv_request_duration_seconds",
                       Labels{{"op", RequestOpName(static_cast<RequestOp>(op))}},
                       s.requests.latency_us[op], LatencyBoundsUs(), 1e6);
  }
  p.Family("ringkv_read_siblings", "histogram",
           "Versions (live siblings) in the answer of each successful read");
  p.HistogramSamples("ringkv_read_siblings", {}, s.siblings_per_read, {1, 2, 3, 4, 5, 10, 20, 50},
                     1.0);
  p.Family("ringkv_read_repairs_total", "counter",
           "Read-repair writes sent to replicas whose copy was missing or older");
  p.Sample("ringkv_read_repairs_total", {}, s.read_repairs);
  p.Family("ringkv_forwarded_puts_total", "counter",
           "Writes this node forwarded to a replica of the key to coordinate");
  p.Sample("ringkv_forwarded_puts_total", {}, s.forwarded_puts);
  p.Family("ringkv_replica_operations_total", "counter",
           "Reads and writes this node served as a replica (for any coordinator, itself too)");
  p.Sample("ringkv_replica_operations_total", Labels{{"op", "read"}}, s.replica_reads);
  p.Sample("ringkv_replica_operations_total", Labels{{"op", "write"}}, s.replica_writes);
  p.Family("ringkv_pending_requests", "gauge", "Requests coordinated here and not finished");
  p.Sample("ringkv_pending_requests", {}, static_cast<uint64_t>(node.pending_requests()));
  p.Family("ringkv_objects", "gauge", "Objects (keys) in this node's store");
  p.Sample("ringkv_objects", {}, node.objects());

  // Hinted handoff, per target.
  auto targets = node.hints().Stats();
  p.Family("ringkv_hints_queued", "gauge",
           "Hints this node holds for a node that was down, by the node they are for");
  for (const auto& [target, t] : targets) p.Sample("ringkv_hints_queued", Labels{{"target", target}}, t.queued);
  p.Family("ringkv_hints_replayed_total", "counter",
           "Hints delivered to the node they were for (and deleted here), by that node");
  for (const auto& [target, t] : targets) {
    p.Sample("ringkv_hints_replayed_total", Labels{{"target", target}}, t.replayed);
  }
  p.Family("ringkv_hint_replay_failures_total", "counter",
           "Hint deliveries that did not reach their node, by that node");
  for (const auto& [target, t] : targets) {
    p.Sample("ringkv_hint_replay_failures_total", Labels{{"target", target}}, t.failed);
  }
  p.Family("ringkv_hints_stored_total", "counter", "Hints stored here since the node started");
  p.Sample("ringkv_hints_stored_total", {}, node.hints().stored());

  // Anti-entropy.
  const AntiEntropy::Stats& aae = node.anti_entropy().stats();
  p.Family("ringkv_aae_exchanges_total", "counter",
           "Merkle-tree exchanges with a co-replica, by result");
  p.Sample("ringkv_aae_exchanges_total", Labels{{"result", "ok"}}, aae.exchanges - std::min(aae.exchanges, aae.exchanges_failed));
  p.Sample("ringkv_aae_exchanges_total", Labels{{"result", "failed"}}, aae.exchanges_failed);
  p.Family("ringkv_aae_keys_repaired_total", "counter",
           "Keys anti-entropy found different and repaired (on either side)");
  p.Sample("ringkv_aae_keys_repaired_total", {}, aae.keys_repaired);
  p.Family("ringkv_aae_bytes_total", "counter", "Bytes of tree and digest messages, both ways");
  p.Sample("ringkv_aae_bytes_total", {}, aae.bytes);
  p.Family("ringkv_aae_trees", "gauge", "Merkle trees of the partitions this node owns, by state");
  uint64_t ready = node.anti_entropy().trees_ready();
  uint64_t trees = node.anti_entropy().trees();
  p.Sample("ringkv_aae_trees", Labels{{"state", "ready"}}, ready);
  p.Sample("ringkv_aae_trees", Labels{{"state", "building"}}, trees - std::min(trees, ready));

  // Ownership handoff (joins and leaves), from the same document as
  // `ringkv status` shows.
  nlohmann::json handoff = nlohmann::json::parse(node.handoff().Json(), nullptr, false);
  if (handoff.is_discarded()) handoff = nlohmann::json::object();
  p.Family("ringkv_handoff_partitions", "gauge",
           "Partitions this node holds completely, and those it still has to pull");
  p.Sample("ringkv_handoff_partitions", Labels{{"state", "held"}}, JsonCount(handoff, "partitions_held"));
  p.Sample("ringkv_handoff_partitions", Labels{{"state", "pending"}}, JsonCount(handoff, "pending"));
  p.Family("ringkv_handoff_partitions_received_total", "counter",
           "Partitions pulled completely from another node");
  p.Sample("ringkv_handoff_partitions_received_total", {}, JsonCount(handoff, "partitions_received"));
  p.Family("ringkv_handoff_objects_total", "counter",
           "Objects moved by ownership handoff: received here, served to others");
  p.Sample("ringkv_handoff_objects_total", Labels{{"direction", "in"}}, JsonCount(handoff, "objects_in"));
  p.Sample("ringkv_handoff_objects_total", Labels{{"direction", "out"}}, JsonCount(handoff, "objects_served"));
  p.Family("ringkv_handoff_partitions_dropped_total", "counter",
           "Partitions deleted here after their new owners held them");
  p.Sample("ringkv_handoff_partitions_dropped_total", {}, JsonCount(handoff, "dropped_partitions"));

  // Membership and failure detection.
  p.Family("ringkv_member_up", "gauge",
           "1 if this node believes the member alive (failure detector and connections), else 0");
  const auto& members = node.gossiper().members();
  for (const auto& [id, m] : members) {
    bool alive = id == config.id || node.membership().IsAlive(id);
    p.Sample("ringkv_member_up", Labels{{"member", id}}, uint64_t{alive ? 1u : 0u});
  }
  p.Family("ringkv_member_status", "gauge",
           "The membership status of each member (joining, up, leaving, left, removed): 1 for "
           "its current status");
  for (const auto& [id, m] : members) {
    p.Sample("ringkv_member_status", Labels{{"member", id}, {"status", MemberStatusName(m.status)}},
             uint64_t{1});
  }
  p.Family("ringkv_gossip_phi", "gauge",
           "Phi-accrual suspicion of each peer (a peer is down above the threshold); peers with "
           "no finite phi are left out");
  for (const auto& [id, m] : members) {
    if (id == config.id) continue;
    double phi = node.gossiper().Phi(id);
    if (std::isfinite(phi)) p.Sample("ringkv_gossip_phi", Labels{{"peer", id}}, phi);
  }
  p.Family("ringkv_gossip_phi_threshold", "gauge", "The phi at which a peer is marked down");
  p.Sample("ringkv_gossip_phi_threshold", {}, config.phi_threshold);
  p.Family("ringkv_gossip_rounds_total", "counter", "Gossip rounds run");
  p.Sample("ringkv_gossip_rounds_total", {}, node.gossiper().rounds());
  p.Family("ringkv_gossip_convictions_total", "counter",
           "Times the failure detector turned a member from alive to down");
  p.Sample("ringkv_gossip_convictions_total", {}, node.gossiper().convictions());

  // Connections.
  p.Family("ringkv_connections_open", "gauge", "Incoming connections open now, by listener");
  for (const auto& c : in.connections) p.Sample("ringkv_connections_open", Labels{{"listener", c.listener}}, c.open);
  p.Family("ringkv_connections_accepted_total", "counter", "Incoming connections accepted, by listener");
  for (const auto& c : in.connections) {
    p.Sample("ringkv_connections_accepted_total", Labels{{"listener", c.listener}}, c.accepted);
  }

  // Storage.
  p.Family("ringkv_store_bytes", "gauge",
           "Approximate bytes the store holds on disk, by key space (LevelDB table files; "
           "writes still in the memtable count once flushed)");
  p.Sample("ringkv_store_bytes", Labels{{"space", "objects"}}, in.store.object_bytes);
  p.Sample("ringkv_store_bytes", Labels{{"space", "hints"}}, in.store.hint_bytes);
  p.Family("ringkv_store_memory_bytes", "gauge",
           "Approximate memory of the store's memtables and block cache");
  p.Sample("ringkv_store_memory_bytes", {}, in.store.memory_bytes);
  Store::CacheStats cache = node.object_cache();
  p.Family("ringkv_object_cache_lookups_total", "counter", "Object cache lookups, by result");
  p.Sample("ringkv_object_cache_lookups_total", Labels{{"result", "hit"}}, cache.hits);
  p.Sample("ringkv_object_cache_lookups_total", Labels{{"result", "miss"}}, cache.misses);
  p.Family("ringkv_object_cache_bytes", "gauge", "Bytes of decoded objects in the object cache");
  p.Sample("ringkv_object_cache_bytes", {}, cache.bytes);

  p.Family("ringkv_tombstones_reaped_total", "counter",
           "Tombstones of deleted keys erased here after their grace period");
  p.Sample("ringkv_tombstones_reaped_total", {}, node.reaper().stats().erased);
  return p.Take();
}

}  // namespace ringkv
