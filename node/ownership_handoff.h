// OwnershipHandoff: moves partitions to their new owners when nodes join or
// leave, with no leader.
//
// Every node tracks the partitions it holds completely (a bitmap it gossips
// in its MemberState) and, every tick, acts on what the gossiped state says:
//  - pull: each partition it owns in the current or future ring but does not
//    hold completely is pulled from a live node that does (preferring current
//    owners), in batches (HandoffRequest/HandoffBatch, one batch in flight per
//    partition: back-pressure), each object merged with the DVV sync; writes
//    arriving meanwhile are merged too (they go to future owners as well);
//  - join: a Joining node goes Up once it holds every partition it owns in
//    the future ring;
//  - leave: a Leaving node goes Left once every future owner of each
//    partition it holds has announced that partition complete, then asks to
//    exit;
//  - drop: a node deletes a partition it no longer owns in either ring only
//    after every owner of it (current and future) announced it complete, so
//    old owners drop data only after the new owner acknowledged all of it.
//    The moment a node stops owning a partition it also stops announcing it
//    complete (writes no longer reach it, so its copy goes stale): it is
//    never a pull source for it again, nor mistaken for a holder if it
//    becomes an owner later. Objects of partitions it never held completely
//    (strays: writes it took while views of the ring differed) are handed to
//    the future owners as durable hints before they are deleted.
// Pure logic over Store, Transport, Clock and the gossip state.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "core/env.h"
#include "gossip/gossiper.h"
#include "node/cluster_membership.h"
#include "store/store.h"

namespace ringkv {

class OwnershipHandoff {
 public:
  // Pull request ids carry this bit (gossip uses bit 63, hints bit 62).
  static constexpr uint64_t kRequestBit = uint64_t{1} << 61;
  static bool IsHandoffRequest(uint64_t id) { return (id >> 61) == 1; }

  using MergeFn = std::function<Status(const std::string& key, const DvvSet& object)>;
  using EraseFn = std::function<Status(const std::string& key)>;
  using HintFn = std::function<Status(const NodeId& target, const std::string& key, const DvvSet& object)>;

  OwnershipHandoff(NodeId self, std::string cluster, Store* store, Transport* transport,
                   Clock* clock, Gossiper* gossiper, ClusterMembership* membership, MergeFn merge,
                   EraseFn erase, HintFn hint);
  ~OwnershipHandoff();

  // complete: the bitmap this node starts with (from disk, or all it owns
  // when it founds the cluster). Starts the tick timer.
  void Start(std::string complete);
  void Stop();

  // Serves a pull from a peer.
  HandoffBatch Serve(const HandoffRequest& req);
  void OnBatch(const NodeId& from, uint64_t request_id, HandoffBatch batch);
  void OnSendFailed(const NodeId& to, uint64_t request_id);

  // Called when this node goes Left: the node should exit.
  void OnLeft(std::function<void()> fn) { on_left_ = std::move(fn); }

  const std::string& complete() const { return complete_; }
  // {"pending":[...],"pulling":{...},"done":N,"objects_in":..,"bytes_in":..,
  //  "objects_served":..,"dropped_partitions":..}
  std::string Json() const;
  size_t pending() const { return pending_.size(); }

  void Tick();

  // See FirstRequestId (core/env.h).
  void StartRequestIdsAt(uint64_t first) { next_id_ = first; }

 private:
  struct Pull {
    uint32_t partition = 0;
    NodeId source;
    std::string cursor;
    uint64_t sent_us = 0;
    uint64_t objects = 0;
  };

  void Persist();
  void StartPulls();
  void StartPull(uint32_t partition);
  void SendPull(uint64_t id, Pull& pull);
  void MarkComplete(uint32_t partition);
  bool AllHaveComplete(const std::vector<NodeId>& nodes, uint32_t partition) const;
  // Deletes up to a slice of a partition this node no longer owns (hinting
  // strays to the owners first); true once the partition is empty.
  bool DropSome(uint32_t partition, bool held_completely);
  // Stops announcing partitions this node owns in neither ring.
  void ForgetUnowned();

  NodeId self_;
  std::string cluster_;
  Store* store_;
  Transport* transport_;
  Clock* clock_;
  Gossiper* gossiper_;
  ClusterMembership* membership_;
  MergeFn merge_;
  EraseFn erase_;
  HintFn hint_;
  std::function<void()> on_left_;

  std::string complete_;
  std::set<uint32_t> pending_;
  std::set<uint32_t> draining_;  // held completely until no longer owned; dropped first
  std::map<uint64_t, Pull> pulls_;  // by request id
  std::map<uint32_t, uint64_t> pull_of_partition_;
  uint64_t next_id_ = 1;
  uint32_t sweep_ = 0;
  Clock::TimerId timer_ = 0;
  bool running_ = false;
  bool left_ = false;

  uint64_t done_ = 0;
  uint64_t objects_in_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t objects_served_ = 0;
  uint64_t dropped_partitions_ = 0;
  uint64_t dropped_objects_ = 0;
  uint64_t strays_hinted_ = 0;
};

}  // namespace ringkv
