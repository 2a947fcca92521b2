// Tests for gossip/gossiper.h and gossip/failure_detector.h.
//
// The Gossiper is driven by a tiny simulator of its own: N Gossipers over a
// fake Transport that delivers every Envelope (encoded and decoded with the
// real codec) after a seeded random delay on a virtual-time event queue, and a
// fake Clock reading that virtual time. Nodes can be killed, paused, resumed
// and restarted. Every scenario is a seed: it replays exactly.
//
// Figures (rounds to spread, time to convict, false positives) are printed
// with MESSAGE; run with -s to see them.
#include <doctest/doctest.h>

#include "report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <numbers>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/codec.h"
#include "gossip/failure_detector.h"
#include "gossip/gossiper.h"

namespace ringkv {
namespace {

TEST_SUITE_BEGIN("gossip");

constexpr uint64_t kMs = 1000;  // microseconds
constexpr uint64_t kSec = 1000 * kMs;

struct NetOptions {
  uint64_t min_delay_us = 1 * kMs;
  uint64_t max_delay_us = 50 * kMs;
  double tail_probability = 0.02;  // this share of messages takes an extra...
  uint64_t tail_us = 200 * kMs;    // ...this long
  bool codec = true;               // encode/decode every message
};

class Sim;

// One simulated node: its Transport and Clock, and the Gossiper they drive.
class Host final : public Transport, public Clock {
 public:
  enum class State { kUp, kPaused, kKilled };

  Host(Sim* sim, NodeId id, std::string address)
      : sim_(sim), id_(std::move(id)), address_(std::move(address)) {}

  void Send(const NodeId& to, const Envelope& env) override;
  void Reply(ClientId client, Envelope env) override {}  // gossip has no clients
  uint64_t NowMicros() override;
  uint64_t WallMillis() override { return NowMicros() / 1000; }
  TimerId After(uint64_t delay_ms, std::function<void()> fn) override;
  void Cancel(TimerId id) override;

  const NodeId& id() const { return id_; }
  const std::string& address() const { return address_; }
  bool up() const { return state_ == State::kUp; }
  Gossiper& g() { return *gossiper_; }

 private:
  friend class Sim;
  Sim* sim_;
  NodeId id_;
  std::string address_;
  State state_ = State::kUp;
  uint64_t epoch_ = 0;  // bumps on restart: older timers are void
  std::unique_ptr<Gossiper> gossiper_;
};

class Sim {
 public:
  explicit Sim(uint64_t seed, NetOptions net = {}) : rng_(seed), net_(net) {}

  uint64_t now() const { return now_us_; }
  std::mt19937_64& rng() { return rng_; }
  int size() const { return static_cast<int>(hosts_.size()); }
  Host& host(int i) { return *hosts_.at(i); }  // 0-based
  std::vector<std::unique_ptr<Host>>& hosts() { return hosts_; }

  // Adds a node and starts its Gossiper.
  Host& Add(GossipConfig config, MemberState self) {
    hosts_.push_back(std::make_unique<Host>(this, config.id, config.address));
    Host& h = *hosts_.back();
    h.gossiper_ = std::make_unique<Gossiper>(std::move(config), std::move(self), &h, &h);
    h.gossiper_->Start();
    return h;
  }

  // Stops answering for good (until Restart).
  void Kill(Host& h) {
    h.gossiper_->Stop();
    h.state_ = Host::State::kKilled;
  }
  // Stops running rounds and drops what arrives, keeping its state.
  void Pause(Host& h) {
    h.gossiper_->Stop();
    h.state_ = Host::State::kPaused;
  }
  void Resume(Host& h) {
    h.state_ = Host::State::kUp;
    h.gossiper_->Start();
  }
  // A new process for the same node: new Gossiper from `self`.
  void Restart(Host& h, GossipConfig config, MemberState self) {
    ++h.epoch_;
    h.address_ = config.address;
    h.gossiper_ = std::make_unique<Gossiper>(std::move(config), std::move(self), &h, &h);
    h.state_ = Host::State::kUp;
    h.gossiper_->Start();
  }

  uint64_t Schedule(uint64_t delay_us, std::function<void()> fn) {
    uint64_t id = next_event_++;
    queue_.push(Event{now_us_ + delay_us, id});
    actions_.emplace(id, std::move(fn));
    return id;
  }
  void CancelEvent(uint64_t id) { actions_.erase(id); }

  // Runs every event up to and including time t, in (time, scheduling) order.
  void RunUntil(uint64_t t) {
    while (!queue_.empty() && queue_.top().at <= t) {
      Event e = queue_.top();
      queue_.pop();
      now_us_ = e.at;
      auto it = actions_.find(e.id);
      if (it == actions_.end()) continue;  // cancelled
      std::function<void()> fn = std::move(it->second);
      actions_.erase(it);
      fn();
    }
    now_us_ = std::max(now_us_, t);
  }
  void RunFor(uint64_t us) { RunUntil(now_us_ + us); }
  // Runs until pred holds (checked every step_us) or deadline; returns
  // whether it holds. now() is then the first check at which it held.
  bool RunUntil(const std::function<bool()>& pred, uint64_t deadline, uint64_t step_us = 10 * kMs) {
    while (true) {
      if (pred()) return true;
      if (now_us_ >= deadline) return false;
      RunUntil(std::min(now_us_ + step_us, deadline));
    }
  }

  Host* Resolve(const NodeId& to) {
    std::string_view prefix = Gossiper::kSeedPrefix;
    bool seed = to.starts_with(prefix);
    for (auto& h : hosts_) {
      if (seed ? h->address() == to.substr(prefix.size()) : h->id() == to) return h.get();
    }
    return nullptr;
  }

  void Deliver(Host* from, uint64_t from_epoch, const NodeId& to, Envelope env) {
    uint64_t delay =
        std::uniform_int_distribution<uint64_t>(net_.min_delay_us, net_.max_delay_us)(rng_);
    if (std::uniform_real_distribution<double>(0, 1)(rng_) < net_.tail_probability) {
      delay += net_.tail_us;
    }
    std::string bytes;
    if (net_.codec) bytes = EncodeEnvelope(env);
    ++messages_;
    Schedule(delay, [this, from, from_epoch, to, env = std::move(env), bytes = std::move(bytes),
                     delay]() mutable {
      if (net_.codec) {
        Result<Envelope> decoded = DecodeEnvelope(bytes);
        if (!decoded.ok()) FAIL("undecodable gossip message: " << decoded.status().ToString());
        env = std::move(decoded).value();
      }
      Host* target = Resolve(to);
      bool request = std::holds_alternative<GossipPush>(env.body);
      if (target == nullptr || !target->up()) {
        // The sender's transport notices the dead connection a bit later.
        if (request) {
          Schedule(delay, [from, from_epoch, to] {
            if (from->up() && from->epoch_ == from_epoch) from->g().OnSendFailed(to);
          });
        }
        return;
      }
      if (auto* push = std::get_if<GossipPush>(&env.body)) {
        target->g().OnPush(env.from, env.request_id, *push);
      } else if (auto* ack = std::get_if<GossipAck>(&env.body)) {
        target->g().OnAck(env.from, *ack);
      }
    });
  }

  uint64_t messages() const { return messages_; }

 private:
  struct Event {
    uint64_t at;
    uint64_t id;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : id > o.id; }
  };

  std::mt19937_64 rng_;
  NetOptions net_;
  uint64_t now_us_ = 0;
  uint64_t next_event_ = 1;
  uint64_t messages_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  std::unordered_map<uint64_t, std::function<void()>> actions_;
  std::vector<std::unique_ptr<Host>> hosts_;
};

void Host::Send(const NodeId& to, const Envelope& env) {
  if (env.from != id_) FAIL("a message from " << id_ << " says it is from " << env.from);
  sim_->Deliver(this, epoch_, to, env);
}

uint64_t Host::NowMicros() { return sim_->now(); }

Clock::TimerId Host::After(uint64_t delay_ms, std::function<void()> fn) {
  uint64_t epoch = epoch_;
  return sim_->Schedule(delay_ms * kMs, [this, epoch, fn = std::move(fn)] {
    if (epoch == epoch_ && up()) fn();
  });
}

void Host::Cancel(TimerId id) { sim_->CancelEvent(id); }

// --- cluster helpers
// ----------------------------------------------------------

std::string AddressOf(int i) {
  return "10.0." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1) + ":7070";
}
NodeId IdOf(int i) { return "n" + std::to_string(i + 1); }

GossipConfig ConfigFor(int i, uint64_t interval_ms, uint64_t seed) {
  GossipConfig c;
  c.id = IdOf(i);
  c.address = AddressOf(i);
  c.interval_ms = interval_ms;
  c.random_seed = seed * 1000 + i;
  if (i > 0) c.seeds = {AddressOf(0), AddressOf(1)};
  return c;
}

MemberState SelfFor(const GossipConfig& c, MemberStatus status, uint64_t incarnation = 1) {
  MemberState m;
  m.id = c.id;
  m.address = c.address;
  m.incarnation = incarnation;
  m.status = status;
  return m;
}

bool AllUp(Sim& sim, const std::function<bool(Host&)>& pred) {
  for (auto& h : sim.hosts()) {
    if (h->up() && !pred(*h)) return false;
  }
  return true;
}

// Everyone up knows exactly `n` members.
bool Converged(Sim& sim, size_t n) {
  return AllUp(sim, [n](Host& h) { return h.g().members().size() == n; });
}

// Boots n nodes (n1 starts the cluster; the others have n1 and n2 as seeds)
// and runs until everyone knows everyone, then `settle_rounds` more.
std::unique_ptr<Sim> Boot(int n, uint64_t seed, uint64_t interval_ms = 1000, NetOptions net = {},
                          int settle_rounds = 20) {
  auto sim = std::make_unique<Sim>(seed, net);
  for (int i = 0; i < n; ++i) {
    GossipConfig c = ConfigFor(i, interval_ms, seed);
    MemberState self = SelfFor(c, MemberStatus::kUp);
    sim->Add(std::move(c), std::move(self));
  }
  bool ok = sim->RunUntil([&] { return Converged(*sim, n); }, 100 * interval_ms * kMs);
  REQUIRE_MESSAGE(ok, n << " nodes did not converge");
  sim->RunFor(settle_rounds * interval_ms * kMs);
  return sim;
}

int Bound(int n, double c = 3.0) { return static_cast<int>(std::ceil(c * std::log2(n))); }

int RoundsSince(const Sim& sim, uint64_t t0, uint64_t interval_ms) {
  return static_cast<int>((sim.now() - t0 + interval_ms * kMs - 1) / (interval_ms * kMs));
}

double Secs(uint64_t us) { return static_cast<double>(us) / kSec; }

// --- merge and detector units
// -----------------------------------------------------

MemberState Entry(uint64_t inc, uint64_t hb, MemberStatus st, std::string addr = "a:1") {
  MemberState m;
  m.id = "x";
  m.address = std::move(addr);
  m.incarnation = inc;
  m.heartbeat = hb;
  m.status = st;
  return m;
}

TEST_CASE("gossip: merge keeps the newer version and Removed is sticky") {
  MemberState old_up = Entry(1, 5, MemberStatus::kUp);
  MemberState new_leaving = Entry(1, 9, MemberStatus::kLeaving);
  MemberState restarted = Entry(2, 0, MemberStatus::kJoining, "b:2");
  MemberState removed = Entry(1, 3, MemberStatus::kRemoved);

  CHECK(MergeMember(old_up, new_leaving) == new_leaving);
  CHECK(MergeMember(new_leaving, restarted) == restarted);  // incarnation first
  MemberState r = MergeMember(restarted, removed);
  CHECK(r.status == MemberStatus::kRemoved);
  CHECK(r.incarnation == 2);
  CHECK(r.address == "b:2");

  // Commutative and idempotent over random entries; associative too.
  std::mt19937_64 rng(7);
  auto random_entry = [&] {
    return Entry(rng() % 3, rng() % 4, static_cast<MemberStatus>(rng() % 5),
                 rng() % 2 ? "a:1" : "b:2");
  };
  for (int i = 0; i < 2000; ++i) {
    MemberState a = random_entry(), b = random_entry(), c = random_entry();
    CHECK(MergeMember(a, b) == MergeMember(b, a));
    CHECK(MergeMember(a, a) == a);
    bool distinct = std::tie(a.incarnation, a.heartbeat) != std::tie(b.incarnation, b.heartbeat) &&
                    std::tie(b.incarnation, b.heartbeat) != std::tie(c.incarnation, c.heartbeat) &&
                    std::tie(a.incarnation, a.heartbeat) != std::tie(c.incarnation, c.heartbeat);
    if (distinct) {
      CHECK(MergeMember(MergeMember(a, b), c) == MergeMember(a, MergeMember(b, c)));
    }
    bool any_removed = a.status == MemberStatus::kRemoved || b.status == MemberStatus::kRemoved;
    CHECK((MergeMember(a, b).status == MemberStatus::kRemoved) == any_removed);
  }
}

TEST_CASE("gossip: phi accrual detector follows the exponential model") {
  FailureDetectorOptions o;
  o.expected_interval_ms = 1000;
  o.phi_threshold = 8.0;
  o.min_silence_ms = 2000;
  FailureDetector fd(o);
  CHECK_FALSE(fd.IsAlive("p", 0));
  CHECK(std::isinf(fd.Phi("p", 0)));

  fd.Report("p", 10 * kSec);  // first news: bootstrap window {1 s}
  CHECK(fd.IsAlive("p", 10 * kSec));
  CHECK(fd.Phi("p", 10 * kSec) == 0.0);
  // phi(t) = t / (m ln 10): one decade of improbability per 2.3 mean gaps.
  CHECK(fd.Phi("p", 10 * kSec + 2302585) == doctest::Approx(1.0).epsilon(1e-5));
  uint64_t bound = fd.ConvictionSilenceMicros("p");
  CHECK(bound == static_cast<uint64_t>(std::ceil(8.0 * std::numbers::ln10 * kSec)));
  CHECK(fd.IsAlive("p", 10 * kSec + bound - 1));
  CHECK_FALSE(fd.IsAlive("p", 10 * kSec + bound));
  REPORT("gossip: detector with interval 1 s, threshold 8: convicts after "
          << Secs(bound) << " s of silence when the mean gap is 1 s");

  // Regular 1 s arrivals keep the mean at 1 s; a long outage gap is not
  // sampled, and news makes the peer alive again at once.
  uint64_t t = 10 * kSec;
  for (int i = 0; i < 50; ++i) fd.Report("p", t += kSec);
  CHECK(fd.MeanGapMicros("p") == doctest::Approx(1.0 * kSec));
  t += 60 * kSec;
  CHECK_FALSE(fd.IsAlive("p", t));
  fd.Report("p", t);
  CHECK(fd.IsAlive("p", t));
  CHECK(fd.MeanGapMicros("p") == doctest::Approx(1.0 * kSec));

  // A stall of this node is discounted: verdicts stay as they were before it.
  FailureDetector fd3(o);
  fd3.Report("alive", 0);
  fd3.Report("dead", 0);
  for (int i = 1; i <= 30; ++i) fd3.Report("alive", i * kSec);
  uint64_t wake = 30 * kSec + 60 * kSec;
  CHECK_FALSE(fd3.IsAlive("alive", wake));
  fd3.DiscountStall(60 * kSec, wake);
  CHECK(fd3.IsAlive("alive", wake));
  CHECK(fd3.LastArrivalMicros("alive") == wake);
  CHECK_FALSE(fd3.IsAlive("dead", wake));

  // Bunched early arrivals cannot make the mean smaller than interval/2, and
  // min_silence floors the bound.
  FailureDetectorOptions fast = o;
  fast.phi_threshold = 0.5;
  fast.min_silence_ms = 3000;
  FailureDetector fd2(fast);
  fd2.Report("q", 0);
  for (int i = 1; i <= 20; ++i) fd2.Report("q", i * kMs);
  CHECK(fd2.MeanGapMicros("q") == doctest::Approx(500.0 * kMs));
  CHECK(fd2.ConvictionSilenceMicros("q") == 3 * kSec);
  fd2.Forget("q");
  CHECK_FALSE(fd2.Tracks("q"));
}

// --- simulated clusters
// ---------------------------------------------------------

TEST_CASE(
    "gossip: a status change and a new member reach every node in O(log n) "
    "rounds") {
  for (int n : {3, 16, 64}) {
    auto sim = Boot(n, /*seed=*/100 + n);
    const uint64_t interval = 1000;
    int worst = 0;
    double total = 0;
    const int trials = 6;
    for (int trial = 0; trial < trials; ++trial) {
      Host& changer = sim->host(static_cast<int>(sim->rng()() % n));
      MemberStatus next = changer.g().self().status == MemberStatus::kUp ? MemberStatus::kLeaving
                                                                         : MemberStatus::kUp;
      uint64_t t0 = sim->now();
      changer.g().SetStatus(next);
      NodeId id = changer.id();
      bool ok = sim->RunUntil(
          [&] {
            return AllUp(*sim, [&](Host& h) { return h.g().members().at(id).status == next; });
          },
          t0 + 60 * kSec);
      REQUIRE(ok);
      int rounds = RoundsSince(*sim, t0, interval);
      worst = std::max(worst, rounds);
      total += rounds;
      sim->RunFor(3 * kSec);
    }
    REPORT("gossip: " << n << " nodes: a status change reached all in " << worst
                       << " rounds at worst, " << total / trials << " on average over " << trials
                       << " trials (bound " << Bound(n) << ")");
    CHECK(worst <= Bound(n));

    // A new member joining through a seed.
    GossipConfig c = ConfigFor(n, interval, 100 + n);
    c.seeds = {AddressOf(static_cast<int>(sim->rng()() % n))};
    uint64_t t0 = sim->now();
    sim->Add(c, SelfFor(c, MemberStatus::kJoining));
    bool ok = sim->RunUntil([&] { return Converged(*sim, n + 1); }, t0 + 60 * kSec);
    REQUIRE(ok);
    int rounds = RoundsSince(*sim, t0, interval);
    REPORT("gossip: " << n << " nodes: a new member and all of them knew each other after "
                       << rounds << " rounds (bound " << Bound(n + 1) << ")");
    CHECK(rounds <= Bound(n + 1));
  }
}

// Kills one node of a converged cluster; every other node must convict it
// within the detector's bound: the last news of it plus ConvictionSilence.
void CheckKilledNodeIsConvicted(int n, uint64_t interval_ms, uint64_t seed) {
  auto sim = Boot(n, seed, interval_ms, {}, /*settle_rounds=*/60);
  Host& victim = sim->host(n / 2);
  const NodeId vid = victim.id();
  uint64_t t_kill = sim->now();
  sim->Kill(victim);

  std::map<NodeId, uint64_t> convicted_at;
  uint64_t worst_bound_us = 0;
  double min_mean = 1e18, max_mean = 0;
  uint64_t min_silence = UINT64_MAX, max_silence = 0;
  bool ok = sim->RunUntil(
      [&] {
        for (auto& h : sim->hosts()) {
          if (!h->up() || convicted_at.contains(h->id())) continue;
          if (h->g().IsAlive(vid)) continue;
          const FailureDetector& fd = h->g().detector();
          uint64_t last = fd.LastArrivalMicros(vid);
          uint64_t silence = fd.ConvictionSilenceMicros(vid);
          // The promise: convicted no later than last news + conviction
          // silence.
          CHECK(sim->now() <= last + silence + 10 * kMs);
          convicted_at[h->id()] = sim->now();
          worst_bound_us = std::max(worst_bound_us, last + silence - t_kill);
          min_mean = std::min(min_mean, fd.MeanGapMicros(vid));
          max_mean = std::max(max_mean, fd.MeanGapMicros(vid));
          min_silence = std::min(min_silence, silence);
          max_silence = std::max(max_silence, silence);
        }
        return convicted_at.size() == static_cast<size_t>(n - 1);
      },
      t_kill + 200 * interval_ms * kMs);
  REQUIRE_MESSAGE(ok, "only " << convicted_at.size() << " of " << n - 1 << " convicted " << vid);
  uint64_t first = UINT64_MAX, last = 0;
  for (auto& [id, t] : convicted_at) {
    first = std::min(first, t - t_kill);
    last = std::max(last, t - t_kill);
  }
  // Overall bound: the last heartbeat spreads within c*log2(n) rounds, then
  // the slowest detector's conviction silence.
  uint64_t overall = Bound(n) * interval_ms * kMs + max_silence;
  REPORT("gossip: " << n << " nodes, interval " << interval_ms << " ms: killed " << vid
                     << " was convicted by all " << n - 1 << " others " << Secs(first) << ".."
                     << Secs(last) << " s after the kill (bound " << Secs(overall)
                     << " s; conviction silence " << Secs(min_silence) << ".." << Secs(max_silence)
                     << " s from mean gaps " << min_mean / kSec << ".." << max_mean / kSec
                     << " s)");
  CHECK(last <= overall);
  sim->RunFor(2 * interval_ms * kMs);  // every node has run a round since
  for (auto& h : sim->hosts()) {
    if (h->up()) CHECK(h->g().convictions() == 1);
  }
}

TEST_CASE(
    "gossip: a killed node is marked down by every other node within the "
    "bound") {
  CheckKilledNodeIsConvicted(3, 1000, 11);
  CheckKilledNodeIsConvicted(16, 1000, 12);
  CheckKilledNodeIsConvicted(64, 1000, 13);
  CheckKilledNodeIsConvicted(16, 200, 14);
}

TEST_CASE("gossip: a paused node that resumes is marked up again by all") {
  for (int n : {3, 16, 64}) {
    const uint64_t interval = 1000;
    auto sim = Boot(n, 200 + n, interval);
    Host& sleeper = sim->host(n - 1);
    const NodeId sid = sleeper.id();
    std::map<NodeId, int> changes;  // OnChange calls while it is down and back
    for (auto& h : sim->hosts()) {
      NodeId id = h->id();
      h->g().OnChange([&changes, id] { ++changes[id]; });
    }
    sim->Pause(sleeper);
    auto all_see = [&](bool alive) {
      return AllUp(*sim, [&](Host& h) { return h.id() == sid || h.g().IsAlive(sid) == alive; });
    };
    REQUIRE(sim->RunUntil([&] { return all_see(false); }, sim->now() + 120 * kSec));
    sim->RunFor(5 * kSec);
    uint64_t t0 = sim->now();
    sim->Resume(sleeper);
    // The sleeper discounts its own stall: it does not wake up believing
    // everyone else died.
    CHECK(sleeper.g().stalls() == 1);
    CHECK(AllUp(*sim, [&](Host& h) { return sleeper.g().IsAlive(h.id()); }));
    REQUIRE(sim->RunUntil([&] { return all_see(true); }, t0 + 60 * kSec));
    int rounds = RoundsSince(*sim, t0, interval);
    REPORT("gossip: " << n << " nodes: a paused node that resumed was marked up by all in "
                       << rounds << " rounds (bound " << Bound(n) << ")");
    CHECK(rounds <= Bound(n));
    sim->RunFor(2 * kSec);
    CHECK(sleeper.g().convictions() == 0);
    for (auto& h : sim->hosts()) {
      if (h->id() == sid) continue;
      CHECK(changes[h->id()] >= 2);  // down, then up: each flip notified
      CHECK(h->g().convictions() == 1);
    }
  }
}

TEST_CASE("gossip: no false positives among healthy nodes with jittered delays") {
  struct Run {
    int n;
    int rounds;
    int sample_every;  // rounds between samples of every phi
  };
  NetOptions net;  // 1-50 ms, 2% take 200 ms more
  for (Run run : {Run{3, 10000, 1}, Run{16, 10000, 1}, Run{64, 10000, 50}}) {
    auto start = std::chrono::steady_clock::now();
    net.codec = run.n <= 3;  // keep the long runs fast; other tests cover the codec
    auto sim = Boot(run.n, 300 + run.n, 1000, net, 0);
    double max_phi = 0;
    uint64_t pairs = 0;
    for (int r = 0; r < run.rounds; ++r) {
      sim->RunFor(kSec);
      if (r % run.sample_every != 0) continue;
      for (auto& h : sim->hosts()) {
        for (const auto& [id, m] : h->g().members()) {
          if (id == h->id()) continue;
          max_phi = std::max(max_phi, h->g().Phi(id));
          ++pairs;
        }
      }
    }
    uint64_t false_positives = 0;
    for (auto& h : sim->hosts()) false_positives += h->g().convictions();
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    REPORT("gossip: " << run.n << " healthy nodes, " << run.rounds << " rounds, "
                       << sim->messages() << " messages: " << false_positives
                       << " false positives; highest phi sampled " << max_phi
                       << " (threshold 8) over " << pairs << " samples; " << wall << " s wall");
    CHECK(false_positives == 0);
    CHECK(max_phi < 8.0);
  }
}

TEST_CASE(
    "gossip: a node joining through a seed learns everyone and everyone learns "
    "it") {
  for (int n : {3, 16, 64}) {
    auto sim = Boot(n, 400 + n);
    GossipConfig c = ConfigFor(n, 1000, 400 + n);
    c.seeds = {AddressOf(n - 1), "10.9.9.9:7070"};  // one seed is not there at all
    Host& joiner = sim->Add(c, SelfFor(c, MemberStatus::kJoining));
    // Before any answer it only knows itself and pushes to a seed.
    CHECK(joiner.g().members().size() == 1);
    uint64_t t0 = sim->now();
    REQUIRE(sim->RunUntil([&] { return Converged(*sim, n + 1); }, t0 + 60 * kSec));
    int rounds = RoundsSince(*sim, t0, 1000);
    CHECK(AllUp(*sim, [&](Host& h) {
      return h.g().members().at(joiner.id()).status == MemberStatus::kJoining &&
             h.g().IsAlive(joiner.id());
    }));
    // Then it goes up, and everyone hears.
    joiner.g().SetStatus(MemberStatus::kUp);
    REQUIRE(sim->RunUntil(
        [&] {
          return AllUp(*sim, [&](Host& h) {
            return h.g().members().at(joiner.id()).status == MemberStatus::kUp;
          });
        },
        sim->now() + 60 * kSec));
    REPORT("gossip: " << n << " nodes: a node joining through a seed and the cluster knew each "
                       << "other after " << rounds << " rounds");
    CHECK(rounds <= Bound(n + 1));
    // The unreachable seed is tried now and then (probability 1/(alive+1) a
    // round), and reported failed.
    if (n == 3) {
      sim->RunFor(30 * kSec);
      CHECK(joiner.g().send_failures() > 0);
    }
  }
}

TEST_CASE(
    "gossip: Remove is sticky; a removed node's later gossip does not revive "
    "it") {
  const int n = 16;
  auto sim = Boot(n, 500);
  Host& operator_node = sim->host(0);
  Host& victim = sim->host(5);
  const NodeId vid = victim.id();

  Status s = operator_node.g().Remove(vid);
  CHECK(s.code() == Status::Code::kInvalidArgument);  // alive: refused
  REPORT("gossip: removing a live node: " << s.ToString());
  CHECK(operator_node.g().Remove("nobody").IsNotFound());
  CHECK(operator_node.g().Remove(operator_node.id()).IsInvalidArgument());

  MemberState before_death = victim.g().self();
  sim->Kill(victim);
  REQUIRE(sim->RunUntil([&] { return !operator_node.g().IsAlive(vid); }, sim->now() + 60 * kSec));
  REQUIRE(operator_node.g().Remove(vid).ok());
  CHECK(operator_node.g().Remove(vid).ok());  // again: no-op
  auto all_removed = [&] {
    return AllUp(*sim, [&](Host& h) {
      return h.id() == vid ||
             (h.g().members().at(vid).status == MemberStatus::kRemoved && !h.g().IsAlive(vid));
    });
  };
  REQUIRE(sim->RunUntil(all_removed, sim->now() + 60 * kSec));

  // The victim comes back with its old state and gossips on, heartbeat far
  // ahead; then once more with a higher incarnation. Removed wins both times,
  // everywhere, and the victim learns it was removed.
  GossipConfig c = ConfigFor(5, 1000, 500);
  MemberState old = before_death;
  old.heartbeat += 1000;
  sim->Restart(victim, c, old);
  sim->RunFor(30 * kSec);
  CHECK(all_removed());
  CHECK(victim.g().self().status == MemberStatus::kRemoved);

  MemberState reborn = SelfFor(c, MemberStatus::kUp, before_death.incarnation + 1);
  sim->Restart(victim, c, reborn);
  sim->RunFor(30 * kSec);
  CHECK(all_removed());
  CHECK(victim.g().self().status == MemberStatus::kRemoved);
  // Nobody gossips to a removed node: its only news came from its own pushes.
  for (auto& h : sim->hosts()) {
    if (h->id() != vid) CHECK(h->g().convictions() <= 1);
  }
}

TEST_CASE(
    "gossip: a restarted node with a higher incarnation wins over its old "
    "entry") {
  const int n = 16;
  auto sim = Boot(n, 600);
  Host& node = sim->host(3);
  const NodeId id = node.id();
  MemberState old = node.g().self();
  sim->Kill(node);
  sim->RunFor(5 * kSec);

  // New process, new port, incarnation bumped from disk, heartbeat from 0.
  GossipConfig c = ConfigFor(3, 1000, 600);
  c.address = "10.0.0.4:7171";
  MemberState fresh = SelfFor(c, MemberStatus::kUp, old.incarnation + 1);
  sim->Restart(node, c, fresh);
  REQUIRE(sim->RunUntil(
      [&] {
        return AllUp(*sim, [&](Host& h) {
          const MemberState& m = h.g().members().at(id);
          return m.incarnation == old.incarnation + 1 && m.address == "10.0.0.4:7171";
        });
      },
      sim->now() + 30 * kSec));
  CHECK(node.g().self().incarnation == old.incarnation + 1);
  sim->RunFor(10 * kSec);
  CHECK(AllUp(*sim, [&](Host& h) { return h.g().IsAlive(id); }));

  // A restart that forgot to bump the incarnation: the node sees its old,
  // higher heartbeat in others' views and moves past it, so its own entry
  // (the new address) still wins everywhere.
  MemberState current = node.g().self();
  sim->Kill(node);
  sim->RunFor(2 * kSec);
  c.address = "10.0.0.4:7272";
  MemberState forgetful = SelfFor(c, MemberStatus::kUp, current.incarnation);
  sim->Restart(node, c, forgetful);
  REQUIRE(sim->RunUntil(
      [&] {
        return AllUp(*sim,
                     [&](Host& h) { return h.g().members().at(id).address == "10.0.0.4:7272"; });
      },
      sim->now() + 30 * kSec));
  CHECK(node.g().self().heartbeat > current.heartbeat);
}

TEST_CASE("gossip: a peer with another ring size or n_val is refused and counted") {
  auto sim = Boot(3, 700);
  GossipConfig c = ConfigFor(3, 1000, 700);
  c.ring_size = 128;
  c.seeds = {AddressOf(0)};
  Host& odd = sim->Add(c, SelfFor(c, MemberStatus::kJoining));
  sim->RunFor(10 * kSec);
  CHECK(odd.g().members().size() == 1);  // learned nothing
  CHECK(odd.g().mismatched() > 0);
  CHECK(odd.g().last_mismatch() == "peer n1 uses ring size 64; this node 128");
  uint64_t refused = 0;
  for (int i = 0; i < 3; ++i) {
    Gossiper& g = sim->host(i).g();
    CHECK_FALSE(g.members().contains(odd.id()));
    refused += g.mismatched();
    if (g.mismatched() > 0) CHECK(g.last_mismatch() == "peer n4 uses ring size 128; this node 64");
  }
  CHECK(refused > 0);
  REPORT("gossip: mismatch refused " << refused << " pushes, e.g. \""
                                      << sim->host(0).g().last_mismatch() << "\"");

  GossipConfig d = ConfigFor(4, 1000, 700);
  d.n_val = 5;
  d.seeds = {AddressOf(0)};
  Host& odd2 = sim->Add(d, SelfFor(d, MemberStatus::kJoining));
  sim->RunFor(10 * kSec);
  CHECK(odd2.g().members().size() == 1);
  CHECK(odd2.g().last_mismatch() == "peer n1 uses n_val 3; this node 5");
}

TEST_SUITE_END();

}  // namespace
}  // namespace ringkv
