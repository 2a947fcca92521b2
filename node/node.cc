#include "node/node.h"

#include <algorithm>
#include <cmath>
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
  ReplicaSet replicas;
  std::map<NodeId, std::optional<DvvSet>> replies;  // nullopt: replica has nothing
  bool answered = false;
  uint64_t start_us = 0;
  Clock::TimerId timer = 0;
  Clock::TimerId straggler_timer = 0;
};

struct Node::PutOp {
  uint64_t id = 0;
  Origin origin;
  std::string key;
  Resolved q{};
  ReplicaSet replicas;
  DvvSet object;
  Dot dot;  // minted here
  std::set<NodeId> coordinator_hints;  // primaries this node holds a hint for
  bool answered = false;  // the client has its answer; the op lives on until
                          // every replica answered, so late failures still
                          // get a fallback (and a hint)
  uint64_t start_us = 0;
  Clock::TimerId timer = 0;
  Clock::TimerId straggler_timer = 0;
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

Reply ErrorReply(Status s) { return Reply{std::move(s), std::nullopt, std::nullopt}; }

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

namespace {

GossipConfig MakeGossipConfig(const NodeConfig& c) {
  GossipConfig g;
  g.id = c.id;
  g.address = c.listen_address;
  g.ring_size = c.ring_size;
  g.n_val = c.n;
  g.interval_ms = c.gossip_interval_ms;
  g.phi_threshold = c.phi_threshold;
  g.seeds = c.seeds;
  g.random_seed = c.random_seed;
  g.cluster = c.cluster;
  return g;
}

// The bitmap of every partition `node` owns in the ring of `members`.
std::string OwnedBitmap(const NodeConfig& c, const std::vector<NodeId>& members, const NodeId& node) {
  std::string bitmap;
  auto ring = Ring::Build(c.ring_size, c.n, members);
  if (!ring.ok()) return bitmap;
  for (uint32_t p : ring->PartitionsOf(node)) ClusterMembership::SetPartition(&bitmap, p, true);
  return bitmap;
}

std::vector<NodeId> InitialMembers(const NodeConfig& c) {
  std::vector<NodeId> ids{c.id};
  for (const auto& [id, addr] : c.peers) {
    if (id != c.id) ids.push_back(id);
  }
  return ids;
}

// This node's entry as it starts: a new incarnation, and the status its data
// dir remembers (or what its flags say for a new data dir).
MemberState InitialSelf(const NodeConfig& c, Store* store) {
  MemberState self;
  self.id = c.id;
  self.address = c.listen_address;
  std::string v;
  self.incarnation = store->GetMeta("incarnation", &v).ok() ? std::strtoull(v.c_str(), nullptr, 10) + 1 : 1;
  std::string status;
  bool known = store->GetMeta("status", &status).ok();
  if (known && (status == "up" || status == "leaving")) {
    self.status = status == "up" ? MemberStatus::kUp : MemberStatus::kLeaving;
  } else if (known) {
    self.status = MemberStatus::kJoining;  // it left before: join again
  } else {
    self.status = c.seeds.empty() ? MemberStatus::kUp : MemberStatus::kJoining;
  }
  return self;
}

}  // namespace

Node::Node(NodeConfig config, Store* store, Transport* transport, Clock* clock)
    : config_(std::move(config)),
      store_(store),
      transport_(transport),
      clock_(clock),
      gossiper_(MakeGossipConfig(config_), InitialSelf(config_, store), transport, clock),
      cluster_(&gossiper_, config_.ring_size, config_.n),
      hints_(config_.id, config_.cluster, store, transport, clock),
      handoff_(config_.id, config_.cluster, store, transport, clock, &gossiper_, &cluster_,
               [this](const std::string& key, const DvvSet& object) { return LocalMerge(key, object); },
               [this](const std::string& key) { return EraseLocal(key); },
               [this](const NodeId& target, const std::string& key, const DvvSet& object) {
                 return AddHint(target, key, object);
               }),
      aae_(config_.id, config_.cluster, config_.aae, store, transport, clock, &cluster_,
           [this](const std::string& key, const DvvSet& object) { return LocalMerge(key, object); }),
      reaper_(config_.id, config_.cluster, config_.tombstones, store, transport, clock, &cluster_,
              &hints_,
              [this](const std::string& key, const DvvSet& object) { return LocalMerge(key, object); },
              [this](const std::string& key) { return EraseLocal(key); }) {
  started_us_ = clock_->NowMicros();
}

Node::~Node() {
  reaper_.Stop();
  aae_.Stop();
  gossiper_.Stop();
  handoff_.Stop();
  hints_.Stop();
  for (auto& [id, op] : gets_) {
    clock_->Cancel(op->timer);
    clock_->Cancel(op->straggler_timer);
  }
  for (auto& [id, op] : puts_) {
    clock_->Cancel(op->timer);
    clock_->Cancel(op->straggler_timer);
  }
  for (auto& [id, op] : forwards_) clock_->Cancel(op->timer);
}

Status Node::Start() {
  const MemberState& self = gossiper_.self();
  Status s = store_->PutMeta("incarnation", std::to_string(self.incarnation));
  if (!s.ok()) return s;
  objects_ = store_->CountObjects();
  uint64_t first_id = FirstRequestId(self.incarnation);
  next_op_id_ = first_id;
  hints_.StartRequestIdsAt(first_id);
  handoff_.StartRequestIdsAt(first_id);
  aae_.StartRequestIdsAt(first_id);
  reaper_.StartRequestIdsAt(first_id);
  std::string status;
  if (!store_->GetMeta("status", &status).ok() || status == "left") {
    store_->PutMeta("status", self.status == MemberStatus::kUp ? "up" : "joining");
  }
  // Static bootstrap: every peer is a member, Up, holding what it owns.
  std::vector<NodeId> initial = InitialMembers(config_);
  if (!config_.peers.empty()) {
    GossipAck boot{config_.ring_size, config_.n, {}};
    for (const auto& [id, addr] : config_.peers) {
      if (id == config_.id) continue;
      boot.members.push_back(MemberState{id, addr, 0, 0, MemberStatus::kUp, OwnedBitmap(config_, initial, id)});
    }
    gossiper_.OnAck(config_.id, boot);
  }
  std::string complete;
  if (!store_->GetMeta("complete", &complete).ok()) {
    // A new data dir: a founder or a statically listed member holds (empty)
    // partitions complete from the start; a joiner pulls its own.
    complete = config_.seeds.empty() ? OwnedBitmap(config_, initial, config_.id) : std::string();
  }
  if (self.status == MemberStatus::kJoining && !config_.seeds.empty()) {
    // Nothing held before is trusted after a leave; pull afresh.
    if (status == "left") complete.clear();
  }
  gossiper_.OnChange([this] { OnMembershipChange(); });
  cluster_.Refresh();
  s = hints_.Start();
  if (!s.ok()) return s;
  s = reaper_.Start();
  if (!s.ok()) return s;
  handoff_.OnLeft([this] {
    // Hints for nodes that are down go to a node that stays; then stay a few
    // gossip rounds so the news spreads, and exit.
    hints_.Evacuate(
        [this](const NodeId& target) {
          for (const auto& [id, m] : gossiper_.members()) {
            if (id != config_.id && id != target && m.status == MemberStatus::kUp &&
                cluster_.IsAlive(id)) {
              return id;
            }
          }
          return NodeId();
        },
        [this](const NodeId& id) { return cluster_.IsAlive(id); });
    left_at_us_ = clock_->NowMicros();
    WaitToExit();
  });
  handoff_.Start(complete);
  aae_.Start();
  gossiper_.Start();
  return Status::OK();
}

void Node::WaitToExit() {
  bool hints_out = hints_.queued() == 0;
  bool waited_long = clock_->NowMicros() - left_at_us_ > 30'000'000;  // give up on hints
  if (hints_out || waited_long) {
    clock_->After(3 * config_.gossip_interval_ms + 200, [this] {
      if (on_exit_) on_exit_();
    });
    return;
  }
  clock_->After(200, [this] { WaitToExit(); });
}

void Node::OnMembershipChange() {
  cluster_.Refresh();
  aae_.OnMembershipChange();
  for (const auto& [id, m] : gossiper_.members()) {
    if (id == config_.id) continue;
    bool alive = cluster_.IsAlive(id);
    if (alive && !alive_seen_.contains(id)) hints_.OnPeerAlive(id);
    if (alive) {
      alive_seen_.insert(id);
    } else {
      alive_seen_.erase(id);
    }
  }
}

void Node::OnReachability(const NodeId& peer, bool reachable) {
  cluster_.SetReachable(peer, reachable);
  if (reachable) hints_.OnPeerAlive(peer);
}

std::string Node::AddressOf(const NodeId& id) const {
  if (id.starts_with(Gossiper::kSeedPrefix)) return id.substr(std::string_view(Gossiper::kSeedPrefix).size());
  if (const MemberState* m = cluster_.Find(id); m != nullptr && !m->address.empty()) return m->address;
  auto it = config_.peers.find(id);
  return it == config_.peers.end() ? std::string() : it->second;
}

Status Node::Leave() {
  MemberStatus s = gossiper_.self().status;
  if (s == MemberStatus::kLeaving) return Status::OK();
  if (s != MemberStatus::kUp) {
    return Status::InvalidArgument(fmt::format("{} is {}; only an up node can leave", config_.id,
                                               MemberStatusName(s)));
  }
  Status st = store_->PutMeta("status", "leaving");
  if (!st.ok()) return st;
  gossiper_.SetStatus(MemberStatus::kLeaving);
  return Status::OK();
}

Status Node::Remove(const NodeId& id) {
  if (id != config_.id && cluster_.IsAlive(id)) {
    return Status::InvalidArgument(fmt::format(
        "{} is alive as {} sees it; only a dead node can be removed: stop it first", id,
        config_.id));
  }
  return gossiper_.Remove(id, /*known_down=*/true);
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
    StartGet(origin, std::move(*get));
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
    } else if (info->topic == "hints") {
      reply.json = hints_.Json();
    } else if (info->topic == "reaper") {
      reply.json = reaper_.Json();
    } else if (info->topic == "aae-status") {
      reply.json = aae_.Json();
    } else if (info->topic == "aae-rebuild") {
      aae_.RebuildAll();
      reply.json = aae_.Json();
    } else if (info->topic == "aae-exchange") {
      aae_.ExchangeNow();
      reply.json = aae_.Json();
    } else if (info->topic == "admin-leave" || info->topic == "admin-remove") {
      Status s = info->topic == "admin-leave" ? Leave() : Remove(info->arg);
      reply.status = s;
      if (s.ok()) reply.json = StatusJson();
    } else if (info->topic == "preflist" || info->topic == "local") {
      auto r = info->topic == "local" ? LocalJson(info->arg) : PreflistJson(info->arg);
      if (r.ok()) {
        reply.json = *r;
      } else {
        reply.status = r.status();
      }
    } else {
      reply.status = Status::InvalidArgument(fmt::format(
          "unknown info topic '{}' (status, ring, stats, hints, preflist, local, reaper)", info->topic));
    }
    transport_->Reply(conn, Envelope{rid, {}, {}, std::move(reply)});
  } else {
    ++stats_.invalid_requests;
    transport_->Reply(conn, Envelope{rid, {}, {},
                                     ErrorReply(Status::InvalidArgument(fmt::format(
                                         "{} is not a client request (peers must name themselves)",
                                         BodyName(env.body))))});
  }
}

void Node::HandlePeer(ClientId conn, Envelope env) {
  if (env.cluster != config_.cluster) {
    ++stats_.wrong_cluster_refused;
    transport_->Reply(conn, Envelope{env.request_id, {}, {},
                                     ErrorReply(Status::WrongCluster(fmt::format(
                                         "node {} is in cluster '{}', not '{}'", config_.id,
                                         config_.cluster, env.cluster)))});
    return;
  }
  const NodeId& from = env.from;
  uint64_t rid = env.request_id;
  if (auto* rr = std::get_if<ReplicaRead>(&env.body)) {
    SendPeer(from, rid, LocalRead(rr->key, rr->hint_for));
  } else if (auto* rw = std::get_if<ReplicaWrite>(&env.body)) {
    Status s = rw->hint_for.empty() || rw->hint_for == config_.id
                   ? LocalMerge(rw->key, rw->object)
                   : AddHint(rw->hint_for, rw->key, rw->object);
    if (rid != 0) SendPeer(from, rid, ReplicaWriteAck{s});
  } else if (auto* put = std::get_if<PutRequest>(&env.body)) {
    // A forwarded put that arrives twice (a network that duplicates, or a
    // retry) must not be coordinated twice: two dots for one client write
    // would leave a sibling that a delete with the client's context misses.
    if (!forwarded_seen_.insert({from, rid}).second) {
      ++stats_.duplicate_forwards;
      return;
    }
    forwarded_order_.emplace_back(from, rid);
    if (forwarded_order_.size() > kForwardedRemembered) {
      forwarded_seen_.erase(forwarded_order_.front());
      forwarded_order_.pop_front();
    }
    put->forwarded = true;
    StartPut(Origin{0, from, rid}, std::move(*put));
  } else if (auto* rrr = std::get_if<ReplicaReadReply>(&env.body)) {
    if (AntiEntropy::IsAaeRequest(rid)) {
      aae_.OnReadReply(from, rid, *rrr);
    } else {
      OnReadReply(rid, from, std::move(rrr->status), std::move(rrr->object));
    }
  } else if (auto* ack = std::get_if<ReplicaWriteAck>(&env.body)) {
    if (HintedHandoff::IsReplayRequest(rid)) {
      hints_.OnAck(from, rid, ack->status);
    } else if (rid != 0) {
      OnWriteAck(rid, from, std::move(ack->status));
    }
  } else if (auto* reply = std::get_if<Reply>(&env.body)) {
    OnForwardReply(rid, from, std::move(*reply));
  } else if (auto* push = std::get_if<GossipPush>(&env.body)) {
    gossiper_.OnPush(from, rid, *push);
  } else if (auto* gack = std::get_if<GossipAck>(&env.body)) {
    gossiper_.OnAck(from, *gack);
  } else if (auto* hreq = std::get_if<HandoffRequest>(&env.body)) {
    SendPeer(from, rid, handoff_.Serve(*hreq));
  } else if (auto* batch = std::get_if<HandoffBatch>(&env.body)) {
    handoff_.OnBatch(from, rid, std::move(*batch));
  } else if (auto* hq = std::get_if<AaeHashesRequest>(&env.body)) {
    SendPeer(from, rid, aae_.AnswerHashes(*hq));
  } else if (auto* sq = std::get_if<AaeSegmentRequest>(&env.body)) {
    SendPeer(from, rid, aae_.AnswerSegments(*sq));
  } else if (auto* hr = std::get_if<AaeHashesReply>(&env.body)) {
    aae_.OnHashesReply(from, rid, *hr);
  } else if (auto* sr = std::get_if<AaeSegmentReply>(&env.body)) {
    aae_.OnSegmentsReply(from, rid, *sr);
  } else if (auto* rc = std::get_if<ReapCheck>(&env.body)) {
    SendPeer(from, rid, reaper_.AnswerCheck(*rc));
  } else if (auto* rcr = std::get_if<ReapCheckReply>(&env.body)) {
    reaper_.OnCheckReply(from, rid, *rcr);
  } else if (auto* reap = std::get_if<Reap>(&env.body)) {
    SendPeer(from, rid, reaper_.AnswerReap(*reap));
  } else if (auto* rack = std::get_if<ReapAck>(&env.body)) {
    reaper_.OnReapAck(from, rid, *rack);
  } else {
    ++stats_.invalid_requests;  // not a message peers exchange
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

ReplicaSet Node::ChooseReplicas(const std::string& key, const Resolved& q) const {
  const Ring& ring = membership_->ring();
  return ReplicaSet::Choose(ring.PreferenceList(ring.PartitionOfKey(key)), q.n,
                            q.mode == Mode::kSloppy, [this](const NodeId& id) {
                              return id == config_.id || membership_->IsAlive(id);
                            });
}

// ---------------------------------------------------------------------------
// GET

void Node::StartGet(Origin origin, GetRequest req) {
  ++stats_.gets;
  auto q = ResolveQuorum(req.quorum);
  if (!q.ok()) {
    ++stats_.invalid_requests;
    Answer(origin, ErrorReply(q.status()));
    return;
  }
  auto op = std::make_unique<GetOp>();
  op->id = next_op_id_++;
  op->origin = origin;
  op->key = std::move(req.key);
  op->q = *q;
  op->replicas = ChooseReplicas(op->key, *q);
  op->start_us = clock_->NowMicros();
  uint64_t id = op->id;
  op->timer = clock_->After(q->timeout_ms, [this, id] { OnGetTimeout(id); });
  if (q->mode == Mode::kSloppy) {
    // Replicas still silent at half the timeout get a fallback beside them.
    op->straggler_timer = clock_->After(q->timeout_ms / 2, [this, id] {
      auto it = gets_.find(id);
      if (it == gets_.end()) return;
      it->second->straggler_timer = 0;
      for (const NodeId& silent : it->second->replicas.Silent()) AddGetFallback(*it->second, silent);
    });
  }
  std::vector<ReplicaSet::Replica> replicas = op->replicas.replicas();
  std::string key = op->key;
  gets_[id] = std::move(op);
  std::optional<ReplicaSet::Replica> local;
  for (const auto& r : replicas) {
    if (r.node == config_.id) {
      local = r;
    } else {
      SendPeer(r.node, id, ReplicaRead{key, r.hint_for});
    }
  }
  if (local) {
    ReplicaReadReply r = LocalRead(key, local->hint_for);
    OnReadReply(id, config_.id, std::move(r.status), std::move(r.object));
  }
}

void Node::AddGetFallback(GetOp& op, const NodeId& failed) {
  if (op.answered) return;
  auto sub = op.replicas.Substitute(failed);
  if (!sub) return;
  if (sub->node == config_.id) {
    uint64_t id = op.id;
    ReplicaReadReply r = LocalRead(op.key, sub->hint_for);
    OnReadReply(id, config_.id, std::move(r.status), std::move(r.object));
  } else {
    SendPeer(sub->node, op.id, ReplicaRead{op.key, sub->hint_for});
  }
}

void Node::OnGetTimeout(uint64_t id) {
  auto it = gets_.find(id);
  if (it == gets_.end()) return;
  GetOp& g = *it->second;
  g.timer = 0;
  if (!g.answered) {
    g.answered = true;
    ++stats_.read_quorum_failures;
    Answer(g.origin, ErrorReply(Status::Unavailable(
                         g.replicas.DescribeFailure(true, g.q.r, g.q.n, g.q.pr, true))));
  }
  FinishReadRepair(id);
}

void Node::OnReadReply(uint64_t op_id, const NodeId& from, Status status,
                       std::optional<DvvSet> object) {
  auto it = gets_.find(op_id);
  if (it == gets_.end()) return;  // late reply after the op ended
  GetOp& op = *it->second;
  if (status.ok() || status.IsNotFound()) {
    if (!op.replicas.RecordOk(from)) return;  // not asked, or a duplicate
    op.replies[from] = std::move(object);
  } else {
    if (!op.replicas.RecordFailure(from, status.ToString())) return;
    if (op.q.mode == Mode::kSloppy) {
      AddGetFallback(op, from);
      if (!gets_.contains(op_id)) return;
    }
  }
  MaybeFinishGet(op);
}

void Node::MaybeFinishGet(GetOp& op) {
  uint64_t id = op.id;
  const ReplicaSet& rs = op.replicas;
  if (!op.answered) {
    if (rs.ok() >= op.q.r && rs.ok_primaries() >= op.q.pr) {
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
        reply.status = Status::NotFound("key not found");
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
    } else if (rs.ok() + rs.outstanding() < op.q.r ||
               rs.ok_primaries() + rs.outstanding_primaries() < op.q.pr) {
      op.answered = true;
      ++stats_.read_quorum_failures;
      Answer(op.origin, ErrorReply(Status::Unavailable(
                            rs.DescribeFailure(true, op.q.r, op.q.n, op.q.pr, false))));
    }
  }
  if (op.answered && rs.outstanding() == 0) FinishReadRepair(id);
}

void Node::FinishReadRepair(uint64_t op_id) {
  auto it = gets_.find(op_id);
  if (it == gets_.end()) return;
  std::unique_ptr<GetOp> op = std::move(it->second);
  gets_.erase(it);
  clock_->Cancel(op->timer);
  clock_->Cancel(op->straggler_timer);
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
    ++stats_.read_repairs;
    if (node == config_.id) {
      if (hint_for.empty()) {
        LocalMerge(op->key, merged);
      } else {
        AddHint(hint_for, op->key, merged);
      }
    } else {
      SendPeer(node, 0, ReplicaWrite{op->key, merged, hint_for});
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
    Answer(origin, ErrorReply(std::move(s)));
  };
  if (req.value.size() > config_.max_value_bytes) {
    return reject(Status::InvalidArgument(fmt::format(
        "value is {} bytes; the limit is {}", req.value.size(), config_.max_value_bytes)));
  }
  auto ctx = DecodeContext(req.context);
  if (!ctx.ok()) return reject(ctx.status());
  auto q = ResolveQuorum(req.quorum);
  if (!q.ok()) return reject(q.status());
  ReplicaSet replicas = ChooseReplicas(req.key, *q);
  if (replicas.Contains(config_.id) || req.forwarded) {
    CoordinatePut(origin, std::move(req), *q, std::move(replicas));
    return;
  }
  ++stats_.forwarded_puts;
  auto op = std::make_unique<ForwardOp>();
  op->origin = origin;
  op->req = std::move(req);
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
  // The replica that coordinates needs its own timeout plus the hop.
  op->timer = clock_->After(q->timeout_ms + 500, [this, id] {
    auto it = forwards_.find(id);
    if (it == forwards_.end()) return;
    std::unique_ptr<ForwardOp> f = std::move(it->second);
    forwards_.erase(it);
    ++stats_.write_quorum_failures;
    Answer(f->origin, ErrorReply(Status::Timeout(fmt::format(
                          "no answer from replica {} coordinating the write",
                          f->candidates[std::min(f->next, f->candidates.size() - 1)]))));
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

void Node::OnForwardReply(uint64_t op_id, const NodeId& from, Reply reply) {
  auto it = forwards_.find(op_id);
  if (it == forwards_.end()) return;
  // Only a replica this write was forwarded to may answer it.
  const auto& tried = it->second->candidates;
  size_t sent_to = std::min(it->second->next + 1, tried.size());
  if (std::find(tried.begin(), tried.begin() + sent_to, from) == tried.begin() + sent_to) return;
  std::unique_ptr<ForwardOp> op = std::move(it->second);
  forwards_.erase(it);
  clock_->Cancel(op->timer);
  stats_.put_latency_us.Record(clock_->NowMicros() - op->start_us);
  Answer(op->origin, std::move(reply));
}

void Node::CoordinatePut(Origin origin, PutRequest req, const Resolved& q, ReplicaSet replicas) {
  auto op = std::make_unique<PutOp>();
  op->id = next_op_id_++;
  op->origin = origin;
  op->key = std::move(req.key);
  op->q = q;
  op->replicas = std::move(replicas);
  op->start_us = clock_->NowMicros();

  // This node's copy: its own, or the hint it holds when it stands in as a
  // fallback for a primary.
  int self = op->replicas.Find(config_.id);
  NodeId hint_for = self >= 0 ? op->replicas.replicas()[self].hint_for : NodeId();
  if (self < 0 && !op->replicas.replicas().empty()) {
    // A put forwarded here by a node whose view of the ring differs: this
    // node is no replica, so it keeps its copy as a hint for the first one
    // (delivered, then deleted, like any hint) rather than as stray data.
    hint_for = op->replicas.replicas()[0].primary ? op->replicas.replicas()[0].node
                                                  : op->replicas.replicas()[0].hint_for;
  }
  DvvSet local;
  Status s = store_->Get(op->key, &local);
  if (!s.ok() && !s.IsNotFound()) {
    Answer(origin, ErrorReply(s));
    return;
  }
  bool local_found = s.ok();
  NodeId actor = config_.id;
  if (!hint_for.empty()) {
    if (auto hinted = hints_.Find(hint_for, op->key)) local = DvvSet::Sync(local, *hinted);
    // A fallback does not keep the key once its hint is delivered, so it
    // cannot know the dots it minted for the key before; a counter past them
    // would claim to have seen them (and drop them at the primary). It mints
    // as an actor used for this one write instead.
    actor = fmt::format("{}~{:x}.{:x}", config_.id, gossiper_.self().incarnation, ++fallback_actors_);
  }
  VersionVector context = *DecodeContext(req.context);  // checked in StartPut
  // A key reaped here lately still has its tombstone in the reaper's fence;
  // and dots this node mints stay above those of reaped keys (the floor).
  std::optional<DvvSet> fenced = reaper_.Fenced(op->key, local);
  const DvvSet& base = fenced ? *fenced : local;
  uint64_t min_counter = actor == config_.id ? reaper_.counter_floor() : 0;
  op->object = DvvSet::Update(base, context, actor, std::move(req.value), req.tombstone,
                              clock_->WallMillis(), min_counter);
  op->dot = Dot{actor, op->object.clock().Get(actor)};
  if (q.lww) op->object = DvvSet::CollapseLww(op->object);
  s = hint_for.empty() ? WriteLocal(op->key, local_found ? &local : nullptr, op->object)
                       : AddHint(hint_for, op->key, op->object);
  ++stats_.replica_writes;
  if (!s.ok()) {
    Answer(origin, ErrorReply(s));
    return;
  }
  uint64_t id = op->id;
  op->timer = clock_->After(q.timeout_ms, [this, id] {
    auto it = puts_.find(id);
    if (it == puts_.end()) return;
    std::unique_ptr<PutOp> p = std::move(it->second);
    puts_.erase(it);
    clock_->Cancel(p->straggler_timer);
    if (!p->answered) {
      ++stats_.write_quorum_failures;
      Answer(p->origin, ErrorReply(Status::Unavailable(
                            p->replicas.DescribeFailure(false, p->q.w, p->q.n, p->q.pw, true))));
    }
  });
  if (q.mode == Mode::kSloppy) {
    op->straggler_timer = clock_->After(q.timeout_ms / 2, [this, id] {
      auto it = puts_.find(id);
      if (it == puts_.end()) return;
      it->second->straggler_timer = 0;
      for (const NodeId& silent : it->second->replicas.Silent()) {
        AddPutFallback(*it->second, silent);
      }
    });
  }
  // One message for every replica (only the hint differs), built before the
  // op is filed: a send that fails can end the op.
  std::vector<ReplicaSet::Replica> targets = op->replicas.replicas();
  Envelope env{id, config_.id, config_.cluster, ReplicaWrite{op->key, op->object, {}}};
  auto& write = std::get<ReplicaWrite>(env.body);
  puts_[id] = std::move(op);
  for (const auto& r : targets) {
    if (r.node == config_.id) continue;
    write.hint_for = r.hint_for;
    transport_->Send(r.node, env);
  }
  // Nodes taking over the key's partition (join/leave in progress) get the
  // write too, without counting toward w.
  env.request_id = 0;
  write.hint_for.clear();
  for (const NodeId& extra : membership_->PendingOwners(write.key)) {
    if (extra != config_.id && std::none_of(targets.begin(), targets.end(),
                                            [&](const auto& r) { return r.node == extra; })) {
      transport_->Send(extra, env);
    }
  }
  if (self >= 0) OnWriteAck(id, config_.id, Status::OK());
}

void Node::AddPutFallback(PutOp& op, const NodeId& failed) {
  auto sub = op.replicas.Substitute(failed);
  if (!sub) {
    // No live fallback is left (a small cluster): the coordinator keeps the
    // hint itself, as Cassandra does, so the primary still gets the write
    // when it returns. It does not count toward w.
    int i = op.replicas.Find(failed);
    if (i < 0) return;
    const auto& r = op.replicas.replicas()[i];
    NodeId primary = r.primary ? r.node : r.hint_for;
    if (primary.empty() || primary == config_.id || !op.coordinator_hints.insert(primary).second) {
      return;
    }
    if (AddHint(primary, op.key, op.object).ok()) ++stats_.coordinator_hints;
    return;
  }
  if (sub->node == config_.id) {
    Status s = AddHint(sub->hint_for, op.key, op.object);
    OnWriteAck(op.id, config_.id, s);
  } else {
    SendPeer(sub->node, op.id, ReplicaWrite{op.key, op.object, sub->hint_for});
  }
}

void Node::OnWriteAck(uint64_t op_id, const NodeId& from, Status status) {
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

void Node::MaybeFinishPut(PutOp& op) {
  const ReplicaSet& rs = op.replicas;
  if (!op.answered) {
    Reply reply;
    if (rs.ok() >= op.q.w && rs.ok_primaries() >= op.q.pw) {
      stats_.put_latency_us.Record(clock_->NowMicros() - op.start_us);
      reply.object = op.object;
      reply.dot = op.dot;
      op.answered = true;
    } else if (rs.ok() + rs.outstanding() < op.q.w ||
               rs.ok_primaries() + rs.outstanding_primaries() < op.q.pw) {
      ++stats_.write_quorum_failures;
      reply.status =
          Status::Unavailable(rs.DescribeFailure(false, op.q.w, op.q.n, op.q.pw, false));
      op.answered = true;
    }
    if (op.answered) Answer(op.origin, std::move(reply));
  }
  if (!op.answered || rs.outstanding() > 0) return;
  auto it = puts_.find(op.id);
  std::unique_ptr<PutOp> done = std::move(it->second);
  puts_.erase(it);
  clock_->Cancel(done->timer);
  clock_->Cancel(done->straggler_timer);
}

void Node::OnSendFailed(const NodeId& to, uint64_t request_id, const std::string& why) {
  if (Gossiper::IsGossipRequestId(request_id)) {
    gossiper_.OnSendFailed(to);
  } else if (OwnershipHandoff::IsHandoffRequest(request_id)) {
    handoff_.OnSendFailed(to, request_id);
  } else if (AntiEntropy::IsAaeRequest(request_id)) {
    aae_.OnSendFailed(to, request_id);
  } else if (TombstoneReaper::IsReaperRequest(request_id)) {
    reaper_.OnSendFailed(to, request_id);
  } else if (HintedHandoff::IsReplayRequest(request_id)) {
    hints_.OnSendFailed(to, request_id);
  } else if (gets_.contains(request_id)) {
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
    Answer(op->origin, ErrorReply(Status::Unavailable(fmt::format(
                           "no replica of the key could coordinate the write ({})", tried))));
  }
}

// ---------------------------------------------------------------------------
// Local replica

ReplicaReadReply Node::LocalRead(const std::string& key, const NodeId& hint_for) {
  ++stats_.replica_reads;
  DvvSet object;
  Status s = store_->Get(key, &object);
  if (!s.ok() && !s.IsNotFound()) return ReplicaReadReply{s, std::nullopt};
  bool found = s.ok();
  if (!hint_for.empty() && hint_for != config_.id) {
    // Any hint for the key will do: which primary a fallback stands in for
    // depends on the order failures were noticed.
    if (auto hinted = hints_.FindAny(key)) {
      object = DvvSet::Sync(object, *hinted);
      found = true;
    }
  }
  if (!found) return ReplicaReadReply{Status::NotFound(""), std::nullopt};
  return ReplicaReadReply{Status::OK(), std::move(object)};
}

Status Node::LocalMerge(const std::string& key, const DvvSet& object) {
  ++stats_.replica_writes;
  DvvSet local;
  Status s = store_->Get(key, &local);
  if (!s.ok() && !s.IsNotFound()) return s;
  // An older version still in flight when the key was reaped gets the
  // tombstone merged in instead of coming back to life.
  std::optional<DvvSet> fenced = reaper_.Fenced(key, object);
  DvvSet merged = DvvSet::Sync(local, fenced ? *fenced : object);
  if (s.ok() && merged == local) return Status::OK();  // nothing new
  return WriteLocal(key, s.ok() ? &local : nullptr, merged);
}

Status Node::AddHint(const NodeId& target, const std::string& key, const DvvSet& object) {
  std::optional<DvvSet> fenced = reaper_.Fenced(key, object);
  return hints_.Add(target, key, fenced ? *fenced : object);
}

Status Node::WriteLocal(const std::string& key, const DvvSet* old, const DvvSet& now) {
  Status s = store_->Put(key, now);
  if (!s.ok()) return s;
  if (old == nullptr) ++objects_;
  aae_.OnWrite(key, old, &now);
  return s;
}

Status Node::EraseLocal(const std::string& key) {
  DvvSet old;
  Status s = store_->Get(key, &old);
  if (s.IsNotFound()) return Status::OK();
  if (!s.ok()) return s;
  s = store_->Erase(key);
  if (!s.ok()) return s;
  --objects_;
  aae_.OnWrite(key, &old, nullptr);
  return s;
}

// ---------------------------------------------------------------------------
// Info

std::string Node::StatusJson() const {
  json members = json::array();
  const Ring& ring = membership_->ring();
  for (const auto& [id, m] : gossiper_.members()) {
    size_t held = 0;
    for (uint32_t p = 0; p < ring.ring_size(); ++p) held += ClusterMembership::HasPartition(m.complete, p);
    double phi = gossiper_.Phi(id);
    members.push_back({{"id", id},
                       {"address", m.address},
                       {"state", MemberStatusName(m.status)},
                       {"alive", id == config_.id || cluster_.IsAlive(id)},
                       {"phi", std::isfinite(phi) ? phi : -1.0},
                       {"incarnation", m.incarnation},
                       {"heartbeat", m.heartbeat},
                       {"partitions_held", held},
                       {"owns", ring.PartitionsOf(id).size()}});
  }
  json j = {{"node", config_.id},
            {"cluster", config_.cluster},
            {"address", config_.listen_address},
            {"version", "0.1.0"},
            {"uptime_s", (clock_->NowMicros() - started_us_) / 1000000},
            {"ring_size", ring.ring_size()},
            {"defaults", {{"n", config_.n}, {"r", config_.r}, {"w", config_.w},
                          {"timeout_ms", config_.timeout_ms},
                          {"mode", config_.mode == Mode::kStrict ? "strict" : "sloppy"}}},
            {"objects", objects_},
            {"pending_requests", pending_requests()},
            {"state", MemberStatusName(gossiper_.self().status)},
            {"handoff", json::parse(handoff_.Json())},
            {"gossip", {{"rounds", gossiper_.rounds()},
                        {"interval_ms", config_.gossip_interval_ms},
                        {"phi_threshold", config_.phi_threshold},
                        {"convictions", gossiper_.convictions()},
                        {"refused_mismatched", gossiper_.mismatched()},
                        {"last_mismatch", gossiper_.last_mismatch()}}},
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
  Store::CacheStats cache = store_->object_cache();
  json j = {{"node", config_.id},
            {"gets", s.gets},
            {"puts", s.puts},
            {"deletes", s.deletes},
            {"forwarded_puts", s.forwarded_puts},
            {"duplicate_forwards", s.duplicate_forwards},
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
            {"coordinator_hints", s.coordinator_hints},
            {"hints_queued", hints_.queued()},
            {"hints_stored", hints_.stored()},
            {"aae_exchanges", aae_.stats().exchanges},
            {"aae_keys_repaired", aae_.stats().keys_repaired},
            {"aae_bytes", aae_.stats().bytes},
            {"tombstones_reaped", reaper_.stats().erased},
            {"reap_keys_coordinated", reaper_.stats().keys_reaped},
            {"reap_checks_sent", reaper_.stats().checks_sent},
            {"reap_keys_checked", reaper_.stats().keys_checked},
            {"reap_keys_aborted", reaper_.stats().keys_aborted},
            {"reap_keys_deferred", reaper_.stats().keys_busy + reaper_.stats().keys_skipped},
            {"pending_requests", pending_requests()},
            {"objects", objects_},
            {"object_cache_hits", cache.hits},
            {"object_cache_misses", cache.misses},
            {"object_cache_entries", cache.entries},
            {"object_cache_bytes", cache.bytes},
            {"object_cache_budget", cache.budget},
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
