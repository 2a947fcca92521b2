#include "node/anti_entropy.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/hash.h"

namespace ringkv {

namespace {
constexpr uint64_t kTickMs = 50;
constexpr size_t kRebuildSlice = 2000;
constexpr uint64_t kExchangeTimeoutUs = 15'000'000;
constexpr size_t kMaxRepairReadsInFlight = 64;
}  // namespace

AntiEntropy::AntiEntropy(NodeId self, std::string cluster, AaeConfig config, Store* store,
                         Transport* transport, Clock* clock, const ClusterMembership* membership,
                         MergeFn merge)
    : self_(std::move(self)),
      cluster_(std::move(cluster)),
      config_(config),
      store_(store),
      transport_(transport),
      clock_(clock),
      membership_(membership),
      merge_(std::move(merge)) {}

AntiEntropy::~AntiEntropy() { Stop(); }

void AntiEntropy::Start() {
  running_ = true;
  OnMembershipChange();
  last_exchange_start_us_ = clock_->NowMicros();
  last_tick_us_ = clock_->NowMicros();
  timer_ = clock_->After(kTickMs, [this] { Tick(); });
}

void AntiEntropy::Stop() {
  running_ = false;
  if (timer_ != 0) clock_->Cancel(timer_);
  timer_ = 0;
}

void AntiEntropy::OnMembershipChange() {
  const Ring& ring = membership_->ring();
  if (ring.ring_size() == 0) return;
  auto owned = ClusterMembership::OwnedBy(ring, self_);
  auto future = ClusterMembership::OwnedBy(membership_->future_ring(), self_);
  owned.insert(future.begin(), future.end());
  for (auto it = trees_.begin(); it != trees_.end();) {
    it = owned.contains(it->first) ? std::next(it) : trees_.erase(it);
  }
  for (uint32_t p : owned) {
    if (trees_.contains(p)) continue;
    auto tree = MerkleTree::Create(ring.ring_size(), p, config_.tree);
    if (!tree.ok()) continue;
    TreeState& t = trees_.emplace(p, TreeState{std::move(tree).value(), false, false, {}}).first->second;
    t.rebuilding = true;  // built from the store in slices
  }
}

void AntiEntropy::RebuildAll() {
  for (auto& [p, t] : trees_) {
    t.tree.Clear();
    t.ready = false;
    t.rebuilding = true;
    t.cursor.clear();
  }
  ++stats_.rebuilds;
}

void AntiEntropy::OnWrite(const std::string& key, const DvvSet* old, const DvvSet* now) {
  if (trees_.empty()) return;
  uint64_t hash = KeyHash(key);
  auto it = trees_.find(membership_->ring().PartitionOfHash(hash));
  if (it == trees_.end()) return;
  TreeState& t = it->second;
  // Keys the rebuild has not reached yet are picked up by its scan.
  if (t.rebuilding && (t.cursor.empty() || ObjectStoreKey(key) > t.cursor)) return;
  t.tree.Apply(key, hash, old ? ObjectDigest(*old) : std::string(),
               now ? ObjectDigest(*now) : std::string());
}

void AntiEntropy::RebuildSlice() {
  size_t n = 0;  // keys scanned this turn, over as many partitions as fit
  for (auto& [p, t] : trees_) {
    if (n >= kRebuildSlice) return;
    if (!t.rebuilding) continue;
    const Ring& ring = membership_->ring();
    uint64_t first = ring.PartitionStart(p);
    uint64_t last = ring.PartitionEnd(p);
    if (t.cursor.empty()) {
      t.tree.Clear();
    } else {
      first = std::max(first, StoreKeyHash(t.cursor));
    }
    bool more = false;
    std::string cursor = t.cursor;
    store_->Scan(first, last, [&](std::string_view key, const DvvSet& object) {
      std::string sk = ObjectStoreKey(key);
      if (!cursor.empty() && sk <= cursor) return true;
      if (n >= kRebuildSlice) {
        more = true;
        return false;
      }
      t.tree.Apply(key, KeyHash(key), {}, ObjectDigest(object));
      cursor = std::move(sk);
      ++n;
      return true;
    });
    if (more) {
      t.cursor = cursor.empty() ? std::string(1, 'o') : cursor;
    } else {
      t.rebuilding = false;
      t.ready = true;
      t.cursor.clear();
    }
  }
}

void AntiEntropy::Tick() {
  timer_ = 0;
  if (!running_) return;
  uint64_t now = clock_->NowMicros();
  RebuildSlice();
  if (config_.enabled) {
    repair_budget_ = std::min<double>(
        repair_budget_ + config_.max_keys_per_sec * static_cast<double>(now - last_tick_us_) / 1e6,
        config_.max_keys_per_sec);
    if (exchange_) {
      if (now - exchange_->last_activity_us > kExchangeTimeoutUs) {
        Finish(false);
      } else if (!exchange_->to_repair.empty()) {
        RepairSome(static_cast<size_t>(repair_budget_));
      }
    } else if (now - last_exchange_start_us_ >= config_.interval_ms * 1000) {
      MaybeStartExchange();
    }
  }
  last_tick_us_ = now;
  timer_ = clock_->After(kTickMs, [this] { Tick(); });
}

void AntiEntropy::ExchangeNow() {
  if (!exchange_) MaybeStartExchange();
}

void AntiEntropy::Send(const NodeId& to, Body body, uint64_t* id) {
  *id = kRequestBit | next_id_++;
  transport_->Send(to, Envelope{*id, self_, cluster_, std::move(body)});
}

void AntiEntropy::MaybeStartExchange() {
  last_exchange_start_us_ = clock_->NowMicros();
  std::vector<uint32_t> ready;
  const Ring& ring = membership_->ring();
  for (const auto& [p, t] : trees_) {
    auto owners = ring.Primaries(p, ring.n_val());
    if (t.ready && std::count(owners.begin(), owners.end(), self_)) ready.push_back(p);
  }
  if (ready.empty()) return;
  uint32_t p = ready[next_partition_++ % ready.size()];
  if (retry_partition_ && std::count(ready.begin(), ready.end(), *retry_partition_)) {
    p = *retry_partition_;  // the last exchange left differences behind
    --next_partition_;
  }
  retry_partition_.reset();
  std::vector<NodeId> peers;
  for (const NodeId& id : ring.Primaries(p, ring.n_val())) {
    if (id != self_ && membership_->IsAlive(id)) peers.push_back(id);
  }
  if (peers.empty()) return;
  auto ex = std::make_unique<Exchange>();
  ex->partition = p;
  ex->peer = peers[next_peer_++ % peers.size()];
  ex->started_us = ex->last_activity_us = clock_->NowMicros();
  ExchangeOptions opts;
  opts.max_segments = 512;
  opts.first_segment = first_segment_;
  first_segment_ += 17;
  ex->tree_exchange = std::make_unique<TreeExchange>(trees_.at(p).tree, opts);
  AaeHashesRequest req = ex->tree_exchange->Start();
  exchange_ = std::move(ex);
  Send(exchange_->peer, std::move(req), &exchange_->id);
}

AaeHashesReply AntiEntropy::AnswerHashes(const AaeHashesRequest& req) const {
  auto it = trees_.find(req.partition);
  if (it == trees_.end() || !it->second.ready) {
    AaeHashesReply out;
    out.partition = req.partition;
    out.level = req.level;
    out.status = Status::Unavailable(fmt::format("{} has no tree for partition {} yet", self_, req.partition));
    return out;
  }
  return ringkv::AnswerHashes(it->second.tree, req);
}

DigestScan AntiEntropy::Scanner() const {
  return [this](uint64_t first, uint64_t last, const DigestVisitor& visit) {
    return store_->Scan(first, last, [&](std::string_view key, const DvvSet& object) {
      visit(key, ObjectDigest(object));
      return true;
    });
  };
}

AaeSegmentReply AntiEntropy::AnswerSegments(const AaeSegmentRequest& req) const {
  auto it = trees_.find(req.partition);
  if (it == trees_.end() || !it->second.ready) {
    AaeSegmentReply out;
    out.partition = req.partition;
    out.status = Status::Unavailable(fmt::format("{} has no tree for partition {} yet", self_, req.partition));
    return out;
  }
  return ringkv::AnswerSegments(it->second.tree, req, Scanner());
}

void AntiEntropy::OnHashesReply(const NodeId& from, uint64_t id, const AaeHashesReply& reply) {
  if (!exchange_ || exchange_->id != id || exchange_->peer != from) return;
  auto it = trees_.find(exchange_->partition);
  if (it == trees_.end()) return Finish(false);
  exchange_->last_activity_us = clock_->NowMicros();
  auto step = exchange_->tree_exchange->OnHashes(it->second.tree, reply);
  if (!step.ok()) return Finish(false);
  if (auto* h = std::get_if<AaeHashesRequest>(&*step)) {
    Send(from, std::move(*h), &exchange_->id);
  } else if (auto* s = std::get_if<AaeSegmentRequest>(&*step)) {
    Send(from, std::move(*s), &exchange_->id);
  } else {
    Finish(true);  // roots (or all branches) equal
  }
}

void AntiEntropy::OnSegmentsReply(const NodeId& from, uint64_t id, const AaeSegmentReply& reply) {
  if (!exchange_ || exchange_->id != id || exchange_->peer != from) return;
  auto it = trees_.find(exchange_->partition);
  if (it == trees_.end()) return Finish(false);
  exchange_->last_activity_us = clock_->NowMicros();
  Status s = exchange_->tree_exchange->OnSegments(it->second.tree, reply, Scanner());
  if (!s.ok()) return Finish(false);
  for (const std::string& key : exchange_->tree_exchange->DifferingKeys()) {
    exchange_->to_repair.push_back(key);
  }
  if (exchange_->to_repair.empty()) return Finish(true);
  RepairSome(static_cast<size_t>(std::max(0.0, repair_budget_)));  // start now, not next tick
}

void AntiEntropy::RepairSome(size_t budget) {
  Exchange& ex = *exchange_;
  while (budget > 0 && !ex.to_repair.empty() && ex.reads.size() < kMaxRepairReadsInFlight) {
    std::string key = std::move(ex.to_repair.front());
    ex.to_repair.pop_front();
    uint64_t id = 0;
    Send(ex.peer, ReplicaRead{key, {}}, &id);
    ex.reads[id] = std::move(key);
    --budget;
    repair_budget_ -= 1;
  }
}

void AntiEntropy::OnReadReply(const NodeId& from, uint64_t id, const ReplicaReadReply& reply) {
  if (!exchange_ || exchange_->peer != from) return;
  auto it = exchange_->reads.find(id);
  if (it == exchange_->reads.end()) return;
  std::string key = std::move(it->second);
  exchange_->reads.erase(it);
  exchange_->last_activity_us = clock_->NowMicros();
  if (reply.status.ok() || reply.status.IsNotFound()) {
    DvvSet local;
    Status s = store_->Get(key, &local);
    if (s.ok() || s.IsNotFound()) {
      DvvSet remote = reply.object ? *reply.object : DvvSet();
      DvvSet merged = DvvSet::Sync(local, remote);
      bool changed = false;
      if (!(merged == local)) {
        if (merge_(key, remote).ok()) ++stats_.repairs_local;
        changed = true;
      }
      if (!(merged == remote)) {
        transport_->Send(from, Envelope{0, self_, cluster_, ReplicaWrite{key, merged, {}}});
        ++stats_.repairs_sent;
        changed = true;
      }
      if (changed) {
        ++stats_.keys_repaired;
        ++exchange_->repaired;
      }
    }
  }
  if (exchange_->to_repair.empty() && exchange_->reads.empty()) return Finish(true);
  // Keep up to kMaxRepairReadsInFlight reads going while the budget allows.
  RepairSome(static_cast<size_t>(std::max(0.0, repair_budget_)));
}

void AntiEntropy::OnSendFailed(const NodeId& to, uint64_t id) {
  if (exchange_ && exchange_->peer == to && (exchange_->id == id || exchange_->reads.contains(id))) {
    Finish(false);
  }
}

void AntiEntropy::Finish(bool ok) {
  if (!exchange_) return;
  const ExchangeStats& es = exchange_->tree_exchange->stats();
  ++stats_.exchanges;
  if (!ok) ++stats_.exchanges_failed;
  stats_.segments_differing += es.segments_differing;
  stats_.keys_differing += es.keys_differing;
  stats_.bytes += es.bytes();
  LastExchange& last = last_[exchange_->partition];
  last.peer = exchange_->peer;
  last.at_ms = clock_->WallMillis();
  last.differences = es.keys_differing;
  last.repaired = exchange_->repaired;
  last.bytes = es.bytes();
  last.ok = ok;
  // While there is repair work, go on at once instead of waiting an interval;
  // an exchange that hit its cap continues with the same partition.
  bool go_on = ok && (exchange_->repaired > 0 || es.truncated());
  if (go_on) {
    last_exchange_start_us_ = 0;
    if (es.truncated()) retry_partition_ = exchange_->partition;
  }
  exchange_.reset();
  if (go_on && running_ && config_.enabled) MaybeStartExchange();
}

size_t AntiEntropy::trees_ready() const {
  size_t n = 0;
  for (const auto& [p, t] : trees_) n += t.ready;
  return n;
}

std::string AntiEntropy::Json() const {
  nlohmann::json parts = nlohmann::json::array();
  uint64_t now_ms = clock_->WallMillis();
  for (const auto& [p, last] : last_) {
    parts.push_back({{"partition", p},
                     {"peer", last.peer},
                     {"seconds_ago", now_ms >= last.at_ms ? (now_ms - last.at_ms) / 1000.0 : 0.0},
                     {"differences", last.differences},
                     {"repaired", last.repaired},
                     {"bytes", last.bytes},
                     {"ok", last.ok}});
  }
  return nlohmann::json{{"node", self_},
                        {"enabled", config_.enabled},
                        {"interval_ms", config_.interval_ms},
                        {"max_keys_per_sec", config_.max_keys_per_sec},
                        {"trees", trees_.size()},
                        {"trees_ready", trees_ready()},
                        {"exchanging", exchanging()},
                        {"exchanges", stats_.exchanges},
                        {"exchanges_failed", stats_.exchanges_failed},
                        {"segments_differing", stats_.segments_differing},
                        {"keys_differing", stats_.keys_differing},
                        {"keys_repaired", stats_.keys_repaired},
                        {"repairs_sent", stats_.repairs_sent},
                        {"repairs_local", stats_.repairs_local},
                        {"bytes", stats_.bytes},
                        {"rebuilds", stats_.rebuilds},
                        {"partitions", parts}}
      .dump();
}

}  // namespace ringkv
