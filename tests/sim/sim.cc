#include "sim.h"

#include <stdexcept>

#include "core/codec.h"

namespace ringkv::sim {

SimNode::SimNode(World* world, int index, NodeConfig config)
    : world_(world), index_(index), config_(std::move(config)) {
  Restart();
}

void SimNode::Restart() {
  if (node_) return;
  node_ = std::make_unique<Node>(config_, &store_, this, this);
  Status s = node_->Start();
  if (!s.ok()) throw std::runtime_error(s.ToString());
}

void SimNode::Crash() {
  if (!node_) return;
  ++epoch_;
  node_.reset();
  cancelled_.clear();
  paused_ = false;
  held_.clear();
}

void SimNode::Pause() {
  if (node_) paused_ = true;
}

void SimNode::Resume() {
  if (!paused_) return;
  paused_ = false;
  // Everything held runs now, in the order it arrived, as a resumed process
  // finds its socket buffers full and its timers overdue.
  std::vector<std::function<void()>> held = std::move(held_);
  held_.clear();
  for (auto& fn : held) world_->Schedule(0, std::move(fn));
}

void SimNode::RunOrHold(std::function<void()> fn) {
  if (paused_) {
    held_.push_back(std::move(fn));
  } else {
    fn();
  }
}

void SimNode::Send(const NodeId& to, const Envelope& env) { world_->Deliver(*this, to, env); }

void SimNode::Reply(ClientId client, Envelope env) {
  // Round-trip through the codec like a real reply.
  std::string bytes = EncodeEnvelope(env);
  World* w = world_;
  w->Schedule(w->Delay(), [w, client, bytes = std::move(bytes)] {
    auto it = w->clients_.find(client);
    if (it == w->clients_.end()) return;
    auto decoded = DecodeEnvelope(bytes);
    if (!decoded.ok()) throw std::runtime_error("codec failed on a reply: " + decoded.status().ToString());
    auto done = std::move(it->second);
    w->clients_.erase(it);
    done(std::move(decoded).value());
  });
}

uint64_t SimNode::NowMicros() { return world_->now_us_; }

uint64_t SimNode::WallMillis() {
  int64_t ms = static_cast<int64_t>(world_->wall_ms()) + skew_ms_;
  return ms < 0 ? 0 : static_cast<uint64_t>(ms);
}

Clock::TimerId SimNode::After(uint64_t delay_ms, std::function<void()> fn) {
  TimerId id = ++world_->seq_;
  uint64_t epoch = epoch_;
  world_->Schedule(delay_ms * 1000, [this, id, epoch, fn = std::move(fn)]() mutable {
    if (epoch != epoch_ || !node_) return;
    RunOrHold([this, id, epoch, fn = std::move(fn)] {
      if (epoch != epoch_ || !node_) return;
      if (cancelled_.erase(id)) return;
      fn();
    });
  });
  return id;
}

void SimNode::Cancel(TimerId id) {
  if (id != 0) cancelled_.insert(id);
}

World::World(uint64_t seed, int nodes, NodeConfig base, uint32_t ring_size, NetworkConfig net)
    : rng_(seed), net_(net) {
  std::vector<NodeId> ids;
  for (int i = 1; i <= nodes; ++i) ids.push_back("n" + std::to_string(i));
  auto ring = Ring::Build(ring_size, base.n, ids);
  if (!ring.ok()) throw std::runtime_error(ring.status().ToString());
  ring_ = std::move(ring).value();
  for (int i = 1; i <= nodes; ++i) {
    NodeConfig c = base;
    c.id = ids[i - 1];
    c.ring_size = ring_size;
    c.listen_address = "sim:" + c.id;
    for (const auto& id : ids) c.peers[id] = "sim:" + id;
    c.random_seed = seed * 1000 + i;
    nodes_.push_back(std::make_unique<SimNode>(this, i, c));
  }
}

SimNode* World::ByName(const NodeId& id) {
  for (auto& n : nodes_) {
    if (n->id() == id) return n.get();
  }
  return nullptr;
}

void World::Uncut(const NodeId& from, const NodeId& to) {
  auto it = cut_.find({from, to});
  if (it != cut_.end()) cut_.erase(it);
}

void World::Partition(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
  for (const auto& x : a) {
    for (const auto& y : b) {
      Cut(x, y);
      Cut(y, x);
    }
  }
}

uint64_t World::Delay() {
  if (net_.tail_probability > 0 && net_.tail_max_delay_us > net_.max_delay_us &&
      std::uniform_real_distribution<>(0, 1)(rng_) < net_.tail_probability) {
    return net_.max_delay_us + rng_() % (net_.tail_max_delay_us - net_.max_delay_us);
  }
  if (net_.max_delay_us <= net_.min_delay_us) return net_.min_delay_us;
  return net_.min_delay_us + rng_() % (net_.max_delay_us - net_.min_delay_us);
}

void World::Schedule(uint64_t delay_us, std::function<void()> fn) {
  events_.push(Event{now_us_ + delay_us, ++seq_, std::move(fn)});
}

void World::Deliver(SimNode& from, const NodeId& to, Envelope env) {
  SimNode* target = ByName(to);
  bool request = IsPeerRequest(env.body) && env.request_id != 0;
  NodeId from_id = from.id();
  uint64_t from_epoch = from.epoch_;
  if (target == nullptr) return;
  auto fail = [&](const std::string& why) {
    if (!request) return;
    uint64_t rid = env.request_id;
    SimNode* sender = &from;
    Schedule(Delay(), [sender, to, rid, why, from_epoch] {
      if (sender->epoch_ != from_epoch || !sender->node_) return;
      sender->RunOrHold([sender, to, rid, why, from_epoch] {
        if (sender->epoch_ != from_epoch || !sender->node_) return;
        sender->node_->OnSendFailed(to, rid, why);
      });
    });
  };
  if (!target->up()) {
    if (observer_) observer_(from_id, to, env, "refused");
    fail(to + " unreachable: connection refused");  // a dead process refuses at once
    ++dropped_;
    return;
  }
  bool is_cut = cut_.contains({from_id, to});
  if (is_cut || std::uniform_real_distribution<>(0, 1)(rng_) < net_.drop_probability) {
    if (observer_) observer_(from_id, to, env, is_cut ? "cut" : "dropped");
    ++dropped_;  // silently lost: the sender times out
    return;
  }
  auto bytes = std::make_shared<const std::string>(EncodeEnvelope(env));
  int copies = std::uniform_real_distribution<>(0, 1)(rng_) < net_.duplicate_probability ? 2 : 1;
  if (observer_) observer_(from_id, to, env, copies == 2 ? "duplicated" : "sent");
  for (int c = 0; c < copies; ++c) {
    uint64_t target_epoch = target->epoch_;
    Schedule(Delay(), [this, target, target_epoch, bytes] {
      if (target->epoch_ != target_epoch || !target->node_) return;
      target->RunOrHold([this, target, target_epoch, bytes] {
        if (target->epoch_ != target_epoch || !target->node_) return;
        auto decoded = DecodeEnvelope(*bytes);
        if (!decoded.ok()) throw std::runtime_error("codec failed: " + decoded.status().ToString());
        ++delivered_;
        target->node_->OnMessage(0, std::move(decoded).value());
      });
    });
  }
}

ClientId World::Request(int i, Body body, std::function<void(Envelope)> done) {
  ClientId client = next_client_++;
  clients_[client] = std::move(done);
  SimNode& n = node(i);
  auto bytes =
      std::make_shared<const std::string>(EncodeEnvelope(Envelope{client, {}, {}, std::move(body)}));
  uint64_t epoch = n.epoch_;
  Schedule(Delay(), [this, &n, client, bytes, epoch] {
    if (n.epoch_ != epoch || !n.node_) {
      auto it = clients_.find(client);
      if (it != clients_.end()) {
        auto done = std::move(it->second);
        clients_.erase(it);
        done(Envelope{client, {}, {}, ringkv::Reply{Status::IOError("node down"), std::nullopt, std::nullopt}});
      }
      return;
    }
    n.RunOrHold([&n, client, bytes, epoch] {
      if (n.epoch_ != epoch || !n.node_) return;  // crashed while paused: no answer
      auto decoded = DecodeEnvelope(*bytes);
      n.node_->OnMessage(client, std::move(decoded).value());
    });
  });
  return client;
}

uint64_t World::HintsQueued() {
  uint64_t n = 0;
  for (auto& node : nodes_) {
    std::map<NodeId, HintSummary> summary;
    node->store().SummarizeHints(&summary);
    for (const auto& [target, s] : summary) n += s.count;
  }
  return n;
}

bool World::Step(uint64_t deadline_us) {
  if (events_.empty() || events_.top().at > deadline_us) return false;
  // Moving the callback out leaves `at` and `seq`, all the heap compares.
  Event e = std::move(const_cast<Event&>(events_.top()));
  events_.pop();
  now_us_ = e.at;
  ++events_run_;
  e.fn();
  return true;
}

std::optional<Envelope> World::Call(int i, Body body, uint64_t limit_ms) {
  std::optional<Envelope> result;
  ClientId client = Request(i, std::move(body), [&result](Envelope e) { result = std::move(e); });
  uint64_t deadline = now_us_ + limit_ms * 1000;
  while (!result && Step(deadline)) {
  }
  clients_.erase(client);  // the callback refers to this frame
  return result;
}

void World::RunFor(uint64_t ms) {
  uint64_t deadline = now_us_ + ms * 1000;
  while (Step(deadline)) {
  }
  now_us_ = std::max(now_us_, deadline);
}

void World::RunUntilIdle(uint64_t limit_ms) {
  uint64_t deadline = now_us_ + limit_ms * 1000;
  while (Step(deadline)) {
  }
}

}  // namespace ringkv::sim
