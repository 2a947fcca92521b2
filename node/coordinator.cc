#include "node/coordinator.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/bucket_key.h"
#include "core/codec.h"
#include "core/expiry.h"

namespace ringkv {

struct Coordinator::GetOp {
  uint64_t id = 0;
  Origin origin;
  std::string key;
  Resolved q{};
  ReplicaSet replicas;
  // In arrival order, one per replica (RecordOk drops duplicates); nullopt:
  // the replica has nothing.
  std::vector<std::pair<NodeId, std::optional<DvvSet>>> replies;
  bool answered = false;
  uint64_t start_us = 0;
  Clock::TimerId timer = 0;  // one at a time: the straggler check, then the deadline
  std::function<void(Reply)> then;  // an internal read (a conditional put's)
};

struct Coordinator::PutOp {
  uint64_t id = 0;
  Origin origin;
  std::string key;
  Resolved q{};
  ReplicaSet replicas;
  DvvSet object;
  Dot dot;  // minted here
  bool datatype = false;  // a data-type operation: answered with a DataTypeReply
  int64_t answer = 0;     // its result
  std::set<NodeId> coordinator_hints;  // primaries this node holds a hint for
  bool answered = false;  // the client has its answer; the op lives on until
                          // every replica answered, so late failures still
                          // get a fallback (and a hint)
  uint64_t start_us = 0;
  Clock::TimerId timer = 0;  // one at a time: the straggler check, then the deadline
};

struct Coordinator::ForwardOp {
  uint64_t id = 0;
  Origin origin;
  PutRequest req;
  std::optional<DataTypeRequest> datatype;  // set: forwards this instead of req
  std::vector<NodeId> candidates;
  size_t next = 0;
  std::map<NodeId, std::string> failures;
  uint64_t start_us = 0;
  Clock::TimerId timer = 0;
};

namespace {

Reply ErrorReply(Status s) { return Reply{std::move(s), std::nullopt, std::nullopt}; }

}  // namespace

Coordinator::Coordinator(const NodeConfig* config, NodeStats* stats, const Membership* membership,
                         Transport* transport, Clock* clock, Replica* replica,
                         const Buckets* buckets)
    : config_(config),
      stats_(stats),
      membership_(membership),
      transport_(transport),
      clock_(clock),
      replica_(replica),
      buckets_(buckets) {}

Coordinator::~Coordinator() {
  for (auto& [id, op] : gets_) {
    clock_->Cancel(op->timer);
  }
  for (auto& [id, op] : puts_) {
    clock_->Cancel(op->timer);
  }
  for (auto& [id, op] : forwards_) clock_->Cancel(op->timer);
}

void Coordinator::SendPeer(const NodeId& to, uint64_t request_id, Body body) {
  transport_->Send(to, Envelope{request_id, config_->id, config_->cluster, std::move(body)});
}

void Coordinator::Answer(const Origin& origin, Reply reply) { Answer(origin, Body(std::move(reply))); }

void Coordinator::Answer(const Origin& origin, Body answer) {
  if (!origin.peer.empty()) {
    SendPeer(origin.peer, origin.request_id, std::move(answer));
  } else {
    Status::Code code = Status::Code::kOk;
    if (const auto* r = std::get_if<Reply>(&answer)) code = r->status.code();
    if (const auto* r = std::get_if<DataTypeReply>(&answer)) code = r->status.code();
    stats_->requests.Record(origin.op, code, clock_->NowMicros() - origin.start_us);
    transport_->Reply(origin.conn, Envelope{origin.request_id, {}, {}, std::move(answer)});
  }
}

bool Coordinator::FirstForward(const NodeId& from, uint64_t request_id) {
  if (!forwarded_seen_.insert({from, request_id}).second) {
    ++stats_->duplicate_forwards;
    return false;
  }
  forwarded_order_.emplace_back(from, request_id);
  if (forwarded_order_.size() > kForwardedRemembered) {
    forwarded_seen_.erase(forwarded_order_.front());
    forwarded_order_.pop_front();
  }
  return true;
}

void Coordinator::OnForwardedPut(const NodeId& from, uint64_t request_id, PutRequest req) {
  // Two dots for one client write would leave a sibling that a delete with
  // the client's context misses.
  if (!FirstForward(from, request_id)) return;
  req.forwarded = true;
  StartPut(Origin{0, from, request_id}, std::move(req));
}

// ---------------------------------------------------------------------------
// Quorum settings and replica choice

Result<Coordinator::Resolved> Coordinator::ResolveQuorum(const Quorum& q,
                                                         const BucketProps& b) const {
  Resolved out{};
  size_t members = membership_->ring().members().size();
  out.n = q.n ? q.n : b.n ? b.n : config_->n;
  if (q.n == 0) out.n = std::min<uint32_t>(out.n, static_cast<uint32_t>(members));
  if (out.n == 0) return Status::Unavailable("the ring has no members");
  if (out.n > members) {
    return Status::InvalidArgument(
        fmt::format("n={} but the cluster has {} node{}", out.n, members, members == 1 ? "" : "s"));
  }
  // Defaults (the bucket's or the node's) are capped by the request's n;
  // the request's own values are checked.
  out.r = q.r ? q.r : std::min(b.r ? b.r : config_->r, out.n);
  out.w = q.w ? q.w : std::min(b.w ? b.w : config_->w, out.n);
  out.pr = q.pr ? q.pr : std::min(b.pr, out.r);
  out.pw = q.pw ? q.pw : std::min(b.pw, out.w);
  if (out.r > out.n) return Status::InvalidArgument(fmt::format("r={} is more than n={}", out.r, out.n));
  if (out.w > out.n) return Status::InvalidArgument(fmt::format("w={} is more than n={}", out.w, out.n));
  if (out.pr > out.r) return Status::InvalidArgument(fmt::format("pr={} is more than r={}", out.pr, out.r));
  if (out.pw > out.w) return Status::InvalidArgument(fmt::format("pw={} is more than w={}", out.pw, out.w));
  out.timeout_ms = q.timeout_ms ? q.timeout_ms : config_->timeout_ms;
  out.mode = q.mode != Mode::kDefault ? q.mode : b.mode != Mode::kDefault ? b.mode : config_->mode;
  out.lww = q.lww || b.lww;
  out.max_siblings = buckets_->MaxSiblings(b);
  out.warn_siblings = buckets_->WarnSiblings(b);
  out.ttl_ms = b.ttl_s * 1000;
  return out;
}

ReplicaSet Coordinator::ChooseReplicas(const std::string& key, const Resolved& q) const {
  const Ring& ring = membership_->ring();
  return ReplicaSet::Choose(ring.PreferenceList(ring.PartitionOfKey(key)), q.n,
                            q.mode == Mode::kSloppy, [this](const NodeId& id) {
                              return id == config_->id || membership_->IsAlive(id);
                            });
}

template <typename Op>
void Coordinator::ArmTimer(std::unordered_map<uint64_t, std::unique_ptr<Op>>* ops, Op& op,
                           std::function<void()> deadline,
                           void (Coordinator::*add_fallback)(Op&, const NodeId&)) {
  if (op.q.mode != Mode::kSloppy) {
    op.timer = clock_->After(op.q.timeout_ms, std::move(deadline));
    return;
  }
  uint64_t half = op.q.timeout_ms / 2;
  op.timer = clock_->After(half, [this, ops, id = op.id, add_fallback,
                                  rest = op.q.timeout_ms - half, deadline = std::move(deadline)] {
    auto it = ops->find(id);
    if (it == ops->end()) return;
    it->second->timer = clock_->After(rest, deadline);
    for (const NodeId& silent : it->second->replicas.Silent()) {
      it = ops->find(id);  // a fallback's answer may end the op
      if (it == ops->end()) return;
      (this->*add_fallback)(*it->second, silent);
    }
  });
}

// ---------------------------------------------------------------------------
// GET

void Coordinator::StartGet(Origin origin, GetRequest req) {
  ++stats_->gets;
  origin.op = RequestOp::kGet;
  origin.start_us = clock_->NowMicros();
  auto key = InternalKey(req.bucket, req.key);
  if (!key.ok()) {
    ++stats_->invalid_requests;
    Answer(origin, ErrorReply(key.status()));
    return;
  }
  auto q = ResolveQuorum(req.quorum, buckets_->PropsOf(req.bucket));
  if (!q.ok()) {
    ++stats_->invalid_requests;
    Answer(origin, ErrorReply(q.status()));
    return;
  }
  RunGet(origin, std::move(key).value(), *q);
}

void Coordinator::RunGet(Origin origin, std::string key, const Resolved& q,
                         std::function<void(Reply)> then) {
  auto op = std::make_unique<GetOp>();
  op->id = next_op_id_++;
  op->origin = origin;
  op->key = std::move(key);
  op->q = q;
  op->then = std::move(then);
  op->replicas = ChooseReplicas(op->key, q);
  op->start_us = clock_->NowMicros();
  uint64_t id = op->id;
  ArmTimer(&gets_, *op, [this, id] { OnGetTimeout(id); }, &Coordinator::AddGetFallback);
  std::vector<ReplicaSet::Replica> replicas = op->replicas.replicas();
  std::string read_key = op->key;
  gets_[id] = std::move(op);
  std::optional<ReplicaSet::Replica> local;
  for (const auto& r : replicas) {
    if (r.node == config_->id) {
      local = r;
    } else {
      SendPeer(r.node, id, ReplicaRead{read_key, r.hint_for});
    }
  }
  if (local) {
    ReplicaReadReply r = replica_->Read(read_key, local->hint_for);
    OnReadReply(id, config_->id, std::move(r.status), std::move(r.object));
  }
}

void Coordinator::AddGetFallback(GetOp& op, const NodeId& failed) {
  if (op.answered) return;
  auto sub = op.replicas.Substitute(failed);
  if (!sub) return;
  if (sub->node == config_->id) {
    uint64_t id = op.id;
    ReplicaReadReply r = replica_->Read(op.key, sub->hint_for);
    OnReadReply(id, config_->id, std::move(r.status), std::move(r.object));
  } else {
    SendPeer(sub->node, op.id, ReplicaRead{op.key, sub->hint_for});
  }
}

void Coordinator::OnGetTimeout(uint64_t id) {
  auto it = gets_.find(id);
  if (it == gets_.end()) return;
  GetOp& g = *it->second;
  g.timer = 0;
  if (!g.answered) {
    g.answered = true;
    ++stats_->read_quorum_failures;
    Reply reply = ErrorReply(
        Status::Unavailable(g.replicas.DescribeFailure(true, g.q.r, g.q.n, g.q.pr, true)));
    if (g.then) {
      auto then = std::move(g.then);
      g.then = nullptr;
      then(std::move(reply));
    } else {
      Answer(g.origin, std::move(reply));
    }
  }
  FinishReadRepair(id);
}

void Coordinator::OnReadReply(uint64_t op_id, const NodeId& from, Status status,
                       std::optional<DvvSet> object) {
  auto it = gets_.find(op_id);
  if (it == gets_.end()) return;  // late reply after the op ended
  GetOp& op = *it->second;
  if (status.ok() || status.IsNotFound()) {
    if (!op.replicas.RecordOk(from)) return;  // not asked, or a duplicate
    op.replies.emplace_back(from, std::move(object));
  } else {
    if (!op.replicas.RecordFailure(from, status.ToString())) return;
    if (op.q.mode == Mode::kSloppy) {
      AddGetFallback(op, from);
      if (!gets_.contains(op_id)) return;
    }
  }
  MaybeFinishGet(op);
}

void Coordinator::MaybeFinishGet(GetOp& op) {
  uint64_t id = op.id;
  const ReplicaSet& rs = op.replicas;
  if (!op.answered) {
    Reply reply;
    bool internal = static_cast<bool>(op.then);  // not a client's get: not counted
    if (rs.ok() >= op.q.r && rs.ok_primaries() >= op.q.pr) {
      op.answered = true;
      DvvSet merged;
      for (const auto& [node, obj] : op.replies) {
        if (obj) merged = DvvSet::Sync(merged, *obj);
      }
      // What a reader sees now: expired siblings read as tombstones. The
      // clock stays whole, so a write with this context replaces them too.
      uint64_t now_ms = clock_->WallMillis();
      size_t expired = merged.siblings().size();
      merged = VisibleAt(merged, now_ms);
      expired -= merged.siblings().size();
      if (op.q.lww) merged = DvvSet::CollapseLww(merged);
      if (!internal) {
        stats_->expired_hidden += expired;
        stats_->get_latency_us.Record(clock_->NowMicros() - op.start_us);
        if (merged.empty() || merged.IsDeleted()) ++stats_->get_not_found;
      }
      if (merged.empty()) {
        reply.status = Status::NotFound("key not found");
      } else if (merged.IsDeleted()) {
        reply.status = Status::NotFound(expired > 0 && LiveCount(merged, now_ms) == 0
                                            ? "key not found (expired)"
                                            : "key not found (deleted)");
        reply.object = std::move(merged);  // its context lets a client write over the delete
      } else {
        // The states of a counter, set or map are joined, not shown as siblings.
        size_t live = 0;
        for (const Sibling* s : merged.LiveSiblings()) live += s->datatype == 0 ? 1 : 0;
        if (!internal) {
          if (live > 1) ++stats_->siblings_seen;
          if (live > op.q.warn_siblings) ++stats_->sibling_warnings;
          stats_->siblings_per_read.Record(live);
          stats_->max_siblings = std::max<uint64_t>(stats_->max_siblings, live);
        }
        reply.object = std::move(merged);
      }
      reply.warn_siblings = op.q.warn_siblings;
    } else if (rs.ok() + rs.outstanding() < op.q.r ||
               rs.ok_primaries() + rs.outstanding_primaries() < op.q.pr) {
      op.answered = true;
      if (!internal) ++stats_->read_quorum_failures;
      reply = ErrorReply(
          Status::Unavailable(rs.DescribeFailure(true, op.q.r, op.q.n, op.q.pr, false)));
    }
    if (op.answered) {
      if (op.then) {
        // The continuation may start other requests; this op stays filed
        // for its read repair.
        auto then = std::move(op.then);
        op.then = nullptr;
        then(std::move(reply));
        auto it = gets_.find(id);
        if (it == gets_.end()) return;
      } else {
        Answer(op.origin, std::move(reply));
      }
    }
  }
  if (op.answered && rs.outstanding() == 0) FinishReadRepair(id);
}

void Coordinator::FinishReadRepair(uint64_t op_id) {
  auto it = gets_.find(op_id);
  if (it == gets_.end()) return;
  std::unique_ptr<GetOp> op = std::move(it->second);
  gets_.erase(it);
  clock_->Cancel(op->timer);
  DvvSet merged;
  for (const auto& [node, obj] : op->replies) {
    if (obj) merged = DvvSet::Sync(merged, *obj);
  }
  if (merged.empty()) return;
  // An lww read answers with the newest sibling only, but repairs with the
  // full merge: a read must not resolve a conflict for every other client.
  for (const auto& [node, obj] : op->replies) {
    if (obj && *obj == merged) continue;
    int i = op->replicas.Find(node);
    const NodeId& hint_for = op->replicas.replicas()[i].hint_for;
    ++stats_->read_repairs;
    if (node == config_->id) {
      if (hint_for.empty()) {
        replica_->Merge(op->key, merged);
      } else {
        replica_->AddHint(hint_for, op->key, merged);
      }
    } else {
      SendPeer(node, 0, ReplicaWrite{op->key, merged, hint_for});
    }
  }
}

// ---------------------------------------------------------------------------
// PUT / DELETE

void Coordinator::StartPut(Origin origin, PutRequest req) {
  if (req.tombstone) {
    ++stats_->deletes;
  } else {
    ++stats_->puts;
  }
  origin.op = req.tombstone ? RequestOp::kDelete : RequestOp::kPut;
  origin.start_us = clock_->NowMicros();
  auto reject = [&](Status s) {
    ++stats_->invalid_requests;
    Answer(origin, ErrorReply(std::move(s)));
  };
  if (req.value.size() > config_->max_value_bytes) {
    return reject(Status::InvalidArgument(fmt::format(
        "value is {} bytes; the limit is {}", req.value.size(), config_->max_value_bytes)));
  }
  auto key = InternalKey(req.bucket, req.key);
  if (!key.ok()) return reject(key.status());
  auto ctx = DecodeContext(req.context);
  if (!ctx.ok()) return reject(ctx.status());
  if (req.ttl_ms > kMaxTtlMs) {
    return reject(Status::InvalidArgument(
        fmt::format("ttl is {} s; the most is {} s (ten years)", req.ttl_ms / 1000,
                    kMaxTtlMs / 1000)));
  }
  if (req.if_absent && req.if_unchanged) {
    return reject(Status::InvalidArgument("a write is either if-absent or if-unchanged, not both"));
  }
  auto q = ResolveQuorum(req.quorum, buckets_->PropsOf(req.bucket));
  if (!q.ok()) return reject(q.status());
  ReplicaSet replicas = ChooseReplicas(*key, *q);
  if (replicas.Contains(config_->id) || req.forwarded) {
    if (req.if_absent || req.if_unchanged) {
      StartConditionRead(origin, std::move(req), std::move(key).value(), *q, std::move(replicas));
    } else {
      CoordinatePut(origin, std::move(req), std::move(key).value(), *q, std::move(replicas));
    }
    return;
  }
  ++stats_->forwarded_puts;
  auto op = std::make_unique<ForwardOp>();
  op->origin = origin;
  op->req = std::move(req);
  StartForward(std::move(op), *q, replicas);
}

void Coordinator::StartForward(std::unique_ptr<ForwardOp> op, const Resolved& q,
                               const ReplicaSet& replicas) {
  op->start_us = clock_->NowMicros();
  // Replicas believed alive first, in preference order.
  for (const auto& r : replicas.replicas()) {
    if (membership_->IsAlive(r.node)) op->candidates.push_back(r.node);
  }
  for (const auto& r : replicas.replicas()) {
    if (!membership_->IsAlive(r.node)) op->candidates.push_back(r.node);
  }
  op->id = next_op_id_++;
  uint64_t id = op->id;
  // The replica that coordinates needs its own timeout plus the hop (twice
  // for a conditional write: a read, then the write).
  bool conditional = !op->datatype && (op->req.if_absent || op->req.if_unchanged);
  uint64_t wait_ms = q.timeout_ms * (conditional ? 2 : 1) + 500;
  op->timer = clock_->After(wait_ms, [this, id] {
    auto it = forwards_.find(id);
    if (it == forwards_.end()) return;
    std::unique_ptr<ForwardOp> f = std::move(it->second);
    forwards_.erase(it);
    ++stats_->write_quorum_failures;
    Answer(f->origin, ForwardError(*f, Status::Timeout(fmt::format(
                                           "no answer from replica {} coordinating the write",
                                           f->candidates[std::min(f->next, f->candidates.size() - 1)]))));
  });
  Forward(std::move(op));
}

Body Coordinator::ForwardError(const ForwardOp& op, Status s) const {
  if (op.datatype) return DataTypeReply{std::move(s), 0, std::nullopt};
  return ErrorReply(std::move(s));
}

void Coordinator::StartConditionRead(Origin origin, PutRequest req, std::string key,
                                     const Resolved& q, ReplicaSet replicas) {
  ++stats_->conditional_writes;
  Resolved read_q = q;
  read_q.lww = false;  // the condition looks at every sibling
  std::string read_key = key;
  auto then = [this, origin, req = std::move(req), key = std::move(key), q,
               replicas = std::move(replicas)](Reply read) mutable {
    if (!read.status.ok() && !read.status.IsNotFound()) {
      ++stats_->write_quorum_failures;
      Answer(origin, ErrorReply(Status::FromCode(
                         read.status.code(),
                         "the conditional write's read failed, nothing was written: " +
                             read.status.message())));
      return;
    }
    // The read's answer has expired siblings taken out already.
    bool live = read.status.ok() && read.object && LiveCount(*read.object, 0) > 0;
    VersionVector seen = read.object ? read.object->clock() : VersionVector();
    if (req.if_absent) {
      if (live) {
        ++stats_->conditions_failed;
        Answer(origin, ErrorReply(Status::ConditionFailed(
                           "the key has a live value (put --if-absent)")));
        return;
      }
      // Over what the read saw, so the write replaces tombstones and
      // expired values instead of adding to them.
      req.context = EncodeContext(seen);
    } else {
      VersionVector context = *DecodeContext(req.context);  // checked in StartPut
      if (!context.Descends(seen)) {
        ++stats_->conditions_failed;
        Answer(origin, ErrorReply(Status::ConditionFailed(fmt::format(
                           "the key changed since the context was read "
                           "(it holds {} live sibling{}; put --if-unchanged)",
                           read.object ? read.object->LiveSiblings().size() : 0,
                           read.object && read.object->LiveSiblings().size() == 1 ? "" : "s"))));
        return;
      }
    }
    CoordinatePut(origin, std::move(req), std::move(key), q, std::move(replicas));
  };
  RunGet(origin, std::move(read_key), read_q, std::move(then));
}

void Coordinator::Forward(std::unique_ptr<ForwardOp> op) {
  uint64_t id = op->id;
  NodeId to = op->candidates[op->next];
  Body fwd;
  if (op->datatype) {
    DataTypeRequest d = *op->datatype;
    d.forwarded = true;
    fwd = std::move(d);
  } else {
    PutRequest p = op->req;
    p.forwarded = true;
    fwd = std::move(p);
  }
  forwards_[id] = std::move(op);
  SendPeer(to, id, std::move(fwd));
}

void Coordinator::OnForwardReply(uint64_t op_id, const NodeId& from, Reply reply) {
  FinishForward(op_id, from, std::move(reply));
}

void Coordinator::OnForwardReply(uint64_t op_id, const NodeId& from, DataTypeReply reply) {
  FinishForward(op_id, from, std::move(reply));
}

void Coordinator::FinishForward(uint64_t op_id, const NodeId& from, Body answer) {
  auto it = forwards_.find(op_id);
  if (it == forwards_.end()) return;
  // Only a replica this write was forwarded to may answer it.
  const auto& tried = it->second->candidates;
  size_t sent_to = std::min(it->second->next + 1, tried.size());
  if (std::find(tried.begin(), tried.begin() + sent_to, from) == tried.begin() + sent_to) return;
  std::unique_ptr<ForwardOp> op = std::move(it->second);
  forwards_.erase(it);
  clock_->Cancel(op->timer);
  stats_->put_latency_us.Record(clock_->NowMicros() - op->start_us);
  Answer(op->origin, std::move(answer));
}

NodeId Coordinator::LocalHintFor(const ReplicaSet& replicas, int* self) const {
  // This node's copy: its own, or the hint it holds when it stands in as a
  // fallback for a primary.
  *self = replicas.Find(config_->id);
  NodeId hint_for = *self >= 0 ? replicas.replicas()[*self].hint_for : NodeId();
  if (*self < 0 && !replicas.replicas().empty()) {
    // A write forwarded here by a node whose view of the ring differs: this
    // node is no replica, so it keeps its copy as a hint for the first one
    // (delivered, then deleted, like any hint) rather than as stray data.
    hint_for = replicas.replicas()[0].primary ? replicas.replicas()[0].node
                                              : replicas.replicas()[0].hint_for;
  }
  return hint_for;
}

void Coordinator::CoordinatePut(Origin origin, PutRequest req, std::string key, const Resolved& q,
                                ReplicaSet replicas) {
  auto op = std::make_unique<PutOp>();
  op->id = next_op_id_++;
  op->origin = origin;
  op->key = std::move(key);
  op->q = q;
  op->replicas = std::move(replicas);
  op->start_us = clock_->NowMicros();

  int self = -1;
  NodeId hint_for = LocalHintFor(op->replicas, &self);
  VersionVector context = *DecodeContext(req.context);  // checked in StartPut
  Sibling fresh;
  fresh.value = std::move(req.value);
  fresh.tombstone = req.tombstone;
  fresh.timestamp_ms = clock_->WallMillis();
  uint64_t ttl_ms = req.persist ? 0 : req.ttl_ms ? req.ttl_ms : q.ttl_ms;
  if (!req.tombstone && ttl_ms != 0) fresh.expires_ms = fresh.timestamp_ms + ttl_ms;
  auto minted = replica_->MintWrite(op->key, context, std::move(fresh), q.lww, hint_for,
                                    q.max_siblings);
  if (!minted.ok()) {
    if (minted.status().code() == Status::Code::kTooManySiblings) ++stats_->sibling_cap_refused;
    Answer(origin, ErrorReply(minted.status()));
    return;
  }
  op->object = std::move(minted->object);
  op->dot = std::move(minted->dot);
  Replicate(std::move(op), self);
}

void Coordinator::AnswerWrite(PutOp& op, Status s) {
  if (op.datatype) {
    DataTypeReply reply{s, 0, std::nullopt};
    if (s.ok()) {
      reply.integer = op.answer;
      reply.dot = op.dot;
    }
    Answer(op.origin, std::move(reply));
    return;
  }
  Reply reply;
  reply.status = std::move(s);
  if (reply.status.ok()) {
    reply.object = op.object;
    reply.dot = op.dot;
  }
  Answer(op.origin, std::move(reply));
}

void Coordinator::Replicate(std::unique_ptr<PutOp> op, int self) {
  uint64_t id = op->id;
  ArmTimer(&puts_, *op, [this, id] {
    auto it = puts_.find(id);
    if (it == puts_.end()) return;
    std::unique_ptr<PutOp> p = std::move(it->second);
    puts_.erase(it);
    if (!p->answered) {
      ++stats_->write_quorum_failures;
      AnswerWrite(*p, Status::Unavailable(
                          p->replicas.DescribeFailure(false, p->q.w, p->q.n, p->q.pw, true)));
    }
  }, &Coordinator::AddPutFallback);
  // One message for every replica (only the hint differs), built before the
  // op is filed: a send that fails can end the op.
  std::vector<ReplicaSet::Replica> targets = op->replicas.replicas();
  Envelope env{id, config_->id, config_->cluster, ReplicaWrite{op->key, op->object, {}}};
  auto& write = std::get<ReplicaWrite>(env.body);
  puts_[id] = std::move(op);
  for (const auto& r : targets) {
    if (r.node == config_->id) continue;
    write.hint_for = r.hint_for;
    transport_->Send(r.node, env);
  }
  // Nodes taking over the key's partition (join/leave in progress) get the
  // write too, without counting toward w.
  env.request_id = 0;
  write.hint_for.clear();
  for (const NodeId& extra : membership_->PendingOwners(write.key)) {
    if (extra != config_->id && std::none_of(targets.begin(), targets.end(),
                                            [&](const auto& r) { return r.node == extra; })) {
      transport_->Send(extra, env);
    }
  }
  if (self >= 0) OnWriteAck(id, config_->id, Status::OK());
}

void Coordinator::AddPutFallback(PutOp& op, const NodeId& failed) {
  auto sub = op.replicas.Substitute(failed);
  if (!sub) {
    // No live fallback is left (a small cluster): the coordinator keeps the
    // hint itself, as Cassandra does, so the primary still gets the write
    // when it returns. It does not count toward w.
    int i = op.replicas.Find(failed);
    if (i < 0) return;
    const auto& r = op.replicas.replicas()[i];
    NodeId primary = r.primary ? r.node : r.hint_for;
    if (primary.empty() || primary == config_->id || !op.coordinator_hints.insert(primary).second) {
      return;
    }
    if (replica_->AddHint(primary, op.key, op.object).ok()) ++stats_->coordinator_hints;
    return;
  }
  if (sub->node == config_->id) {
    Status s = replica_->AddHint(sub->hint_for, op.key, op.object);
    OnWriteAck(op.id, config_->id, s);
  } else {
    SendPeer(sub->node, op.id, ReplicaWrite{op.key, op.object, sub->hint_for});
  }
}

void Coordinator::OnWriteAck(uint64_t op_id, const NodeId& from, Status status) {
  auto it = puts_.find(op_id);
  if (it == puts_.end()) return;
  PutOp& op = *it->second;
  if (status.ok()) {
    if (!op.replicas.RecordOk(from)) return;
  } else {
    if (!op.replicas.RecordFailure(from, status.ToString())) return;
    if (op.q.mode == Mode::kSloppy) {
      AddPutFallback(op, from);
      if (!puts_.contains(op_id)) return;
    }
  }
  MaybeFinishPut(op);
}

void Coordinator::MaybeFinishPut(PutOp& op) {
  const ReplicaSet& rs = op.replicas;
  if (!op.answered) {
    if (rs.ok() >= op.q.w && rs.ok_primaries() >= op.q.pw) {
      stats_->put_latency_us.Record(clock_->NowMicros() - op.start_us);
      op.answered = true;
      AnswerWrite(op, Status::OK());
    } else if (rs.ok() + rs.outstanding() < op.q.w ||
               rs.ok_primaries() + rs.outstanding_primaries() < op.q.pw) {
      ++stats_->write_quorum_failures;
      op.answered = true;
      AnswerWrite(op, Status::Unavailable(rs.DescribeFailure(false, op.q.w, op.q.n, op.q.pw, false)));
    }
  }
  if (!op.answered || rs.outstanding() > 0) return;
  auto it = puts_.find(op.id);
  std::unique_ptr<PutOp> done = std::move(it->second);
  puts_.erase(it);
  clock_->Cancel(done->timer);
}

bool Coordinator::OnSendFailed(const NodeId& to, uint64_t request_id, const std::string& why) {
  if (gets_.contains(request_id)) {
    OnReadReply(request_id, to, Status::Unavailable(why), std::nullopt);
  } else if (puts_.contains(request_id)) {
    OnWriteAck(request_id, to, Status::Unavailable(why));
  } else if (auto it = forwards_.find(request_id); it != forwards_.end()) {
    std::unique_ptr<ForwardOp> op = std::move(it->second);
    forwards_.erase(it);
    op->failures[to] = why;
    // A data-type operation is not idempotent: if the connection broke after
    // the request went out ("connection to X lost", the runtime's words; a
    // peer that was never reached is "X unreachable"), X may have applied
    // it, and another replica would apply it again. Not retried: at most once.
    if (op->datatype && why.find(" lost") != std::string::npos) {
      clock_->Cancel(op->timer);
      ++stats_->write_quorum_failures;
      Answer(op->origin, ForwardError(*op, Status::Unavailable(fmt::format(
                                               "{}; the operation may have been applied there (it is "
                                               "not retried on another replica, so it counts at most once)",
                                               why))));
      return true;
    }
    if (++op->next < op->candidates.size()) {
      Forward(std::move(op));
      return true;
    }
    clock_->Cancel(op->timer);
    ++stats_->write_quorum_failures;
    std::string tried;
    for (const auto& [node, reason] : op->failures) {
      tried += fmt::format("{}{}: {}", tried.empty() ? "" : "; ", node, reason);
    }
    Answer(op->origin, ForwardError(*op, Status::Unavailable(fmt::format(
                                         "no replica of the key could coordinate the write ({})", tried))));
  } else {
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Data-type operations (counters, sets, maps: core/datatypes.h)

void Coordinator::OnForwardedDataType(const NodeId& from, uint64_t request_id,
                                      DataTypeRequest req) {
  // Applied twice, an increment would count twice.
  if (!FirstForward(from, request_id)) return;
  req.forwarded = true;
  StartDataType(Origin{0, from, request_id}, std::move(req));
}

void Coordinator::StartDataType(Origin origin, DataTypeRequest req) {
  // Last-writer-wins is for plain values: a collapse would drop concurrent states.
  req.quorum.lww = false;
  if (req.op == DataTypeOpCode::kRead) {
    ++stats_->datatype_reads;
    StartGet(origin, GetRequest{std::move(req.key), req.quorum, std::move(req.bucket)});
    return;
  }
  ++stats_->datatype_ops;
  if (origin.peer.empty()) {
    origin.op = RequestOp::kDataType;
    origin.start_us = clock_->NowMicros();
  }
  auto reject = [&](Status s) {
    ++stats_->invalid_requests;
    Answer(origin, DataTypeReply{std::move(s), 0, std::nullopt});
  };
  Status valid = ValidateOperation(req.type, req.op, req.args);
  if (!valid.ok()) return reject(valid);
  auto key = InternalKey(req.bucket, req.key);
  if (!key.ok()) return reject(key.status());
  auto q = ResolveQuorum(req.quorum, buckets_->PropsOf(req.bucket));
  if (!q.ok()) return reject(q.status());
  ReplicaSet replicas = ChooseReplicas(*key, *q);
  if (replicas.Contains(config_->id) || req.forwarded) {
    // From here on the request names the key as replicas store it.
    req.key = std::move(key).value();
    req.bucket.clear();
    CoordinateDataType(origin, std::move(req), *q, std::move(replicas));
    return;
  }
  ++stats_->forwarded_puts;
  auto op = std::make_unique<ForwardOp>();
  op->origin = origin;
  op->datatype = std::move(req);  // forwarded as the client named it
  StartForward(std::move(op), *q, replicas);
}

void Coordinator::CoordinateDataType(Origin origin, DataTypeRequest req, const Resolved& q,
                                     ReplicaSet replicas) {
  int self = -1;
  NodeId hint_for = LocalHintFor(replicas, &self);
  auto minted = replica_->MintDataTypeWrite(req, clock_->WallMillis(), hint_for);
  if (!minted.ok()) {
    if (minted.status().code() == Status::Code::kWrongType) ++stats_->datatype_wrong_type;
    Answer(origin, DataTypeReply{minted.status(), 0, std::nullopt});
    return;
  }
  if (!minted->written) {
    // A remove of nothing this replica holds: no write, nothing to send.
    Answer(origin, DataTypeReply{Status::OK(), minted->result.answer, std::nullopt});
    return;
  }
  auto op = std::make_unique<PutOp>();
  op->id = next_op_id_++;
  op->origin = origin;
  op->key = std::move(req.key);
  op->q = q;
  op->replicas = std::move(replicas);
  op->start_us = clock_->NowMicros();
  op->object = std::move(minted->object);
  op->dot = std::move(minted->dot);
  op->datatype = true;
  op->answer = minted->result.answer;
  Replicate(std::move(op), self);
}

}  // namespace ringkv
