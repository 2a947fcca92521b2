// ringkv-node: one ringkv node process.
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/stat.h>

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

#include "core/acl.h"
#include "node/membership.h"
#include "node/node.h"
#include "server/http_api.h"
#include "server/access.h"
#include "server/runtime.h"
#include "server/tls.h"
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

// Raises the open-file limit to fit --max-connections (and the store's and
// peers' descriptors); returns the connections it can take.
size_t FitConnections(size_t wanted) {
  constexpr size_t kReserve = 256;  // LevelDB files, peers, listeners
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return wanted;
  rlim_t need = static_cast<rlim_t>(wanted + kReserve);
  if (rl.rlim_cur < need) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : std::min(need, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return wanted;
  return rl.rlim_cur > kReserve + 16 ? static_cast<size_t>(rl.rlim_cur) - kReserve : 16;
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
  size_t write_buffer_mb = LevelDbOptions().write_buffer_bytes >> 20;
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
  app.add_option("--write-buffer-mb", write_buffer_mb,
                 "LevelDB's memtable, in MiB: writes gather here before a flush to disk. "
                 "Smaller costs the loop thread less per write (a shallower skiplist, fewer "
                 "cache misses) and flushes more often (more background compaction); see "
                 "docs/performance.md. Default: " + std::to_string(write_buffer_mb))
      ->check(CLI::Range(1, 1024));

  // Security (README "Security").
  std::string tls_cert, tls_key, tls_ca, acl_file;
  bool insecure = false;
  app.add_option("--tls-cert", tls_cert,
                 "This node's certificate (PEM), made with `ringkv certs node DIR --id ID --host "
                 "HOST`: with --tls-key and --tls-ca, every connection (peers, clients, Redis "
                 "protocol) is TLS, and peers must prove their node id with a certificate of the "
                 "same CA")
      ->check(CLI::ExistingFile)
      ->group("Security");
  app.add_option("--tls-key", tls_key, "The private key of --tls-cert (PEM; keep it mode 0600)")
      ->check(CLI::ExistingFile)
      ->group("Security");
  app.add_option("--tls-ca", tls_ca,
                 "The cluster CA's certificate (PEM, `ringkv certs ca DIR`): peers' and clients' "
                 "certificates must be signed by it")
      ->check(CLI::ExistingFile)
      ->group("Security");
  app.add_option("--acl", acl_file,
                 "Users and roles (read, write, admin), made with `ringkv acl add FILE NAME --role "
                 "ROLE`: every client must log in, and may do what its role allows. Reloaded on "
                 "SIGHUP (a bad file keeps the users loaded before). Needs TLS (or --insecure)")
      ->check(CLI::ExistingFile)
      ->group("Security");
  app.add_flag("--insecure", insecure,
               "Start even where it is unsafe: listening on an address other machines reach "
               "without TLS and --acl (protected mode refuses that), or --acl without TLS (peers "
               "could not be told from clients posing as them). Only on a network you trust")
      ->group("Security");

  // Limits: what one client, or all of them, may make the node hold.
  size_t client_output_limit_mb = 32, peer_output_limit_mb = 256, max_client_memory_mb = 128;
  size_t max_connections = 4096;
  app.add_option("--client-output-limit-mb", client_output_limit_mb,
                 "Replies a client has not read, in MiB, before the node disconnects it (one reply "
                 "larger than this still goes out)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20))
      ->group("Limits");
  app.add_option("--peer-output-limit-mb", peer_output_limit_mb,
                 "Messages queued for a peer that does not read them, in MiB, before the "
                 "connection is dropped (and remade)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20))
      ->group("Limits");
  app.add_option("--max-client-memory-mb", max_client_memory_mb,
                 "Input and output all client connections may hold in buffers together, in MiB; "
                 "past it the connection holding the most is disconnected (peers proven by "
                 "their TLS certificate are not counted)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20))
      ->group("Limits");
  app.add_option("--max-connections", max_connections,
                 "Incoming connections open at once; more are refused with an error (the node "
                 "raises its open-file limit to fit)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000))
      ->group("Limits");
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
  // The HTTP port has no users of its own: with --acl the runtime asks for
  // Basic credentials of a user of the ACL (every role may read).
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
  // A bulk string is at most a value (or key): a longer one is a protocol
  // error (Redis's proto-max-bulk-len), and a command's arguments together
  // at most a value, a key and 1 MiB.
  ropts.resp.limits.max_bulk_bytes = std::max(config.max_value_bytes, kMaxKeyBytes);
  ropts.resp.limits.max_bulk_header_bytes = ropts.resp.limits.max_bulk_bytes;
  ropts.resp.limits.max_command_bytes = ropts.resp.limits.max_bulk_bytes + kMaxKeyBytes + (1u << 20);
  ropts.node_id = config.id;
  ropts.max_value_bytes = config.max_value_bytes;
  ropts.client_output_limit = client_output_limit_mb << 20;
  ropts.peer_output_limit = peer_output_limit_mb << 20;
  ropts.max_client_memory = max_client_memory_mb << 20;
  ropts.max_connections = FitConnections(max_connections);
  if (ropts.max_connections < max_connections) {
    fmt::print(stderr,
               "ringkv-node: the open-file limit fits only {} connections; --max-connections {} "
               "lowered to that (raise it with ulimit -n)\n",
               ropts.max_connections, max_connections);
  }

  bool tls = !tls_cert.empty() || !tls_key.empty() || !tls_ca.empty();
  if (tls && (tls_cert.empty() || tls_key.empty() || tls_ca.empty())) {
    fmt::print(stderr,
               "ringkv-node: TLS needs all three of --tls-cert, --tls-key and --tls-ca (make them "
               "with `ringkv certs`)\n");
    return 2;
  }
  if (tls) {
    auto ctx = TlsContext::Load(tls_cert, tls_key, tls_ca);
    if (!ctx.ok()) {
      fmt::print(stderr, "ringkv-node: {}\n", ctx.status().message());
      return 2;
    }
    const PeerIdentity& me = (*ctx)->identity();
    if (me.kind != PeerKind::kNode || me.name != config.id) {
      fmt::print(stderr,
                 "ringkv-node: --tls-cert {} is a certificate for {}, not node {}; make one with "
                 "`ringkv certs node DIR --id {} --host HOST`\n",
                 tls_cert, DescribeIdentity(me), config.id, config.id);
      return 2;
    }
    struct stat st {};
    if (stat(tls_key.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      fmt::print(stderr,
                 "ringkv-node: warning: the private key {} can be read by other users (mode {:o}); "
                 "chmod 600 it\n",
                 tls_key, st.st_mode & 0777);
    }
    ropts.tls = std::move(ctx).value();
  }
  if (!acl_file.empty()) {
    auto acl = Acl::Load(acl_file);
    if (!acl.ok()) {
      fmt::print(stderr, "ringkv-node: --acl {}\n", acl.status().message());
      return 2;
    }
    if (acl->empty()) {
      fmt::print(stderr,
                 "ringkv-node: warning: --acl {} has no users: no client can log in (add one with "
                 "`ringkv acl add {} NAME --role admin`, then kill -HUP the node)\n",
                 acl_file, acl_file);
    }
    ropts.acl = std::make_shared<const Acl>(std::move(acl).value());
    if (!tls && !insecure) {
      fmt::print(stderr,
                 "ringkv-node: --acl needs TLS (--tls-cert, --tls-key, --tls-ca): without it a "
                 "client could pose as a peer node and bypass the users, and passwords would "
                 "cross the network in clear. Add TLS, or pass --insecure to run with users "
                 "anyway (on a network you trust).\n");
      return 2;
    }
    if (!tls) {
      fmt::print(stderr,
                 "ringkv-node: warning: --acl without TLS (--insecure): clients must log in, but "
                 "peers are not authenticated, so anyone who reaches the port can pose as a node\n");
    }
  }
  ropts.resp.auth_required = ropts.acl != nullptr;

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
  {
    // Protected mode: listening beyond this machine needs TLS and users.
    std::vector<Listener> listeners = {{"--listen", ropts.listen_host}};
    if (ropts.resp_port != 0) listeners.push_back({"--resp-listen", ropts.resp_host});
    if (ropts.http_port != 0) listeners.push_back({"--http-listen", ropts.http_host});
    s = CheckProtectedMode(listeners, ropts.tls != nullptr, ropts.acl != nullptr, insecure);
    if (!s.ok()) {
      fmt::print(stderr, "ringkv-node: {}\n", s.message());
      return 2;
    }
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
  lopts.write_buffer_bytes = write_buffer_mb << 20;
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
    node.SetStatsReport([&runtime] { return runtime.StatsJson(); });
    if (!acl_file.empty()) {
      runtime.OnHangup([&runtime, &acl_file, &config] {
        auto acl = Acl::Load(acl_file);
        if (!acl.ok()) {
          fmt::print(stderr, "ringkv-node {}: SIGHUP: keeping the users loaded before: {}\n",
                     config.id, acl.status().message());
          return;
        }
        fmt::print(stderr, "ringkv-node {}: SIGHUP: reloaded {} ({} users)\n", config.id,
                   acl_file, acl->users().size());
        runtime.SetAcl(std::make_shared<const Acl>(std::move(acl).value()));
      });
    }
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
    fmt::print(stderr, "ringkv-node {}: {}; {}\n", config.id,
               ropts.tls ? "TLS on every connection, peers known by their certificates"
                         : "no TLS",
               ropts.acl ? fmt::format("users from {} ({})", acl_file, ropts.acl->users().size())
                         : std::string("no users (every client may do everything)"));
    runtime.Run();
    runtime.SetNode(nullptr);
    node_ptr = nullptr;
    fmt::print(stderr, "ringkv-node {}: shutting down\n", config.id);
  }
  store->reset();  // closes LevelDB, flushing its log
  return 0;
}
