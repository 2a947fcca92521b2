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
#include "node/store.h"

namespace ringkv {

class OwnershipHandoff {
 public:
  // Pull request ids carry this bit (gossip uses bit 63, hints bit 62).
  static constexpr uint64_t kRequestBit = uint64_t{1} << 61;
  static bool IsHandoffRequest(uint64_t id) { return (id >> 61) == 1; }

  using MergeFn = std::function<Status(const std::string& key, const DvvSet& object)>;
  using EraseFn = std::function<Status(const std::string& key)>;

  OwnershipHandoff(NodeId self, std::string cluster, Store* store, Transport* transport,
                   Clock* clock, Gossiper* gossiper, ClusterMembership* membership, MergeFn merge,
                   EraseFn erase);
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
  void DropSome(uint32_t partition);

  NodeId self_;
  std::string cluster_;
  Store* store_;
  Transport* transport_;
  Clock* clock_;
  Gossiper* gossiper_;
  ClusterMembership* membership_;
  MergeFn merge_;
  EraseFn erase_;
  std::function<void()> on_left_;

  std::string complete_;
  std::set<uint32_t> pending_;
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
};

}  // namespace ringkv
