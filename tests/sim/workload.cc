#include "sim/workload.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "core/bucket_key.h"
#include "core/codec.h"
#include "core/expiry.h"
#include "sim/sim.h"

namespace ringkv::sim {

namespace {

constexpr uint64_t kClientTimeoutUs = 6'000'000;  // a client gives up (outcome unknown)
constexpr uint64_t kMaxThinkUs = 400'000;         // pause between a client's operations
constexpr uint64_t kMinQuietMs = 20'000;          // quiet time before the first check
constexpr uint64_t kQuietStepMs = 5'000;
constexpr size_t kMaxProblems = 12;
// The largest clock skew a fault sets is 30 s either way: a value may be
// read up to that long after its expiry (by a node whose clock is behind).
constexpr uint64_t kSkewMarginMs = 31'000;
// Longest ttl a client or the bucket gives: every expiry is past the margin
// this long after the clients stop.
constexpr uint64_t kMaxTtlSeenMs = 20'000;
constexpr const char* kTtlBucket = "ttl";
constexpr const char* kCfgBucket = "cfg";

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string JoinSet(const std::set<uint64_t>& elements) {
  std::string out;
  for (uint64_t e : elements) {
    if (!out.empty()) out += ',';
    out += std::to_string(e);
  }
  return out;
}

// Elements of a set value; false if it is not a comma-separated list of
// integers (which no client writes).
bool ParseSet(const std::string& value, std::set<uint64_t>* out) {
  size_t i = 0;
  while (i < value.size()) {
    size_t j = value.find(',', i);
    if (j == std::string::npos) j = value.size();
    if (j == i) return false;
    uint64_t v = 0;
    for (size_t k = i; k < j; ++k) {
      if (value[k] < '0' || value[k] > '9') return false;
      v = v * 10 + static_cast<uint64_t>(value[k] - '0');
    }
    out->insert(v);
    i = j + 1;
  }
  return true;
}

std::string Brief(const std::string& s, size_t max = 300) {
  return s.size() <= max ? s : s.substr(0, max) + "...";
}

// One operation of the register workload.
struct RegisterOp {
  bool del = false;
  std::string value;  // puts
  bool done = false;
  bool acked = false;
  std::optional<Dot> dot;  // acked puts: the dot the write got
  VersionVector context;   // deletes: the context the delete carried
};

// One write of the TTL workload (bucket "ttl").
struct TtlOp {
  bool del = false;
  std::string value;
  bool has_context = false;
  VersionVector context;  // the read this write (or delete) carried
  bool done = false;
  bool acked = false;
  std::optional<Dot> dot;   // acked puts
  uint64_t expires_ms = 0;  // acked puts: the expiry the coordinator set (0: none)
  uint64_t issued_us = 0;
};

class Schedule {
 public:
  explicit Schedule(ScheduleOptions o)
      : o_(o), fault_rng_(SplitMix(o.seed * 3 + 1)), client_rng_(SplitMix(o.seed * 3 + 2)) {
    r_.seed = o.seed;
    r_.nodes = o.nodes;
    r_.minutes = o.minutes;
    r_.lww = o.lww;
    r_.tombstone_grace_s = o.tombstone_grace_s;
  }

  ScheduleResult Run() {
    auto wall_start = std::chrono::steady_clock::now();
    try {
      RunInner();
    } catch (const std::exception& e) {
      r_.exception = e.what();
      Problem(fmt::format("exception: {}", e.what()));
    }
    r_.wall_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    return std::move(r_);
  }

 private:
  // ---- setup and phases ---------------------------------------------------

  void RunInner() {
    NodeConfig base;
    base.n = 3;
    base.r = 2;
    base.w = 2;
    base.timeout_ms = 2000;
    base.mode = Mode::kSloppy;
    base.gossip_interval_ms = 1000;
    base.aae.enabled = true;
    base.aae.interval_ms = 2000;
    base.tombstones.grace_ms = o_.tombstone_grace_s * 1000;
    base_net_.min_delay_us = 100;
    base_net_.max_delay_us = 2000;
    base_net_.tail_probability = 0.01;  // a few messages overtake or lag far behind
    base_net_.tail_max_delay_us = 200'000;
    world_ = std::make_unique<World>(o_.seed, o_.nodes, base, 64, base_net_);
    if (o_.trace && !o_.watch_key.empty()) {
      world_->SetObserver(
          [this](const NodeId& from, const NodeId& to, const Envelope& env, const char* fate) {
            std::string what = Describe(env.body);
            if (!what.empty())
              Trace(fmt::format("{} -> {} #{} {} [{}]", from, to, env.request_id, what, fate));
          });
    }
    start_us_ = world_->now_us();
    for (int k = 0; k < o_.set_keys; ++k) set_keys_.push_back(fmt::format("set-{}", k));

    uint64_t fault_phase_us = static_cast<uint64_t>(o_.minutes * 60e6);
    faults_end_us_ = world_->now_us() + fault_phase_us;
    for (int c = 0; c < o_.set_clients; ++c) Next([this] { SetStep(); });
    for (int c = 0; c < o_.register_clients; ++c) Next([this] { RegisterStep(); });
    for (int k = 0; k < o_.counter_keys; ++k) counter_keys_.push_back(fmt::format("ctr-{}", k));
    for (int k = 0; k < o_.dtset_keys; ++k) dtset_keys_.push_back(fmt::format("dset-{}", k));
    for (int c = 0; c < o_.counter_clients; ++c) Next([this] { CounterStep(); });
    for (int c = 0; c < o_.dtset_clients; ++c) Next([this] { DataSetStep(); });
    for (int c = 0; c < 2; ++c) Next([this] { TtlStep(); });
    Next([this] { ConfigStep(); });
    Next([this] { ListStep(); });
    world_->Schedule(1'000'000 + fault_rng_() % 2'000'000, [this] { NextFault(); });
    world_->RunFor(fault_phase_us / 1000);

    HealAll();
    uint64_t quiet_start = world_->now_us();
    // Every value written with a ttl is past its expiry by the skew margin
    // at the checks, so nodes agree on what is expired whatever their clocks.
    uint64_t expiries_past_us = world_->now_us() + (kMaxTtlSeenMs + 2 * kSkewMarginMs) * 1000;
    world_->RunFor(kMinQuietMs);
    while ((!Converged() || world_->now_us() < expiries_past_us) &&
           world_->now_us() - quiet_start < o_.max_quiet_ms * 1000) {
      world_->RunFor(kQuietStepMs);
    }
    r_.converge_ms = (world_->now_us() - quiet_start) / 1000;
    Check();
    r_.tombstones_reaped = tombstones_reaped_before_crashes_;
    r_.expired_reaped = expired_reaped_before_crashes_;
    for (int i = 1; i <= world_->size(); ++i) {
      if (!world_->node(i).up()) continue;
      r_.tombstones_reaped += world_->node(i).node()->reaper().stats().erased;
      r_.expired_reaped += world_->node(i).node()->reaper().stats().expired_erased;
    }
    r_.messages = world_->messages_delivered();
    r_.simulated_ms = (world_->now_us() - start_us_) / 1000;
  }

  void HealAll() {
    faults_over_ = true;
    clients_running_ = false;
    world_->Heal();
    world_->network() = base_net_;
    for (int i = 1; i <= world_->size(); ++i) {
      SimNode& n = world_->node(i);
      n.Resume();
      if (!n.up()) n.Restart();
    }
    Trace("heal: partitions healed, network clean, every node resumed and up");
  }

  bool Converged() {
    if (pending_ops_ > 0 || world_->HintsQueued() > 0) return false;
    for (const auto& key : AllKeys()) {
      if (!PrimariesAgree(key, nullptr)) return false;
    }
    for (const auto& key : ttl_keys_) {
      if (!PrimariesAgree(TtlInternal(key), nullptr)) return false;
    }
    for (int i = 2; i <= world_->size(); ++i) {
      if (world_->node(i).node()->buckets().Entries() != world_->node(1).node()->buckets().Entries()) {
        return false;
      }
    }
    return true;
  }

  // ---- clients --------------------------------------------------------------

  void Next(std::function<void()> step) {
    world_->Schedule(client_rng_() % kMaxThinkUs, std::move(step));
  }

  // Sends body to a random node; done gets the reply, or nullopt when the
  // client gave up waiting (the outcome is unknown).
  // Any request; done gets the answer (a Reply with an error when the node
  // was down), or nullopt when the client gave up.
  void IssueAny(Body body, std::function<void(std::optional<Envelope>)> done) {
    ++r_.client_ops;
    ++pending_ops_;
    int via = 1 + static_cast<int>(client_rng_() % static_cast<uint64_t>(world_->size()));
    auto slot = std::make_shared<std::function<void(std::optional<Envelope>)>>(std::move(done));
    auto finish = [this, slot](std::optional<Envelope> env) {
      if (!*slot) return;
      auto fn = std::move(*slot);
      *slot = nullptr;
      --pending_ops_;
      fn(std::move(env));
    };
    ClientId id = world_->Request(via, std::move(body), [finish](Envelope e) { finish(std::move(e)); });
    world_->Schedule(kClientTimeoutUs, [this, id, finish] {
      world_->Abandon(id);
      finish(std::nullopt);
    });
  }

  void Issue(Body body, std::function<void(std::optional<Reply>)> done) {
    IssueFor<Reply>(std::move(body), std::move(done));
  }

  // The same for a request answered with R (Reply, DataTypeReply).
  template <typename R>
  void IssueFor(Body body, std::function<void(std::optional<R>)> done) {
    ++r_.client_ops;
    ++pending_ops_;
    int via = 1 + static_cast<int>(client_rng_() % static_cast<uint64_t>(world_->size()));
    auto slot = std::make_shared<std::function<void(std::optional<R>)>>(std::move(done));
    auto finish = [this, slot](std::optional<R> reply) {
      if (!*slot) return;
      auto fn = std::move(*slot);
      *slot = nullptr;
      --pending_ops_;
      if (!reply || !(reply->status.ok() || reply->status.IsNotFound())) ++r_.client_ops_failed;
      fn(std::move(reply));
    };
    if (o_.trace && !o_.watch_key.empty()) {
      std::string what = Describe(body);
      if (!what.empty()) Trace(fmt::format("client {} -> n{}: {}", next_client_trace_, via, what));
    }
    ++next_client_trace_;
    ClientId id = world_->Request(via, std::move(body), [finish](Envelope e) {
      auto* reply = std::get_if<R>(&e.body);
      finish(reply ? std::optional<R>(std::move(*reply)) : std::nullopt);
    });
    world_->Schedule(kClientTimeoutUs, [this, id, finish] {
      world_->Abandon(id);
      finish(std::nullopt);
    });
  }

  const std::string& PickKey(const std::vector<std::string>& keys) {
    return keys[client_rng_() % keys.size()];
  }

  // Set workload: one add by read-modify-write with the read's context.
  void SetStep() {
    if (!clients_running_) return;
    std::string key = PickKey(set_keys_);
    Issue(GetRequest{key, {}}, [this, key](std::optional<Reply> got) {
      if (!got || !(got->status.ok() || got->status.IsNotFound())) {
        Next([this] { SetStep(); });
        return;
      }
      std::set<uint64_t> elements;
      std::string context;
      if (got->object) {
        for (const Sibling* s : got->object->LiveSiblings()) ParseSet(s->value, &elements);
        context = EncodeContext(got->object->clock());
      }
      uint64_t x = next_element_++;
      elements.insert(x);
      attempted_[key].insert(x);
      ++r_.adds_attempted;
      PutRequest put;
      put.key = key;
      put.value = JoinSet(elements);
      put.context = std::move(context);
      put.quorum.lww = o_.lww;
      std::string ctx_text = got->object ? got->object->clock().ToString() : "{}";
      std::string value = put.value;
      Issue(std::move(put), [this, key, x, ctx_text, value](std::optional<Reply> r) {
        if (r && r->status.ok()) {
          CheckAck(key, value, *r);
          acked_[key].insert(x);
          ++r_.adds_acked;
        }
        if (o_.trace)
          Trace(fmt::format("add {} {} with context {}: {}", key, x, ctx_text, Outcome(r)));
        Next([this] { SetStep(); });
      });
    });
  }

  // Register workload: blind puts, and deletes with the context of a read.
  void RegisterStep() {
    if (!clients_running_) return;
    uint64_t since_start_ms = (world_->now_us() - start_us_) / 1000;
    uint64_t window = since_start_ms / o_.register_window_ms;
    bool closing = since_start_ms % o_.register_window_ms >= o_.register_window_ms * 2 / 3;
    std::string key =
        fmt::format("reg-{}-{}", window, client_rng_() % static_cast<uint64_t>(o_.register_keys));
    // Now and then a key of a window long closed (deleted, maybe reaped) is
    // written again: its new writes must not lose to the old history.
    bool reborn = false;
    if (window >= 2 && client_rng_() % 25 == 0) {
      std::string old = fmt::format("reg-{}-{}", client_rng_() % (window - 1),
                                    client_rng_() % static_cast<uint64_t>(o_.register_keys));
      if (registers_.contains(old)) {
        key = old;
        reborn = true;
      }
    }
    if (registers_.try_emplace(key).second) register_keys_.push_back(key);
    if (reborn || (!closing && client_rng_() % 10 < 6)) {
      PutRequest put;
      put.key = key;
      put.value = fmt::format("r{}", next_element_++);
      put.quorum.lww = o_.lww;
      RegisterOp op;
      op.value = put.value;
      size_t index = AddRegisterOp(key, std::move(op));
      Issue(std::move(put), [this, key, index](std::optional<Reply> r) {
        RegisterOp& op = registers_[key][index];
        op.done = true;
        if (r && r->status.ok()) {
          CheckAck(key, op.value, *r);
          op.acked = true;
          op.dot = r->dot;
          ++r_.puts_acked;
        }
        if (o_.trace) Trace(fmt::format("put {} {}: {}", key, op.value, Outcome(r)));
        Next([this] { RegisterStep(); });
      });
      return;
    }
    Issue(GetRequest{key, {}}, [this, key](std::optional<Reply> got) {
      if (!got || !(got->status.ok() || got->status.IsNotFound())) {
        Next([this] { RegisterStep(); });
        return;
      }
      RegisterOp del;
      del.del = true;
      PutRequest put;
      put.key = key;
      put.tombstone = true;
      put.quorum.lww = o_.lww;
      if (got->object) {
        del.context = got->object->clock();
        put.context = EncodeContext(del.context);
      }
      size_t index = AddRegisterOp(key, std::move(del));
      Issue(std::move(put), [this, key, index](std::optional<Reply> r) {
        RegisterOp& op = registers_[key][index];
        op.done = true;
        if (r && r->status.ok()) {
          op.acked = true;
          ++r_.deletes_acked;
        }
        if (o_.trace)
          Trace(
              fmt::format("delete {} with context {}: {}", key, op.context.ToString(), Outcome(r)));
        Next([this] { RegisterStep(); });
      });
    });
  }

  // Counter workload: increments by 1..5 through random nodes. Every
  // attempt counts toward the upper bound (a request that timed out may
  // have been applied), only acknowledged ones toward the lower.
  void CounterStep() {
    if (!clients_running_) return;
    std::string key = PickKey(counter_keys_);
    int64_t by = 1 + static_cast<int64_t>(client_rng_() % 5);
    DataTypeRequest req;
    req.key = key;
    req.type = DataType::kCounter;
    req.op = DataTypeOpCode::kIncrement;
    req.delta = by;
    counter_attempted_[key] += by;
    r_.counter_attempted += static_cast<uint64_t>(by);
    IssueFor<DataTypeReply>(std::move(req), [this, key, by](std::optional<DataTypeReply> r) {
      if (r && r->status.ok()) {
        counter_acked_[key] += by;
        r_.counter_acked += static_cast<uint64_t>(by);
      }
      if (o_.trace) {
        Trace(fmt::format("incr {} by {}: {}", key, by,
                          r ? (r->status.ok() ? fmt::format("ok, {}", r->integer) : r->status.ToString())
                            : std::string("no answer")));
      }
      Next([this] { CounterStep(); });
    });
  }

  // Set workload on the data type: SADD of fresh elements, and now and then
  // SREM of an element added before. What each remove answered (1: the
  // coordinator held the element and removed the dots it saw) decides what
  // the checker may expect.
  void DataSetStep() {
    if (!clients_running_) return;
    std::string key = PickKey(dtset_keys_);
    DataTypeRequest req;
    req.key = key;
    req.type = DataType::kSet;
    auto& elements = dtset_added_[key];
    bool remove = !elements.empty() && client_rng_() % 4 == 0;
    uint64_t x = 0;
    if (remove) {
      auto it = elements.begin();
      std::advance(it, static_cast<long>(client_rng_() % elements.size()));
      x = it->first;
      req.op = DataTypeOpCode::kRemove;
      dtset_removes_[key][x].push_back(-1);  // outcome unknown until answered
    } else {
      x = next_element_++;
      req.op = DataTypeOpCode::kAdd;
      elements[x] = false;
      ++r_.dt_adds_attempted;
    }
    req.args = {std::to_string(x)};
    size_t index = remove ? dtset_removes_[key][x].size() - 1 : 0;
    IssueFor<DataTypeReply>(std::move(req), [this, key, x, remove, index](std::optional<DataTypeReply> r) {
      bool ok = r && r->status.ok();
      if (remove) {
        // 1 or 0: what the coordinator held; -1: unknown (it may have applied).
        if (ok) dtset_removes_[key][x][index] = static_cast<int>(r->integer);
      } else if (ok) {
        dtset_added_[key][x] = true;
        ++r_.dt_adds_acked;
      }
      if (o_.trace) {
        Trace(fmt::format("{} {} {}: {}", remove ? "srem" : "sadd", key, x,
                          r ? (r->status.ok() ? fmt::format("ok, {}", r->integer) : r->status.ToString())
                            : std::string("no answer")));
      }
      Next([this] { DataSetStep(); });
    });
  }

  // ---- TTL workload (bucket "ttl") -----------------------------------------

  static std::string TtlInternal(const std::string& key) { return *InternalKey(kTtlBucket, key); }

  // A read must not return a value expired longer ago than any clock skew.
  void CheckNotExpired(const std::string& key, const std::optional<DvvSet>& object,
                       const std::string& where) {
    if (!object) return;
    uint64_t now = world_->wall_ms();
    for (const Sibling* s : object->LiveSiblings()) {
      if (s->expires_ms != 0 && s->expires_ms + kSkewMarginMs <= now) {
        ++r_.expired_returned;
        Problem(fmt::format("{}: {} returned {} (dot {}) {} ms after its expiry", key, where,
                            Brief(s->value, 40), s->dot.ToString(), now - s->expires_ms));
      }
    }
  }

  // Blind writes (with their own ttl, the bucket's, or none), replacements
  // with a read's context and a ttl, and deletes with a read's context.
  void TtlStep() {
    if (!clients_running_) return;
    uint64_t since_start_ms = (world_->now_us() - start_us_) / 1000;
    // Keys t-W-0..2 get every kind of write; t-W-3 only values with their
    // own ttl (and deletes), so once its window closes it must never be
    // read or listed again, on any replica.
    uint64_t k = client_rng_() % 4;
    std::string key = fmt::format("t-{}-{}", since_start_ms / 10'000, k);
    if (ttl_ops_.try_emplace(key).second) ttl_keys_.push_back(key);
    uint64_t choice = client_rng_() % 10;
    uint64_t ttl_ms = 0;
    bool persist = false;
    switch (k == 3 ? 0 : client_rng_() % 3) {
      case 0: ttl_ms = 1000 + client_rng_() % 7000; break;
      case 1: break;  // the bucket's default, whatever it is now
      default: persist = true;
    }
    if (choice < 4) {
      PutRequest put;
      put.bucket = kTtlBucket;
      put.key = key;
      put.value = fmt::format("t{}", next_element_++);
      put.ttl_ms = ttl_ms;
      put.persist = persist;
      TtlOp op;
      op.value = put.value;
      IssueTtlWrite(key, std::move(put), std::move(op));
      return;
    }
    Issue(GetRequest{key, {}, kTtlBucket}, [this, key, choice, ttl_ms](std::optional<Reply> got) {
      if (!got || !(got->status.ok() || got->status.IsNotFound())) {
        Next([this] { TtlStep(); });
        return;
      }
      CheckNotExpired(key, got->object, "a read");
      PutRequest put;
      put.bucket = kTtlBucket;
      put.key = key;
      TtlOp op;
      if (got->object) {
        op.has_context = true;
        op.context = got->object->clock();
        put.context = EncodeContext(op.context);
      }
      if (choice < 8) {
        put.value = fmt::format("t{}", next_element_++);
        put.ttl_ms = ttl_ms;
        op.value = put.value;
      } else {
        put.tombstone = true;
        op.del = true;
      }
      IssueTtlWrite(key, std::move(put), std::move(op));
    });
  }

  void IssueTtlWrite(const std::string& key, PutRequest put, TtlOp op) {
    op.issued_us = world_->now_us();
    auto& ops = ttl_ops_[key];
    ops.push_back(std::move(op));
    size_t index = ops.size() - 1;
    Issue(std::move(put), [this, key, index](std::optional<Reply> r) {
      TtlOp& op = ttl_ops_[key][index];
      op.done = true;
      if (r && r->status.ok()) {
        op.acked = true;
        ++r_.ttl_writes_acked;
        if (!op.del) {
          CheckAck(key, op.value, *r);
          op.dot = r->dot;
          const Sibling* mine = r->object && r->dot ? r->object->FindSibling(*r->dot) : nullptr;
          op.expires_ms = mine ? mine->expires_ms : 0;
          if (op.expires_ms != 0) ++r_.ttl_expiring_acked;
        }
      }
      if (o_.trace) {
        Trace(fmt::format("ttl {} {}{}: {}", op.del ? "delete" : "put", key,
                          op.del ? "" : " " + op.value, Outcome(r)));
      }
      Next([this] { TtlStep(); });
    });
  }

  // True iff no replica could have held a live value of a ttl-bucket key
  // from virtual time t_us until now: every write issued to it so far was
  // answered, and each was a delete or a value that had expired by more
  // than the skew margin at t_us. (A key that once held a value without
  // expiry may still be live on a replica that missed its delete, so it is
  // not judged.) Called when a listing started at t_us answers: a write
  // issued since could have landed before the scan, so it counts too.
  bool NeverLiveSince(const std::string& key, uint64_t t_us) {
    const std::vector<TtlOp>& ops = ttl_ops_[key];
    uint64_t wall = World::kWallEpochMs + t_us / 1000;
    for (const TtlOp& op : ops) {
      if (!op.done || !op.acked) return false;
      if (op.del) continue;
      if (op.expires_ms == 0 || op.expires_ms + kSkewMarginMs > wall) return false;
    }
    return !ops.empty();
  }

  // ---- bucket properties ----------------------------------------------------

  void ConfigStep() {
    if (!clients_running_) return;
    bool ttl = client_rng_() % 2 == 0;
    nlohmann::json change = {{"name", ttl ? kTtlBucket : kCfgBucket}};
    if (ttl) {
      static constexpr uint64_t kTtls[] = {0, 3, 10, 20};
      change["ttl"] = kTtls[client_rng_() % 4];
      if (client_rng_() % 2) change["r"] = client_rng_() % 3;
      if (client_rng_() % 2) change["w"] = client_rng_() % 3;
      if (client_rng_() % 2) change["max_siblings"] = 50 + client_rng_() % 150;
    } else {
      static constexpr const char* kModes[] = {"sloppy", "strict", "default"};
      change["r"] = client_rng_() % 4;
      change["w"] = client_rng_() % 4;
      change["mode"] = kModes[client_rng_() % 3];
      change["warn_siblings"] = 1 + client_rng_() % 50;
    }
    std::string text = change.dump();
    IssueAny(InfoRequest{"bucket-set", text}, [this, text](std::optional<Envelope> env) {
      const InfoReply* reply = env ? std::get_if<InfoReply>(&env->body) : nullptr;
      if (reply == nullptr || !reply->status.ok()) {
        ++r_.client_ops_failed;
      } else {
        ++r_.bucket_changes_acked;
        nlohmann::json j = nlohmann::json::parse(reply->json, nullptr, false);
        BucketEntry e;
        e.name = j.value("name", "");
        e.changed_ms = j.value("changed_ms", uint64_t{0});
        e.changed_by = j.value("changed_by", "");
        BucketEntry& newest = acked_config_[e.name];
        if (newest.name.empty() || Buckets::Newer(e, newest)) newest = e;
      }
      if (o_.trace) Trace(fmt::format("bucket-set {}: {}", text, reply ? reply->status.ToString() : "no answer"));
      world_->Schedule(2'000'000 + client_rng_() % 6'000'000, [this] { ConfigStep(); });
    });
  }

  // ---- listings -------------------------------------------------------------

  // A few pages of the default or the "ttl" bucket, each checked: in order,
  // after the cursor, within the prefix, only keys some client wrote there.
  void ListStep() {
    if (!clients_running_) return;
    bool ttl = client_rng_() % 3 != 0;
    std::string prefix;
    switch (client_rng_() % 3) {
      case 0: break;
      case 1: prefix = ttl ? "t-" : "reg-"; break;
      default: prefix = ttl ? fmt::format("t-{}", client_rng_() % 10) : "set-";
    }
    ListPage(ttl ? kTtlBucket : "", prefix, "", 1 + static_cast<uint32_t>(client_rng_() % 6), 0);
  }

  void ListPage(std::string bucket, std::string prefix, std::string after, uint32_t limit,
                int pages) {
    ListKeysRequest req;
    req.bucket = bucket;
    req.prefix = prefix;
    req.after = after;
    req.limit = limit;
    req.timeout_ms = 2000;  // as the quorum requests: a silent replica is replaced soon
    uint64_t issued_us = world_->now_us();
    IssueAny(req, [this, bucket, prefix, after, limit, pages, issued_us](std::optional<Envelope> env) {
      const ListKeysReply* page = env ? std::get_if<ListKeysReply>(&env->body) : nullptr;
      if (page == nullptr || !page->status.ok()) {
        ++r_.client_ops_failed;
        world_->Schedule(500'000 + client_rng_() % 2'000'000, [this] { ListStep(); });
        return;
      }
      ++r_.listings;
      std::string previous = after;
      bool first = after.empty();
      for (const std::string& key : page->keys) {
        std::string why;
        if (!first && key <= previous) why = fmt::format("not after {}", previous);
        if (!key.starts_with(prefix)) why = "outside the prefix " + prefix;
        auto among = [&key](const std::vector<std::string>& keys) {
          return std::find(keys.begin(), keys.end(), key) != keys.end();
        };
        bool known = bucket.empty() ? (registers_.contains(key) || among(set_keys_) ||
                                       among(counter_keys_) || among(dtset_keys_))
                                    : ttl_ops_.contains(key);
        if (!known) why = "never written to this bucket";
        if (known && !bucket.empty() && NeverLiveSince(key, issued_us)) {
          std::string expiries;
          for (const TtlOp& op : ttl_ops_[key]) {
            if (!op.del) expiries += fmt::format(" {}", op.expires_ms);
          }
          why = fmt::format(
              "every value it ever had expired (by more than any skew) before the listing at {} "
              "(expiries:{})",
              World::kWallEpochMs + issued_us / 1000, expiries);
        }
        if (!why.empty()) {
          ++r_.listing_errors;
          Problem(fmt::format("listing of bucket '{}' (prefix '{}', after '{}') gave {}: {}",
                              bucket, prefix, after, key, why));
        }
        previous = key;
        first = false;
      }
      if (page->more && !page->keys.empty() && pages < 4 && clients_running_) {
        ListPage(bucket, prefix, page->keys.back(), limit, pages + 1);
        return;
      }
      world_->Schedule(500'000 + client_rng_() % 2'000'000, [this] { ListStep(); });
    });
  }

  // A put's answer carries the object as written and the write's dot: the
  // sibling with that dot must hold what this client wrote. If not, the
  // answer belonged to some other write (a reply matched to the wrong
  // request).
  void CheckAck(const std::string& key, const std::string& value, const Reply& r) {
    if (o_.lww) return;  // a lww answer may have dropped the very write it answers
    const Sibling* mine = r.object && r.dot ? r.object->FindSibling(*r.dot) : nullptr;
    if (mine != nullptr && mine->value == value) return;
    ++r_.acks_mismatched;
    Problem(fmt::format("{}: a put of {} was acknowledged with dot {} and object {}", key,
                        Brief(value, 40), r.dot ? r.dot->ToString() : std::string("(none)"),
                        r.object ? Brief(r.object->ToString()) : std::string("(none)")));
  }

  size_t AddRegisterOp(const std::string& key, RegisterOp op) {
    auto& ops = registers_[key];
    ops.push_back(std::move(op));
    return ops.size() - 1;
  }

  // A message about the watched key, readable; empty for other messages.
  std::string Describe(const Body& body) {
    auto obj = [](const std::optional<DvvSet>& o) {
      return o ? Brief(o->ToString(), 400) : std::string("none");
    };
    const std::string& k = o_.watch_key;
    if (auto* g = std::get_if<GetRequest>(&body); g && g->key == k) return "GetRequest";
    if (auto* p = std::get_if<PutRequest>(&body); p && p->key == k) {
      auto ctx = DecodeContext(p->context);
      return fmt::format("PutRequest {} ctx {}{}", p->tombstone ? "<delete>" : Brief(p->value, 60),
                         ctx.ok() ? ctx->ToString() : "?", p->forwarded ? " forwarded" : "");
    }
    if (auto* rr = std::get_if<ReplicaRead>(&body); rr && rr->key == k) {
      return fmt::format("ReplicaRead hint_for '{}'", rr->hint_for);
    }
    if (auto* rw = std::get_if<ReplicaWrite>(&body); rw && rw->key == k) {
      return fmt::format("ReplicaWrite hint_for '{}' {}", rw->hint_for, obj(rw->object));
    }
    if (auto* rrr = std::get_if<ReplicaReadReply>(&body); rrr && rrr->object) {
      // A reply names no key: show those whose values look like the watched
      // workload's (register values start with 'r', set values are digits).
      bool watching_sets = k.starts_with("set-");
      bool looks_like_sets =
          std::any_of(rrr->object->siblings().begin(), rrr->object->siblings().end(),
                      [](const Sibling& s) { return !s.value.empty() && s.value[0] != 'r'; });
      if (looks_like_sets == watching_sets) {
        return fmt::format("ReplicaReadReply {} {}", rrr->status.ToString(), obj(rrr->object));
      }
    }
    uint32_t partition = world_->ring().PartitionOfKey(k);
    if (auto* a = std::get_if<AaeHashesRequest>(&body); a && a->partition == partition) {
      return fmt::format("AaeHashesRequest p{} level {} {} indices", a->partition, a->level,
                         a->indices.size());
    }
    if (auto* a = std::get_if<AaeHashesReply>(&body); a && a->partition == partition) {
      return fmt::format("AaeHashesReply p{} {} level {} {} indices", a->partition,
                         a->status.ToString(), a->level, a->indices.size());
    }
    if (auto* a = std::get_if<AaeSegmentRequest>(&body); a && a->partition == partition) {
      return fmt::format("AaeSegmentRequest p{} {} segments", a->partition, a->segments.size());
    }
    if (auto* a = std::get_if<AaeSegmentReply>(&body); a && a->partition == partition) {
      return fmt::format("AaeSegmentReply p{} {} {} entries", a->partition, a->status.ToString(),
                         a->entries.size());
    }
    if (auto* rc = std::get_if<ReapCheck>(&body)) {
      for (const auto& ko : rc->entries) {
        if (ko.key == k) return fmt::format("ReapCheck ({} keys) {}", rc->entries.size(), obj(ko.object));
      }
    }
    if (auto* rp = std::get_if<Reap>(&body)) {
      for (const auto& ko : rp->entries) {
        if (ko.key == k) return fmt::format("Reap ({} keys) {}", rp->entries.size(), obj(ko.object));
      }
    }
    if (auto* ob = std::get_if<HandoffBatch>(&body)) {
      for (const auto& ko : ob->objects) {
        if (ko.key == k) return fmt::format("HandoffBatch {}", obj(ko.object));
      }
    }
    return "";
  }

  // "ok, dot n2:5", "Unavailable: ...", "no answer"
  std::string Outcome(const std::optional<Reply>& r) {
    if (!r) return "no answer";
    if (!r->status.ok()) return r->status.ToString();
    return fmt::format("ok, dot {}", r->dot ? r->dot->ToString() : std::string("?"));
  }

  // ---- faults ---------------------------------------------------------------

  uint64_t Uniform(uint64_t lo, uint64_t hi) { return lo + fault_rng_() % (hi - lo + 1); }
  double UniformReal(double lo, double hi) {
    return std::uniform_real_distribution<>(lo, hi)(fault_rng_);
  }
  int RandomNode() {
    return 1 + static_cast<int>(fault_rng_() % static_cast<uint64_t>(world_->size()));
  }

  // After the fault phase, the ends of faults still pending do nothing: the
  // heal did it all.
  void Later(uint64_t us, std::function<void()> fn) {
    world_->Schedule(us, [this, fn = std::move(fn)] {
      if (!faults_over_) fn();
    });
  }

  void NextFault() {
    if (faults_over_ || world_->now_us() >= faults_end_us_) return;
    ++r_.faults;  // taken back below when the fault does not apply
    int n = world_->size();
    uint64_t duration_us = Uniform(500'000, 20'000'000);
    switch (fault_rng_() % 8) {
      case 0:
      case 1: {  // symmetric partition into two sides
        std::vector<NodeId> a, b;
        uint64_t mask = 1 + fault_rng_() % ((uint64_t{1} << n) - 2);
        for (int i = 1; i <= n; ++i) (mask >> (i - 1) & 1 ? a : b).push_back(world_->node(i).id());
        world_->Partition(a, b);
        Trace(fmt::format("partition {{{}}} | {{{}}} for {} ms", fmt::join(a, ","),
                          fmt::join(b, ","), duration_us / 1000));
        Later(duration_us, [this, a, b] {
          for (const auto& x : a) {
            for (const auto& y : b) {
              world_->Uncut(x, y);
              world_->Uncut(y, x);
            }
          }
        });
        break;
      }
      case 2: {  // one-way cuts
        std::vector<std::pair<NodeId, NodeId>> cuts;
        int count = 1 + static_cast<int>(fault_rng_() % static_cast<uint64_t>(n));
        for (int c = 0; c < count; ++c) {
          int from = RandomNode(), to = RandomNode();
          if (from == to) continue;
          cuts.emplace_back(world_->node(from).id(), world_->node(to).id());
          world_->Cut(cuts.back().first, cuts.back().second);
        }
        std::string desc;
        for (const auto& [f, t] : cuts) desc += fmt::format(" {}->{}", f, t);
        Trace(fmt::format("one-way cut{} for {} ms", desc, duration_us / 1000));
        Later(duration_us, [this, cuts] {
          for (const auto& [f, t] : cuts) world_->Uncut(f, t);
        });
        break;
      }
      case 3: {  // crash, restart later; keep two nodes running
        int down = 0;
        for (int i = 1; i <= n; ++i) down += !world_->node(i).up();
        int victim = RandomNode();
        if (!world_->node(victim).up() || down + 3 > n) {
          --r_.faults;
          break;
        }
        tombstones_reaped_before_crashes_ += world_->node(victim).node()->reaper().stats().erased;
        expired_reaped_before_crashes_ +=
            world_->node(victim).node()->reaper().stats().expired_erased;
        world_->node(victim).Crash();
        Trace(fmt::format("crash n{} for {} ms", victim, duration_us / 1000));
        Later(duration_us, [this, victim] { world_->node(victim).Restart(); });
        break;
      }
      case 4: {  // pause (SIGSTOP, long GC): held, then released
        int victim = RandomNode();
        SimNode& node = world_->node(victim);
        if (!node.up() || node.paused()) {
          --r_.faults;
          break;
        }
        uint64_t pause_us = Uniform(200'000, 15'000'000);
        node.Pause();
        Trace(fmt::format("pause n{} for {} ms", victim, pause_us / 1000));
        Later(pause_us, [this, victim] { world_->node(victim).Resume(); });
        break;
      }
      case 5: {  // a burst of drops and duplicates
        NetworkConfig& net = world_->network();
        net.drop_probability = UniformReal(0.01, 0.3);
        net.duplicate_probability = UniformReal(0.0, 0.2);
        Trace(fmt::format("drop {:.2f} duplicate {:.2f} for {} ms", net.drop_probability,
                          net.duplicate_probability, duration_us / 1000));
        ScheduleNetworkRestore(duration_us);
        break;
      }
      case 6: {  // long tails: many messages late by up to two seconds
        NetworkConfig& net = world_->network();
        net.tail_probability = UniformReal(0.05, 0.4);
        net.tail_max_delay_us = 2'000'000;
        Trace(fmt::format("slow network: {:.2f} of messages up to 2 s late for {} ms",
                          net.tail_probability, duration_us / 1000));
        ScheduleNetworkRestore(duration_us);
        break;
      }
      case 7: {  // clock skew, steps either way
        int victim = RandomNode();
        int64_t skew = fault_rng_() % 4 == 0 ? static_cast<int64_t>(Uniform(0, 60'000)) - 30'000
                                             : static_cast<int64_t>(Uniform(0, 4'000)) - 2'000;
        world_->node(victim).SetClockSkew(skew);
        Trace(fmt::format("clock skew n{} {:+} ms", victim, skew));
        break;
      }
    }
    world_->Schedule(Uniform(1'000'000, 6'000'000), [this] { NextFault(); });
  }

  // Network bursts overlap: the network is clean again when the last ends.
  void ScheduleNetworkRestore(uint64_t duration_us) {
    network_fault_until_us_ = std::max(network_fault_until_us_, world_->now_us() + duration_us);
    Later(duration_us, [this] {
      if (world_->now_us() >= network_fault_until_us_) world_->network() = base_net_;
    });
  }

  // ---- checks ---------------------------------------------------------------

  std::vector<std::string> AllKeys() const {
    std::vector<std::string> keys = set_keys_;
    keys.insert(keys.end(), register_keys_.begin(), register_keys_.end());
    keys.insert(keys.end(), counter_keys_.begin(), counter_keys_.end());
    keys.insert(keys.end(), dtset_keys_.begin(), dtset_keys_.end());
    return keys;
  }

  std::vector<NodeId> Primaries(const std::string& key) const {
    return world_->ring().Primaries(world_->ring().PartitionOfKey(key), 3);
  }

  // Each primary's copy of key (nullopt: it has none).
  std::vector<std::pair<NodeId, std::optional<DvvSet>>> Copies(const std::string& key) {
    std::vector<std::pair<NodeId, std::optional<DvvSet>>> out;
    for (const NodeId& id : Primaries(key)) {
      DvvSet object;
      if (world_->ByName(id)->store().Get(key, &object).ok()) {
        out.emplace_back(id, std::move(object));
      } else {
        out.emplace_back(id, std::nullopt);
      }
    }
    return out;
  }

  bool PrimariesAgree(const std::string& key, std::string* why) {
    auto copies = Copies(key);
    // Deleted either way: a tombstone (or an expired value) waiting for the
    // reaper, or reaped.
    uint64_t now = world_->wall_ms();
    auto gone = [now](const std::optional<DvvSet>& o) {
      return !o || o->IsDeleted() || DeadSince(*o, now - kSkewMarginMs) != 0;
    };
    for (size_t i = 1; i < copies.size(); ++i) {
      if (copies[i].second == copies[0].second) continue;
      if (gone(copies[i].second) && gone(copies[0].second)) continue;
      if (why) {
        auto show = [](const std::optional<DvvSet>& o) {
          return o ? Brief(o->ToString()) : "(none)";
        };
        *why = fmt::format("{}: {} has {} but {} has {}", key, copies[0].first,
                           show(copies[0].second), copies[i].first, show(copies[i].second));
      }
      return false;
    }
    return true;
  }

  // An r=3 read of key after healing (nullopt: the read failed).
  // Also notes, for the final listings, whether the key read as live.
  std::optional<Reply> FinalRead(const std::string& key, const std::string& bucket = "") {
    Quorum q;
    q.n = 3;
    q.r = 3;
    q.mode = Mode::kStrict;
    q.timeout_ms = 5000;
    int via = 1 + static_cast<int>(final_reads_++ % static_cast<uint64_t>(world_->size()));
    auto env = world_->Call(via, GetRequest{key, q, bucket}, 20000);
    Reply* reply = env ? std::get_if<Reply>(&env->body) : nullptr;
    if (reply == nullptr || !(reply->status.ok() || reply->status.IsNotFound())) {
      ++r_.final_read_failures;
      Problem(fmt::format("final r=3 read of {} via n{} failed: {}", key, via,
                          reply ? reply->status.ToString() : std::string("no answer")));
      final_unknown_[bucket].insert(key);
      return std::nullopt;
    }
    if (reply->status.ok()) final_live_[bucket].insert(key);
    return *reply;
  }

  void Check() {
    r_.hints_left = world_->HintsQueued();
    if (r_.hints_left > 0) {
      for (int i = 1; i <= world_->size(); ++i) {
        std::map<NodeId, HintSummary> summary;
        world_->node(i).store().SummarizeHints(&summary);
        for (const auto& [target, s] : summary) {
          Problem(fmt::format("{} still holds {} hint(s) for {}", world_->node(i).id(), s.count,
                              target));
        }
      }
    }
    // The object count status reports is kept as writes happen; it must
    // match a full count of the store.
    for (int i = 1; i <= world_->size(); ++i) {
      SimNode& n = world_->node(i);
      if (n.up() && n.node()->objects() != n.store().CountObjects()) {
        Problem(fmt::format("{} reports {} objects but stores {}", n.id(), n.node()->objects(),
                            n.store().CountObjects()));
      }
    }
    // Replica agreement first: the final reads repair what they read.
    for (const auto& key : AllKeys()) {
      std::string why;
      if (!PrimariesAgree(key, &why)) {
        ++r_.replicas_differing;
        Problem("replicas differ: " + why);
      }
    }
    for (const auto& key : ttl_keys_) {
      std::string why;
      if (!PrimariesAgree(TtlInternal(key), &why)) {
        ++r_.replicas_differing;
        Problem("replicas differ: " + why);
      }
    }
    for (const auto& key : set_keys_) CheckSet(key);
    for (const auto& key : register_keys_) CheckRegister(key);
    for (const auto& key : counter_keys_) CheckCounter(key);
    for (const auto& key : dtset_keys_) CheckDataSet(key);
    for (const auto& key : ttl_keys_) CheckTtl(key);
    CheckListings();
    CheckBuckets();
  }

  // What the primaries store and an r=3 read answer for a data-type key:
  // (where, contents); a state that does not decode is a problem.
  std::vector<std::pair<std::string, KeyContents>> DataTypeViews(const std::string& key) {
    std::vector<std::pair<std::string, KeyContents>> views;
    auto add = [&](const std::string& where, const std::optional<DvvSet>& object) {
      if (!object) {
        views.emplace_back(where, KeyContents{});
        return;
      }
      auto k = ReadKeyContents(*object);
      if (!k.ok()) {
        ++r_.phantom_elements;
        Problem(fmt::format("{} on {}: {}", key, where, k.status().ToString()));
        return;
      }
      views.emplace_back(where, std::move(k).value());
    };
    for (auto& [id, copy] : Copies(key)) add(id + "'s store", copy);
    if (auto reply = FinalRead(key)) add("an r=3 read", reply->object);
    return views;
  }

  // acknowledged <= value <= attempted, on every primary and in a read.
  void CheckCounter(const std::string& key) {
    int64_t lo = counter_acked_[key], hi = counter_attempted_[key];
    bool bad = false;
    for (const auto& [where, k] : DataTypeViews(key)) {
      if (k.opaque || (k.type != DataType::kNone && k.type != DataType::kCounter)) {
        bad = true;
        Problem(fmt::format("{} on {} is not a counter", key, where));
        continue;
      }
      int64_t v = k.state.counter().Value();
      if (v < lo || v > hi) {
        bad = true;
        Problem(fmt::format("{} on {}: value {} is outside [{} acknowledged, {} attempted]", key,
                            where, v, lo, hi));
      }
    }
    r_.counters_out_of_bounds += bad;
  }

  // An acknowledged add is present unless a remove that may have seen it
  // was made; an element a remove answered 1 for (its coordinator removed
  // the one dot it had) is absent; nothing else appears.
  void CheckDataSet(const std::string& key) {
    const auto& added = dtset_added_[key];
    const auto& removes = dtset_removes_[key];
    std::set<uint64_t> lost, back;
    for (const auto& [where, k] : DataTypeViews(key)) {
      if (k.opaque || (k.type != DataType::kNone && k.type != DataType::kSet)) {
        ++r_.phantom_elements;
        Problem(fmt::format("{} on {} is not a set", key, where));
        continue;
      }
      for (const std::string& m : k.state.set().Members()) {
        uint64_t x = std::strtoull(m.c_str(), nullptr, 10);
        if (!added.contains(x)) {
          ++r_.phantom_elements;
          Problem(fmt::format("{} on {}: member {} was never added", key, where, m));
        }
      }
      for (const auto& [x, acked] : added) {
        auto it = removes.find(x);
        bool removed_for_sure = it != removes.end() &&
                                std::find(it->second.begin(), it->second.end(), 1) != it->second.end();
        bool maybe_removed = it != removes.end() &&
                             std::any_of(it->second.begin(), it->second.end(), [](int a) { return a != 0; });
        bool present = k.state.set().Contains(std::to_string(x));
        if (acked && !maybe_removed && !present) {
          lost.insert(x);
          Problem(fmt::format("{} on {}: acknowledged add {} is missing (no remove saw it)", key,
                              where, x));
        }
        if (removed_for_sure && present) {
          back.insert(x);
          Problem(fmt::format("{} on {}: member {} is back after a remove that held it", key,
                              where, x));
        }
      }
    }
    r_.dt_adds_lost += lost.size();
    r_.dt_members_back += back.size();
  }

  void CheckTtl(const std::string& key) {
    const std::vector<TtlOp>& ops = ttl_ops_[key];
    uint64_t now = world_->wall_ms();
    std::vector<std::pair<std::string, std::optional<DvvSet>>> views;
    for (auto& [id, copy] : Copies(TtlInternal(key))) views.emplace_back(id + "'s store", std::move(copy));
    if (auto reply = FinalRead(key, kTtlBucket)) {
      CheckNotExpired(key, reply->object, "the final r=3 read");
      views.emplace_back("an r=3 read", reply->object);
    }
    // Live for every node whatever its skew: every expiry is long past.
    auto live = [now](const Sibling& s) { return IsLive(s, now - kSkewMarginMs); };
    // 1. What an acknowledged write's context covered never lives again,
    //    whether that write was a delete or a value that has since expired.
    bool resurrected = false;
    for (const TtlOp& w : ops) {
      if (!w.acked || !w.has_context) continue;
      for (const auto& [where, object] : views) {
        if (!object) continue;
        for (const Sibling& s : object->siblings()) {
          if (live(s) && w.context.Covers(s.dot)) {
            resurrected = true;
            Problem(fmt::format("{}: value {} with dot {} is live on {} though an acknowledged "
                                "{} with context {} covered it",
                                key, Brief(s.value, 40), s.dot.ToString(), where,
                                w.del ? "delete" : "write", w.context.ToString()));
          }
        }
      }
    }
    if (resurrected) ++r_.resurrections;
    // 2. An acknowledged value without expiry that no write issued after it
    //    could have covered is on every primary and in the read.
    for (size_t i = 0; i < ops.size(); ++i) {
      const TtlOp& p = ops[i];
      if (p.del || !p.acked || !p.dot || p.expires_ms != 0) continue;
      bool covered = false;
      for (size_t j = i + 1; j < ops.size(); ++j) {
        covered = covered || (ops[j].has_context && ops[j].context.Covers(*p.dot));
      }
      if (covered) continue;
      for (const auto& [where, object] : views) {
        const Sibling* s = object ? object->FindSibling(*p.dot) : nullptr;
        if (s != nullptr && live(*s)) continue;
        ++r_.puts_lost;
        Problem(fmt::format("{}: acknowledged ttl-bucket put {} with dot {} is missing on {}: {}",
                            key, p.value, p.dot->ToString(), where,
                            object ? Brief(object->ToString()) : std::string("(none)")));
      }
    }
  }

  // After healing, a listing of each bucket is complete and holds exactly
  // the keys the final reads found live.
  void CheckListings() {
    for (const std::string bucket : {std::string(), std::string(kTtlBucket)}) {
      std::set<std::string> listed;
      std::string after;
      int via = 1 + static_cast<int>(final_reads_++ % static_cast<uint64_t>(world_->size()));
      bool failed = false;
      for (int pages = 0; pages < 10000; ++pages) {
        ListKeysRequest req;
        req.bucket = bucket;
        req.after = after;
        req.limit = 37;
        auto env = world_->Call(via, req, 30000);
        const ListKeysReply* page = env ? std::get_if<ListKeysReply>(&env->body) : nullptr;
        if (page == nullptr || !page->status.ok() || !page->missed.empty()) {
          ++r_.final_listings_wrong;
          Problem(fmt::format("final listing of bucket '{}' via n{} failed or missed partitions",
                              bucket, via));
          failed = true;
          break;
        }
        listed.insert(page->keys.begin(), page->keys.end());
        if (!page->more || page->keys.empty()) break;
        after = page->keys.back();
      }
      if (failed) continue;
      const std::set<std::string>& unknown = final_unknown_[bucket];
      std::vector<std::string> extra, missing;
      for (const auto& k : listed) {
        if (!final_live_[bucket].contains(k) && !unknown.contains(k)) extra.push_back(k);
      }
      for (const auto& k : final_live_[bucket]) {
        if (!listed.contains(k)) missing.push_back(k);
      }
      if (!extra.empty() || !missing.empty()) {
        ++r_.final_listings_wrong;
        Problem(fmt::format(
            "final listing of bucket '{}' via n{}: {} deleted or expired keys listed (first: {}), "
            "{} live keys missing (first: {})",
            bucket, via, extra.size(), extra.empty() ? "-" : extra[0], missing.size(),
            missing.empty() ? "-" : missing[0]));
      }
    }
  }

  // Every node holds the same bucket entries, none older than an
  // acknowledged change.
  void CheckBuckets() {
    std::vector<BucketEntry> ref = world_->node(1).node()->buckets().Entries();
    bool diverged = false;
    for (int i = 2; i <= world_->size(); ++i) {
      if (world_->node(i).node()->buckets().Entries() != ref) {
        diverged = true;
        Problem(fmt::format("{} holds other bucket properties than n1", world_->node(i).id()));
      }
    }
    for (const auto& [name, acked] : acked_config_) {
      const BucketEntry* now = world_->node(1).node()->buckets().Find(name);
      if (now == nullptr || Buckets::Newer(acked, *now)) {
        diverged = true;
        Problem(fmt::format("bucket {}: the change acknowledged at {} by {} was lost", name,
                            acked.changed_ms, acked.changed_by));
      }
    }
    r_.buckets_diverged += diverged;
  }

  void CheckSet(const std::string& key) {
    const std::set<uint64_t>& acked = acked_[key];
    const std::set<uint64_t>& attempted = attempted_[key];
    std::set<uint64_t> lost;
    auto check = [&](const std::string& where, const DvvSet* object) {
      std::set<uint64_t> present;
      if (object) {
        for (const Sibling* s : object->LiveSiblings()) {
          if (!ParseSet(s->value, &present)) {
            ++r_.phantom_elements;
            Problem(fmt::format("{} on {}: value is not a set: {}", key, where, Brief(s->value)));
          }
        }
      }
      std::vector<uint64_t> missing;
      for (uint64_t x : acked) {
        if (!present.contains(x)) missing.push_back(x);
      }
      for (uint64_t x : present) {
        if (!attempted.contains(x)) {
          ++r_.phantom_elements;
          Problem(fmt::format("{} on {}: element {} was never added", key, where, x));
        }
      }
      if (!missing.empty()) {
        lost.insert(missing.begin(), missing.end());
        Problem(fmt::format("{}: {} of {} acknowledged adds missing on {} (first: {})", key,
                            missing.size(), acked.size(), where,
                            fmt::join(missing.begin(),
                                      missing.begin() + std::min<size_t>(missing.size(), 8), ",")));
      }
    };
    for (const auto& [id, copy] : Copies(key)) check(id + "'s store", copy ? &*copy : nullptr);
    if (auto reply = FinalRead(key))
      check("an r=3 read", reply->object ? &*reply->object : nullptr);
    r_.adds_lost += lost.size();
  }

  void CheckRegister(const std::string& key) {
    const std::vector<RegisterOp>& ops = registers_[key];
    std::vector<std::pair<std::string, std::optional<DvvSet>>> views;
    for (auto& [id, copy] : Copies(key)) views.emplace_back(id + "'s store", std::move(copy));
    if (auto reply = FinalRead(key)) {
      views.emplace_back("an r=3 read", reply->object);
      // A read answers not found for a deleted key; keep that apart from
      // "has live siblings" below.
    }
    bool resurrected = false;
    // 1. No live sibling carries a dot an acknowledged delete covered.
    for (const RegisterOp& d : ops) {
      if (!d.del || !d.acked) continue;
      for (const auto& [where, object] : views) {
        if (!object) continue;
        for (const Sibling* s : object->LiveSiblings()) {
          if (d.context.Covers(s->dot)) {
            resurrected = true;
            Problem(fmt::format(
                "{}: value {} with dot {} is live on {} though an acknowledged delete "
                "with context {} covered it",
                key, Brief(s->value, 40), s->dot.ToString(), where, d.context.ToString()));
          }
        }
      }
    }
    // 2. Last operation an acknowledged delete covering every put: not found.
    if (!ops.empty() && ops.back().del && ops.back().acked) {
      const RegisterOp& d = ops.back();
      bool covers_all = std::all_of(ops.begin(), ops.end() - 1, [&](const RegisterOp& op) {
        return op.del || (op.acked && op.dot && d.context.Covers(*op.dot));
      });
      if (covers_all) {
        ++r_.deleted_keys_checked;
        bool reaped = true;
        for (const auto& [where, object] : views) {
          if (where != "an r=3 read" && object) reaped = false;
        }
        r_.deleted_keys_reaped += reaped;
        for (const auto& [where, object] : views) {
          if (object && !object->LiveSiblings().empty()) {
            resurrected = true;
            Problem(fmt::format("{}: deleted with context {} after every put, yet {} has {}", key,
                                d.context.ToString(), where, Brief(object->ToString())));
          }
        }
      }
    }
    if (resurrected) ++r_.resurrections;
    // 3. An acknowledged put after which no delete was issued is never lost
    //    (deletes issued before it read before it existed; blind puts only
    //    add siblings). Keys written again after their delete test that a
    //    reaped history does not swallow new writes (dot reuse).
    size_t after = 0;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].del) after = i + 1;
    }
    for (size_t i = after; i < ops.size(); ++i) {
      const RegisterOp& p = ops[i];
      if (p.del || !p.acked || !p.dot) continue;
      for (const auto& [where, object] : views) {
        if (object && object->FindSibling(*p.dot) != nullptr &&
            !object->FindSibling(*p.dot)->tombstone) {
          continue;
        }
        ++r_.puts_lost;
        Problem(fmt::format("{}: acknowledged put {} with dot {} is missing on {}: {}", key,
                            p.value, p.dot->ToString(), where,
                            object ? Brief(object->ToString()) : std::string("(none)")));
      }
    }
  }

  // ---- reporting ------------------------------------------------------------

  void Trace(std::string line) {
    if (o_.trace) {
      r_.trace.push_back(fmt::format("t={:.3f}s {}", (world_->now_us() - start_us_) / 1e6, line));
    }
  }

  void Problem(std::string line) {
    if (r_.problems.size() < kMaxProblems) r_.problems.push_back(std::move(line));
  }

  ScheduleOptions o_;
  ScheduleResult r_;
  std::mt19937_64 fault_rng_;
  std::mt19937_64 client_rng_;
  NetworkConfig base_net_;
  std::unique_ptr<World> world_;
  uint64_t start_us_ = 0;
  uint64_t faults_end_us_ = 0;
  uint64_t network_fault_until_us_ = 0;
  bool faults_over_ = false;
  bool clients_running_ = true;
  int64_t pending_ops_ = 0;
  uint64_t next_element_ = 1;
  uint64_t final_reads_ = 0;
  uint64_t next_client_trace_ = 1;
  uint64_t tombstones_reaped_before_crashes_ = 0;
  uint64_t expired_reaped_before_crashes_ = 0;
  std::map<std::string, std::vector<TtlOp>> ttl_ops_;
  std::vector<std::string> ttl_keys_;
  std::map<std::string, BucketEntry> acked_config_;  // newest acknowledged change per bucket
  // Final reads by bucket: keys found live, keys whose read failed.
  std::map<std::string, std::set<std::string>> final_live_;
  std::map<std::string, std::set<std::string>> final_unknown_;
  std::vector<std::string> set_keys_;
  std::vector<std::string> register_keys_;
  std::map<std::string, std::set<uint64_t>> acked_;
  std::map<std::string, std::set<uint64_t>> attempted_;
  std::map<std::string, std::vector<RegisterOp>> registers_;
  std::vector<std::string> counter_keys_;
  std::map<std::string, int64_t> counter_attempted_, counter_acked_;
  std::vector<std::string> dtset_keys_;
  std::map<std::string, std::map<uint64_t, bool>> dtset_added_;  // element -> acknowledged
  // element -> each remove's answer: 1, 0, or -1 (unknown)
  std::map<std::string, std::map<uint64_t, std::vector<int>>> dtset_removes_;
};

}  // namespace

int NodesForSeed(uint64_t seed) { return 3 + static_cast<int>(SplitMix(seed) % 5); }

double MinutesForSeed(uint64_t seed, double lo, double hi) {
  if (hi <= lo) return lo;
  uint64_t span = static_cast<uint64_t>(std::floor(hi - lo)) + 1;
  return lo + static_cast<double>(SplitMix(seed ^ 0x6d696e75746573ull) % span);
}

ScheduleResult RunSchedule(ScheduleOptions options) {
  if (options.nodes <= 0) options.nodes = NodesForSeed(options.seed);
  if (options.nodes < 3) throw std::invalid_argument("a schedule needs at least 3 nodes (n=3)");
  return Schedule(options).Run();
}

std::string ReplayCommand(const ScheduleResult& r) {
  return fmt::format("build/ringkv-sim --seed {} --minutes {} --nodes {}{}{} --trace", r.seed,
                     r.minutes, r.nodes, r.lww ? " --lww" : "",
                     r.tombstone_grace_s == ScheduleOptions().tombstone_grace_s
                         ? std::string()
                         : fmt::format(" --tombstone-grace-s {}", r.tombstone_grace_s));
}

}  // namespace ringkv::sim
