#include "node/node.h"

#include <set>

#include <fmt/format.h>

#include "core/codec.h"
#include "core/bucket_key.h"
#include "core/hash.h"

namespace ringkv {

namespace {

Reply ErrorReply(Status s) { return Reply{std::move(s), std::nullopt, std::nullopt}; }

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
               [this](const std::string& key, const DvvSet& object) { return replica_.Merge(key, object); },
               [this](const std::string& key) { return replica_.Erase(key); },
               [this](const NodeId& target, const std::string& key, const DvvSet& object) {
                 return replica_.AddHint(target, key, object);
               }),
      aae_(config_.id, config_.cluster, config_.aae, store, transport, clock, &cluster_,
           [this](const std::string& key, const DvvSet& object) { return replica_.Merge(key, object); }),
      reaper_(config_.id, config_.cluster, config_.tombstones, store, transport, clock, &cluster_,
              &hints_,
              [this](const std::string& key, const DvvSet& object) { return replica_.Merge(key, object); },
              [this](const std::string& key) { return replica_.Erase(key); }),
      buckets_(&config_),
      replica_(&config_, store, &stats_, &hints_, &aae_, &reaper_, &gossiper_),
      coordinator_(&config_, &stats_, &cluster_, transport, clock, &replica_, &buckets_),
      scans_(store, clock, &cluster_),
      lister_(&config_, &stats_, &cluster_, transport, clock, &scans_,
              [this] { return coordinator_.NextRequestId(); }),
      delay_rng_(config_.random_seed ^ 0x5eedde1a) {
  started_us_ = clock_->NowMicros();
}

Node::~Node() {
  for (Clock::TimerId t : delayed_writes_) clock_->Cancel(t);
  reaper_.Stop();
  aae_.Stop();
  gossiper_.Stop();
  handoff_.Stop();
  hints_.Stop();
}

Status Node::Start() {
  const MemberState& self = gossiper_.self();
  Status s = store_->PutMeta("incarnation", std::to_string(self.incarnation));
  if (!s.ok()) return s;
  std::string bucket_meta;
  s = store_->GetMeta(Buckets::kMetaName, &bucket_meta);
  if (s.ok()) {
    s = buckets_.Load(bucket_meta);
    if (!s.ok()) return s;
  } else if (!s.IsNotFound()) {
    return s;
  }
  gossiper_.SetMetadata([this] { return buckets_.Entries(); },
                        [this](const std::vector<BucketEntry>& remote) { MergeBuckets(remote); });
  replica_.CountObjects();
  s = StartDataTypeActor();
  if (!s.ok()) return s;
  uint64_t first_id = FirstRequestId(self.incarnation);
  coordinator_.StartRequestIdsAt(first_id);
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

Status Node::StartDataTypeActor() {
  // The actor of this data dir's data-type writes: see Replica::SetDataTypeActor.
  std::string actor;
  if (!store_->GetMeta("datatype-actor", &actor).ok() || actor.empty()) {
    uint64_t epoch = clock_->WallMillis();
    std::string digits;
    do {
      digits.insert(digits.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[epoch % 36]);
      epoch /= 36;
    } while (epoch > 0);
    actor = fmt::format("{}~d{}", config_.id, digits);
    Status s = store_->PutMeta("datatype-actor", actor);
    if (!s.ok()) return s;
  }
  replica_.SetDataTypeActor(actor);
  reaper_.SetDataTypeActor(actor);
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

size_t Node::pending_requests() const { return coordinator_.pending() + lister_.pending(); }

void Node::MergeBuckets(const std::vector<BucketEntry>& remote) {
  if (remote.empty() || !buckets_.Merge(remote)) return;
  // Best effort: a change not persisted here comes back by gossip after a
  // restart (every node holds the same entries).
  store_->PutMeta(Buckets::kMetaName, buckets_.Serialize());
}

Status Node::ApplyBucket(const std::string& name, const Buckets::Patch& patch) {
  auto entry = buckets_.Set(name, patch, clock_->WallMillis());
  if (!entry.ok()) return entry.status();
  return store_->PutMeta(Buckets::kMetaName, buckets_.Serialize());
}

void Node::SetBucket(ClientId conn, uint64_t rid, const std::string& arg) {
  auto answer = [this, conn, rid](Status s, std::string json) {
    InfoReply reply{std::move(s), std::move(json)};
    transport_->Reply(conn, Envelope{rid, {}, {}, std::move(reply)});
  };
  auto parsed = Buckets::ParseSetRequest(arg);
  if (!parsed.ok()) return answer(parsed.status(), "");
  auto [name, patch] = std::move(parsed).value();
  Status s = buckets_.Check(name, patch);
  if (!s.ok()) return answer(s, "");
  std::string bucket(BucketOrDefault(name));
  bool first_n = patch.n && *patch.n != config_.n && buckets_.Find(bucket) == nullptr;
  if (!first_n) {
    s = ApplyBucket(bucket, patch);
    return answer(s, s.ok() ? buckets_.Json(bucket) : "");
  }
  // A new bucket with its own n: only while it holds no keys (any it holds
  // were written with the cluster's n).
  ListKeysRequest count;
  count.bucket = bucket;
  count.count_only = true;
  lister_.Start(std::move(count), [this, answer, bucket, patch](ListKeysReply r) {
    if (!r.status.ok()) {
      return answer(Status::FromCode(r.status.code(),
                                     fmt::format("cannot tell whether bucket '{}' holds keys, so "
                                                 "its n is not set: {}",
                                                 bucket, r.status.message())),
                    "");
    }
    if (!r.missed.empty()) {
      return answer(Status::Unavailable(fmt::format(
                        "cannot tell whether bucket '{}' holds keys ({} partitions have no live "
                        "replica), so its n is not set",
                        bucket, r.missed.size())),
                    "");
    }
    if (r.count > 0) {
      return answer(Status::InvalidArgument(fmt::format(
                        "bucket '{}' already holds {} key{}, written with the cluster's n={}; "
                        "ringkv does not change n under existing keys. Create a new bucket with "
                        "n={} and copy them",
                        bucket, r.count, r.count == 1 ? "" : "s", config_.n, *patch.n)),
                    "");
    }
    Status applied = ApplyBucket(bucket, patch);
    answer(applied, applied.ok() ? buckets_.Json(bucket) : "");
  });
}

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
  Coordinator::Origin origin{conn, {}, rid};
  if (auto* get = std::get_if<GetRequest>(&env.body)) {
    coordinator_.StartGet(origin, std::move(*get));
  } else if (auto* put = std::get_if<PutRequest>(&env.body)) {
    put->forwarded = false;  // only peers forward
    coordinator_.StartPut(origin, std::move(*put));
  } else if (auto* dt = std::get_if<DataTypeRequest>(&env.body)) {
    dt->forwarded = false;  // only peers forward
    coordinator_.StartDataType(origin, std::move(*dt));
  } else if (auto* info = std::get_if<InfoRequest>(&env.body)) {
    HandleInfo(conn, rid, *info);
  } else if (auto* list = std::get_if<ListKeysRequest>(&env.body)) {
    lister_.Start(origin, std::move(*list));
  } else {
    ++stats_.invalid_requests;
    transport_->Reply(conn, Envelope{rid, {}, {},
                                     ErrorReply(Status::InvalidArgument(fmt::format(
                                         "{} is not a client request (peers must name themselves)",
                                         BodyName(env.body))))});
  }
}

void Node::HandleInfo(ClientId conn, uint64_t rid, const InfoRequest& info) {
  InfoReply reply;
  const std::string& topic = info.topic;
  if (topic == "bucket-set") {
    SetBucket(conn, rid, info.arg);
    return;
  }
  if (topic == "status") {
    reply.json = StatusJson();
  } else if (topic == "ring") {
    reply.json = RingJson();
  } else if (topic == "stats") {
    reply.json = StatsJson();
  } else if (topic == "hints") {
    reply.json = hints_.Json();
  } else if (topic == "reaper") {
    reply.json = reaper_.Json();
  } else if (topic == "aae-status") {
    reply.json = aae_.Json();
  } else if (topic == "aae-rebuild") {
    aae_.RebuildAll();
    reply.json = aae_.Json();
  } else if (topic == "aae-exchange") {
    aae_.ExchangeNow();
    reply.json = aae_.Json();
  } else if (topic == "admin-leave" || topic == "admin-remove") {
    Status s = topic == "admin-leave" ? Leave() : Remove(info.arg);
    reply.status = s;
    if (s.ok()) reply.json = StatusJson();
  } else if (topic == "bucket-show") {
    Status s = ValidateBucketName(BucketOrDefault(info.arg));
    reply.status = s;
    if (s.ok()) reply.json = buckets_.Json(info.arg);
  } else if (topic == "bucket-list") {
    reply.json = buckets_.ListJson();
  } else if (topic == "preflist" || topic == "local") {
    auto r = topic == "local" ? LocalJson(info.arg) : PreflistJson(info.arg);
    if (r.ok()) {
      reply.json = *r;
    } else {
      reply.status = r.status();
    }
  } else {
    reply.status = Status::InvalidArgument(fmt::format(
        "unknown info topic '{}' (status, ring, stats, hints, preflist, local, reaper, "
        "bucket-show, bucket-list, bucket-set)",
        topic));
  }
  transport_->Reply(conn, Envelope{rid, {}, {}, std::move(reply)});
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
    SendPeer(from, rid, replica_.Read(rr->key, rr->hint_for));
  } else if (auto* rw = std::get_if<ReplicaWrite>(&env.body);
             rw != nullptr && config_.inject_replica_delay_max_ms > 0) {
    DelayReplicaWrite(conn, std::move(env));
  } else if (rw != nullptr) {
    Status s = rw->hint_for.empty() || rw->hint_for == config_.id
                   ? replica_.Merge(rw->key, rw->object)
                   : replica_.AddHint(rw->hint_for, rw->key, rw->object);
    if (rid != 0) SendPeer(from, rid, ReplicaWriteAck{s});
  } else if (auto* put = std::get_if<PutRequest>(&env.body)) {
    coordinator_.OnForwardedPut(from, rid, std::move(*put));
  } else if (auto* rrr = std::get_if<ReplicaReadReply>(&env.body)) {
    if (AntiEntropy::IsAaeRequest(rid)) {
      aae_.OnReadReply(from, rid, *rrr);
    } else {
      coordinator_.OnReadReply(rid, from, std::move(rrr->status), std::move(rrr->object));
    }
  } else if (auto* ack = std::get_if<ReplicaWriteAck>(&env.body)) {
    if (HintedHandoff::IsReplayRequest(rid)) {
      hints_.OnAck(from, rid, ack->status);
    } else if (rid != 0) {
      coordinator_.OnWriteAck(rid, from, std::move(ack->status));
    }
  } else if (auto* reply = std::get_if<Reply>(&env.body)) {
    coordinator_.OnForwardReply(rid, from, std::move(*reply));
  } else if (auto* dt = std::get_if<DataTypeRequest>(&env.body)) {
    coordinator_.OnForwardedDataType(from, rid, std::move(*dt));
  } else if (auto* dtr = std::get_if<DataTypeReply>(&env.body)) {
    coordinator_.OnForwardReply(rid, from, std::move(*dtr));
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
  } else if (auto* lk = std::get_if<PartitionKeysRequest>(&env.body)) {
    // Scanned in slices; answered when done.
    NodeId to = from;
    scans_.Start(std::move(*lk), [this, to, rid](PartitionKeysReply reply) {
      SendPeer(to, rid, std::move(reply));
    });
  } else if (auto* lkr = std::get_if<PartitionKeysReply>(&env.body)) {
    lister_.OnReply(from, rid, std::move(*lkr));
  } else {
    ++stats_.invalid_requests;  // not a message peers exchange
  }
}

void Node::DelayReplicaWrite(ClientId conn, Envelope env) {
  uint64_t lo = config_.inject_replica_delay_min_ms;
  uint64_t hi = std::max(lo, config_.inject_replica_delay_max_ms);
  uint64_t delay = std::uniform_int_distribution<uint64_t>(lo, hi)(delay_rng_);
  auto timer = std::make_shared<Clock::TimerId>(0);
  *timer = clock_->After(delay, [this, timer, env = std::move(env)]() mutable {
    delayed_writes_.erase(*timer);
    const NodeId from = env.from;
    uint64_t rid = env.request_id;
    auto& rw = std::get<ReplicaWrite>(env.body);
    Status s = rw.hint_for.empty() || rw.hint_for == config_.id
                   ? replica_.Merge(rw.key, rw.object)
                   : replica_.AddHint(rw.hint_for, rw.key, rw.object);
    if (rid != 0) SendPeer(from, rid, ReplicaWriteAck{s});
  });
  delayed_writes_.insert(*timer);
}

void Node::SendPeer(const NodeId& to, uint64_t request_id, Body body) {
  transport_->Send(to, Envelope{request_id, config_.id, config_.cluster, std::move(body)});
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
  } else if (!coordinator_.OnSendFailed(to, request_id, why)) {
    lister_.OnSendFailed(to, request_id);
  }
}

}  // namespace ringkv
