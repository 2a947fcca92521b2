#include "node/key_listing.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/bucket_key.h"
#include "core/expiry.h"
#include "core/limits.h"

namespace ringkv {

namespace {

// A scan covers whole partitions on one node's loop: give it longer than a
// quorum request unless the client says otherwise.
constexpr uint64_t kDefaultListTimeoutMs = 10'000;

}  // namespace

// ---------------------------------------------------------------------------
// A replica's scan

KeyScan::KeyScan(PartitionKeysRequest req, uint64_t now_ms)
    : req_(std::move(req)),
      now_ms_(now_ms),
      limit_(req_.limit == 0 ? kDefaultListPage : std::min<size_t>(req_.limit, kMaxListPage)) {}

void KeyScan::Keep(std::string_view key) {
  // Every key left out is greater than every key kept, so the page says
  // "all my keys up to the last one".
  if (page_.size() >= limit_ && key >= page_.top()) {
    reply_.truncated = true;
    return;
  }
  page_.emplace(key);
  page_bytes_ += key.size();
  while (page_.size() > limit_ || (page_bytes_ > kMaxListReplyBytes && page_.size() > 1)) {
    page_bytes_ -= page_.top().size();
    page_.pop();
    reply_.truncated = true;
  }
}

bool KeyScan::Step(Store* store, const Ring& ring, size_t budget) {
  if (!reply_.status.ok()) return true;
  if (ring.ring_size() == 0) {
    reply_.status = Status::Unavailable("the ring has no members");
    return true;
  }
  size_t seen = 0;
  while (next_partition_ < req_.partitions.size() && seen < budget) {
    uint32_t p = req_.partitions[next_partition_];
    if (p >= ring.ring_size()) {
      reply_.status = Status::InvalidArgument(
          fmt::format("partition {} is not on a ring of {}", p, ring.ring_size()));
      return true;
    }
    uint64_t first = ring.PartitionStart(p);
    uint64_t last = ring.PartitionEnd(p);
    if (!cursor_.empty()) first = std::max(first, StoreKeyHash(cursor_));
    bool more = false;
    std::string cursor = cursor_;
    Status s = store->Scan(first, last, [&](std::string_view internal, const DvvSet& object) {
      std::string store_key = ObjectStoreKey(internal);
      if (!cursor.empty() && store_key <= cursor) return true;
      if (seen >= budget) {
        more = true;
        return false;
      }
      ++seen;
      cursor = std::move(store_key);
      std::string_view key;
      if (!KeyInBucket(internal, req_.bucket, &key)) return true;
      if (!key.starts_with(req_.prefix)) return true;
      if (!req_.count_only && !req_.after.empty() && key <= req_.after) return true;
      if (LiveCount(object, now_ms_) == 0) return true;  // deleted or expired
      if (req_.count_only) {
        ++reply_.count;
      } else {
        Keep(key);
      }
      return true;
    });
    if (!s.ok()) {
      reply_.status = s;
      return true;
    }
    if (more) {
      cursor_ = std::move(cursor);
      return false;
    }
    ++next_partition_;
    cursor_.clear();
  }
  return next_partition_ >= req_.partitions.size();
}

PartitionKeysReply KeyScan::TakeReply() {
  PartitionKeysReply out = std::move(reply_);
  if (!out.status.ok()) {
    out.keys.clear();
    return out;
  }
  out.keys.resize(page_.size());
  for (size_t i = page_.size(); i > 0; --i) {
    out.keys[i - 1] = page_.top();
    page_.pop();
  }
  return out;
}

KeyScanRunner::KeyScanRunner(Store* store, Clock* clock, const ClusterMembership* membership)
    : store_(store), clock_(clock), membership_(membership) {}

KeyScanRunner::~KeyScanRunner() {
  if (timer_ != 0) clock_->Cancel(timer_);
}

void KeyScanRunner::Start(PartitionKeysRequest req, Done done) {
  if (scans_.size() >= kMaxScans) {
    PartitionKeysReply busy;
    busy.status = Status::Unavailable(
        fmt::format("{} key listings are scanning here already; try again later", kMaxScans));
    done(std::move(busy));
    return;
  }
  scans_.push_back(Job{KeyScan(std::move(req), clock_->WallMillis()), std::move(done)});
  if (timer_ == 0) timer_ = clock_->After(0, [this] { Slice(); });
}

void KeyScanRunner::Slice() {
  timer_ = 0;
  if (scans_.empty()) return;
  Job job = std::move(scans_.front());
  scans_.pop_front();
  if (job.scan.Step(store_, membership_->ring(), kScanSlice)) {
    // Answering may start other scans; the queue is in a consistent state.
    job.done(job.scan.TakeReply());
  } else {
    scans_.push_back(std::move(job));
  }
  if (!scans_.empty() && timer_ == 0) timer_ = clock_->After(0, [this] { Slice(); });
}

// ---------------------------------------------------------------------------
// The lister

KeyLister::KeyLister(const NodeConfig* config, NodeStats* stats,
                     const ClusterMembership* membership, Transport* transport, Clock* clock,
                     KeyScanRunner* scans, std::function<uint64_t()> next_request_id)
    : config_(config),
      stats_(stats),
      membership_(membership),
      transport_(transport),
      clock_(clock),
      scans_(scans),
      next_request_id_(std::move(next_request_id)) {}

KeyLister::~KeyLister() {
  for (auto& [id, ask] : asks_) clock_->Cancel(ask.timer);
}

void KeyLister::Start(Coordinator::Origin origin, ListKeysRequest req) {
  auto op = std::make_unique<ListOp>();
  op->origin = origin;
  op->req = std::move(req);
  Begin(std::move(op));
}

void KeyLister::Start(ListKeysRequest req, Done done) {
  auto op = std::make_unique<ListOp>();
  op->done = std::move(done);
  op->req = std::move(req);
  Begin(std::move(op));
}

void KeyLister::Begin(std::unique_ptr<ListOp> op) {
  ++stats_->key_listings;
  auto answer_now = [&](Status s) {
    ++stats_->invalid_requests;
    ListKeysReply reply;
    reply.status = std::move(s);
    if (op->done) {
      op->done(std::move(reply));
    } else {
      transport_->Reply(op->origin.conn, Envelope{op->origin.request_id, {}, {}, std::move(reply)});
    }
  };
  if (!op->req.bucket.empty()) {
    Status s = ValidateBucketName(op->req.bucket);
    if (!s.ok()) return answer_now(s);
  }
  if (op->req.prefix.size() > kMaxKeyBytes || op->req.after.size() > kMaxKeyBytes) {
    return answer_now(Status::InvalidArgument(
        fmt::format("a listing's prefix and cursor are keys: at most {} bytes", kMaxKeyBytes)));
  }
  if (op->req.limit > kMaxListPage) {
    return answer_now(Status::InvalidArgument(
        fmt::format("a page of {} keys was asked; the most is {}", op->req.limit, kMaxListPage)));
  }
  const Ring& ring = membership_->ring();
  if (ring.ring_size() == 0 || ring.members().empty()) {
    return answer_now(Status::Unavailable("the ring has no members"));
  }
  op->id = next_op_++;
  op->limit = op->req.limit ? op->req.limit : kDefaultListPage;
  op->timeout_ms = op->req.timeout_ms ? op->req.timeout_ms : kDefaultListTimeoutMs;
  std::vector<uint32_t> all;
  for (uint32_t p = 0; p < ring.ring_size(); ++p) {
    Part part;
    std::vector<NodeId> partial;
    for (const NodeId& id : ring.Primaries(p, ring.n_val())) {
      if (id != config_->id && !membership_->IsAlive(id)) continue;
      // A primary still streaming the partition in (a join) may lack keys.
      (ClusterMembership::HasPartition(membership_->CompleteOf(id), p) ? part.candidates : partial)
          .push_back(id);
    }
    part.candidates.insert(part.candidates.end(), partial.begin(), partial.end());
    if (part.candidates.empty()) {
      op->missed.push_back(p);
      continue;
    }
    op->parts.emplace(p, std::move(part));
    all.push_back(p);
  }
  uint64_t id = op->id;
  ops_[id] = std::move(op);
  Dispatch(id, all);
  MaybeFinish(id);
}

void KeyLister::Dispatch(uint64_t op_id, const std::vector<uint32_t>& partitions) {
  auto it = ops_.find(op_id);
  if (it == ops_.end()) return;
  ListOp& op = *it->second;
  std::map<NodeId, std::vector<uint32_t>> by_node;
  for (uint32_t p : partitions) {
    Part& part = op.parts.at(p);
    by_node[part.candidates[part.next]].push_back(p);
  }
  PartitionKeysRequest base;
  base.bucket = op.req.bucket;
  base.prefix = op.req.prefix;
  base.after = op.req.after;
  base.limit = op.limit;
  base.count_only = op.req.count_only;
  // Every ask is counted before any is sent: a transport may report a
  // failed send at once, and the listing must not finish under our feet.
  std::vector<std::pair<uint64_t, PartitionKeysRequest>> sends;
  std::optional<std::pair<uint64_t, PartitionKeysRequest>> local;
  for (auto& [node, parts] : by_node) {
    uint64_t rid = next_request_id_();
    PartitionKeysRequest req = base;
    req.partitions = parts;
    ++op.asks;
    bool self = node == config_->id;
    asks_.emplace(rid, Ask{op_id, node, std::move(parts), 0});
    if (self) {
      local.emplace(rid, std::move(req));
    } else {
      sends.emplace_back(rid, std::move(req));
    }
  }
  uint64_t timeout_ms = op.timeout_ms;
  for (auto& [rid, req] : sends) {
    auto ask = asks_.find(rid);
    if (ask == asks_.end()) continue;
    NodeId to = ask->second.node;
    uint64_t id = rid;
    ask->second.timer = clock_->After(timeout_ms, [this, id] { Fail(id); });
    transport_->Send(to, Envelope{rid, config_->id, config_->cluster, std::move(req)});
  }
  // This node's own share scans here, in slices, like a peer's would.
  if (local) {
    uint64_t rid = local->first;
    scans_->Start(std::move(local->second), [this, rid](PartitionKeysReply reply) {
      OnReply(config_->id, rid, std::move(reply));
    });
  }
}

void KeyLister::OnReply(const NodeId& from, uint64_t request_id, PartitionKeysReply reply) {
  auto it = asks_.find(request_id);
  if (it == asks_.end() || it->second.node != from) return;
  if (!reply.status.ok()) {
    Fail(request_id);
    return;
  }
  Ask ask = std::move(it->second);
  asks_.erase(it);
  clock_->Cancel(ask.timer);
  auto op_it = ops_.find(ask.op);
  if (op_it == ops_.end()) return;
  ListOp& op = *op_it->second;
  --op.asks;
  Merge(op, std::move(reply));
  MaybeFinish(ask.op);
}

bool KeyLister::OnSendFailed(const NodeId& to, uint64_t request_id) {
  auto it = asks_.find(request_id);
  if (it == asks_.end() || it->second.node != to) return false;
  Fail(request_id);
  return true;
}

void KeyLister::Fail(uint64_t request_id) {
  auto it = asks_.find(request_id);
  if (it == asks_.end()) return;
  Ask ask = std::move(it->second);
  asks_.erase(it);
  clock_->Cancel(ask.timer);
  auto op_it = ops_.find(ask.op);
  if (op_it == ops_.end()) return;
  ListOp& op = *op_it->second;
  --op.asks;
  std::vector<uint32_t> again;
  for (uint32_t p : ask.partitions) {
    Part& part = op.parts.at(p);
    if (++part.next < part.candidates.size()) {
      again.push_back(p);
    } else {
      op.missed.push_back(p);
    }
  }
  uint64_t op_id = ask.op;
  if (!again.empty()) Dispatch(op_id, again);
  MaybeFinish(op_id);
}

void KeyLister::Merge(ListOp& op, PartitionKeysReply reply) {
  if (op.req.count_only) {
    op.count += reply.count;
    return;
  }
  if (reply.truncated && !reply.keys.empty() && (!op.bound || reply.keys.back() < *op.bound)) {
    op.bound = reply.keys.back();
  }
  std::vector<std::string> merged;
  merged.reserve(op.keys.size() + reply.keys.size());
  std::merge(std::make_move_iterator(op.keys.begin()), std::make_move_iterator(op.keys.end()),
             std::make_move_iterator(reply.keys.begin()), std::make_move_iterator(reply.keys.end()),
             std::back_inserter(merged));
  merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
  if (op.bound) {
    merged.erase(std::upper_bound(merged.begin(), merged.end(), *op.bound), merged.end());
  }
  if (merged.size() > op.limit) {
    merged.resize(op.limit);
    op.overflow = true;
  }
  op.keys = std::move(merged);
}

void KeyLister::MaybeFinish(uint64_t op_id) {
  auto it = ops_.find(op_id);
  if (it == ops_.end() || it->second->asks > 0) return;
  std::unique_ptr<ListOp> op = std::move(it->second);
  ops_.erase(it);
  ListKeysReply reply;
  std::sort(op->missed.begin(), op->missed.end());
  stats_->listing_partitions_missed += op->missed.size();
  reply.missed = std::move(op->missed);
  reply.count = op->count;
  reply.more = op->overflow || op->bound.has_value();
  reply.keys = std::move(op->keys);
  if (op->done) {
    op->done(std::move(reply));
  } else {
    transport_->Reply(op->origin.conn, Envelope{op->origin.request_id, {}, {}, std::move(reply)});
  }
}

}  // namespace ringkv
