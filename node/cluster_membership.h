// ClusterMembership: the Membership the node uses, backed by gossip.
//
// Two rings are derived from the gossiped member states, each a
// deterministic function of a member set (ring/ring.h):
//  - the current ring, of members Up or Leaving: who serves requests now;
//  - the future ring, of members Joining or Up: who will own what once every
//    join and leave in progress completes. Writes also go to future owners
//    that are not current ones (PendingOwners), so a node taking over a
//    partition misses nothing while it streams the partition in.
// Liveness is the failure detector's verdict, and-ed with the transport's
// (a refused connection is news too).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "gossip/gossiper.h"
#include "node/membership.h"

namespace ringkv {

class ClusterMembership final : public Membership {
 public:
  ClusterMembership(const Gossiper* gossiper, uint32_t ring_size, uint32_t n_val);

  // Recomputes the rings if the member set changed. Call on gossip changes.
  void Refresh();

  const Ring& ring() const override { return current_; }
  const Ring& future_ring() const { return future_; }
  bool IsAlive(const NodeId& id) const override;
  std::vector<MemberInfo> Members() const override;
  std::vector<NodeId> PendingOwners(const std::string& key) const override;

  // What the transport saw: a connection refused (false) or made (true).
  void SetReachable(const NodeId& id, bool reachable);

  // Partitions for which `node` is among the first n_val of `ring`.
  static std::set<uint32_t> OwnedBy(const Ring& ring, const NodeId& node);
  // Bitmap helpers for MemberState::complete.
  static bool HasPartition(const std::string& bitmap, uint32_t partition);
  static void SetPartition(std::string* bitmap, uint32_t partition, bool on);
  // The complete bitmap gossiped for id ("" if unknown).
  const std::string& CompleteOf(const NodeId& id) const;
  const MemberState* Find(const NodeId& id) const;

  uint64_t ring_changes() const { return ring_changes_; }

 private:
  const Gossiper* gossiper_;
  uint32_t ring_size_;
  uint32_t n_val_;
  std::vector<NodeId> current_members_;
  std::vector<NodeId> future_members_;
  Ring current_;
  Ring future_;
  std::set<NodeId> unreachable_;
  uint64_t ring_changes_ = 0;
};

}  // namespace ringkv
