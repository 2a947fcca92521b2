#include "node/replica_set.h"

#include <algorithm>

#include <fmt/format.h>

namespace ringkv {

ReplicaSet ReplicaSet::Choose(const std::vector<NodeId>& preference, uint32_t n, bool sloppy,
                              const std::function<bool(const NodeId&)>& alive) {
  ReplicaSet set;
  size_t primaries = std::min<size_t>(n, preference.size());
  if (!sloppy) {
    for (size_t i = 0; i < primaries; ++i) set.replicas_.push_back({preference[i], true, {}});
    return set;
  }
  for (size_t i = primaries; i < preference.size(); ++i) {
    if (alive(preference[i])) set.standby_.push_back(preference[i]);
  }
  for (size_t i = 0; i < primaries; ++i) {
    const NodeId& p = preference[i];
    if (alive(p) || set.standby_.empty()) {
      set.replicas_.push_back({p, true, {}});  // a dead one with no stand-in fails fast
    } else {
      set.replicas_.push_back({set.standby_.front(), false, p});
      set.standby_.pop_front();
    }
  }
  return set;
}

int ReplicaSet::Find(const NodeId& node) const {
  for (size_t i = 0; i < replicas_.size(); ++i) {
    if (replicas_[i].node == node) return static_cast<int>(i);
  }
  return -1;
}

bool ReplicaSet::Answered(const NodeId& node) const {
  return ok_nodes_.contains(node) || failures_.contains(node);
}

bool ReplicaSet::RecordOk(const NodeId& node) {
  int i = Find(node);
  if (i < 0 || Answered(node)) return false;
  ok_nodes_[node] = true;
  ++ok_;
  if (replicas_[i].primary) ++ok_primaries_;
  return true;
}

bool ReplicaSet::RecordFailure(const NodeId& node, std::string why) {
  if (Find(node) < 0 || Answered(node)) return false;
  failures_[node] = std::move(why);
  return true;
}

std::optional<ReplicaSet::Replica> ReplicaSet::Substitute(const NodeId& failed) {
  int i = Find(failed);
  if (i < 0 || standby_.empty()) return std::nullopt;
  Replica r{standby_.front(), false,
            replicas_[i].primary ? replicas_[i].node : replicas_[i].hint_for};
  standby_.pop_front();
  replicas_.push_back(r);
  return r;
}

uint32_t ReplicaSet::outstanding() const {
  uint32_t n = 0;
  for (const auto& r : replicas_) n += !Answered(r.node);
  return n;
}

uint32_t ReplicaSet::outstanding_primaries() const {
  uint32_t n = 0;
  for (const auto& r : replicas_) n += r.primary && !Answered(r.node);
  return n;
}

std::vector<NodeId> ReplicaSet::Silent() const {
  std::vector<NodeId> out;
  for (const auto& r : replicas_) {
    if (!Answered(r.node)) out.push_back(r.node);
  }
  return out;
}

std::string ReplicaSet::DescribeFailure(bool is_read, uint32_t required, uint32_t n,
                                        uint32_t primaries_required, bool timed_out) const {
  std::string s = fmt::format("{} quorum not met: {} of {}={} {} from n={} replicas",
                              is_read ? "read" : "write", ok_, is_read ? "r" : "w", required,
                              is_read ? "replies" : "acknowledgements", n);
  if (ok_fallbacks() > 0) {
    s += fmt::format(", {} from {}", ok_fallbacks(), ok_fallbacks() == 1 ? "a fallback" : "fallbacks");
  }
  if (primaries_required > 0) {
    s += fmt::format(", {} of {}={} from primaries", ok_primaries_, is_read ? "pr" : "pw",
                     primaries_required);
  }
  std::vector<std::string> parts;
  std::vector<NodeId> silent = Silent();
  if (!silent.empty()) {
    std::string names;
    for (const auto& id : silent) names += (names.empty() ? "" : ", ") + id;
    parts.push_back(fmt::format("{} {}: {}", silent.size(), timed_out ? "timed out" : "not answered",
                                names));
  }
  if (!failures_.empty()) {
    std::string names;
    for (const auto& r : replicas_) {
      auto it = failures_.find(r.node);
      if (it == failures_.end()) continue;
      names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", r.node, it->second);
    }
    parts.push_back(fmt::format("{} failed: {}", failures_.size(), names));
  }
  if (!parts.empty()) {
    // Timeouts first, as users look for what is slow.
    s += " (";
    for (size_t i = 0; i < parts.size(); ++i) s += (i ? "; " : "") + parts[i];
    s += ")";
  }
  return s;
}

}  // namespace ringkv
