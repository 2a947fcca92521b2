#include "node/node.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/codec.h"
#include "core/hash.h"

namespace ringkv {

using json = nlohmann::json;

struct Node::GetOp {
  uint64_t id = 0;
  Origin origin;
  std::string key;
  Resolved q{};
  Targets targets;
  std::map<NodeId, std::optional<DvvSet>> replies;  // nullopt: replica has nothing
  std::map<NodeId, std::string> failures;
  uint32_t primary_replies = 0;
  bool answered = false;
  uint64_t start_us = 0;
  Clock::TimerId timer = 0;
};

struct Node::PutOp {
  uint64_t id = 0;
  Origin origin;
  std::string key;
  Resolved q{};
  Targets targets;
  DvvSet object;
  Dot dot;  // minted here
  bool is_delete = false;
  std::set<NodeId> acked;
  std::map<NodeId, std::string> failures;
  uint32_t primary_acks = 0;
  uint64_t start_us = 0;
  Clock::TimerId timer = 0;
};

struct Node::ForwardOp {
  uint64_t id = 0;
  Origin origin;
  PutRequest req;
  std::vector<NodeId> candidates;
  size_t next = 0;
  std::map<NodeId, std::string> failures;
  uint64_t start_us = 0;
  Clock::TimerId timer = 0;
};

namespace {

bool IsPrimaryIn(const std::vector<NodeId>& primaries, const NodeId& id) {
  return std::find(primaries.begin(), primaries.end(), id) != primaries.end();
}

json LatencyJson(const Histogram& h) {
  auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
  return json{{"count", h.count()},
              {"p50_ms", ms(h.Percentile(0.50))},
              {"p90_ms", ms(h.Percentile(0.90))},
              {"p99_ms", ms(h.Percentile(0.99))},
              {"p999_ms", ms(h.Percentile(0.999))},
              {"max_ms", ms(h.max())}};
}

}  // namespace

Node::Node(NodeConfig config, Membership* membership, Store* store, Transport* transport,
           Clock* clock)
    : config_(std::move(config)),
      membership_(membership),
      store_(store),
      transport_(transport),
      clock_(clock) {
  started_us_ = clock_->NowMicros();
}

Node::~Node() {
  for (auto& [id, op] : gets_) clock_->Cancel(op->timer);
  for (auto& [id, op] : puts_) clock_->Cancel(op->timer);
  for (auto& [id, op] : forwards_) clock_->Cancel(op->timer);
}

size_t Node::pending_requests() const { return gets_.size() + puts_.size() + forwards_.size(); }

// ---------------------------------------------------------------------------
// Dispatch

void Node::OnMessage(ClientId conn, Envelope env) {
  if (!env.from.empty()) {
    HandlePeer(conn, std::move(env));
  } else {
    HandleClient(conn, std::move(env));
  }
}

void Node::HandleClient(ClientId conn, Envelope env) {
  uint64_t rid = env.request_id;
  Origin origin{conn, {}, rid};
  if (auto* get = std::get_if<GetRequest>(&env.body)) {
    StartGet(conn, rid, std::move(*get));
  } else if (auto* put = std::get_if<PutRequest>(&env.body)) {
    put->forwarded = false;  // only peers forward
    StartPut(origin, std::move(*put));
  } else if (auto* info = std::get_if<InfoRequest>(&env.body)) {
    InfoReply reply;
    if (info->topic == "status") {
      reply.json = StatusJson();
    } else if (info->topic == "ring") {
      reply.json = RingJson();
    } else if (info->topic == "stats") {
      reply.json = StatsJson();
    } else if (info->topic == "preflist" || info->topic == "local") {
      auto r = info->topic == "local" ? LocalJson(info->arg) : PreflistJson(info->arg);
      if (r.ok()) {
        reply.json = *r;
      } else {
        reply.status = r.status();
      }
    } else {
      reply.status = Status::InvalidArgument(fmt::format(
          "unknown info topic '{}' (status, ring, stats, preflist, local)", info->topic));
    }
    transport_->Reply(conn, Envelope{rid, {}, {}, std::move(reply)});
  } else {
    ++stats_.invalid_requests;
    transport_->Reply(
        conn, Envelope{rid, {}, {},
                       Reply{Status::InvalidArgument(fmt::format(
                                 "{} is not a client request (peers must name themselves)",
                                 BodyName(env.body))),
                             std::nullopt}});
  }
}

void Node::HandlePeer(ClientId conn, Envelope env) {
  if (env.cluster != config_.cluster) {
    ++stats_.wrong_cluster_refused;
    transport_->Reply(conn, Envelope{env.request_id, {}, {},
                                     Reply{Status::WrongCluster(fmt::format(
                                               "node {} is in cluster '{}', not '{}'", config_.id,
                                               config_.cluster, env.cluster)),
                                           std::nullopt}});
    return;
  }
  const NodeId& from = env.from;
  uint64_t rid = env.request_id;
  if (auto* rr = std::get_if<ReplicaRead>(&env.body)) {
    SendPeer(from, rid, LocalRead(rr->key));
  } else if (auto* rw = std::get_if<ReplicaWrite>(&env.body)) {
    Status s = LocalMerge(rw->key, rw->object);
    if (rid != 0) SendPeer(from, rid, ReplicaWriteAck{s});
  } else if (auto* put = std::get_if<PutRequest>(&env.body)) {
    put->forwarded = true;
    StartPut(Origin{0, from, rid}, std::move(*put));
  } else if (auto* rrr = std::get_if<ReplicaReadReply>(&env.body)) {
    OnReadReply(rid, from, std::move(rrr->status), std::move(rrr->object));
  } else if (auto* ack = std::get_if<ReplicaWriteAck>(&env.body)) {
    if (rid != 0) OnWriteAck(rid, from, std::move(ack->status));
  } else if (auto* reply = std::get_if<Reply>(&env.body)) {
    OnForwardReply(rid, std::move(*reply));
  } else {
    ++stats_.invalid_requests;  // InfoRequest/InfoReply/GetRequest are not peer messages
  }
}

void Node::SendPeer(const NodeId& to, uint64_t request_id, Body body) {
  transport_->Send(to, Envelope{request_id, config_.id, config_.cluster, std::move(body)});
}

void Node::Answer(const Origin& origin, Reply reply) {
  if (!origin.peer.empty()) {
    SendPeer(origin.peer, origin.request_id, std::move(reply));
  } else {
    transport_->Reply(origin.conn, Envelope{origin.request_id, {}, {}, std::move(reply)});
  }
}

// ---------------------------------------------------------------------------
// Quorum settings and replica choice

Result<Node::Resolved> Node::ResolveQuorum(const Quorum& q) const {
  Resolved out{};
  size_t members = membership_->ring().members().size();
  out.n = q.n ? q.n : config_.n;
  if (q.n == 0) out.n = std::min<uint32_t>(out.n, static_cast<uint32_t>(members));
  if (out.n == 0) return Status::Unavailable("the ring has no members");
  if (out.n > members) {
    return Status::InvalidArgument(
        fmt::format("n={} but the cluster has {} node{}", out.n, members, members == 1 ? "" : "s"));
  }
  out.r = q.r ? q.r : std::min(config_.r, out.n);
  out.w = q.w ? q.w : std::min(config_.w, out.n);
  out.pr = q.pr;
  out.pw = q.pw;
  if (out.r > out.n) return Status::InvalidArgument(fmt::format("r={} is more than n={}", out.r, out.n));
  if (out.w > out.n) return Status::InvalidArgument(fmt::format("w={} is more than n={}", out.w, out.n));
  if (out.pr > out.r) return Status::InvalidArgument(fmt::format("pr={} is more than r={}", out.pr, out.r));
  if (out.pw > out.w) return Status::InvalidArgument(fmt::format("pw={} is more than w={}", out.pw, out.w));
  out.timeout_ms = q.timeout_ms ? q.timeout_ms : config_.timeout_ms;
  out.mode = q.mode == Mode::kDefault ? config_.mode : q.mode;
  out.lww = q.lww;
  return out;
}

Node::Targets Node::TargetsFor(const std::string& key, const Resolved& q) const {
  const Ring& ring = membership_->ring();
  const auto& pref = ring.PreferenceList(ring.PartitionOfKey(key));
  Targets t;
  // Strict: the first n entries, alive or not (the dead ones fail fast).
  for (size_t i = 0; i < pref.size() && t.nodes.size() < q.n; ++i) {
    t.nodes.push_back(pref[i]);
    t.primary.push_back(true);
  }
  return t;
}

// ---------------------------------------------------------------------------
// GET

void Node::StartGet(ClientId conn, uint64_t client_request_id, GetRequest req) {
  ++stats_.gets;
  Origin origin{conn, {}, client_request_id};
  auto q = ResolveQuorum(req.quorum);
  if (!q.ok()) {
    ++stats_.invalid_requests;
    Answer(origin, Reply{q.status(), std::nullopt});
    return;
  }
  auto op = std::make_unique<GetOp>();
  op->id = next_op_id_++;
  op->origin = origin;
  op->key = std::move(req.key);
  op->q = *q;
  op->targets = TargetsFor(op->key, *q);
  op->start_us = clock_->NowMicros();
  uint64_t id = op->id;
  op->timer = clock_->After(q->timeout_ms, [this, id] {
    auto it = gets_.find(id);
    if (it == gets_.end()) return;
    GetOp& g = *it->second;
    g.timer = 0;
    if (!g.answered) {
      g.answered = true;
      std::vector<NodeId> silent;
      for (const auto& t : g.targets.nodes) {
        if (!g.replies.contains(t) && !g.failures.contains(t)) silent.push_back(t);
      }
      ++stats_.read_quorum_failures;
      Answer(g.origin, Reply{Status::Unavailable(QuorumFailure(
                                 "read", static_cast<uint32_t>(g.replies.size()), "r", g.q.r,
                                 g.q.n, g.primary_replies, g.q.pr, g.failures, silent)),
                             std::nullopt});
    }
    FinishReadRepair(id);
  });
  std::vector<NodeId> targets = op->targets.nodes;
  std::string key = op->key;
  gets_[id] = std::move(op);
  bool local = false;
  for (const auto& t : targets) {
    if (t == config_.id) {
      local = true;
    } else {
      SendPeer(t, id, ReplicaRead{key});
    }
  }
  if (local) {
    ReplicaReadReply r = LocalRead(key);
    OnReadReply(id, config_.id, std::move(r.status), std::move(r.object));
  }
}

void Node::OnReadReply(uint64_t op_id, const NodeId& from, Status status,
                       std::optional<DvvSet> object) {
  auto it = gets_.find(op_id);
  if (it == gets_.end()) return;  // late reply after the op ended
  GetOp& op = *it->second;
  auto pos = std::find(op.targets.nodes.begin(), op.targets.nodes.end(), from);
  if (pos == op.targets.nodes.end()) return;  // not asked
  if (op.replies.contains(from) || op.failures.contains(from)) return;  // duplicate
  if (status.ok() || status.IsNotFound()) {
    op.replies[from] = std::move(object);
    if (op.targets.primary[pos - op.targets.nodes.begin()]) ++op.primary_replies;
  } else {
    op.failures[from] = status.ToString();
  }
  MaybeFinishGet(op);
}

void Node::MaybeFinishGet(GetOp& op) {
  uint64_t id = op.id;
  size_t outstanding = op.targets.nodes.size() - op.replies.size() - op.failures.size();
  if (!op.answered) {
    uint32_t got = static_cast<uint32_t>(op.replies.size());
    uint32_t primaries_outstanding = 0;
    for (size_t i = 0; i < op.targets.nodes.size(); ++i) {
      const auto& t = op.targets.nodes[i];
      if (op.targets.primary[i] && !op.replies.contains(t) && !op.failures.contains(t)) {
        ++primaries_outstanding;
      }
    }
    if (got >= op.q.r && op.primary_replies >= op.q.pr) {
      op.answered = true;
      DvvSet merged;
      for (const auto& [node, obj] : op.replies) {
        if (obj) merged = DvvSet::Sync(merged, *obj);
      }
      if (op.q.lww) merged = DvvSet::CollapseLww(merged);
      stats_.get_latency_us.Record(clock_->NowMicros() - op.start_us);
      Reply reply;
      if (merged.empty()) {
        ++stats_.get_not_found;
        reply.status = Status::NotFound(fmt::format("key not found"));
      } else if (merged.IsDeleted()) {
        ++stats_.get_not_found;
        reply.status = Status::NotFound("key not found (deleted)");
        reply.object = std::move(merged);  // its context lets a client write over the delete
      } else {
        size_t live = merged.LiveSiblings().size();
        if (live > 1) ++stats_.siblings_seen;
        stats_.max_siblings = std::max<uint64_t>(stats_.max_siblings, live);
        reply.object = std::move(merged);
      }
      Answer(op.origin, std::move(reply));
    } else if (got + outstanding < op.q.r ||
               op.primary_replies + primaries_outstanding < op.q.pr) {
      op.answered = true;
      ++stats_.read_quorum_failures;
      std::vector<NodeId> silent;
      Answer(op.origin, Reply{Status::Unavailable(QuorumFailure(
                                  "read", got, "r", op.q.r, op.q.n, op.primary_replies,
                                  op.q.pr, op.failures, silent)),
                              std::nullopt});
    }
  }
  if (op.answered && outstanding == 0) FinishReadRepair(id);
}

void Node::FinishReadRepair(uint64_t op_id) {
  auto it = gets_.find(op_id);
  if (it == gets_.end()) return;
  std::unique_ptr<GetOp> op = std::move(it->second);
  gets_.erase(it);
  if (op->timer) clock_->Cancel(op->timer);
  DvvSet merged;
  for (const auto& [node, obj] : op->replies) {
    if (obj) merged = DvvSet::Sync(merged, *obj);
  }
  if (merged.empty()) return;
  if (op->q.lww) merged = DvvSet::CollapseLww(merged);
  for (const auto& [node, obj] : op->replies) {
    if (obj && *obj == merged) continue;
    ++stats_.read_repairs;
    if (node == config_.id) {
      LocalMerge(op->key, merged);
    } else {
      SendPeer(node, 0, ReplicaWrite{op->key, merged, {}});
    }
  }
}

// ---------------------------------------------------------------------------
// PUT / DELETE

void Node::StartPut(Origin origin, PutRequest req) {
  if (req.tombstone) {
    ++stats_.deletes;
  } else {
    ++stats_.puts;
  }
  auto reject = [&](Status s) {
    ++stats_.invalid_requests;
    Answer(origin, Reply{std::move(s), std::nullopt});
  };
  if (req.value.size() > config_.max_value_bytes) {
    return reject(Status::InvalidArgument(fmt::format(
        "value is {} bytes; the limit is {}", req.value.size(), config_.max_value_bytes)));
  }
  auto ctx = DecodeContext(req.context);
  if (!ctx.ok()) return reject(ctx.status());
  auto q = ResolveQuorum(req.quorum);
  if (!q.ok()) return reject(q.status());
  Targets targets = TargetsFor(req.key, *q);
  bool self_is_replica = IsPrimaryIn(targets.nodes, config_.id);
  if (self_is_replica || req.forwarded) {
    CoordinatePut(origin, std::move(req), *q, std::move(targets));
    return;
  }
  ++stats_.forwarded_puts;
  auto op = std::make_unique<ForwardOp>();
  op->origin = origin;
  op->req = std::move(req);
  op->start_us = clock_->NowMicros();
  // Replicas believed alive first, in preference order.
  for (const auto& t : targets.nodes) {
    if (membership_->IsAlive(t)) op->candidates.push_back(t);
  }
  for (const auto& t : targets.nodes) {
    if (!membership_->IsAlive(t)) op->candidates.push_back(t);
  }
  op->id = next_op_id_++;
  uint64_t id = op->id;
  // The replica that coordinates needs its own timeout plus the hop.
  op->timer = clock_->After(q->timeout_ms + 500, [this, id] {
    auto it = forwards_.find(id);
    if (it == forwards_.end()) return;
    std::unique_ptr<ForwardOp> f = std::move(it->second);
    forwards_.erase(it);
    ++stats_.write_quorum_failures;
    Answer(f->origin, Reply{Status::Timeout(fmt::format(
                                "no answer from replica {} coordinating the write",
                                f->candidates[std::min(f->next, f->candidates.size() - 1)])),
                            std::nullopt});
  });
  Forward(std::move(op));
}

void Node::Forward(std::unique_ptr<ForwardOp> op) {
  uint64_t id = op->id;
  NodeId to = op->candidates[op->next];
  PutRequest fwd = op->req;
  fwd.forwarded = true;
  forwards_[id] = std::move(op);
  SendPeer(to, id, std::move(fwd));
}

void Node::OnForwardReply(uint64_t op_id, Reply reply) {
  auto it = forwards_.find(op_id);
  if (it == forwards_.end()) return;
  std::unique_ptr<ForwardOp> op = std::move(it->second);
  forwards_.erase(it);
  clock_->Cancel(op->timer);
  stats_.put_latency_us.Record(clock_->NowMicros() - op->start_us);
  Answer(op->origin, std::move(reply));
}

void Node::CoordinatePut(Origin origin, PutRequest req, const Resolved& q, Targets targets) {
  auto op = std::make_unique<PutOp>();
  op->id = next_op_id_++;
  op->origin = origin;
  op->key = std::move(req.key);
  op->q = q;
  op->targets = std::move(targets);
  op->is_delete = req.tombstone;
  op->start_us = clock_->NowMicros();

  DvvSet local;
  Status s = store_->Get(op->key, &local);
  if (!s.ok() && !s.IsNotFound()) {
    Answer(origin, Reply{s, std::nullopt});
    return;
  }
  VersionVector context = *DecodeContext(req.context);  // checked in StartPut
  op->object = DvvSet::Update(local, context, config_.id, std::move(req.value), req.tombstone,
                              clock_->WallMillis());
  op->dot = Dot{config_.id, op->object.clock().Get(config_.id)};
  if (q.lww) op->object = DvvSet::CollapseLww(op->object);
  s = store_->Put(op->key, op->object);
  ++stats_.replica_writes;
  if (!s.ok()) {
    Answer(origin, Reply{s, std::nullopt});
    return;
  }
  uint64_t id = op->id;
  op->timer = clock_->After(q.timeout_ms, [this, id] {
    auto it = puts_.find(id);
    if (it == puts_.end()) return;
    std::unique_ptr<PutOp> p = std::move(it->second);
    puts_.erase(it);
    std::vector<NodeId> silent;
    for (const auto& t : p->targets.nodes) {
      if (!p->acked.contains(t) && !p->failures.contains(t)) silent.push_back(t);
    }
    ++stats_.write_quorum_failures;
    Answer(p->origin, Reply{Status::Unavailable(QuorumFailure(
                                "write", static_cast<uint32_t>(p->acked.size()), "w", p->q.w,
                                p->q.n, p->primary_acks, p->q.pw, p->failures, silent)),
                            std::nullopt});
  });
  std::vector<NodeId> nodes = op->targets.nodes;
  DvvSet object = op->object;
  std::string key = op->key;
  puts_[id] = std::move(op);
  for (const auto& t : nodes) {
    if (t != config_.id) SendPeer(t, id, ReplicaWrite{key, object, {}});
  }
  OnWriteAck(id, config_.id, Status::OK());
}

void Node::OnWriteAck(uint64_t op_id, const NodeId& from, Status status) {
  auto it = puts_.find(op_id);
  if (it == puts_.end()) return;
  PutOp& op = *it->second;
  auto pos = std::find(op.targets.nodes.begin(), op.targets.nodes.end(), from);
  if (pos == op.targets.nodes.end()) return;
  if (op.acked.contains(from) || op.failures.contains(from)) return;
  if (status.ok()) {
    op.acked.insert(from);
    if (op.targets.primary[pos - op.targets.nodes.begin()]) ++op.primary_acks;
  } else {
    op.failures[from] = status.ToString();
  }
  MaybeFinishPut(op);
}

void Node::MaybeFinishPut(PutOp& op) {
  uint32_t got = static_cast<uint32_t>(op.acked.size());
  size_t outstanding = op.targets.nodes.size() - op.acked.size() - op.failures.size();
  uint32_t primaries_outstanding = 0;
  for (size_t i = 0; i < op.targets.nodes.size(); ++i) {
    const auto& t = op.targets.nodes[i];
    if (op.targets.primary[i] && !op.acked.contains(t) && !op.failures.contains(t)) {
      ++primaries_outstanding;
    }
  }
  Reply reply;
  if (got >= op.q.w && op.primary_acks >= op.q.pw) {
    stats_.put_latency_us.Record(clock_->NowMicros() - op.start_us);
    reply.object = op.object;
    reply.dot = op.dot;
  } else if (got + outstanding < op.q.w || op.primary_acks + primaries_outstanding < op.q.pw) {
    ++stats_.write_quorum_failures;
    reply.status = Status::Unavailable(QuorumFailure("write", got, "w", op.q.w, op.q.n,
                                                     op.primary_acks, op.q.pw, op.failures, {}));
  } else {
    return;
  }
  auto it = puts_.find(op.id);
  std::unique_ptr<PutOp> done = std::move(it->second);
  puts_.erase(it);
  clock_->Cancel(done->timer);
  Answer(done->origin, std::move(reply));
}

void Node::OnSendFailed(const NodeId& to, uint64_t request_id, const std::string& why) {
  if (gets_.contains(request_id)) {
    OnReadReply(request_id, to, Status::Unavailable(why), std::nullopt);
  } else if (puts_.contains(request_id)) {
    OnWriteAck(request_id, to, Status::Unavailable(why));
  } else if (auto it = forwards_.find(request_id); it != forwards_.end()) {
    std::unique_ptr<ForwardOp> op = std::move(it->second);
    forwards_.erase(it);
    op->failures[to] = why;
    if (++op->next < op->candidates.size()) {
      Forward(std::move(op));
      return;
    }
    clock_->Cancel(op->timer);
    ++stats_.write_quorum_failures;
    std::string tried;
    for (const auto& [node, reason] : op->failures) {
      tried += fmt::format("{}{}: {}", tried.empty() ? "" : "; ", node, reason);
    }
    Answer(op->origin, Reply{Status::Unavailable(fmt::format(
                                 "no replica of the key could coordinate the write ({})", tried)),
                             std::nullopt});
  }
}

std::string Node::QuorumFailure(const char* what, uint32_t got, const char* required_name,
                                uint32_t required, uint32_t n, uint32_t primaries_got,
                                uint32_t pr_required, const std::map<NodeId, std::string>& failures,
                                const std::vector<NodeId>& silent) const {
  bool is_read = std::string_view(what) == "read";
  std::string s = fmt::format("{} quorum not met: {} of {}={} {} from n={} replicas", what, got,
                              required_name, required,
                              is_read ? "replies" : "acknowledgements", n);
  if (pr_required > 0) {
    s += fmt::format(", {} of {}={} from primaries", primaries_got, is_read ? "pr" : "pw",
                     pr_required);
  }
  std::vector<std::string> parts;
  if (!silent.empty()) {
    std::string names;
    for (const auto& id : silent) names += (names.empty() ? "" : ", ") + id;
    parts.push_back(fmt::format("{} timed out: {}", silent.size(), names));
  }
  if (!failures.empty()) {
    std::string names;
    for (const auto& [id, why] : failures) names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", id, why);
    parts.push_back(fmt::format("{} failed: {}", failures.size(), names));
  }
  if (!parts.empty()) {
    s += " (";
    for (size_t i = 0; i < parts.size(); ++i) s += (i ? "; " : "") + parts[i];
    s += ")";
  }
  return s;
}

// ---------------------------------------------------------------------------
// Local replica

ReplicaReadReply Node::LocalRead(const std::string& key) {
  ++stats_.replica_reads;
  DvvSet object;
  Status s = store_->Get(key, &object);
  if (s.IsNotFound()) return ReplicaReadReply{Status::NotFound(""), std::nullopt};
  if (!s.ok()) return ReplicaReadReply{s, std::nullopt};
  return ReplicaReadReply{Status::OK(), std::move(object)};
}

Status Node::LocalMerge(const std::string& key, const DvvSet& incoming) {
  ++stats_.replica_writes;
  DvvSet local;
  Status s = store_->Get(key, &local);
  if (!s.ok() && !s.IsNotFound()) return s;
  DvvSet merged = DvvSet::Sync(local, incoming);
  if (s.ok() && merged == local) return Status::OK();  // nothing new
  return store_->Put(key, merged);
}

// ---------------------------------------------------------------------------
// Info

std::string Node::StatusJson() const {
  json members = json::array();
  for (const auto& m : membership_->Members()) {
    members.push_back({{"id", m.id}, {"address", m.address}, {"state", m.state},
                       {"alive", m.id == config_.id ? true : m.alive}});
  }
  const Ring& ring = membership_->ring();
  json j = {{"node", config_.id},
            {"cluster", config_.cluster},
            {"address", config_.listen_address},
            {"version", "0.1.0"},
            {"uptime_s", (clock_->NowMicros() - started_us_) / 1000000},
            {"ring_size", ring.ring_size()},
            {"defaults", {{"n", config_.n}, {"r", config_.r}, {"w", config_.w},
                          {"timeout_ms", config_.timeout_ms},
                          {"mode", config_.mode == Mode::kStrict ? "strict" : "sloppy"}}},
            {"objects", store_->CountObjects()},
            {"pending_requests", pending_requests()},
            {"members", members}};
  if (connections_report_) j["connections"] = json::parse(connections_report_());
  return j.dump();
}

std::string Node::RingJson() const {
  const Ring& ring = membership_->ring();
  json partitions = json::array();
  std::map<NodeId, std::pair<uint32_t, uint32_t>> share;  // first, any primary
  for (const auto& m : ring.members()) share[m] = {0, 0};
  for (uint32_t p = 0; p < ring.ring_size(); ++p) {
    auto primaries = ring.Primaries(p, ring.n_val());
    for (size_t i = 0; i < primaries.size(); ++i) {
      if (i == 0) share[primaries[i]].first++;
      share[primaries[i]].second++;
    }
    partitions.push_back({{"partition", p},
                          {"start", fmt::format("{:016x}", ring.PartitionStart(p))},
                          {"primaries", primaries}});
  }
  json nodes = json::array();
  double mean = ring.members().empty()
                    ? 0.0
                    : static_cast<double>(ring.ring_size()) * ring.n_val() / ring.members().size();
  for (const auto& [id, s] : share) {
    nodes.push_back({{"id", id},
                     {"first_owner_of", s.first},
                     {"replicas", s.second},
                     {"percent_of_mean", mean > 0 ? 100.0 * s.second / mean : 0.0}});
  }
  json j = {{"ring_size", ring.ring_size()},
            {"n_val", ring.n_val()},
            {"members", ring.members()},
            {"nodes", nodes},
            {"partitions", partitions}};
  return j.dump();
}

std::string Node::StatsJson() const {
  const NodeStats& s = stats_;
  json j = {{"node", config_.id},
            {"gets", s.gets},
            {"puts", s.puts},
            {"deletes", s.deletes},
            {"forwarded_puts", s.forwarded_puts},
            {"get_not_found", s.get_not_found},
            {"read_quorum_failures", s.read_quorum_failures},
            {"write_quorum_failures", s.write_quorum_failures},
            {"invalid_requests", s.invalid_requests},
            {"read_repairs", s.read_repairs},
            {"siblings_seen", s.siblings_seen},
            {"max_siblings", s.max_siblings},
            {"replica_reads", s.replica_reads},
            {"replica_writes", s.replica_writes},
            {"wrong_cluster_refused", s.wrong_cluster_refused},
            {"pending_requests", pending_requests()},
            {"objects", store_->CountObjects()},
            {"get_latency", LatencyJson(s.get_latency_us)},
            {"put_latency", LatencyJson(s.put_latency_us)}};
  return j.dump();
}

namespace {

Status CheckInfoKey(const std::string& key) {
  if (key.empty()) return Status::InvalidArgument("key is empty");
  if (key.size() > kMaxKeyBytes) {
    return Status::InvalidArgument(fmt::format("key is {} bytes; the limit is {}", key.size(), kMaxKeyBytes));
  }
  return Status::OK();
}

// Text as itself, other bytes as base64 with a marker.
void PutBytes(json& j, const char* field, const std::string& bytes) {
  if (IsPrintableUtf8(bytes)) {
    j[field] = bytes;
  } else {
    j[field] = Base64Encode(bytes);
    j[std::string(field) == "value" ? "encoding" : std::string(field) + "_encoding"] = "base64";
  }
}

}  // namespace

Result<std::string> Node::LocalJson(const std::string& key) const {
  Status s = CheckInfoKey(key);
  if (!s.ok()) return s;
  DvvSet object;
  s = store_->Get(key, &object);
  if (!s.ok() && !s.IsNotFound()) return s;
  json j;
  PutBytes(j, "key", key);
  j["node"] = config_.id;
  j["found"] = s.ok() && !object.IsDeleted() && !object.empty();
  json siblings = json::array();
  uint64_t tombstones = 0;
  for (const Sibling& sib : object.siblings()) {
    if (sib.tombstone) {
      ++tombstones;
      continue;
    }
    json e;
    PutBytes(e, "value", sib.value);
    e["dot"] = sib.dot.ToString();
    siblings.push_back(e);
  }
  j["siblings"] = siblings;
  j["tombstones"] = tombstones;
  j["clock"] = object.clock().ToString();
  return j.dump();
}

Result<std::string> Node::PreflistJson(const std::string& key) const {
  Status s = CheckInfoKey(key);
  if (!s.ok()) return s;
  const Ring& ring = membership_->ring();
  uint64_t h = KeyHash(key);
  uint32_t p = ring.PartitionOfHash(h);
  const auto& pref = ring.PreferenceList(p);
  json primaries = json::array(), fallbacks = json::array();
  for (size_t i = 0; i < pref.size(); ++i) {
    json e = {{"id", pref[i]}, {"alive", pref[i] == config_.id || membership_->IsAlive(pref[i])}};
    (i < ring.n_val() ? primaries : fallbacks).push_back(e);
  }
  json j = {{"key", IsPrintableUtf8(key) ? key : Base64Encode(key)},
            {"hash", fmt::format("{:016x}", h)},
            {"partition", p},
            {"primaries", primaries},
            {"fallbacks", fallbacks}};
  return j.dump();
}

}  // namespace ringkv
