// ringkv-node: one ringkv node process.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <chrono>
#include <functional>
#include <map>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "node/membership.h"
#include "node/node.h"
#include "server/http_api.h"
#include "server/runtime.h"
#include "store/leveldb_store.h"

namespace {

using namespace ringkv;

// Checks that the data dir belongs to this node and cluster (or claims a new
// one for it), so a node is never started on another node's data.
Status CheckIdentity(Store* store, const NodeConfig& config, uint32_t ring_size) {
  struct Field {
    const char* name;
    std::string value;
  };
  Field fields[] = {{"node_id", config.id},
                    {"cluster", config.cluster},
                    {"ring_size", std::to_string(ring_size)}};
  for (const auto& f : fields) {
    std::string stored;
    Status s = store->GetMeta(f.name, &stored);
    if (s.IsNotFound()) {
      s = store->PutMeta(f.name, f.value);
      if (!s.ok()) return s;
    } else if (!s.ok()) {
      return s;
    } else if (stored != f.value) {
      return Status::InvalidArgument(fmt::format(
          "the data dir was created with {} '{}', not '{}'; use the same value or a new data dir",
          f.name, stored, f.value));
    }
  }
  return Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "ringkv-node: one node of a ringkv cluster, a Dynamo-style key-value store.\n"
      "Clients and peers talk to it over TCP (length-prefixed FlatBuffers frames)."};
  NodeConfig config;
  std::string listen = "127.0.0.1:7100";
  std::string data_dir;
  std::vector<std::string> peers;
  uint32_t ring_size = 64;
  bool sync = false;
  size_t object_cache_mb = 64;
  std::string mode = "sloppy";
  app.add_option("--id", config.id,
                 "This node's id, unique in the cluster (e.g. n1): 1-64 letters, digits, '.', '_' or '-'")
      ->required()
      ->check(CLI::Validator(
          [](std::string& id) -> std::string {
            bool ok = !id.empty() && id.size() <= 64 &&
                      std::all_of(id.begin(), id.end(), [](unsigned char c) {
                        return std::isalnum(c) || c == '.' || c == '_' || c == '-';
                      });
            // '~' is reserved: fallback writes mint dots as "<id>~<n>".
            return ok ? std::string() : "node id '" + id + "' must be 1-64 letters, digits, '.', '_' or '-'";
          },
          "ID"));
  app.add_option("--listen", listen, "Address to listen on for clients and peers")
      ->capture_default_str();
  app.add_option("--data-dir", data_dir, "Directory of this node's LevelDB store")->required();
  app.add_option("--cluster", config.cluster, "Cluster name; peers of another cluster are refused")
      ->capture_default_str();
  std::string advertise_flag;
  std::vector<std::string> join;
  app.add_option("--advertise", advertise_flag,
                 "HOST:PORT peers and clients use to reach this node (default: --listen; required "
                 "when listening on 0.0.0.0)");
  app.add_option("--join", join,
                 "Join an existing cluster through these seeds, HOST:PORT[,HOST:PORT]: the node "
                 "pulls the partitions it will own, then goes up")
      ->delimiter(',');
  app.add_option("--peers", peers,
                 "Start with a fixed set of members, ID@HOST:PORT,... (may include this node), all "
                 "up at once. Without --peers and --join the node founds a new cluster.")
      ->delimiter(',');
  app.add_option("--aae-interval-ms", config.aae.interval_ms,
                 "Anti-entropy: one Merkle-tree exchange (one partition, one peer) per interval")
      ->capture_default_str()
      ->check(CLI::Range(10, 86400000));
  app.add_option("--aae-max-keys-per-sec", config.aae.max_keys_per_sec,
                 "Anti-entropy: most keys repaired per second")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  bool no_aae = false;
  app.add_flag("--no-aae", no_aae, "Turn anti-entropy exchanges off (trees are still kept)");
  uint64_t tombstone_grace_s = config.tombstones.grace_ms / 1000;
  app.add_option("--tombstone-grace", tombstone_grace_s,
                 "Seconds a deleted key's tombstone is kept; after that it is removed (reaped) "
                 "once every member is up and confirms it holds nothing newer. 0: never reap, "
                 "keep tombstones forever")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{0}, uint64_t{10} * 365 * 86400));
  app.add_option("--tombstone-reap-per-sec", config.tombstones.max_keys_per_sec,
                 "Most deleted keys checked for reaping per second")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--gossip-interval-ms", config.gossip_interval_ms, "One gossip round")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--phi-threshold", config.phi_threshold,
                 "Failure detector: suspicion level (phi accrual) at which a peer is marked down")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 50.0));
  app.add_option("--ring-size", ring_size, "Partitions on the ring (power of two, fixed at creation)")
      ->capture_default_str();
  app.add_option("--n", config.n, "Default replicas per key")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--r", config.r, "Default read quorum")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--w", config.w, "Default write quorum")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--timeout-ms", config.timeout_ms, "Default request timeout")
      ->capture_default_str()
      ->check(CLI::Range(1, 600000));
  app.add_option("--mode", mode,
                 "Default quorum mode: sloppy (live fallbacks stand in for down primaries, with "
                 "hints) or strict (primaries only)")
      ->check(CLI::IsMember({"strict", "sloppy"}))
      ->capture_default_str();
  app.add_option("--max-value-bytes", config.max_value_bytes, "Largest value accepted")
      ->capture_default_str();
  std::string resp_listen;
  bool resp_lww = false;
  app.add_option("--resp-listen", resp_listen,
                 "Also serve Redis-protocol (RESP2) clients on HOST:PORT (e.g. "
                 "127.0.0.1:6379): GET, SET, DEL, MGET, EXISTS, PING, INFO, ... through the "
                 "same coordinator, with the node's n/r/w (see README, \"Redis protocol\"). "
                 "Default: off");
  app.add_flag("--resp-lww", resp_lww,
               "Redis-protocol connections start in last-writer-wins mode (as after CLIENT SETNAME "
               "lww): GET answers the newest sibling, SET keeps only the newest. For tools that "
               "cannot send CLIENT SETNAME, such as redis-benchmark");
  std::string http_listen;
  app.add_option("--http-listen", http_listen,
                 "Also serve HTTP on HOST:PORT (e.g. 127.0.0.1:8080): Prometheus metrics at "
                 "/metrics, the JSON of status, ring, stats, hints at /api/..., and a live "
                 "dashboard at / (see README, \"Metrics and the dashboard\"). Default: off");
  std::string replica_delay;
  app.add_option("--inject-replica-delay-ms", replica_delay,
                 "TESTING ONLY, never in production: apply (and acknowledge) every incoming "
                 "replica write after MS milliseconds, or after a delay drawn from MIN-MAX, as "
                 "if the network to this node were slow; for `ringkv experiment staleness`. "
                 "Default: 0 (off)");
  app.add_flag("--sync", sync, "fsync every write before acknowledging it (default: rely on replication)");
  app.add_option("--object-cache-mb", object_cache_mb,
                 "Memory for decoded objects of recently used keys, in MiB, on top of LevelDB's "
                 "block cache (every put reads its key first, so hot keys are read from here). "
                 "0: off. Default: 64")
      ->check(CLI::Range(0, 1 << 20));
  CLI11_PARSE(app, argc, argv);

  if (config.r > config.n || config.w > config.n) {
    fmt::print(stderr, "ringkv-node: --r and --w must not exceed --n (n={} r={} w={})\n", config.n,
               config.r, config.w);
    return 2;
  }
  config.mode = mode == "sloppy" ? Mode::kSloppy : Mode::kStrict;
  config.listen_address = listen;

  RuntimeOptions ropts;
  Status s = ParseHostPort(listen, &ropts.listen_host, &ropts.listen_port);
  if (!s.ok()) {
    fmt::print(stderr, "ringkv-node: --listen: {}\n", s.message());
    return 2;
  }

  if (!resp_listen.empty()) {
    s = ParseHostPort(resp_listen, &ropts.resp_host, &ropts.resp_port);
    if (!s.ok()) {
      fmt::print(stderr, "ringkv-node: --resp-listen: {}\n", s.message());
      return 2;
    }
    in_addr a4;
    in6_addr a6;
    if (inet_pton(AF_INET, ropts.resp_host.c_str(), &a4) != 1 &&
        inet_pton(AF_INET6, ropts.resp_host.c_str(), &a6) != 1) {
      fmt::print(stderr, "ringkv-node: --resp-listen: '{}' is not an IP address (e.g. 0.0.0.0)\n",
                 ropts.resp_host);
      return 2;
    }
  } else if (resp_lww) {
    fmt::print(stderr, "ringkv-node: --resp-lww needs --resp-listen\n");
    return 2;
  }
  ropts.resp.lww = resp_lww;
  if (!http_listen.empty()) {
    s = ParseHostPort(http_listen, &ropts.http_host, &ropts.http_port);
    if (!s.ok()) {
      fmt::print(stderr, "ringkv-node: --http-listen: {}\n", s.message());
      return 2;
    }
    in_addr a4;
    in6_addr a6;
    if (inet_pton(AF_INET, ropts.http_host.c_str(), &a4) != 1 &&
        inet_pton(AF_INET6, ropts.http_host.c_str(), &a6) != 1) {
      fmt::print(stderr, "ringkv-node: --http-listen: '{}' is not an IP address (e.g. 0.0.0.0)\n",
                 ropts.http_host);
      return 2;
    }
  }
  // The HTTP port has no users of its own: ropts.http.authorize stays empty
  // (every request may read) until the node has an ACL; with one, it must
  // accept a user that authenticates and has the read role.
  if (!replica_delay.empty()) {
    auto dash = replica_delay.find('-');
    std::string lo = replica_delay.substr(0, dash);
    std::string hi = dash == std::string::npos ? lo : replica_delay.substr(dash + 1);
    auto parse = [](const std::string& t, uint64_t* v) {
      char* end = nullptr;
      if (t.empty() || !std::isdigit(static_cast<unsigned char>(t[0]))) return false;
      *v = std::strtoull(t.c_str(), &end, 10);
      return *end == '\0' && *v <= 600000;
    };
    if (!parse(lo, &config.inject_replica_delay_min_ms) ||
        !parse(hi, &config.inject_replica_delay_max_ms) ||
        config.inject_replica_delay_min_ms > config.inject_replica_delay_max_ms) {
      fmt::print(stderr,
                 "ringkv-node: --inject-replica-delay-ms: '{}' is not MS or MIN-MAX (0..600000, "
                 "MIN <= MAX)\n", replica_delay);
      return 2;
    }
  }
  // Arguments up to the value limit are read; longer ones are skipped
  // unbuffered and answered with an error.
  ropts.resp.limits.max_bulk_bytes = std::max(config.max_value_bytes, kMaxKeyBytes);

  std::string advertise = advertise_flag.empty() ? listen : advertise_flag;
  {
    std::string host;
    uint16_t port;
    s = ParseHostPort(advertise, &host, &port);
    if (!s.ok()) {
      fmt::print(stderr, "ringkv-node: --advertise: {}\n", s.message());
      return 2;
    }
    if (host == "0.0.0.0" || host == "::") {
      fmt::print(stderr,
                 "ringkv-node: --listen {} is not an address peers can reach; give "
                 "--advertise HOST:PORT\n", listen);
      return 2;
    }
  }
  config.listen_address = advertise;
  for (const auto& p : peers) {
    auto at = p.find('@');
    if (at == std::string::npos || at == 0) {
      fmt::print(stderr, "ringkv-node: --peers: '{}' is not ID@HOST:PORT\n", p);
      return 2;
    }
    std::string id = p.substr(0, at), addr = p.substr(at + 1), host;
    uint16_t port;
    s = ParseHostPort(addr, &host, &port);
    if (!s.ok()) {
      fmt::print(stderr, "ringkv-node: --peers: {}\n", s.message());
      return 2;
    }
    config.peers[id] = id == config.id ? advertise : addr;
  }
  if (!config.peers.empty()) config.peers[config.id] = advertise;
  for (const auto& j : join) {
    std::string host;
    uint16_t port;
    s = ParseHostPort(j, &host, &port);
    if (!s.ok()) {
      fmt::print(stderr, "ringkv-node: --join: {}\n", s.message());
      return 2;
    }
    if (j != advertise) config.seeds.push_back(j);
  }
  if (!config.peers.empty() && !config.seeds.empty()) {
    fmt::print(stderr, "ringkv-node: give --peers (a fixed initial membership) or --join (seeds), not both\n");
    return 2;
  }
  {
    auto ring = Ring::Build(ring_size, config.n, {config.id});
    if (!ring.ok()) {
      fmt::print(stderr, "ringkv-node: --ring-size: {}\n", ring.status().message());
      return 2;
    }
  }
  config.ring_size = ring_size;
  config.aae.enabled = !no_aae;
  config.tombstones.grace_ms = tombstone_grace_s * 1000;
  // Big rings get smaller trees so every owned partition's tree fits in memory.
  if (ring_size > 128) config.aae.tree.depth = 2;
  config.random_seed = std::hash<std::string>{}(config.id) ^
                       static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());

  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    fmt::print(stderr, "ringkv-node: cannot create data dir {}: {}\n", data_dir, ec.message());
    return 1;
  }
  LevelDbOptions lopts;
  lopts.sync = sync;
  lopts.object_cache_bytes = object_cache_mb << 20;
  auto store = OpenLevelDbStore(data_dir, lopts);
  if (!store.ok()) {
    fmt::print(stderr, "ringkv-node: {}\n", store.status().message());
    return 1;
  }
  s = CheckIdentity(store->get(), config, ring_size);
  if (!s.ok()) {
    fmt::print(stderr, "ringkv-node: {}: {}\n", data_dir, s.message());
    return 1;
  }

  {
    Runtime runtime(ropts);
    Node* node_ptr = nullptr;
    runtime.OnReachability([&](const NodeId& id, bool up) {
      if (node_ptr != nullptr) node_ptr->OnReachability(id, up);
    });
    s = runtime.Listen();
    if (!s.ok()) {
      fmt::print(stderr, "ringkv-node: {}\n", s.message());
      return 1;
    }
    // The store buffers each loop turn's writes and commits them here, before
    // any reply is sent. If that fails the node cannot tell which of the
    // writes it applied are stored, so it stops rather than acknowledge them.
    runtime.BeforeWrites([&store, &config] {
      Status c = (*store)->Commit();
      if (c.ok()) return;
      fmt::print(stderr, "ringkv-node {}: fatal: cannot write to the store: {}; stopping so that no "
                         "write it could not store is acknowledged\n", config.id, c.ToString());
      std::_Exit(1);
    });
    Node node(config, store->get(), &runtime, &runtime);
    node_ptr = &node;
    runtime.SetNode(&node);
    runtime.SetAddressResolver([&node](const NodeId& id) { return node.AddressOf(id); });
    node.SetConnectionsReport([&runtime] { return runtime.ConnectionsJson(); });
    HttpApi http_api(&node, [&runtime, &store] {
      MetricsInputs in;
      in.connections = runtime.ConnectionCounts();
      in.store = (*store)->ApproximateSizes();
      return in;
    });
    runtime.SetHttpHandler([&http_api](const HttpRequest& r) { return http_api.Handle(r); });
    node.OnExit([&] {
      fmt::print(stderr, "ringkv-node {}: left the cluster; exiting\n", config.id);
      runtime.Stop();
    });
    s = node.Start();
    if (!s.ok()) {
      fmt::print(stderr, "ringkv-node: {}\n", s.ToString());
      return 1;
    }
    fmt::print(stderr,
               "ringkv-node {} listening on {} (advertised {}; cluster '{}', {}, ring {}, n={} r={} "
               "w={}, {}, data {})\n",
               config.id, listen, advertise, config.cluster,
               !config.peers.empty() ? fmt::format("{} static members", config.peers.size())
               : config.seeds.empty() ? std::string("founding a new cluster")
                                      : fmt::format("joining through {} seed(s)", config.seeds.size()),
               ring_size, config.n, config.r, config.w, fmt::format("gossip every {} ms", config.gossip_interval_ms), data_dir);
    if (ropts.resp_port != 0) {
      fmt::print(stderr, "ringkv-node {}: Redis protocol on {}{}\n", config.id, resp_listen,
                 resp_lww ? " (connections start in lww mode)" : "");
    }
    if (ropts.http_port != 0) {
      fmt::print(stderr, "ringkv-node {}: HTTP on {} (dashboard /, metrics /metrics)\n", config.id,
                 http_listen);
    }
    if (config.inject_replica_delay_max_ms > 0) {
      fmt::print(stderr,
                 "ringkv-node {}: WARNING: testing knob on: incoming replica writes are applied "
                 "{}-{} ms late (--inject-replica-delay-ms); never use this in production\n",
                 config.id, config.inject_replica_delay_min_ms, config.inject_replica_delay_max_ms);
    }
    runtime.Run();
    runtime.SetNode(nullptr);
    node_ptr = nullptr;
    fmt::print(stderr, "ringkv-node {}: shutting down\n", config.id);
  }
  store->reset();  // closes LevelDB, flushing its log
  return 0;
}
