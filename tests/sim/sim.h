// A deterministic simulator for ringkv's protocol classes.
//
// One process runs N real Node objects (with MemoryStores) over a seeded
// virtual network and virtual time: message delays (uniform, with occasional
// long tails, so messages are reordered), drops, duplicates, partitions (one
// way or both), crashes and restarts, pauses (a stopped process: nothing it
// receives or schedules runs until it resumes), and per-node wall-clock skew.
// Every message is encoded and decoded with the real codec on its way. The
// same seed replays the same run exactly (FoundationDB/TigerBeetle style).
//
// A crash loses the Node object, its timers and every message in flight to
// it, but nothing its store holds: the MemoryStore plays the part of
// LevelDB's log, which survives a kill -9 of the process. Losing unsynced
// writes needs a machine crash, which the simulator does not model.
//
// One World belongs to one thread; separate Worlds share nothing and may run
// on separate threads.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "node/membership.h"
#include "node/node.h"
#include "store/memory_store.h"

namespace ringkv::sim {

struct NetworkConfig {
  uint64_t min_delay_us = 100;
  uint64_t max_delay_us = 2000;
  // Long tails: this fraction of messages takes uniform(max_delay_us,
  // tail_max_delay_us) instead (a retransmission, a congested queue).
  double tail_probability = 0.0;
  uint64_t tail_max_delay_us = 0;
  double drop_probability = 0.0;
  double duplicate_probability = 0.0;
};

class World;

// One simulated node: its store survives crashes (it is the disk); the Node
// object and its timers do not.
class SimNode final : public Transport, public Clock {
 public:
  SimNode(World* world, int index, NodeConfig config);
  ~SimNode() override { node_.reset(); }  // its timers refer to members below

  // Transport
  void Send(const NodeId& to, const Envelope& env) override;
  void Reply(ClientId client, Envelope env) override;
  // Clock
  uint64_t NowMicros() override;
  // Virtual time plus this node's skew: only what reads the wall clock (lww
  // timestamps, hint ages, a fallback's first dot counter) sees the skew.
  uint64_t WallMillis() override;
  TimerId After(uint64_t delay_ms, std::function<void()> fn) override;
  void Cancel(TimerId id) override;

  Node* node() { return node_.get(); }
  MemoryStore& store() { return store_; }
  const NodeId& id() const { return config_.id; }
  bool up() const { return node_ != nullptr; }

  void Crash();
  void Restart();

  // Pause stops the process (SIGSTOP, a long GC, a stalled VM): messages to
  // it and its own timers are held, in order, and run when it resumes. Peers
  // still connect, so nothing to it is refused. A crash ends a pause.
  void Pause();
  void Resume();
  bool paused() const { return paused_; }

  // The node's wall clock runs skew_ms ahead (negative: behind) of virtual
  // time. Changing it may move the clock backwards, as an NTP step does.
  void SetClockSkew(int64_t skew_ms) { skew_ms_ = skew_ms; }
  int64_t clock_skew_ms() const { return skew_ms_; }

 private:
  friend class World;
  // Runs fn now, or holds it until Resume while paused.
  void RunOrHold(std::function<void()> fn);

  World* world_;
  int index_;
  NodeConfig config_;
  MemoryStore store_;
  std::unique_ptr<Node> node_;
  uint64_t epoch_ = 0;  // bumps on crash: older timers and deliveries are void
  std::set<TimerId> cancelled_;
  bool paused_ = false;
  std::vector<std::function<void()>> held_;
  int64_t skew_ms_ = 0;
};

class World {
 public:
  // nodes n1..nN, all members of one static ring.
  World(uint64_t seed, int nodes, NodeConfig base, uint32_t ring_size = 64,
        NetworkConfig net = {});

  uint64_t now_us() const { return now_us_; }
  // The wall clock without any node's skew (what SimNode::WallMillis adds
  // its skew to): ms since the epoch.
  uint64_t wall_ms() const { return kWallEpochMs + now_us_ / 1000; }
  static constexpr uint64_t kWallEpochMs = 1'700'000'000'000ull;
  std::mt19937_64& rng() { return rng_; }
  NetworkConfig& network() { return net_; }
  SimNode& node(int i) { return *nodes_.at(i - 1); }  // 1-based
  SimNode* ByName(const NodeId& id);
  int size() const { return static_cast<int>(nodes_.size()); }
  const Ring& ring() const { return ring_; }
  // Hints queued on every node's store, summed.
  uint64_t HintsQueued();

  // Blocks messages from -> to (one way) until healed. Cuts count: a link
  // cut twice needs two Uncuts (overlapping faults heal independently).
  void Cut(const NodeId& from, const NodeId& to) { cut_.insert({from, to}); }
  void Uncut(const NodeId& from, const NodeId& to);
  void Partition(const std::vector<NodeId>& side_a, const std::vector<NodeId>& side_b);
  void Heal() { cut_.clear(); }

  // A client request to node i; `done` gets the reply envelope.
  ClientId Request(int i, Body body, std::function<void(Envelope)> done);
  // The client gives up on a request: a late reply is discarded.
  void Abandon(ClientId client) { clients_.erase(client); }
  // Runs a request to completion (or until `limit_ms` of virtual time).
  std::optional<Envelope> Call(int i, Body body, uint64_t limit_ms = 10000);

  void Schedule(uint64_t delay_us, std::function<void()> fn);
  // Runs events until none are left or virtual time passes now + ms.
  void RunFor(uint64_t ms);
  void RunUntilIdle(uint64_t limit_ms = 60000);

  // Sees every message a node sends to a peer, and what the network did
  // with it ("sent", "duplicated", "cut", "dropped", "refused"): for tracing
  // a failing schedule.
  using Observer = std::function<void(const NodeId& from, const NodeId& to, const Envelope& env,
                                      const char* fate)>;
  void SetObserver(Observer fn) { observer_ = std::move(fn); }

  uint64_t messages_delivered() const { return delivered_; }
  uint64_t messages_dropped() const { return dropped_; }
  uint64_t events_run() const { return events_run_; }

 private:
  friend class SimNode;
  struct Event {
    uint64_t at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  void Deliver(SimNode& from, const NodeId& to, Envelope env);
  uint64_t Delay();
  // Runs the next event if it is due by deadline_us; false if none is.
  bool Step(uint64_t deadline_us);

  uint64_t now_us_ = 1'000'000;
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::mt19937_64 rng_;
  NetworkConfig net_;
  Ring ring_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::multiset<std::pair<NodeId, NodeId>> cut_;
  ClientId next_client_ = 1;
  std::map<ClientId, std::function<void(Envelope)>> clients_;
  uint64_t delivered_ = 0;
  uint64_t dropped_ = 0;
  uint64_t events_run_ = 0;
  Observer observer_;
};

}  // namespace ringkv::sim
