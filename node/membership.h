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

}  // namespace ringkv
