// status, ring, stats, preflist, hints, admin: what a node tells about
// itself and the cluster, and the membership and maintenance operations.
#include <fmt/format.h>

#include "client/cli/cli.h"
#include "core/bucket_key.h"

namespace ringkv::cli {

namespace {

void PrintStatus(const json& j) {
  fmt::print("node      {} ({})\n", Field(j, "node"), Field(j, "address"));
  fmt::print("cluster   {}\n", Field(j, "cluster"));
  fmt::print("version   {}, up {} s\n", Field(j, "version"), Field(j, "uptime_s"));
  fmt::print("ring      {} partitions\n", Field(j, "ring_size"));
  if (j.contains("defaults")) {
    const json& d = j["defaults"];
    fmt::print("defaults  n={} r={} w={} timeout={} ms mode={}\n", Field(d, "n"), Field(d, "r"),
               Field(d, "w"), Field(d, "timeout_ms"), Field(d, "mode"));
  }
  fmt::print("objects   {}\n", Field(j, "objects"));
  fmt::print("pending   {} requests\n", Field(j, "pending_requests"));
  if (j.contains("state")) fmt::print("state     {}\n", Field(j, "state"));
  if (j.contains("handoff") && j["handoff"].is_object()) {
    const json& h = j["handoff"];
    size_t pending = h.contains("pending") && h["pending"].is_array() ? h["pending"].size() : 0;
    fmt::print("handoff   {} partitions held, {} pending, {} received ({} objects, {} bytes in), "
               "{} objects served, {} partitions dropped\n",
               Field(h, "partitions_held"), pending, Field(h, "partitions_received"),
               Field(h, "objects_in"), Field(h, "bytes_in"), Field(h, "objects_served"),
               Field(h, "dropped_partitions"));
  }
  if (j.contains("members") && j["members"].is_array()) {
    fmt::print("\n");
    Table members({"ID", "ADDRESS", "STATE", "ALIVE", "PHI", "INCARNATION", "OWNS", "HELD"});
    for (const auto& m : j["members"]) {
      std::string phi = m.contains("phi") && m["phi"].is_number() && m["phi"].get<double>() >= 0
                            ? fmt::format("{:.2f}", m["phi"].get<double>())
                            : "-";
      members.Add({Field(m, "id"), Field(m, "address"), Field(m, "state"), Field(m, "alive"), phi,
                   Field(m, "incarnation"), Field(m, "owns"), Field(m, "partitions_held")});
    }
    members.Print();
  }
}

void PrintRing(const json& j) {
  fmt::print("ring: {} partitions, n_val {}, {} members\n\n", Field(j, "ring_size"),
             Field(j, "n_val"), j.contains("members") ? j["members"].size() : 0);
  if (j.contains("nodes") && j["nodes"].is_array()) {
    Table nodes({"NODE", "FIRST OWNER OF", "REPLICAS", "% OF MEAN"});
    for (const auto& n : j["nodes"]) {
      std::string pct = n.contains("percent_of_mean") && n["percent_of_mean"].is_number()
                            ? fmt::format("{:.1f}%", n["percent_of_mean"].get<double>())
                            : "-";
      nodes.Add({Field(n, "id"), Field(n, "first_owner_of"), Field(n, "replicas"), pct});
    }
    nodes.Print();
  }
  if (j.contains("partitions") && j["partitions"].is_array()) {
    fmt::print("\n");
    Table parts({"PARTITION", "START", "PRIMARIES"});
    for (const auto& p : j["partitions"]) {
      parts.Add({Field(p, "partition"), Field(p, "start"),
                 p.contains("primaries") ? JoinIds(p["primaries"]) : "-"});
    }
    parts.Print();
  }
}

void PrintStats(const json& j) {
  fmt::print("node {}\n\n", Field(j, "node"));
  // Counters in a stable, meaningful order; fields a newer node adds follow.
  static const char* kOrder[] = {"gets",          "puts",
                                 "deletes",       "forwarded_puts",
                                 "get_not_found", "read_quorum_failures",
                                 "write_quorum_failures", "invalid_requests",
                                 "read_repairs",  "siblings_seen",
                                 "max_siblings",  "replica_reads",
                                 "replica_writes", "wrong_cluster_refused",
                                 "pending_requests", "objects"};
  std::vector<std::string> names(std::begin(kOrder), std::end(kOrder));
  for (const auto& [name, v] : j.items()) {
    if (v.is_number() && std::find(names.begin(), names.end(), name) == names.end()) {
      names.push_back(name);
    }
  }
  Table counters({"COUNTER", "VALUE"});
  for (const auto& name : names) {
    if (j.contains(name) && j[name].is_number()) counters.Add({name, Field(j, name.c_str())});
  }
  counters.Print();
  Table latency({"LATENCY", "COUNT", "P50 MS", "P90 MS", "P99 MS", "P99.9 MS", "MAX MS"});
  bool any = false;
  for (const auto& [name, v] : j.items()) {
    if (!v.is_object() || !v.contains("count")) continue;
    std::string op = name;
    if (auto pos = op.rfind("_latency"); pos != std::string::npos) op = op.substr(0, pos);
    latency.Add({op, Field(v, "count"), Field(v, "p50_ms"), Field(v, "p90_ms"), Field(v, "p99_ms"),
                 Field(v, "p999_ms"), Field(v, "max_ms")});
    any = true;
  }
  if (any) {
    fmt::print("\n");
    latency.Print();
  }
}

void PrintPreflist(const json& j) {
  fmt::print("key        {}\n", Field(j, "key"));
  if (j.contains("bucket") && Field(j, "bucket") != kDefaultBucket) {
    fmt::print("bucket     {}\n", Field(j, "bucket"));
  }
  fmt::print("hash       {}\n", Field(j, "hash"));
  fmt::print("partition  {}\n\n", Field(j, "partition"));
  Table t({"ROLE", "NODE", "ALIVE"});
  for (const char* role : {"primaries", "fallbacks"}) {
    if (!j.contains(role) || !j[role].is_array()) continue;
    for (const auto& e : j[role]) {
      t.Add({role == std::string("primaries") ? "primary" : "fallback", Field(e, "id"),
             Field(e, "alive")});
    }
  }
  t.Print();
}

void PrintHints(const json& j) {
  fmt::print("node {}: {} hints queued, {} stored since start, {} replayed, {} failed sends\n",
             Field(j, "node"), Field(j, "queued"), Field(j, "stored"), Field(j, "replayed"),
             Field(j, "failed"));
  if (!j.contains("targets") || !j["targets"].is_object() || j["targets"].empty()) return;
  fmt::print("\n");
  Table t({"FOR NODE", "QUEUED", "OLDEST AGE S", "REPLAYED", "FAILED", "IN FLIGHT"});
  for (const auto& [target, v] : j["targets"].items()) {
    std::string age = v.contains("oldest_age_s") && v["oldest_age_s"].is_number()
                          ? fmt::format("{:.1f}", v["oldest_age_s"].get<double>())
                          : "-";
    t.Add({target, Field(v, "queued"), age, Field(v, "replayed"), Field(v, "failed"),
           Field(v, "in_flight")});
  }
  t.Print();
}

// `admin leave [NODE]`: finds NODE's address through the node asked, then
// tells NODE itself to leave (a node hands off its own partitions).
int RunLeave(const GlobalOptions& g, const std::string& node) {
  auto client = Connect(g);
  if (!client.ok()) return Fail(g, client.status());
  std::unique_ptr<Client> target = std::move(client).value();
  if (!node.empty()) {
    auto doc = target->Info("status");
    if (!doc.ok()) return Fail(g, doc.status());
    json st = json::parse(*doc, nullptr, false);
    if (st.is_discarded()) return Fail(g, Status::Internal("status is not JSON"));
    if (st.value("node", "") != node) {
      std::string address;
      for (const auto& m : st["members"]) {
        if (m.value("id", "") == node) address = m.value("address", "");
      }
      if (address.empty()) {
        return Fail(g, Status::InvalidArgument(fmt::format("{} knows no member named {}", g.host, node)));
      }
      GlobalOptions there = g;
      there.host = address;
      auto c2 = Connect(there);
      if (!c2.ok()) return Fail(g, c2.status());
      target = std::move(c2).value();
    }
  }
  auto doc = target->Info("admin-leave");
  if (!doc.ok()) return Fail(g, doc.status());
  json st = json::parse(*doc, nullptr, false);
  if (g.json) {
    PrintJson(json{{"node", st.value("node", node)}, {"state", st.value("state", "leaving")}});
  } else {
    fmt::print("{} is leaving: it hands each of its partitions to the next owner, then goes left "
               "and exits (watch with `ringkv status`)\n",
               st.value("node", node));
  }
  return kExitOk;
}

int RunRemove(const GlobalOptions& g, const std::string& node) {
  auto client = Connect(g);
  if (!client.ok()) return Fail(g, client.status());
  auto doc = (*client)->Info("admin-remove", node);
  if (!doc.ok()) return Fail(g, doc.status());
  if (g.json) {
    PrintJson(json{{"node", node}, {"state", "removed"}});
  } else {
    fmt::print("{} is removed: the others take over its partitions and rebuild its replicas from "
               "the remaining copies\n", node);
  }
  return kExitOk;
}

void PrintAae(const json& j) {
  fmt::print("node {}: anti-entropy {}, every {} ms, at most {} keys/s\n", Field(j, "node"),
             j.value("enabled", false) ? "on" : "off", Field(j, "interval_ms"),
             Field(j, "max_keys_per_sec"));
  fmt::print("trees {} ({} built){}\n", Field(j, "trees"), Field(j, "trees_ready"),
             j.value("exchanging", false) ? ", an exchange is running" : "");
  fmt::print("exchanges {} ({} failed), segments differing {}, keys differing {}, keys repaired "
             "{} ({} sent, {} here), bytes {}\n",
             Field(j, "exchanges"), Field(j, "exchanges_failed"), Field(j, "segments_differing"),
             Field(j, "keys_differing"), Field(j, "keys_repaired"), Field(j, "repairs_sent"),
             Field(j, "repairs_local"), Field(j, "bytes"));
  if (!j.contains("partitions") || j["partitions"].empty()) return;
  fmt::print("\n");
  Table t({"PARTITION", "PEER", "SECONDS AGO", "DIFFERENCES", "REPAIRED", "BYTES", "OK"});
  for (const auto& p : j["partitions"]) {
    t.Add({Field(p, "partition"), Field(p, "peer"),
           p.contains("seconds_ago") ? fmt::format("{:.1f}", p["seconds_ago"].get<double>()) : "-",
           Field(p, "differences"), Field(p, "repaired"), Field(p, "bytes"), Field(p, "ok")});
  }
  t.Print();
}

void PrintReaper(const json& j) {
  fmt::print("node {}: tombstones are reaped {:g} s after the delete, at most {} keys/s{}\n",
             Field(j, "node"), j.value("grace_s", 0.0), Field(j, "max_keys_per_sec"),
             j.value("checking", false) ? "; a check is running" : "");
  fmt::print("\n");
  Table t({"COUNTER", "VALUE"});
  for (const auto& [name, v] : j.items()) {
    if (name == "node" || name == "grace_s" || name == "max_keys_per_sec" || name == "checking") continue;
    t.Add({name, Field(j, name.c_str())});
  }
  t.Print();
}

// This node's own copy of a key, as `get` prints it.
void PrintLocal(const json& j) {
  fmt::print("node {}: ", Field(j, "node"));
  if (j.value("found", false) == false) {
    fmt::print("no live value for {} (clock {}, {} tombstones)\n", Field(j, "key"),
               Field(j, "clock"), Field(j, "tombstones"));
    return;
  }
  fmt::print("{} sibling(s) for {} (clock {})\n", j["siblings"].size(), Field(j, "key"),
             Field(j, "clock"));
  for (const auto& s : j["siblings"]) {
    if (s.contains("state")) {  // a counter, set or map state
      fmt::print("  {}  {}\n", Field(s, "dot"), Field(s, "state"));
      continue;
    }
    fmt::print("  {}  {}{}\n", Field(s, "dot"), Field(s, "value"),
               s.contains("encoding") ? " (base64)" : "");
  }
}

}  // namespace

std::optional<json> FetchInfo(const GlobalOptions& g, const std::string& topic,
                              const std::string& arg, int* exit_code) {
  auto client = Connect(g);
  if (!client.ok()) {
    *exit_code = Fail(g, client.status());
    return std::nullopt;
  }
  auto doc = (*client)->Info(topic, arg);
  if (!doc.ok()) {
    *exit_code = Fail(g, doc.status());
    return std::nullopt;
  }
  json j = json::parse(*doc, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    *exit_code = Fail(g, Status::Internal(fmt::format("{} sent a {} document that is not JSON",
                                                      g.host, topic)));
    return std::nullopt;
  }
  return j;
}

int RunInfo(const GlobalOptions& g, const std::string& topic, const std::string& arg) {
  int exit_code = kExitOk;
  std::optional<json> fetched = FetchInfo(g, topic, arg, &exit_code);
  if (!fetched) return exit_code;
  json& j = *fetched;
  if (g.json) {
    PrintJson(j);
  } else if (topic == "status") {
    PrintStatus(j);
  } else if (topic == "ring") {
    PrintRing(j);
  } else if (topic == "stats") {
    PrintStats(j);
  } else if (topic == "hints") {
    PrintHints(j);
  } else if (topic.starts_with("aae-")) {
    PrintAae(j);
  } else if (topic == "reaper") {
    PrintReaper(j);
  } else if (topic == "local") {
    PrintLocal(j);
    if (j.value("found", false) == false) return kExitNotFound;
  } else {
    PrintPreflist(j);
  }
  return kExitOk;
}

namespace {

struct InfoOptions {
  std::string key;
  std::string bucket = std::string(kDefaultBucket);
  std::string admin_node;
};

}  // namespace

void AddInfoCommands(CLI::App* app, Cli* cli) {
  InfoOptions* o = cli->Keep<InfoOptions>();
  const GlobalOptions* g = &cli->global;
  // A subcommand that prints one info topic.
  auto topic = [&](CLI::App* cmd, std::string name, bool with_key) {
    cmd->callback([cli, g, o, name, with_key] {
      cli->run = [g, o, name, with_key] { return RunInfo(*g, name, with_key ? o->key : ""); };
    });
    cli->commands.push_back(cmd);
  };
  topic(app->add_subcommand("status", "The node: cluster, defaults, objects and members"), "status", false);
  topic(app->add_subcommand("ring", "Partition ownership: share per node, then every partition"), "ring", false);
  topic(app->add_subcommand("stats", "The node's counters and latency percentiles"), "stats", false);
  auto* preflist = app->add_subcommand("preflist", "Where a key lives: partition, hash, replicas");
  preflist->add_option("KEY", o->key, "The key")->required();
  preflist->add_option("-b,--bucket", o->bucket, "Bucket of the key")->capture_default_str();
  preflist->callback([cli, g, o] {
    cli->run = [g, o] {
      // The node places the internal key (core/bucket_key.h).
      auto key = InternalKey(o->bucket, o->key);
      if (!key.ok()) return Fail(*g, key.status());
      return RunInfo(*g, "preflist", *key);
    };
  });
  cli->commands.push_back(preflist);
  topic(app->add_subcommand(
            "hints", "Hinted handoff on the node: writes held for down nodes, per target, and replays"),
        "hints", false);

  auto* admin = app->add_subcommand(
      "admin",
      "Membership operations: leave, remove; anti-entropy (aae) and tombstone reaping (reaper) status");
  admin->require_subcommand(1);
  cli->commands.push_back(admin);
  auto* leave = admin->add_subcommand(
      "leave", "NODE (default: the node asked) hands its partitions to their next owners, then exits");
  leave->add_option("NODE", o->admin_node, "The node that leaves");
  leave->callback([cli, g, o] { cli->run = [g, o] { return RunLeave(*g, o->admin_node); }; });
  auto* remove = admin->add_subcommand(
      "remove", "Take a dead NODE out of the cluster; the others rebuild its replicas");
  remove->add_option("NODE", o->admin_node, "The node to remove (it must be down)")->required();
  remove->callback([cli, g, o] { cli->run = [g, o] { return RunRemove(*g, o->admin_node); }; });
  cli->commands.push_back(leave);
  cli->commands.push_back(remove);
  auto* aae = admin->add_subcommand("aae", "Anti-entropy on the node: status, rebuild, exchange");
  aae->require_subcommand(1);
  cli->commands.push_back(aae);
  topic(aae->add_subcommand("status", "Trees, exchanges, keys repaired, bytes; the last exchange per partition"),
        "aae-status", false);
  topic(aae->add_subcommand("rebuild", "Rebuild every Merkle tree from storage"), "aae-rebuild", false);
  topic(aae->add_subcommand("exchange", "Start an exchange now"), "aae-exchange", false);
  topic(admin->add_subcommand("reaper",
                              "Tombstone reaping on the node: passes, keys checked with the other "
                              "replicas, tombstones erased (counters since the node started)"),
        "reaper", false);
}

}  // namespace ringkv::cli
