// Node: the protocol state machine of one ringkv node.
//
// It receives envelopes (from clients and peers) and timer callbacks, and
// emits envelopes through Transport; it reads and writes its own replicas
// through Store. It does no other I/O, so the same class runs under the libuv
// runtime (node/runtime.h) and in the simulator (tests/sim).
//
// Requests (see shared/DESIGN.md, "Requests"):
//  - GET: ask the first n replicas of the key's preference list, answer after
//    r replies (pr of them from primaries) with their DVV merge, then keep
//    collecting until all n answered or the timeout, and send the merge to
//    every replica whose copy was missing or older (read repair).
//  - PUT/DELETE: a node that is not among the key's replicas forwards the
//    request to one that is; that replica mints the dot, stores the object,
//    sends it to the other replicas and answers after w acknowledgements (pw
//    from primaries; its own counts).
//  - A request that cannot reach its quorum answers with an error that says
//    what it got. Writes that reached fewer than w replicas stay where they
//    landed (no rollback).
// All state is owned by the loop thread that calls in; nothing is locked.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/histogram.h"
#include "core/limits.h"
#include "core/message.h"
#include "core/env.h"
#include "gossip/gossiper.h"
#include "node/anti_entropy.h"
#include "node/cluster_membership.h"
#include "node/hinted_handoff.h"
#include "node/membership.h"
#include "node/ownership_handoff.h"
#include "node/replica_set.h"
#include "node/store.h"
#include "node/tombstone_reaper.h"

namespace ringkv {

struct NodeConfig {
  NodeId id;
  std::string cluster = "ringkv";
  uint32_t n = 3;
  uint32_t r = 2;
  uint32_t w = 2;
  uint32_t timeout_ms = 2000;
  Mode mode = Mode::kSloppy;  // default for requests that do not say
  size_t max_value_bytes = kDefaultMaxValueBytes;
  std::string listen_address;  // host:port peers and clients reach this node at

  // Membership. With peers: every listed node (id -> host:port) is a member
  // from the start (all Up). With seeds: this node joins through them
  // (Joining, then Up once it holds its partitions). With neither: this node
  // founds a new cluster. A restarted node keeps what its data dir says.
  uint32_t ring_size = 64;
  std::map<NodeId, std::string> peers;
  std::vector<std::string> seeds;
  uint64_t gossip_interval_ms = 1000;
  double phi_threshold = 8.0;
  uint64_t random_seed = 0;

  AaeConfig aae;
  // Tombstone reaping: grace period (0: never) and rate; see
  // node/tombstone_reaper.h.
  TombstoneConfig tombstones;
};

// Counters shown by `ringkv stats`.
struct NodeStats {
  uint64_t gets = 0;
  uint64_t puts = 0;
  uint64_t deletes = 0;
  uint64_t forwarded_puts = 0;
  uint64_t duplicate_forwards = 0;  // forwarded puts received twice, ignored
  uint64_t get_not_found = 0;
  uint64_t read_quorum_failures = 0;
  uint64_t write_quorum_failures = 0;
  uint64_t invalid_requests = 0;
  uint64_t read_repairs = 0;       // repair writes sent
  uint64_t siblings_seen = 0;      // gets that returned more than one sibling
  uint64_t max_siblings = 0;
  uint64_t replica_reads = 0;      // served for coordinators (incl. self)
  uint64_t replica_writes = 0;
  uint64_t wrong_cluster_refused = 0;
  uint64_t coordinator_hints = 0;  // hints kept by a coordinator with no fallback left
  Histogram get_latency_us;
  Histogram put_latency_us;
};

class Node {
 public:
  Node(NodeConfig config, Store* store, Transport* transport, Clock* clock);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Persists this start's incarnation, loads hint queues and handoff state,
  // and starts gossip, hint replay and ownership handoff.
  Status Start();
  // The transport connected to (true) or was refused by (false) a peer.
  void OnReachability(const NodeId& peer, bool reachable);
  // The host:port of a member (or of a "seed:host:port" pseudo id), for the
  // transport; empty if unknown.
  std::string AddressOf(const NodeId& id) const;
  // Called once this node has left the cluster (status Left) and may exit.
  void OnExit(std::function<void()> fn) { on_exit_ = std::move(fn); }
  const Gossiper& gossiper() const { return gossiper_; }
  const ClusterMembership& membership() const { return cluster_; }
  const HintedHandoff& hints() const { return hints_; }
  AntiEntropy& anti_entropy() { return aae_; }
  const TombstoneReaper& reaper() const { return reaper_; }

  // A message arrived on connection `conn`. Peer messages carry from/cluster;
  // their answers go to the sender through Transport::Send. Client messages
  // are answered through Transport::Reply(conn).
  void OnMessage(ClientId conn, Envelope env);
  // The transport could not deliver a peer request (connection refused,
  // reset). Fails that replica's part of the request at once.
  void OnSendFailed(const NodeId& to, uint64_t request_id, const std::string& why);

  const NodeConfig& config() const { return config_; }
  const NodeStats& stats() const { return stats_; }
  // Objects in this node's store (kept as they are written and erased).
  uint64_t objects() const { return objects_; }
  // JSON documents answered to InfoRequest topics.
  std::string StatusJson() const;
  std::string RingJson() const;
  std::string StatsJson() const;
  Result<std::string> PreflistJson(const std::string& key) const;
  // This node's own copy of a key, bypassing quorums (debugging, tests):
  // {"key","found","siblings":[{"value","dot"}],"tombstones","clock"}.
  Result<std::string> LocalJson(const std::string& key) const;
  // Admin: this node leaves the cluster / an operator removes a dead node.
  Status Leave();
  Status Remove(const NodeId& id);

  // Adds a "connections" document (from the runtime) to the status answer.
  void SetConnectionsReport(std::function<std::string()> fn) { connections_report_ = std::move(fn); }

  // Requests in flight (coordinated here), for tests and status.
  size_t pending_requests() const;

 private:
  struct GetOp;
  struct PutOp;
  struct ForwardOp;
  struct Resolved {
    uint32_t n, r, w, pr, pw, timeout_ms;
    Mode mode;
    bool lww;
  };
  // origin: the client connection, or a peer node (forwarded puts).
  struct Origin {
    ClientId conn = 0;
    NodeId peer;  // non-empty: reply goes to this peer
    uint64_t request_id = 0;
  };

  void OnMembershipChange();
  void WaitToExit();
  void HandleClient(ClientId conn, Envelope env);
  void HandlePeer(ClientId conn, Envelope env);

  Result<Resolved> ResolveQuorum(const Quorum& q) const;
  ReplicaSet ChooseReplicas(const std::string& key, const Resolved& q) const;

  void StartGet(Origin origin, GetRequest req);
  void AddGetFallback(GetOp& op, const NodeId& failed);
  void OnGetTimeout(uint64_t op_id);
  void OnReadReply(uint64_t op_id, const NodeId& from, Status status,
                   std::optional<DvvSet> object);
  void MaybeFinishGet(GetOp& op);
  void FinishReadRepair(uint64_t op_id);

  void StartPut(Origin origin, PutRequest req);
  void Forward(std::unique_ptr<ForwardOp> op);
  void CoordinatePut(Origin origin, PutRequest req, const Resolved& q, ReplicaSet replicas);
  void AddPutFallback(PutOp& op, const NodeId& failed);
  void OnWriteAck(uint64_t op_id, const NodeId& from, Status status);
  void MaybeFinishPut(PutOp& op);
  void OnForwardReply(uint64_t op_id, const NodeId& from, Reply reply);

  void Answer(const Origin& origin, Reply reply);
  void SendPeer(const NodeId& to, uint64_t request_id, Body body);

  // Local replica operations. A read as a fallback for hint_for includes the
  // hinted copy.
  ReplicaReadReply LocalRead(const std::string& key, const NodeId& hint_for = {});
  Status LocalMerge(const std::string& key, const DvvSet& object);
  // Every write to the main store goes through here, so the Merkle tree of
  // the key's partition stays in step. old: what was stored (nullptr: none).
  Status WriteLocal(const std::string& key, const DvvSet* old, const DvvSet& now);
  Status EraseLocal(const std::string& key);
  // Every hint this node keeps goes through here (the reaper's fence).
  Status AddHint(const NodeId& target, const std::string& key, const DvvSet& object);

  NodeConfig config_;
  Store* store_;
  Transport* transport_;
  Clock* clock_;
  Gossiper gossiper_;
  ClusterMembership cluster_;
  Membership* membership_ = &cluster_;
  HintedHandoff hints_;
  OwnershipHandoff handoff_;
  AntiEntropy aae_;
  TombstoneReaper reaper_;
  std::function<void()> on_exit_;
  uint64_t left_at_us_ = 0;
  std::set<NodeId> alive_seen_;  // peers believed alive at the last gossip change
  NodeStats stats_;
  // Objects in the store, counted once at Start and kept by WriteLocal and
  // EraseLocal (a full count is a scan of the store: too slow for status).
  uint64_t objects_ = 0;
  uint64_t next_op_id_ = 1;
  uint64_t fallback_actors_ = 0;
  // Forwarded puts seen lately, by (forwarder, its request id), to ignore
  // duplicates. Request ids are unique per incarnation (FirstRequestId).
  static constexpr size_t kForwardedRemembered = 1 << 16;
  std::set<std::pair<NodeId, uint64_t>> forwarded_seen_;
  std::deque<std::pair<NodeId, uint64_t>> forwarded_order_;  // actors minted for fallback writes this incarnation
  uint64_t started_us_ = 0;
  // Requests in flight by id: every reply and ack looks its request up, so a
  // hash table (one probe) rather than a tree (a dozen cold nodes at -P 16).
  std::unordered_map<uint64_t, std::unique_ptr<GetOp>> gets_;
  std::unordered_map<uint64_t, std::unique_ptr<PutOp>> puts_;
  std::unordered_map<uint64_t, std::unique_ptr<ForwardOp>> forwards_;
  std::function<std::string()> connections_report_;
};

}  // namespace ringkv
