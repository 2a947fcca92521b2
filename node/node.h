// Node: the protocol state machine of one ringkv node, and the wiring of its
// parts.
//
// It receives envelopes (from clients and peers) and timer callbacks, and
// emits envelopes through Transport; it reads and writes its own replicas
// through Store. It does no other I/O, so the same class runs under the libuv
// runtime (server/runtime.h) and in the simulator (tests/sim).
//
// The parts, each a state machine of its own (shared/DESIGN.md):
//  - Coordinator (node/coordinator.h): GET/PUT/DELETE requests, quorums,
//    forwarding, sloppy fallbacks, read repair.
//  - Replica (node/replica.h): this node's copies: reads, merges, minting
//    the dot of a write, hints.
//  - Gossiper + ClusterMembership: members, liveness, the ring.
//  - HintedHandoff, OwnershipHandoff, AntiEntropy, TombstoneReaper.
//  - Buckets (node/buckets.h): bucket properties, cluster metadata that
//    rides on gossip and is kept in the store's metadata.
//  - KeyLister (node/key_listing.h): key listings by coverage.
// Node::OnMessage routes each message to its part; answers to a part's
// requests come back tagged by request id (core/env.h).
// All state is owned by the loop thread that calls in; nothing is locked.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/env.h"
#include "core/message.h"
#include "gossip/gossiper.h"
#include "node/anti_entropy.h"
#include "node/buckets.h"
#include "node/cluster_membership.h"
#include "node/config.h"
#include "node/coordinator.h"
#include "node/hinted_handoff.h"
#include "node/key_listing.h"
#include "node/membership.h"
#include "node/ownership_handoff.h"
#include "node/replica.h"
#include "node/stats.h"
#include "node/tombstone_reaper.h"
#include "store/store.h"

namespace ringkv {

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
  const AntiEntropy& anti_entropy() const { return aae_; }
  const OwnershipHandoff& handoff() const { return handoff_; }
  // Microseconds since this node object started (its Clock).
  uint64_t uptime_us() const { return clock_->NowMicros() - started_us_; }
  Store::CacheStats object_cache() const { return store_->object_cache(); }
  const TombstoneReaper& reaper() const { return reaper_; }
  const Buckets& buckets() const { return buckets_; }

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
  uint64_t objects() const { return replica_.objects(); }
  // JSON documents answered to InfoRequest topics.
  std::string StatusJson() const;
  std::string RingJson() const;
  std::string StatsJson() const;
  Result<std::string> PreflistJson(const std::string& key) const;
  // What `ringkv hints --json` shows (resynchronises the queue sizes).
  std::string HintsJson() { return hints_.Json(); }
  // This node's own copy of a key, bypassing quorums (debugging, tests):
  // {"key","found","siblings":[{"value","dot"}],"tombstones","clock"}.
  Result<std::string> LocalJson(const std::string& key) const;
  // Admin: this node leaves the cluster / an operator removes a dead node.
  Status Leave();
  Status Remove(const NodeId& id);

  // Adds a "connections" document (from the runtime) to the status answer.
  void SetConnectionsReport(std::function<std::string()> fn) { connections_report_ = std::move(fn); }
  // Adds the fields of a JSON object (the runtime's counters: connections,
  // security, limits) to the stats answer.
  void SetStatsReport(std::function<std::string()> fn) { stats_report_ = std::move(fn); }

  // Requests in flight (coordinated here), for tests and status.
  size_t pending_requests() const;

 private:
  void OnMembershipChange();
  // Loads (or creates) the actor of this data dir's data-type writes.
  Status StartDataTypeActor();
  void WaitToExit();
  void HandleClient(ClientId conn, Envelope env);
  void HandleInfo(ClientId conn, uint64_t request_id, const InfoRequest& info);
  // bucket-set: checks, and for a new bucket given another n than the
  // cluster's, that it holds no keys (a count by coverage); then applies,
  // persists and answers.
  void SetBucket(ClientId conn, uint64_t request_id, const std::string& arg);
  Status ApplyBucket(const std::string& name, const Buckets::Patch& patch);
  // Bucket metadata from gossip; persisted when it changes anything.
  void MergeBuckets(const std::vector<BucketEntry>& remote);
  void HandlePeer(ClientId conn, Envelope env);
  void SendPeer(const NodeId& to, uint64_t request_id, Body body);
  // The testing knob NodeConfig::inject_replica_delay_*: applies (and
  // acknowledges) an incoming ReplicaWrite after a delay.
  void DelayReplicaWrite(ClientId conn, Envelope env);

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
  Buckets buckets_;
  Replica replica_;
  Coordinator coordinator_;
  KeyScanRunner scans_;  // before lister_, which runs its own share here
  KeyLister lister_;
  uint64_t started_us_ = 0;
  std::function<std::string()> connections_report_;
  std::mt19937_64 delay_rng_;
  std::set<Clock::TimerId> delayed_writes_;  // timers of delayed replica writes
  std::function<std::string()> stats_report_;
};

}  // namespace ringkv
