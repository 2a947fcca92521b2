#include "node/hinted_handoff.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace ringkv {

namespace {
constexpr uint64_t kTickMs = 250;
constexpr size_t kBatchObjects = 64;
constexpr size_t kBatchBytes = 1 << 20;
constexpr uint64_t kBatchTimeoutUs = 5'000'000;
constexpr uint64_t kMinBackoffMs = 250;
constexpr uint64_t kMaxBackoffMs = 10'000;
}  // namespace

HintedHandoff::HintedHandoff(NodeId self, std::string cluster, Store* store, Transport* transport,
                             Clock* clock)
    : self_(std::move(self)),
      cluster_(std::move(cluster)),
      store_(store),
      transport_(transport),
      clock_(clock) {}

HintedHandoff::~HintedHandoff() { Stop(); }

Status HintedHandoff::Start() {
  std::map<NodeId, HintSummary> summary;
  Status s = store_->SummarizeHints(&summary);
  if (!s.ok()) return s;
  for (const auto& [target, sum] : summary) targets_[target].stats.queued = sum.count;
  running_ = true;
  timer_ = clock_->After(kTickMs, [this] { Tick(); });
  return Status::OK();
}

void HintedHandoff::Stop() {
  running_ = false;
  if (timer_ != 0) clock_->Cancel(timer_);
  timer_ = 0;
}

Status HintedHandoff::Add(const NodeId& target, const std::string& key, const DvvSet& object) {
  Hint hint;
  Status s = store_->GetHint(target, key, &hint);
  bool existed = s.ok();
  if (!s.ok() && !s.IsNotFound()) return s;
  if (existed) {
    hint.object = DvvSet::Sync(hint.object, object);
  } else {
    hint.key = key;
    hint.object = object;
    hint.created_ms = clock_->WallMillis();
  }
  s = store_->PutHint(target, hint);
  if (!s.ok()) return s;
  ++stored_;
  if (!existed) ++targets_[target].stats.queued;
  return Status::OK();
}

std::optional<DvvSet> HintedHandoff::Find(const NodeId& target, const std::string& key) {
  Hint hint;
  if (!store_->GetHint(target, key, &hint).ok()) return std::nullopt;
  return hint.object;
}

void HintedHandoff::Tick() {
  timer_ = 0;
  if (!running_) return;
  uint64_t now = clock_->NowMicros();
  for (auto& [target, t] : targets_) {
    if (t.stats.in_flight > 0) {
      if (now - t.batch_sent_us > kBatchTimeoutUs) {
        // Acks that never came: count them as failed and retry later.
        std::vector<uint64_t> stale;
        for (const auto& [id, f] : in_flight_) {
          if (f.target == target) stale.push_back(id);
        }
        for (uint64_t id : stale) Finish(id, false);
      }
      continue;
    }
    if (t.stats.queued == 0 || now < t.next_attempt_us) continue;
    SendBatch(target, t);
  }
  timer_ = clock_->After(kTickMs, [this] { Tick(); });
}

void HintedHandoff::SendBatch(const NodeId& target, Target& t) {
  std::vector<Hint> batch;
  size_t bytes = 0;
  Status s = store_->ScanHints(target, [&](const Hint& h) {
    batch.push_back(h);
    for (const Sibling& sib : h.object.siblings()) bytes += sib.value.size();
    bytes += h.key.size();
    return batch.size() < kBatchObjects && bytes < kBatchBytes;
  });
  if (!s.ok() || batch.empty()) {
    if (batch.empty()) t.stats.queued = 0;  // the counter drifted: nothing is left
    return;
  }
  NodeId destination = target;
  if (evacuate_to_ && alive_ && !alive_(target)) {
    destination = evacuate_to_(target);
    if (destination.empty()) return;  // nobody to hold them yet
  }
  t.batch_sent_us = clock_->NowMicros();
  t.batch_failed = false;
  t.stats.in_flight = batch.size();
  for (Hint& h : batch) {
    uint64_t id = kRequestBit | next_id_++;
    in_flight_[id] = InFlight{target, destination, h.key, h.object};
    NodeId hint_for = destination == target ? NodeId() : target;
    transport_->Send(destination,
                     Envelope{id, self_, cluster_, ReplicaWrite{h.key, h.object, hint_for}});
  }
}

void HintedHandoff::OnAck(const NodeId& from, uint64_t request_id, const Status& status) {
  auto it = in_flight_.find(request_id);
  if (it == in_flight_.end() || it->second.destination != from) return;
  Finish(request_id, status.ok());
}

void HintedHandoff::OnSendFailed(const NodeId& to, uint64_t request_id) {
  auto it = in_flight_.find(request_id);
  if (it == in_flight_.end() || it->second.destination != to) return;
  Finish(request_id, false);
}

void HintedHandoff::Finish(uint64_t request_id, bool ok) {
  auto it = in_flight_.find(request_id);
  if (it == in_flight_.end()) return;
  InFlight f = std::move(it->second);
  in_flight_.erase(it);
  Target& t = targets_[f.target];
  if (ok) {
    Hint current;
    if (store_->GetHint(f.target, f.key, &current).ok() && current.object == f.object) {
      if (store_->EraseHint(f.target, f.key).ok()) {
        ++t.stats.replayed;
        if (t.stats.queued > 0) --t.stats.queued;
      }
    }
  } else {
    ++t.stats.failed;
    t.batch_failed = true;
  }
  if (t.stats.in_flight > 0) --t.stats.in_flight;
  if (t.stats.in_flight == 0) BatchDone(f.target, t);
}

void HintedHandoff::BatchDone(const NodeId& target, Target& t) {
  if (t.batch_failed) {
    t.backoff_ms = std::clamp<uint64_t>(t.backoff_ms * 2, kMinBackoffMs, kMaxBackoffMs);
    t.next_attempt_us = clock_->NowMicros() + t.backoff_ms * 1000;
    return;
  }
  t.backoff_ms = 0;
  t.next_attempt_us = 0;
  if (running_ && t.stats.queued > 0) SendBatch(target, t);  // keep the pipe full
}

void HintedHandoff::OnPeerAlive(const NodeId& peer) {
  auto it = targets_.find(peer);
  if (it == targets_.end()) return;
  it->second.next_attempt_us = 0;
  it->second.backoff_ms = 0;
  if (running_ && it->second.stats.in_flight == 0 && it->second.stats.queued > 0) {
    SendBatch(peer, it->second);
  }
}

std::optional<DvvSet> HintedHandoff::FindAny(const std::string& key) {
  std::optional<DvvSet> merged;
  for (const auto& [target, t] : targets_) {
    if (t.stats.queued == 0 && t.stats.in_flight == 0) continue;
    if (auto h = Find(target, key)) merged = merged ? DvvSet::Sync(*merged, *h) : *h;
  }
  return merged;
}

std::vector<std::pair<NodeId, DvvSet>> HintedHandoff::FindEach(const std::string& key) {
  // Every target ever seen, whatever its counters say: the tombstone reaper
  // must not miss a hint.
  std::vector<std::pair<NodeId, DvvSet>> out;
  for (const auto& [target, t] : targets_) {
    if (auto h = Find(target, key)) out.emplace_back(target, std::move(*h));
  }
  return out;
}

void HintedHandoff::Evacuate(std::function<NodeId(const NodeId&)> pick,
                             std::function<bool(const NodeId&)> alive) {
  evacuate_to_ = std::move(pick);
  alive_ = std::move(alive);
  for (auto& [target, t] : targets_) {
    t.next_attempt_us = 0;
    t.backoff_ms = 0;
  }
}

uint64_t HintedHandoff::queued() const {
  uint64_t n = 0;
  for (const auto& [target, t] : targets_) n += t.stats.queued;
  return n;
}

std::map<NodeId, HintedHandoff::TargetStats> HintedHandoff::Stats() const {
  std::map<NodeId, TargetStats> out;
  for (const auto& [target, t] : targets_) out[target] = t.stats;
  return out;
}

std::string HintedHandoff::Json() {
  std::map<NodeId, HintSummary> summary;
  store_->SummarizeHints(&summary);
  uint64_t now_ms = clock_->WallMillis();
  nlohmann::json targets = nlohmann::json::object();
  uint64_t total = 0, replayed = 0, failed = 0;
  for (auto& [target, t] : targets_) {
    auto sit = summary.find(target);
    uint64_t queued = sit == summary.end() ? 0 : sit->second.count;
    t.stats.queued = queued;  // resynchronise with the store
    double oldest = sit == summary.end() || now_ms < sit->second.oldest_ms
                        ? 0.0
                        : static_cast<double>(now_ms - sit->second.oldest_ms) / 1000.0;
    targets[target] = {{"queued", queued},
                       {"oldest_age_s", oldest},
                       {"replayed", t.stats.replayed},
                       {"failed", t.stats.failed},
                       {"in_flight", t.stats.in_flight}};
    total += queued;
    replayed += t.stats.replayed;
    failed += t.stats.failed;
  }
  return nlohmann::json{{"node", self_},
                        {"queued", total},
                        {"stored", stored_},
                        {"replayed", replayed},
                        {"failed", failed},
                        {"targets", targets}}
      .dump();
}

}  // namespace ringkv
