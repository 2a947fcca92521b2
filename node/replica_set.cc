#include "node/replica_set.h"

#include <algorithm>

#include <fmt/format.h>

namespace ringkv {

ReplicaSet ReplicaSet::Choose(const std::vector<NodeId>& preference, uint32_t n, bool sloppy,
                              const std::function<bool(const NodeId&)>& alive) {
  ReplicaSet set;
  size_t primaries = std::min<size_t>(n, preference.size());
  if (sloppy) {
    for (size_t i = primaries; i < preference.size(); ++i) {
      if (alive(preference[i])) set.standby_.push_back(preference[i]);
    }
  }
  set.replicas_.reserve(primaries);
  for (size_t i = 0; i < primaries; ++i) {
    const NodeId& p = preference[i];
    if (!sloppy || alive(p) || set.next_standby_ == set.standby_.size()) {
      set.replicas_.push_back({p, true, {}});  // a dead one with no stand-in fails fast
    } else {
      set.replicas_.push_back({set.standby_[set.next_standby_++], false, p});
    }
  }
  set.answers_.assign(set.replicas_.size(), Answer::kNone);
  set.failures_.resize(set.replicas_.size());
  return set;
}

int ReplicaSet::Find(const NodeId& node) const {
  for (size_t i = 0; i < replicas_.size(); ++i) {
    if (replicas_[i].node == node) return static_cast<int>(i);
  }
  return -1;
}

bool ReplicaSet::Answered(const NodeId& node) const {
  int i = Find(node);
  return i >= 0 && answers_[i] != Answer::kNone;
}

bool ReplicaSet::RecordOk(const NodeId& node) {
  int i = Find(node);
  if (i < 0 || answers_[i] != Answer::kNone) return false;
  answers_[i] = Answer::kOk;
  ++ok_;
  if (replicas_[i].primary) ++ok_primaries_;
  return true;
}

bool ReplicaSet::RecordFailure(const NodeId& node, std::string why) {
  int i = Find(node);
  if (i < 0 || answers_[i] != Answer::kNone) return false;
  answers_[i] = Answer::kFailed;
  failures_[i] = std::move(why);
  return true;
}

std::optional<ReplicaSet::Replica> ReplicaSet::Substitute(const NodeId& failed) {
  int i = Find(failed);
  if (i < 0 || next_standby_ == standby_.size()) return std::nullopt;
  Replica r{standby_[next_standby_], false,
            replicas_[i].primary ? replicas_[i].node : replicas_[i].hint_for};
  ++next_standby_;
  replicas_.push_back(r);
  answers_.push_back(Answer::kNone);
  failures_.emplace_back();
  return r;
}

uint32_t ReplicaSet::outstanding() const {
  uint32_t n = 0;
  for (Answer a : answers_) n += a == Answer::kNone;
  return n;
}

uint32_t ReplicaSet::outstanding_primaries() const {
  uint32_t n = 0;
  for (size_t i = 0; i < replicas_.size(); ++i) n += replicas_[i].primary && answers_[i] == Answer::kNone;
  return n;
}

std::vector<NodeId> ReplicaSet::Silent() const {
  std::vector<NodeId> out;
  for (size_t i = 0; i < replicas_.size(); ++i) {
    if (answers_[i] == Answer::kNone) out.push_back(replicas_[i].node);
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
  size_t failed = std::count(answers_.begin(), answers_.end(), Answer::kFailed);
  if (failed > 0) {
    std::string names;
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (answers_[i] != Answer::kFailed) continue;
      names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", replicas_[i].node, failures_[i]);
    }
    parts.push_back(fmt::format("{} failed: {}", failed, names));
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
