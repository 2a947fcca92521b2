#include "node/tombstone_reaper.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/expiry.h"
#include "core/hash.h"

namespace ringkv {

namespace {
constexpr uint64_t kTickMs = 200;
constexpr size_t kScanSlice = 2000;           // objects looked at per tick
constexpr size_t kMaxCandidates = 512;        // found, not yet checked
constexpr size_t kBatchKeys = 64;             // keys per check round
constexpr uint64_t kCheckTimeoutUs = 5'000'000;
constexpr uint64_t kReapAckTimeoutUs = 3'000'000;
constexpr int kMaxReapAttempts = 3;
constexpr size_t kMaxFences = 1 << 16;
constexpr const char* kFloorMeta = "reap-floor";
}  // namespace

TombstoneReaper::TombstoneReaper(NodeId self, std::string cluster, TombstoneConfig config,
                                 Store* store, Transport* transport, Clock* clock,
                                 const ClusterMembership* membership, HintedHandoff* hints,
                                 MergeFn merge, EraseFn erase)
    : self_(std::move(self)),
      cluster_(std::move(cluster)),
      config_(config),
      store_(store),
      transport_(transport),
      clock_(clock),
      membership_(membership),
      hints_(hints),
      merge_(std::move(merge)),
      erase_(std::move(erase)) {}

TombstoneReaper::~TombstoneReaper() { Stop(); }

Status TombstoneReaper::Start() {
  std::string v;
  Status s = store_->GetMeta(kFloorMeta, &v);
  if (s.ok()) {
    floor_ = std::strtoull(v.c_str(), nullptr, 10);
  } else if (!s.IsNotFound()) {
    return s;
  }
  // Every node answers checks and reaps; only a node with a grace leads.
  if (config_.grace_ms == 0) return Status::OK();
  running_ = true;
  last_tick_us_ = clock_->NowMicros();
  // The first pass waits a little: at start the failure detector has not
  // heard from anyone yet.
  next_pass_us_ = last_tick_us_ + PassIntervalMs() * 1000 / 4;
  timer_ = clock_->After(kTickMs, [this] { Tick(); });
  return Status::OK();
}

void TombstoneReaper::Stop() {
  running_ = false;
  if (timer_ != 0) clock_->Cancel(timer_);
  timer_ = 0;
}

uint64_t TombstoneReaper::PassIntervalMs() const {
  return std::clamp<uint64_t>(config_.grace_ms / 4, 1000, 600'000);
}

// ---------------------------------------------------------------------------
// Coordinator: scan, check, reap

void TombstoneReaper::Tick() {
  timer_ = 0;
  if (!running_) return;
  uint64_t now = clock_->NowMicros();
  double rate = std::max<uint32_t>(config_.max_keys_per_sec, 1);
  budget_ = std::min(budget_ + rate * static_cast<double>(now - last_tick_us_) / 1e6,
                     std::max(rate, 1.0));
  last_tick_us_ = now;
  if (round_ && now - round_->started_us > kCheckTimeoutUs) AbortRound("timeout");
  RetryReaps();
  if (!round_) {
    if (candidates_.empty()) ScanSlice();
    if (!candidates_.empty()) StartRound();
  }
  timer_ = clock_->After(kTickMs, [this] { Tick(); });
}

bool TombstoneReaper::IsCandidate(const std::string& key, const DvvSet& object,
                                  uint64_t now_ms) const {
  // Every sibling a tombstone or an expired value (core/expiry.h), the
  // newest of them (a tombstone's time, a value's expiry) past the grace.
  uint64_t newest = DeadSince(object, now_ms);
  if (newest == 0) return false;
  if (now_ms < config_.grace_ms || newest > now_ms - config_.grace_ms) return false;
  const Ring& ring = membership_->ring();
  if (ring.ring_size() == 0) return false;
  auto primaries = ring.Primaries(ring.PartitionOfKey(key), ring.n_val());
  return !primaries.empty() && primaries[0] == self_;
}

void TombstoneReaper::ScanSlice() {
  uint64_t now_us = clock_->NowMicros();
  const Ring& ring = membership_->ring();
  if (ring.ring_size() == 0) return;
  if (!in_pass_) {
    if (now_us < next_pass_us_) return;
    pass_partitions_.clear();
    for (uint32_t p = 0; p < ring.ring_size(); ++p) {
      auto primaries = ring.Primaries(p, ring.n_val());
      if (!primaries.empty() && primaries[0] == self_) pass_partitions_.push_back(p);
    }
    pass_index_ = 0;
    cursor_.clear();
    in_pass_ = true;
  }
  uint64_t now_ms = clock_->WallMillis();
  size_t n = 0;
  while (pass_index_ < pass_partitions_.size() && n < kScanSlice &&
         candidates_.size() < kMaxCandidates) {
    uint32_t p = pass_partitions_[pass_index_];
    uint64_t first = ring.PartitionStart(p);
    uint64_t last = ring.PartitionEnd(p);
    if (!cursor_.empty()) first = std::max(first, StoreKeyHash(cursor_));
    bool more = false;
    std::string cursor = cursor_;
    store_->Scan(first, last, [&](std::string_view key, const DvvSet& object) {
      std::string sk = ObjectStoreKey(key);
      if (!cursor.empty() && sk <= cursor) return true;
      if (n >= kScanSlice || candidates_.size() >= kMaxCandidates) {
        more = true;
        return false;
      }
      ++n;
      ++stats_.scanned;
      cursor = std::move(sk);
      std::string k(key);
      if (IsCandidate(k, object, now_ms) && candidate_keys_.insert(k).second) {
        candidates_.push_back(KeyedObject{std::move(k), object});
        ++stats_.candidates;
      }
      return true;
    });
    if (more) {
      cursor_ = std::move(cursor);
      break;
    }
    ++pass_index_;
    cursor_.clear();
  }
  if (pass_index_ >= pass_partitions_.size()) {
    in_pass_ = false;
    ++stats_.passes;
    next_pass_us_ = now_us + PassIntervalMs() * 1000;
  }
}

void TombstoneReaper::StartRound() {
  // Every member that may hold a copy must answer: all but left and removed.
  // One that is down may keep an older version on disk (or a hint of it).
  std::vector<NodeId> members;
  bool all_alive = true;
  for (const MemberInfo& m : membership_->Members()) {
    if (m.id == self_ || m.state == MemberStatusName(MemberStatus::kLeft) ||
        m.state == MemberStatusName(MemberStatus::kRemoved)) {
      continue;
    }
    if (!m.alive) all_alive = false;
    members.push_back(m.id);
  }
  if (!all_alive) {
    // Found again by a later pass.
    stats_.keys_skipped += candidates_.size();
    candidates_.clear();
    candidate_keys_.clear();
    return;
  }
  size_t n = std::min(kBatchKeys, static_cast<size_t>(budget_));
  if (n == 0) return;
  Round round;
  uint64_t now_ms = clock_->WallMillis();
  uint64_t floor = floor_;
  while (round.entries.size() < n && !candidates_.empty()) {
    KeyedObject c = std::move(candidates_.front());
    candidates_.pop_front();
    candidate_keys_.erase(c.key);
    // The object may have changed since the scan.
    DvvSet current;
    if (!store_->Get(c.key, &current).ok() || !IsCandidate(c.key, current, now_ms)) continue;
    budget_ -= 1;
    ++stats_.keys_checked;
    // This node is a member too: its own hints for the key count.
    ReapVerdict v = CheckOne(c.key, current, &floor);
    if (v == ReapVerdict::kNewer) {
      ++stats_.keys_aborted;
      continue;
    }
    if (v == ReapVerdict::kBusy) {
      ++stats_.keys_busy;
      continue;
    }
    Entry e;
    e.tombstone = KeyedObject{c.key, std::move(current)};
    e.holders.insert(self_);
    round.entries.push_back(std::move(e));
  }
  if (floor > floor_) {
    if (!store_->PutMeta(kFloorMeta, std::to_string(floor)).ok()) return;
    floor_ = floor;
  }
  if (round.entries.empty()) return;
  round.started_us = clock_->NowMicros();
  ReapCheck req;
  for (const Entry& e : round.entries) req.entries.push_back(e.tombstone);
  std::vector<std::pair<uint64_t, NodeId>> sends;
  for (const NodeId& m : members) {
    uint64_t id = kRequestBit | next_id_++;
    round.pending[id] = m;
    sends.emplace_back(id, m);
  }
  round_ = std::move(round);
  if (sends.empty()) {
    FinishRound();  // a cluster of one
    return;
  }
  for (const auto& [id, m] : sends) {
    // A transport may report a failure at once; the round is gone then.
    if (!round_ || !round_->pending.contains(id)) break;
    ++stats_.checks_sent;
    transport_->Send(m, Envelope{id, self_, cluster_, req});
  }
}

void TombstoneReaper::OnCheckReply(const NodeId& from, uint64_t id, const ReapCheckReply& reply) {
  if (!round_) return;
  auto it = round_->pending.find(id);
  if (it == round_->pending.end() || it->second != from) return;
  round_->pending.erase(it);
  if (!reply.status.ok() || reply.verdicts.size() != round_->entries.size()) {
    AbortRound("a member could not check");
    return;
  }
  for (size_t i = 0; i < reply.verdicts.size(); ++i) {
    Entry& e = round_->entries[i];
    switch (reply.verdicts[i]) {
      case ReapVerdict::kOk:
        break;
      case ReapVerdict::kOkHolding:
        e.holders.insert(from);
        break;
      case ReapVerdict::kNewer:
        if (!e.failed) ++stats_.keys_aborted;
        e.failed = true;
        break;
      case ReapVerdict::kBusy:
        if (!e.failed) ++stats_.keys_busy;
        e.failed = true;
        break;
    }
  }
  if (round_->pending.empty()) FinishRound();
}

void TombstoneReaper::AbortRound(const char* why) {
  if (!round_) return;
  for (const Entry& e : round_->entries) stats_.keys_busy += !e.failed;
  round_.reset();
}

void TombstoneReaper::FinishRound() {
  Round round = std::move(*round_);
  round_.reset();
  const Ring& ring = membership_->ring();
  std::map<NodeId, std::vector<KeyedObject>> by_target;
  for (Entry& e : round.entries) {
    if (e.failed) continue;
    ++stats_.keys_reaped;
    std::set<NodeId> targets = std::move(e.holders);
    for (const NodeId& id : ring.Primaries(ring.PartitionOfKey(e.tombstone.key), ring.n_val())) {
      targets.insert(id);
    }
    for (const NodeId& id : membership_->PendingOwners(e.tombstone.key)) targets.insert(id);
    for (const NodeId& t : targets) by_target[t].push_back(e.tombstone);
  }
  for (auto& [target, entries] : by_target) {
    if (target == self_) {
      AnswerReap(Reap{std::move(entries)});
    } else {
      SendReap(PendingReap{target, std::move(entries), 0, 0});
    }
  }
}

void TombstoneReaper::SendReap(PendingReap reap) {
  uint64_t id = kRequestBit | next_id_++;
  ++reap.attempts;
  reap.sent_us = clock_->NowMicros();
  NodeId to = reap.to;
  Reap msg{reap.entries};
  reaps_[id] = std::move(reap);
  transport_->Send(to, Envelope{id, self_, cluster_, std::move(msg)});
}

void TombstoneReaper::RetryReaps() {
  uint64_t now = clock_->NowMicros();
  std::vector<uint64_t> due;
  for (const auto& [id, r] : reaps_) {
    if (r.sent_us == 0 || now - r.sent_us > kReapAckTimeoutUs) due.push_back(id);
  }
  for (uint64_t id : due) {
    auto it = reaps_.find(id);
    if (it == reaps_.end()) continue;
    PendingReap r = std::move(it->second);
    reaps_.erase(it);
    if (r.attempts >= kMaxReapAttempts) {
      // That node keeps its tombstones; anti-entropy copies them back to the
      // others and a later pass reaps them again. Repeated work, no harm.
      stats_.reaps_given_up += r.entries.size();
      continue;
    }
    SendReap(std::move(r));
  }
}

void TombstoneReaper::OnReapAck(const NodeId& from, uint64_t id, const ReapAck& ack) {
  auto it = reaps_.find(id);
  if (it == reaps_.end() || it->second.to != from) return;
  if (ack.status.ok()) {
    reaps_.erase(it);
  } else {
    it->second.sent_us = 0;  // retried at the next tick
  }
}

void TombstoneReaper::OnSendFailed(const NodeId& to, uint64_t id) {
  if (round_) {
    auto it = round_->pending.find(id);
    if (it != round_->pending.end() && it->second == to) {
      AbortRound("a member is unreachable");
      return;
    }
  }
  auto it = reaps_.find(id);
  if (it != reaps_.end() && it->second.to == to) it->second.sent_us = 0;
}

// ---------------------------------------------------------------------------
// Member: check and reap

uint64_t TombstoneReaper::OwnCounter(const VersionVector& clock) const {
  uint64_t c = clock.Get(self_);
  if (!data_type_actor_.empty()) c = std::max(c, clock.Get(data_type_actor_));
  return c;
}

ReapVerdict TombstoneReaper::CheckOne(const std::string& key, const DvvSet& tombstone,
                                      uint64_t* floor) {
  ++stats_.checks_answered;
  DvvSet local;
  Status s = store_->Get(key, &local);
  if (!s.ok() && !s.IsNotFound()) return ReapVerdict::kBusy;  // cannot tell
  bool holding = s.ok();
  if (holding && !tombstone.clock().Descends(local.clock())) return ReapVerdict::kNewer;
  auto hinted = hints_->FindEach(key);
  for (const auto& [target, h] : hinted) {
    if (!tombstone.clock().Descends(h.clock())) return ReapVerdict::kNewer;
  }
  // Everything held is older: make it carry the tombstone, so whatever is
  // delivered or repaired from here on deletes rather than revives.
  if (holding && !(DvvSet::Sync(local, tombstone) == local)) {
    if (!merge_(key, tombstone).ok()) return ReapVerdict::kBusy;
  }
  for (const auto& [target, h] : hinted) {
    if (!(DvvSet::Sync(h, tombstone) == h) && !hints_->Add(target, key, tombstone).ok()) {
      return ReapVerdict::kBusy;
    }
  }
  SetFence(key, tombstone);
  *floor = std::max(*floor, OwnCounter(tombstone.clock()));
  if (!hinted.empty()) return ReapVerdict::kBusy;  // reaped once delivered
  return holding ? ReapVerdict::kOkHolding : ReapVerdict::kOk;
}

ReapCheckReply TombstoneReaper::AnswerCheck(const ReapCheck& req) {
  ReapCheckReply out;
  uint64_t floor = floor_;
  out.verdicts.reserve(req.entries.size());
  for (const KeyedObject& e : req.entries) out.verdicts.push_back(CheckOne(e.key, e.object, &floor));
  if (floor > floor_) {
    // Durable before the answer: once every member said ok, the key may be
    // gone everywhere, and only the floor keeps its dots from being reused.
    Status s = store_->PutMeta(kFloorMeta, std::to_string(floor));
    if (!s.ok()) return ReapCheckReply{s, {}};
    floor_ = floor;
  }
  return out;
}

ReapAck TombstoneReaper::AnswerReap(const Reap& req) {
  ReapAck ack;
  uint64_t floor = floor_;
  for (const KeyedObject& e : req.entries) {
    floor = std::max(floor, OwnCounter(e.object.clock()));
    // A message still in flight may carry an older version: keep fencing.
    SetFence(e.key, e.object);
  }
  if (floor > floor_) {
    Status s = store_->PutMeta(kFloorMeta, std::to_string(floor));
    if (!s.ok()) return ReapAck{s, 0};
    floor_ = floor;
  }
  for (const KeyedObject& e : req.entries) {
    DvvSet local;
    if (!store_->Get(e.key, &local).ok()) continue;
    // Compare-and-delete: a write that arrived since the check wins. The
    // leader judged the expiry by its clock; a write since would have
    // changed the clock.
    if (!OnlyEndingSiblings(local) || !(local.clock() == e.object.clock())) continue;
    bool expired_value = !local.LiveSiblings().empty();
    Status s = erase_(e.key);
    if (s.ok()) {
      ++ack.reaped;
      ++stats_.erased;
      stats_.expired_erased += expired_value;
    } else {
      ack.status = s;
    }
  }
  return ack;
}

// ---------------------------------------------------------------------------
// Fences

void TombstoneReaper::SetFence(const std::string& key, const DvvSet& tombstone) {
  uint64_t now = clock_->NowMicros();
  while (!fence_order_.empty() &&
         (fence_order_.front().first <= now || fences_.size() > kMaxFences)) {
    auto it = fences_.find(fence_order_.front().second);
    if (it != fences_.end() && it->second.expires_us == fence_order_.front().first) {
      fences_.erase(it);
    }
    fence_order_.pop_front();
  }
  uint64_t expires = now + kFenceMs * 1000;
  Fence& f = fences_[key];
  f.tombstone = f.expires_us > now ? DvvSet::Sync(f.tombstone, tombstone) : tombstone;
  f.expires_us = expires;
  fence_order_.emplace_back(expires, key);
}

std::optional<DvvSet> TombstoneReaper::Fenced(const std::string& key, const DvvSet& object) {
  if (fences_.empty()) return std::nullopt;
  auto it = fences_.find(key);
  if (it == fences_.end() || it->second.expires_us <= clock_->NowMicros()) return std::nullopt;
  return DvvSet::Sync(object, it->second.tombstone);
}

std::string TombstoneReaper::Json() const {
  return nlohmann::json{{"node", self_},
                        {"grace_s", config_.grace_ms / 1000.0},
                        {"max_keys_per_sec", config_.max_keys_per_sec},
                        {"passes", stats_.passes},
                        {"scanned", stats_.scanned},
                        {"candidates", stats_.candidates},
                        {"checks_sent", stats_.checks_sent},
                        {"keys_checked", stats_.keys_checked},
                        {"keys_aborted", stats_.keys_aborted},
                        {"keys_busy", stats_.keys_busy},
                        {"keys_skipped", stats_.keys_skipped},
                        {"keys_reaped", stats_.keys_reaped},
                        {"reaps_given_up", stats_.reaps_given_up},
                        {"checks_answered", stats_.checks_answered},
                        {"tombstones_erased", stats_.erased},
                        {"expired_erased", stats_.expired_erased},
                        {"fences", fences_.size()},
                        {"dot_floor", floor_},
                        {"checking", round_.has_value()},
                        {"reaps_in_flight", reaps_.size()}}
      .dump();
}

}  // namespace ringkv
