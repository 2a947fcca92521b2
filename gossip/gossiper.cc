#include "gossip/gossiper.h"

#include <limits>
#include <tuple>
#include <utility>

namespace ringkv {
namespace {

bool Active(MemberStatus s) { return s != MemberStatus::kLeft && s != MemberStatus::kRemoved; }

auto VersionOf(const MemberState& m) { return std::tie(m.incarnation, m.heartbeat); }

// The total order that picks a merge winner: version first, then the other
// fields (only reached for equal versions with different content).
auto OrderKey(const MemberState& m) {
  return std::tie(m.incarnation, m.heartbeat, m.status, m.address, m.complete, m.id);
}

FailureDetectorOptions DetectorOptions(const GossipConfig& c) {
  FailureDetectorOptions o;
  o.expected_interval_ms = c.interval_ms;
  o.phi_threshold = c.phi_threshold;
  o.min_silence_ms = c.min_silence_ms != 0 ? c.min_silence_ms : 2 * c.interval_ms;
  return o;
}

}  // namespace

MemberState MergeMember(const MemberState& a, const MemberState& b) {
  MemberState out = OrderKey(a) < OrderKey(b) ? b : a;
  if (a.status == MemberStatus::kRemoved || b.status == MemberStatus::kRemoved) {
    out.status = MemberStatus::kRemoved;
  }
  return out;
}

Gossiper::Gossiper(GossipConfig config, MemberState self, Transport* transport, Clock* clock)
    : config_(std::move(config)),
      transport_(transport),
      clock_(clock),
      rng_(config_.random_seed),
      detector_(DetectorOptions(config_)) {
  if (!config_.id.empty()) self.id = config_.id;
  if (!config_.address.empty()) self.address = config_.address;
  config_.id = self.id;
  config_.address = self.address;
  members_[self.id] = std::move(self);
}

Gossiper::~Gossiper() { Stop(); }

const MemberState& Gossiper::self() const { return members_.at(config_.id); }

void Gossiper::Start() {
  if (running_) return;
  running_ = true;
  DiscountStall();  // the time we were stopped, we did not listen
  uint64_t interval = config_.interval_ms == 0 ? 1 : config_.interval_ms;
  ScheduleRound(std::uniform_int_distribution<uint64_t>(1, interval)(rng_));
}

void Gossiper::Stop() {
  running_ = false;
  if (!timer_) return;
  clock_->Cancel(*timer_);
  timer_.reset();
}

void Gossiper::ScheduleRound(uint64_t delay_ms) {
  timer_ = clock_->After(delay_ms, [this] {
    timer_.reset();
    RunRound();
    // A listener may have called Stop() during the round.
    if (running_) ScheduleRound(config_.interval_ms == 0 ? 1 : config_.interval_ms);
  });
}

void Gossiper::BumpSelf() { ++members_.at(config_.id).heartbeat; }

void Gossiper::DiscountStall() {
  uint64_t now = Now();
  uint64_t interval_us = config_.interval_ms * 1000;
  if (last_round_us_ != 0 && now > last_round_us_ + 2 * interval_us) {
    ++stalls_;
    detector_.DiscountStall(now - last_round_us_ - interval_us, now);
  }
  last_round_us_ = now;
}

void Gossiper::RunRound() {
  ++rounds_;
  DiscountStall();
  BumpSelf();
  CheckVerdicts();

  std::vector<NodeId> alive;
  std::vector<NodeId> down;
  std::vector<const std::string*> addresses;
  for (const auto& [id, m] : members_) {
    if (id == config_.id) continue;
    if (Active(m.status)) addresses.push_back(&m.address);
    if (!Active(m.status)) continue;
    (IsAlive(id) ? alive : down).push_back(id);
  }
  auto pick = [this](const std::vector<NodeId>& from) -> const NodeId& {
    return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng_)];
  };
  auto chance = [this](double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; };

  if (!alive.empty()) Push(pick(alive));
  if (!down.empty() && chance(static_cast<double>(down.size()) / (alive.size() + 1.0))) {
    Push(pick(down));
  }

  std::vector<std::string> seeds;
  bool know_others = !alive.empty() || !down.empty();
  for (const std::string& seed : config_.seeds) {
    if (seed == config_.address) continue;
    if (know_others) {
      bool known = false;
      for (const std::string* a : addresses) known = known || *a == seed;
      if (known) continue;
    }
    seeds.push_back(seed);
  }
  if (!seeds.empty() && (!know_others || chance(1.0 / (alive.size() + 1.0)))) {
    Push(kSeedPrefix + pick(seeds));
  }
  Notify();
}

std::vector<MemberState> Gossiper::View() const {
  std::vector<MemberState> view;
  view.reserve(members_.size());
  for (const auto& [id, m] : members_) view.push_back(m);
  return view;
}

void Gossiper::Push(const NodeId& to) {
  ++pushes_sent_;
  uint64_t rid = kRequestIdBit | next_request_++;
  GossipPush push{config_.ring_size, config_.n_val, View(), {}};
  if (metadata_snapshot_) push.buckets = metadata_snapshot_();
  transport_->Send(to, Envelope{rid, config_.id, config_.cluster, std::move(push)});
}

bool Gossiper::Compatible(const NodeId& from, uint32_t ring_size, uint32_t n_val) {
  if (ring_size == config_.ring_size && n_val == config_.n_val) return true;
  ++mismatched_;
  if (ring_size != config_.ring_size) {
    last_mismatch_ = "peer " + from + " uses ring size " + std::to_string(ring_size) +
                     "; this node " + std::to_string(config_.ring_size);
  } else {
    last_mismatch_ = "peer " + from + " uses n_val " + std::to_string(n_val) + "; this node " +
                     std::to_string(config_.n_val);
  }
  return false;
}

void Gossiper::OnPush(const NodeId& from, uint64_t request_id, const GossipPush& push) {
  GossipAck ack{config_.ring_size, config_.n_val, {}, {}};
  if (Compatible(from, push.ring_size, push.n_val)) {
    MergeView(push.members);
    ack.members = View();
    if (metadata_merge_) metadata_merge_(push.buckets);
    if (metadata_snapshot_) ack.buckets = metadata_snapshot_();
  }
  transport_->Send(from, Envelope{request_id, config_.id, config_.cluster, std::move(ack)});
  Notify();
}

void Gossiper::OnAck(const NodeId& from, const GossipAck& ack) {
  if (Compatible(from, ack.ring_size, ack.n_val)) {
    MergeView(ack.members);
    if (metadata_merge_) metadata_merge_(ack.buckets);
  }
  Notify();
}

void Gossiper::OnSendFailed(const NodeId& to) { ++send_failures_; }

void Gossiper::MergeView(const std::vector<MemberState>& view) {
  // Views arrive sorted by id (a map on the sending side), so a cursor walked
  // through ours saves a lookup per entry; any order still merges correctly.
  merge_now_ = Now();
  auto cursor = members_.begin();
  for (const MemberState& remote : view) {
    if (remote.id.empty()) continue;
    auto it =
        cursor != members_.end() && cursor->first == remote.id ? cursor : members_.find(remote.id);
    if (it == members_.end()) {
      it = members_.emplace(remote.id, remote).first;
      if (Active(remote.status)) {
        detector_.Report(remote.id, merge_now_);  // alive until it stays silent
        verdicts_[remote.id] = true;
      }
      changed_ = true;
    } else if (remote.id == config_.id) {
      MergeSelf(it->second, remote);
    } else {
      MergeInto(it->second, remote);
    }
    cursor = std::next(it);
  }
}

void Gossiper::MergeSelf(MemberState& own, const MemberState& remote) {
  if (own == remote || own.status == MemberStatus::kRemoved) return;
  if (remote.status == MemberStatus::kRemoved) {
    own = MergeMember(own, remote);
    changed_ = true;
    return;
  }
  if (VersionOf(remote) < VersionOf(own)) return;
  // A copy of us at least as new as ours that is not ours: state from before
  // a restart. Move past it so our entry wins everywhere.
  own.incarnation = remote.incarnation;
  own.heartbeat = remote.heartbeat + 1;
}

void Gossiper::MergeInto(MemberState& local, const MemberState& remote) {
  // Fast path, the common case: news we already have. Only a Removed remote
  // can change an entry without a greater version.
  if (VersionOf(remote) <= VersionOf(local) && remote.status != MemberStatus::kRemoved &&
      (VersionOf(remote) < VersionOf(local) || remote == local)) {
    return;
  }
  bool newer = VersionOf(local) < VersionOf(remote);
  bool content_changed;
  if (newer && local.status != MemberStatus::kRemoved && remote.status != MemberStatus::kRemoved) {
    // Plain news (MergeMember's result would be `remote`): assign in place.
    content_changed = remote.status != local.status || remote.address != local.address ||
                      remote.complete != local.complete;
    local = remote;
  } else {
    MemberState merged = MergeMember(local, remote);
    if (merged == local) return;
    newer = VersionOf(local) < VersionOf(merged);
    content_changed = merged.status != local.status || merged.address != local.address ||
                      merged.complete != local.complete;
    local = std::move(merged);
  }
  if (content_changed) changed_ = true;
  if (!Active(local.status)) {
    detector_.Forget(local.id);
    verdicts_.erase(local.id);  // a status change, not a conviction
    return;
  }
  if (newer || !detector_.Tracks(local.id)) {
    detector_.Report(local.id, merge_now_);
    // News makes a peer alive at once; a flip back up is a change.
    auto [v, inserted] = verdicts_.try_emplace(local.id, true);
    if (!v->second) {
      v->second = true;
      changed_ = true;
    } else if (inserted) {
      changed_ = true;
    }
  }
}

void Gossiper::CheckVerdicts() {
  uint64_t now = Now();
  for (auto& [id, alive] : verdicts_) {
    if (!alive || detector_.IsAlive(id, now)) continue;
    alive = false;
    ++convictions_;
    changed_ = true;
  }
}

void Gossiper::SetStatus(MemberStatus status) {
  MemberState& own = members_.at(config_.id);
  if (own.status == MemberStatus::kRemoved) return;  // terminal
  if (own.status != status) changed_ = true;
  own.status = status;
  BumpSelf();
  Notify();
}

void Gossiper::SetComplete(std::string bitmap) {
  MemberState& own = members_.at(config_.id);
  if (own.complete != bitmap) changed_ = true;
  own.complete = std::move(bitmap);
  BumpSelf();
  Notify();
}

Status Gossiper::Remove(const NodeId& id, bool known_down) {
  if (id == config_.id) {
    return Status::InvalidArgument("cannot remove " + id +
                                   " from itself; remove it from another node");
  }
  auto it = members_.find(id);
  if (it == members_.end()) return Status::NotFound("no member " + id);
  if (it->second.status == MemberStatus::kRemoved) return Status::OK();
  if (Active(it->second.status) && IsAlive(id) && !known_down) {
    return Status::InvalidArgument(id + " is alive (phi " + std::to_string(Phi(id)) +
                                   "); only a dead node can be removed: stop it first");
  }
  it->second.status = MemberStatus::kRemoved;
  detector_.Forget(id);
  verdicts_.erase(id);
  changed_ = true;
  Notify();
  return Status::OK();
}

bool Gossiper::IsAlive(const NodeId& id) const {
  if (id == config_.id) return true;
  auto it = members_.find(id);
  if (it == members_.end() || !Active(it->second.status)) return false;
  return detector_.IsAlive(id, Now());
}

double Gossiper::Phi(const NodeId& id) const {
  if (id == config_.id) return 0.0;
  auto it = members_.find(id);
  if (it == members_.end() || !Active(it->second.status)) {
    return std::numeric_limits<double>::infinity();
  }
  return detector_.Phi(id, Now());
}

void Gossiper::OnChange(std::function<void()> fn) { listeners_.push_back(std::move(fn)); }

void Gossiper::SetMetadata(std::function<std::vector<BucketEntry>()> snapshot,
                           std::function<void(const std::vector<BucketEntry>&)> merge) {
  metadata_snapshot_ = std::move(snapshot);
  metadata_merge_ = std::move(merge);
}

void Gossiper::Notify() {
  if (notifying_) return;
  notifying_ = true;
  while (changed_) {
    changed_ = false;
    for (size_t i = 0; i < listeners_.size(); ++i) listeners_[i]();
  }
  notifying_ = false;
}

}  // namespace ringkv
