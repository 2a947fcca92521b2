#include "node/ownership_handoff.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/hash.h"

namespace ringkv {

namespace {
constexpr uint64_t kTickMs = 200;
constexpr size_t kMaxConcurrentPulls = 4;
constexpr uint32_t kBatchObjects = 500;
constexpr uint32_t kBatchBytes = 4 << 20;
constexpr uint64_t kPullTimeoutUs = 10'000'000;
constexpr size_t kDropPerTick = 2000;

}  // namespace

OwnershipHandoff::OwnershipHandoff(NodeId self, std::string cluster, Store* store,
                                   Transport* transport, Clock* clock, Gossiper* gossiper,
                                   ClusterMembership* membership, MergeFn merge, EraseFn erase,
                                   HintFn hint)
    : self_(std::move(self)),
      cluster_(std::move(cluster)),
      store_(store),
      transport_(transport),
      clock_(clock),
      gossiper_(gossiper),
      membership_(membership),
      merge_(std::move(merge)),
      erase_(std::move(erase)),
      hint_(std::move(hint)) {}

OwnershipHandoff::~OwnershipHandoff() { Stop(); }

void OwnershipHandoff::Start(std::string complete) {
  complete_ = std::move(complete);
  gossiper_->SetComplete(complete_);
  running_ = true;
  timer_ = clock_->After(kTickMs, [this] {
    timer_ = 0;
    Tick();
  });
}

void OwnershipHandoff::Stop() {
  running_ = false;
  if (timer_ != 0) clock_->Cancel(timer_);
  timer_ = 0;
}

void OwnershipHandoff::Persist() {
  store_->PutMeta("complete", complete_);
  gossiper_->SetComplete(complete_);
}

bool OwnershipHandoff::AllHaveComplete(const std::vector<NodeId>& nodes, uint32_t p) const {
  for (const NodeId& n : nodes) {
    const std::string& bitmap = n == self_ ? complete_ : membership_->CompleteOf(n);
    if (!ClusterMembership::HasPartition(bitmap, p)) return false;
  }
  return true;
}

void OwnershipHandoff::Tick() {
  if (!running_) return;
  const Ring& current = membership_->ring();
  const Ring& future = membership_->future_ring();
  const MemberState& me = gossiper_->self();
  uint64_t now = clock_->NowMicros();

  // Pulls that stopped answering: give them up, retry (maybe elsewhere).
  for (auto it = pulls_.begin(); it != pulls_.end();) {
    if (now - it->second.sent_us > kPullTimeoutUs) {
      pull_of_partition_.erase(it->second.partition);
      it = pulls_.erase(it);
    } else {
      ++it;
    }
  }

  StartPulls();

  if (me.status == MemberStatus::kJoining) {
    bool ready = true;
    for (uint32_t p : ClusterMembership::OwnedBy(future, self_)) {
      ready = ready && ClusterMembership::HasPartition(complete_, p);
    }
    if (ready) {
      gossiper_->SetStatus(MemberStatus::kUp);
      store_->PutMeta("status", "up");
    }
  } else if (me.status == MemberStatus::kLeaving && !left_) {
    bool handed_off = true;
    for (uint32_t p : ClusterMembership::OwnedBy(current, self_)) {
      handed_off = handed_off && AllHaveComplete(future.Primaries(p, future.n_val()), p);
    }
    if (handed_off) {
      left_ = true;
      gossiper_->SetStatus(MemberStatus::kLeft);
      store_->PutMeta("status", "left");
      if (on_left_) on_left_();
    }
  }

  // Drop data of partitions this node no longer owns, once their owners
  // hold them: first those it held completely, then, one partition a tick,
  // any other (writes it took while views of the ring differed).
  if (me.status == MemberStatus::kUp) {
    ForgetUnowned();
    auto droppable = [&](uint32_t p) {
      auto cur = current.Primaries(p, current.n_val());
      auto fut = future.Primaries(p, future.n_val());
      bool mine = std::count(cur.begin(), cur.end(), self_) + std::count(fut.begin(), fut.end(), self_);
      return !mine && AllHaveComplete(cur, p) && AllHaveComplete(fut, p);
    };
    bool dropped = false;
    for (auto it = draining_.begin(); it != draining_.end() && !dropped;) {
      uint32_t p = *it;
      if (p >= current.ring_size() || !droppable(p)) {
        ++it;
        continue;
      }
      dropped = true;  // a slice per tick keeps the loop responsive
      it = DropSome(p, true) ? draining_.erase(it) : std::next(it);
    }
    if (!dropped && current.ring_size() > 0) {
      uint32_t p = sweep_++ % current.ring_size();
      if (!draining_.contains(p) && droppable(p)) DropSome(p, false);
    }
  }

  timer_ = clock_->After(kTickMs, [this] {
    timer_ = 0;
    Tick();
  });
}

void OwnershipHandoff::StartPulls() {
  const MemberState& me = gossiper_->self();
  std::set<uint32_t> owned = ClusterMembership::OwnedBy(membership_->future_ring(), self_);
  if (me.status != MemberStatus::kJoining) {
    auto cur = ClusterMembership::OwnedBy(membership_->ring(), self_);
    owned.insert(cur.begin(), cur.end());
  }
  if (me.status == MemberStatus::kLeft || me.status == MemberStatus::kRemoved) owned.clear();
  pending_.clear();
  for (uint32_t p : owned) {
    if (!ClusterMembership::HasPartition(complete_, p)) pending_.insert(p);
  }
  std::vector<uint32_t> todo(pending_.begin(), pending_.end());
  for (uint32_t p : todo) {
    if (pull_of_partition_.size() >= kMaxConcurrentPulls) break;
    if (!pull_of_partition_.contains(p)) StartPull(p);
  }
}

void OwnershipHandoff::StartPull(uint32_t p) {
  const Ring& current = membership_->ring();
  std::vector<NodeId> candidates;
  for (const NodeId& id : current.Primaries(p, current.n_val())) {
    if (id != self_ && membership_->IsAlive(id) &&
        ClusterMembership::HasPartition(membership_->CompleteOf(id), p)) {
      candidates.push_back(id);
    }
  }
  bool anyone_has_it = false;
  for (const auto& [id, m] : gossiper_->members()) {
    if (id == self_ || m.status == MemberStatus::kRemoved || m.status == MemberStatus::kLeft) continue;
    if (!ClusterMembership::HasPartition(m.complete, p)) continue;
    anyone_has_it = true;
    if (membership_->IsAlive(id) && std::find(candidates.begin(), candidates.end(), id) == candidates.end()) {
      candidates.push_back(id);
    }
  }
  if (!anyone_has_it && gossiper_->self().status == MemberStatus::kJoining) {
    return;  // a joiner that has not heard from the cluster yet must wait, never self-complete
  }
  if (!anyone_has_it) {
    // No member holds it (a new cluster, or every holder was removed): there
    // is nothing to pull; this node's copy is as complete as any.
    MarkComplete(p);
    return;
  }
  if (candidates.empty()) return;  // holders are down: try again later
  uint64_t id = kRequestBit | next_id_++;
  Pull& pull = pulls_[id];
  pull.partition = p;
  pull.source = candidates[(next_id_ + p) % candidates.size()];
  pull_of_partition_[p] = id;
  SendPull(id, pull);
}

void OwnershipHandoff::SendPull(uint64_t id, Pull& pull) {
  pull.sent_us = clock_->NowMicros();
  transport_->Send(pull.source, Envelope{id, self_, cluster_,
                                         HandoffRequest{pull.partition, pull.cursor, kBatchObjects,
                                                        kBatchBytes}});
}

HandoffBatch OwnershipHandoff::Serve(const HandoffRequest& req) {
  HandoffBatch out;
  out.partition = req.partition;
  const Ring& ring = membership_->ring();
  if (req.partition >= ring.ring_size()) {
    out.status = Status::InvalidArgument(fmt::format("no partition {}", req.partition));
    return out;
  }
  uint64_t first = ring.PartitionStart(req.partition);
  uint64_t last = ring.PartitionEnd(req.partition);
  first = std::max(first, StoreKeyHash(req.after));
  uint32_t max_objects = std::clamp<uint32_t>(req.max_objects, 1, 10000);
  uint32_t max_bytes = std::clamp<uint32_t>(req.max_bytes, 1024, 16 << 20);
  size_t bytes = 0;
  bool more = false;
  Status s = store_->Scan(first, last, [&](std::string_view key, const DvvSet& object) {
    std::string sk = ObjectStoreKey(key);
    if (!req.after.empty() && sk <= req.after) return true;  // already sent
    if (out.objects.size() >= max_objects || bytes >= max_bytes) {
      more = true;
      return false;
    }
    for (const Sibling& sib : object.siblings()) bytes += sib.value.size() + 32;
    bytes += key.size();
    out.objects.push_back(KeyedObject{std::string(key), object});
    out.next = std::move(sk);
    return true;
  });
  out.status = s;
  out.done = !more;
  if (out.next.empty()) out.next = req.after;
  objects_served_ += out.objects.size();
  return out;
}

void OwnershipHandoff::OnBatch(const NodeId& from, uint64_t id, HandoffBatch batch) {
  auto it = pulls_.find(id);
  if (it == pulls_.end() || it->second.source != from) return;
  Pull& pull = it->second;
  if (!batch.status.ok() || batch.partition != pull.partition) {
    pull_of_partition_.erase(pull.partition);
    pulls_.erase(it);
    return;
  }
  for (const KeyedObject& ko : batch.objects) {
    if (!merge_(ko.key, ko.object).ok()) {
      pull_of_partition_.erase(pull.partition);
      pulls_.erase(it);
      return;
    }
    ++objects_in_;
    bytes_in_ += ko.key.size();
    for (const Sibling& sib : ko.object.siblings()) bytes_in_ += sib.value.size();
  }
  pull.objects += batch.objects.size();
  if (batch.done) {
    uint32_t p = pull.partition;
    pull_of_partition_.erase(p);
    pulls_.erase(it);
    MarkComplete(p);
    if (running_) StartPulls();  // keep the pipe full
    return;
  }
  pull.cursor = batch.next;
  SendPull(id, pull);
}

void OwnershipHandoff::OnSendFailed(const NodeId& to, uint64_t id) {
  auto it = pulls_.find(id);
  if (it == pulls_.end() || it->second.source != to) return;
  pull_of_partition_.erase(it->second.partition);
  pulls_.erase(it);
}

void OwnershipHandoff::MarkComplete(uint32_t p) {
  ClusterMembership::SetPartition(&complete_, p, true);
  pending_.erase(p);
  ++done_;
  Persist();
}

void OwnershipHandoff::ForgetUnowned() {
  const Ring& current = membership_->ring();
  const Ring& future = membership_->future_ring();
  std::set<uint32_t> owned = ClusterMembership::OwnedBy(current, self_);
  auto fut = ClusterMembership::OwnedBy(future, self_);
  owned.insert(fut.begin(), fut.end());
  bool changed = false;
  for (uint32_t p = 0; p < current.ring_size(); ++p) {
    if (ClusterMembership::HasPartition(complete_, p) && !owned.contains(p)) {
      ClusterMembership::SetPartition(&complete_, p, false);
      draining_.insert(p);
      changed = true;
    }
  }
  if (changed) Persist();
}

bool OwnershipHandoff::DropSome(uint32_t p, bool held_completely) {
  const Ring& ring = membership_->ring();
  const Ring& future = membership_->future_ring();
  std::vector<NodeId> owners = future.Primaries(p, future.n_val());
  std::vector<std::pair<std::string, DvvSet>> slice;
  store_->Scan(ring.PartitionStart(p), ring.PartitionEnd(p), [&](std::string_view key, const DvvSet& object) {
    slice.emplace_back(std::string(key), object);
    return slice.size() < kDropPerTick;
  });
  size_t erased = 0;
  bool failed = false;
  for (const auto& [key, object] : slice) {
    if (!held_completely) {
      // A stray: its owners may never have seen it. Hand it to them first.
      for (const NodeId& owner : owners) failed = failed || !hint_(owner, key, object).ok();
      if (failed) break;
      ++strays_hinted_;
    }
    if (!erase_(key).ok()) {
      failed = true;
      break;
    }
    ++erased;
  }
  dropped_objects_ += erased;
  bool empty = !failed && slice.size() < kDropPerTick;
  if (empty && (held_completely || erased > 0)) ++dropped_partitions_;
  return empty;
}

std::string OwnershipHandoff::Json() const {
  nlohmann::json pulling = nlohmann::json::object();
  for (const auto& [id, pull] : pulls_) {
    pulling[std::to_string(pull.partition)] = {{"from", pull.source}, {"objects", pull.objects}};
  }
  size_t complete = 0;
  for (uint32_t p = 0; p < membership_->ring().ring_size(); ++p) {
    complete += ClusterMembership::HasPartition(complete_, p);
  }
  return nlohmann::json{{"partitions_held", complete},
                        {"pending", pending_},
                        {"pulling", pulling},
                        {"partitions_received", done_},
                        {"objects_in", objects_in_},
                        {"bytes_in", bytes_in_},
                        {"objects_served", objects_served_},
                        {"dropped_partitions", dropped_partitions_},
                        {"dropped_objects", dropped_objects_},
                        {"strays_hinted", strays_hinted_}}
      .dump();
}

}  // namespace ringkv
