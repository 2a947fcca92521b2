#include "node/cluster_membership.h"

#include <algorithm>

namespace ringkv {

ClusterMembership::ClusterMembership(const Gossiper* gossiper, uint32_t ring_size, uint32_t n_val)
    : gossiper_(gossiper), ring_size_(ring_size), n_val_(n_val) {
  Refresh();
}

void ClusterMembership::Refresh() {
  std::vector<NodeId> current, future;
  for (const auto& [id, m] : gossiper_->members()) {
    if (m.status == MemberStatus::kUp || m.status == MemberStatus::kLeaving) current.push_back(id);
    if (m.status == MemberStatus::kUp || m.status == MemberStatus::kJoining) future.push_back(id);
  }
  // A cluster always has a current ring: while nobody is Up yet (the very
  // first moments of a join), the future one stands in.
  if (current.empty()) current = future;
  if (future.empty()) future = current;
  if (current != current_members_ || current_.ring_size() == 0) {
    auto r = Ring::Build(ring_size_, n_val_, current);
    if (r.ok()) {
      current_ = std::move(r).value();
      current_members_ = current;
      ++ring_changes_;
    }
  }
  if (future != future_members_ || future_.ring_size() == 0) {
    auto r = Ring::Build(ring_size_, n_val_, future);
    if (r.ok()) {
      future_ = std::move(r).value();
      future_members_ = future;
    }
  }
}

bool ClusterMembership::IsAlive(const NodeId& id) const {
  return gossiper_->IsAlive(id) && !unreachable_.contains(id);
}

void ClusterMembership::SetReachable(const NodeId& id, bool reachable) {
  if (reachable) {
    unreachable_.erase(id);
  } else {
    unreachable_.insert(id);
  }
}

std::vector<MemberInfo> ClusterMembership::Members() const {
  std::vector<MemberInfo> out;
  for (const auto& [id, m] : gossiper_->members()) {
    out.push_back({id, m.address, MemberStatusName(m.status), IsAlive(id)});
  }
  return out;
}

std::vector<NodeId> ClusterMembership::PendingOwners(const std::string& key) const {
  if (future_members_ == current_members_) return {};
  uint32_t p = future_.PartitionOfKey(key);
  std::vector<NodeId> now = current_.Primaries(p, n_val_);
  std::vector<NodeId> out;
  for (const NodeId& id : future_.Primaries(p, n_val_)) {
    if (std::find(now.begin(), now.end(), id) == now.end()) out.push_back(id);
  }
  return out;
}

std::set<uint32_t> ClusterMembership::OwnedBy(const Ring& ring, const NodeId& node) {
  auto v = ring.PartitionsOf(node);
  return std::set<uint32_t>(v.begin(), v.end());
}

bool ClusterMembership::HasPartition(const std::string& bitmap, uint32_t partition) {
  size_t byte = partition / 8;
  return byte < bitmap.size() && (static_cast<uint8_t>(bitmap[byte]) >> (partition % 8)) & 1;
}

void ClusterMembership::SetPartition(std::string* bitmap, uint32_t partition, bool on) {
  size_t byte = partition / 8;
  if (bitmap->size() <= byte) bitmap->resize(byte + 1, '\0');
  auto b = static_cast<uint8_t>((*bitmap)[byte]);
  b = on ? (b | (1u << (partition % 8))) : (b & ~(1u << (partition % 8)));
  (*bitmap)[byte] = static_cast<char>(b);
}

const MemberState* ClusterMembership::Find(const NodeId& id) const {
  auto it = gossiper_->members().find(id);
  return it == gossiper_->members().end() ? nullptr : &it->second;
}

const std::string& ClusterMembership::CompleteOf(const NodeId& id) const {
  static const std::string kEmpty;
  const MemberState* m = Find(id);
  return m == nullptr ? kEmpty : m->complete;
}

}  // namespace ringkv
