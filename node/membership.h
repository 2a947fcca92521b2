// Membership: which nodes own the ring and which of them this node believes
// alive. The coordinator asks only this interface, so the static membership
// of --peers and gossip membership are interchangeable.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ring/ring.h"

namespace ringkv {

struct MemberInfo {
  NodeId id;
  std::string address;  // host:port
  std::string state;    // "up", "joining", ...
  bool alive = true;    // this node's view
};

class Membership {
 public:
  virtual ~Membership() = default;
  virtual const Ring& ring() const = 0;
  virtual bool IsAlive(const NodeId& id) const = 0;
  virtual std::vector<MemberInfo> Members() const = 0;
  // Nodes that will own key's partition once a join or leave completes and
  // do not own it yet: writes go to them too (not counted toward w).
  virtual std::vector<NodeId> PendingOwners(const std::string& key) const { return {}; }
};

// Membership fixed at start (--peers). Liveness follows reachability as the
// transport reports it.
class StaticMembership final : public Membership {
 public:
  // members: id -> address, including this node.
  StaticMembership(Ring ring, std::map<NodeId, std::string> members)
      : ring_(std::move(ring)), members_(std::move(members)) {}

  const Ring& ring() const override { return ring_; }
  bool IsAlive(const NodeId& id) const override { return !down_.contains(id); }
  std::vector<MemberInfo> Members() const override {
    std::vector<MemberInfo> out;
    for (const auto& [id, addr] : members_) out.push_back({id, addr, "up", IsAlive(id)});
    return out;
  }
  void SetAlive(const NodeId& id, bool alive) {
    if (alive) {
      down_.erase(id);
    } else {
      down_[id] = true;
    }
  }

 private:
  Ring ring_;
  std::map<NodeId, std::string> members_;
  std::map<NodeId, bool> down_;
};

}  // namespace ringkv
