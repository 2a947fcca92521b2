#include "client/bench.h"

#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <variant>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "client/client.h"
#include "core/bucket_key.h"
#include "core/codec.h"
#include "core/limits.h"

namespace ringkv {

namespace {

using SteadyClock = std::chrono::steady_clock;
using json = nlohmann::ordered_json;

// Request ids carry the slot they belong to in their low bits, so a reply
// finds its slot without a lookup; the high bits make every id unique.
constexpr int kSlotBits = 12;
constexpr int kMaxPipeline = 1 << kSlotBits;
constexpr uint64_t kSlotMask = kMaxPipeline - 1;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// "key:" and 12 digits, like redis-benchmark's key:__rand_int__ with -r.
std::string KeyName(uint64_t index) {
  if (index >= 1000000000000ULL) return fmt::format("key:{}", index);
  std::string key = "key:000000000000";
  for (size_t pos = key.size(); index > 0; --pos) {
    key[pos - 1] = static_cast<char>('0' + index % 10);
    index /= 10;
  }
  return key;
}

std::string MakeValue(size_t size, uint64_t seed) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string v(size, 'x');
  uint64_t x = seed;
  for (auto& c : v) {
    x = SplitMix64(x);
    c = kAlphabet[x % (sizeof(kAlphabet) - 1)];
  }
  return v;
}

double ThreadCpuSeconds() {
  struct timespec ts {};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}


enum class OpKind : uint8_t { kGet, kPut };

// One request window position of a connection.
struct Slot {
  bool busy = false;
  bool reading = false;  // an --rmw put still in its read half
  OpKind kind = OpKind::kGet;
  uint64_t id = 0;
  uint64_t key = 0;
  SteadyClock::time_point start;
};

// What all workers of one phase share. Written before `go`, read-only after
// (except the atomic counter).
struct Phase {
  const BenchOptions* options = nullptr;
  bool preload = false;
  const ZipfSampler* zipf = nullptr;
  const std::string* value = nullptr;
  Quorum get_quorum;
  Quorum put_quorum;
  bool use_deadline = false;
  SteadyClock::time_point deadline;
  uint64_t limit = 0;  // operations to issue (preload: keys; run: requests)
  std::atomic<uint64_t> issued{0};
  std::atomic<bool> go{false};
};

struct Worker {
  int index = 0;
  std::unique_ptr<Client> client;
  std::string address;
  std::mt19937_64 rng;
  BenchPhaseResult stats;
  SteadyClock::time_point finished;
  alignas(64) std::atomic<uint64_t> done{0};  // completed operations, for progress
};

// One connection's request window, driven by its thread's event loop
// (RunThread): Fill() issues requests into free slots and writes them,
// OnReadable() handles the replies that have arrived, CheckTimeout() gives up
// on a connection that stopped answering.
class WorkerLoop {
 public:
  WorkerLoop(Worker* w, Phase* phase)
      : w_(w), phase_(phase), o_(*phase->options), slots_(static_cast<size_t>(o_.pipeline)) {}

  // False once the phase has nothing more for this connection: no more
  // operations to issue (or no connection to issue them on) and none in flight.
  bool active() const { return outstanding_ > 0 || (more_ && (w_->client || reconnecting_)); }
  // The connection's socket; -1 while there is none.
  int fd() const { return w_->client ? w_->client->fd() : -1; }
  // Changes with every new connection (its socket may reuse the number of
  // the one it replaces, so the fd alone cannot tell).
  uint64_t connection() const { return connections_; }

  void Fill() {
    if (!w_->client) {
      if (reconnecting_) Reconnect();
      if (!w_->client) return;
    }
    for (size_t i = 0; i < slots_.size() && more_; ++i) {
      if (!slots_[i].busy) Issue(i);
    }
    if (!batch_.empty()) {
      Status s = w_->client->SendBytes(batch_);
      batch_.clear();
      if (!s.ok()) {
        LoseConnection(s);
        return;
      }
      last_heard_ = SteadyClock::now();
    }
    if (!active()) w_->finished = SteadyClock::now();
  }

  void OnReadable() {
    while (w_->client) {
      auto env = w_->client->TryReceive();
      if (!env.ok()) {
        LoseConnection(env.status());
        return;
      }
      if (!env->has_value()) break;
      last_heard_ = SteadyClock::now();
      OnReply(std::move(**env));
    }
    if (!active()) w_->finished = SteadyClock::now();
  }

  void CheckTimeout(SteadyClock::time_point now) {
    if (outstanding_ == 0 || !w_->client) return;
    if (now - last_heard_ < std::chrono::milliseconds(o_.timeout_ms)) return;
    LoseConnection(Status::Timeout(
        fmt::format("no answer from {} within {} ms", w_->address, o_.timeout_ms)));
    if (!active()) w_->finished = SteadyClock::now();
  }

 private:
  double Uniform01() { return static_cast<double>(w_->rng() >> 11) * 0x1.0p-53; }

  // Picks the next operation, or returns false when the phase has no more.
  bool NextOp(Slot* s) {
    if (phase_->preload) {
      uint64_t k = phase_->issued.fetch_add(1, std::memory_order_relaxed);
      if (k >= phase_->limit) return false;
      s->kind = OpKind::kPut;
      s->key = k;
      return true;
    }
    if (phase_->use_deadline) {
      if (SteadyClock::now() >= phase_->deadline) return false;
    } else if (phase_->issued.fetch_add(1, std::memory_order_relaxed) >= phase_->limit) {
      return false;
    }
    uint64_t total = uint64_t{o_.get_weight} + o_.put_weight;
    s->kind = w_->rng() % total < o_.get_weight ? OpKind::kGet : OpKind::kPut;
    if (phase_->zipf != nullptr) {
      s->key = phase_->zipf->Sample([this] { return Uniform01(); }) - 1;
    } else {
      s->key = std::uniform_int_distribution<uint64_t>(0, o_.keys - 1)(w_->rng);
    }
    return true;
  }

  void Issue(size_t index) {
    Slot& s = slots_[index];
    if (!NextOp(&s)) {
      more_ = false;
      return;
    }
    s.busy = true;
    s.reading = s.kind == OpKind::kPut && o_.rmw && !phase_->preload;
    s.start = SteadyClock::now();
    ++outstanding_;
    if (s.kind == OpKind::kGet || s.reading) {
      AppendGet(index);
    } else {
      AppendPut(index, {});
    }
  }

  uint64_t NewId(size_t index) { return (++seq_ << kSlotBits) | index; }

  void AppendGet(size_t index) {
    Slot& s = slots_[index];
    s.id = NewId(index);
    if (o_.type != DataType::kNone) {
      DataTypeRequest req;
      req.key = KeyName(s.key);
      req.bucket = o_.bucket;
      req.type = o_.type;
      req.op = DataTypeOpCode::kRead;
      req.quorum = phase_->get_quorum;
      AppendFrame(Envelope{s.id, {}, {}, std::move(req)}, &batch_);
      return;
    }
    AppendFrame(Envelope{s.id, {}, {},
                         GetRequest{KeyName(s.key), phase_->get_quorum, o_.bucket}},
                &batch_);
  }

  void AppendPut(size_t index, std::string context) {
    Slot& s = slots_[index];
    s.id = NewId(index);
    if (o_.type != DataType::kNone) {
      DataTypeRequest req;
      req.key = KeyName(s.key);
      req.bucket = o_.bucket;
      req.type = o_.type;
      req.quorum = phase_->put_quorum;
      if (o_.type == DataType::kCounter) {
        req.op = DataTypeOpCode::kIncrement;
        req.delta = 1;
      } else {
        req.op = DataTypeOpCode::kAdd;
        // "member:" and 12 digits, as redis-benchmark's element:__rand_int__.
        std::string member = KeyName(w_->rng() % o_.keys);
        member.replace(0, 4, "member:");
        req.args = {std::move(member)};
      }
      AppendFrame(Envelope{s.id, {}, {}, std::move(req)}, &batch_);
      return;
    }
    PutRequest req;
    req.key = KeyName(s.key);
    req.value = *phase_->value;
    req.context = std::move(context);
    req.quorum = phase_->put_quorum;
    req.bucket = o_.bucket;
    AppendFrame(Envelope{s.id, {}, {}, std::move(req)}, &batch_);
  }

  void Complete(Slot& s) {
    s.busy = false;
    --outstanding_;
    ++w_->stats.ops;
    w_->done.store(w_->stats.ops, std::memory_order_relaxed);
  }

  void Fail(Slot& s, const char* kind) {
    ++w_->stats.errors[kind];
    Complete(s);
  }

  void Succeed(Slot& s) {
    uint64_t us = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - s.start).count());
    w_->stats.latency.Record(us);
    if (s.kind == OpKind::kGet) {
      ++w_->stats.gets;
      w_->stats.get_latency.Record(us);
    } else {
      ++w_->stats.puts;
      w_->stats.put_latency.Record(us);
    }
    Complete(s);
  }

  void OnReply(Envelope env) {
    auto* reply = std::get_if<Reply>(&env.body);
    if (env.request_id == 0) {
      // The node could not take one of our frames; we cannot tell which, so
      // start over on a fresh connection.
      LoseConnection(reply != nullptr && !reply->status.ok()
                         ? reply->status
                         : Status::Internal("reply without a request id"));
      return;
    }
    size_t index = env.request_id & kSlotMask;
    if (index >= slots_.size() || !slots_[index].busy || slots_[index].id != env.request_id) {
      return;  // not ours (a reply to a request given up on)
    }
    Slot& s = slots_[index];
    if (s.kind == OpKind::kPut && o_.type != DataType::kNone) {
      auto* dt = std::get_if<DataTypeReply>(&env.body);
      const Status& st = dt != nullptr ? dt->status : reply != nullptr ? reply->status : Status::OK();
      if (dt == nullptr && (reply == nullptr || reply->status.ok())) {
        Fail(s, "unexpected_reply");
      } else if (st.ok()) {
        Succeed(s);
      } else {
        Fail(s, CodeSlug(st.code()));
      }
      return;
    }
    if (reply == nullptr) {
      Fail(s, "unexpected_reply");
      return;
    }
    const Status& st = reply->status;
    if (s.kind == OpKind::kPut && !s.reading) {
      if (st.ok()) {
        Succeed(s);
      } else {
        Fail(s, CodeSlug(st.code()));
      }
      return;
    }
    // A get, or the read half of an --rmw put.
    if (!st.ok() && !st.IsNotFound()) {
      Fail(s, CodeSlug(st.code()));
      return;
    }
    uint64_t live = 0;
    if (reply->object) {
      for (const auto& sib : reply->object->siblings()) live += sib.tombstone ? 0 : 1;
    }
    if (live > 1) ++w_->stats.siblings_seen;
    w_->stats.max_siblings = std::max(w_->stats.max_siblings, live);
    if (s.reading) {
      s.reading = false;
      AppendPut(index, reply->object ? EncodeContext(reply->object->clock()) : std::string());
      return;
    }
    if (!st.ok()) ++w_->stats.not_found;
    Succeed(s);
  }

  // Every operation in flight fails; then the connection is remade (tried
  // every 100 ms by Fill, for up to timeout_ms or until the phase's
  // deadline), or the connection stops issuing if that fails.
  void LoseConnection(const Status& why) {
    const char* kind = why.code() == Status::Code::kTimeout   ? "client_timeout"
                       : why.code() == Status::Code::kIOError ? "connection"
                                                              : CodeSlug(why.code());
    for (auto& s : slots_) {
      if (s.busy) Fail(s, kind);
    }
    batch_.clear();
    w_->client.reset();
    if (!more_) return;
    reconnecting_ = true;
    give_up_ = SteadyClock::now() + std::chrono::milliseconds(o_.timeout_ms);
    if (phase_->use_deadline) give_up_ = std::min(give_up_, phase_->deadline);
    retry_at_ = SteadyClock::now();
  }

  void Reconnect() {
    auto now = SteadyClock::now();
    if (now < retry_at_) return;
    if (now >= give_up_) {
      if (pending_) {  // an attempt still hanging: it failed too
        pending_.reset();
        ++w_->stats.connect_failures;
      }
      reconnecting_ = false;
      more_ = false;
      w_->finished = now;
      return;
    }
    // The connect runs while the thread serves its other connections: a
    // host that drops packets must not stall them (their replies would
    // then look late, too). An attempt that hangs lasts until give_up_.
    if (!pending_) {
      auto c = Client::StartConnect(w_->address, o_.timeout_ms, o_.client);
      if (!c.ok()) {
        ConnectFailed(now);
        return;
      }
      pending_ = std::move(c).value();
    }
    auto up = pending_->Connected();
    if (up.ok() && *up) {
      w_->client = std::move(pending_);
      ++w_->stats.reconnects;
      ++connections_;
      reconnecting_ = false;
      return;
    }
    if (!up.ok()) {
      pending_.reset();
      ConnectFailed(now);
    }
  }

  void ConnectFailed(SteadyClock::time_point now) {
    ++w_->stats.connect_failures;
    retry_at_ = now + std::chrono::milliseconds(100);
  }

  Worker* w_;
  Phase* phase_;
  const BenchOptions& o_;
  std::vector<Slot> slots_;
  std::string batch_;
  uint64_t seq_ = 0;
  int outstanding_ = 0;
  bool more_ = true;
  bool reconnecting_ = false;
  uint64_t connections_ = 1;
  std::unique_ptr<Client> pending_;  // a reconnect under way
  SteadyClock::time_point give_up_, retry_at_;
  SteadyClock::time_point last_heard_ = SteadyClock::now();  // last write or reply
};

// Drives a share of the connections with epoll until none is active. The
// thread's CPU time is booked to its first connection.
void RunThread(std::vector<Worker*> workers, Phase* phase) {
  double cpu0 = ThreadCpuSeconds();
  std::vector<std::unique_ptr<WorkerLoop>> loops;
  for (Worker* w : workers) loops.push_back(std::make_unique<WorkerLoop>(w, phase));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<uint64_t> registered(loops.size(), 0);  // connection() each loop is registered with
  std::vector<epoll_event> events(loops.size());
  auto last_check = SteadyClock::now();
  for (;;) {
    bool any = false;
    for (size_t i = 0; i < loops.size(); ++i) {
      WorkerLoop& l = *loops[i];
      if (!l.active()) continue;
      l.Fill();
      if (!l.active()) continue;
      any = true;
      if (l.fd() >= 0 && l.connection() != registered[i]) {
        // A new connection (the old socket left the set when it was closed).
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(ep, EPOLL_CTL_ADD, l.fd(), &ev);
        registered[i] = l.connection();
      }
    }
    if (!any) break;
    // Short timeout: reconnects and client timeouts are checked between waits.
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 50);
    for (int k = 0; k < n; ++k) loops[events[k].data.u64]->OnReadable();
    auto now = SteadyClock::now();
    if (now - last_check >= std::chrono::milliseconds(50)) {
      for (auto& l : loops) l->CheckTimeout(now);
      last_check = now;
    }
  }
  close(ep);
  if (!workers.empty()) workers.front()->stats.client_cpu_s = ThreadCpuSeconds() - cpu0;
}

void MergeInto(BenchPhaseResult* into, const BenchPhaseResult& from) {
  into->ops += from.ops;
  into->gets += from.gets;
  into->puts += from.puts;
  into->not_found += from.not_found;
  into->siblings_seen += from.siblings_seen;
  into->max_siblings = std::max(into->max_siblings, from.max_siblings);
  for (const auto& [k, v] : from.errors) into->errors[k] += v;
  into->reconnects += from.reconnects;
  into->connect_failures += from.connect_failures;
  into->latency.Merge(from.latency);
  into->get_latency.Merge(from.get_latency);
  into->put_latency.Merge(from.put_latency);
  into->client_cpu_s += from.client_cpu_s;
}

BenchPhaseResult RunPhase(std::vector<std::unique_ptr<Worker>>& workers, Phase* phase,
                          const std::function<void(const BenchProgress&)>& progress) {
  std::mutex mu;
  std::condition_variable cv;
  size_t finished = 0;
  // Connection i goes to thread i % threads.
  size_t nthreads = std::min(workers.size(), static_cast<size_t>(std::max(1, phase->options->threads)));
  std::vector<std::vector<Worker*>> shares(nthreads);
  for (size_t i = 0; i < workers.size(); ++i) {
    workers[i]->stats = BenchPhaseResult();
    workers[i]->done.store(0);
    workers[i]->finished = SteadyClock::time_point();
    shares[i % nthreads].push_back(workers[i].get());
  }
  std::vector<std::thread> threads;
  threads.reserve(nthreads);
  for (auto& share : shares) {
    threads.emplace_back([share, phase, &mu, &cv, &finished] {
      phase->go.wait(false);
      RunThread(share, phase);
      std::lock_guard<std::mutex> lock(mu);
      ++finished;
      cv.notify_all();
    });
  }
  auto start = SteadyClock::now();
  if (phase->use_deadline) {
    phase->deadline = start + std::chrono::duration_cast<SteadyClock::duration>(
                                  std::chrono::duration<double>(phase->options->duration_s));
  }
  phase->go.store(true);
  phase->go.notify_all();

  uint64_t last_ops = 0;
  auto last = start;
  {
    std::unique_lock<std::mutex> lock(mu);
    while (finished < threads.size()) {
      auto next = last + std::chrono::seconds(1);
      if (cv.wait_until(lock, next, [&] { return finished == threads.size(); })) break;
      if (!progress) {
        last = next;
        continue;
      }
      lock.unlock();
      uint64_t ops = 0;
      for (auto& w : workers) ops += w->done.load(std::memory_order_relaxed);
      auto now = SteadyClock::now();
      BenchProgress p;
      p.phase = phase->preload ? "preload" : "run";
      p.elapsed_s = std::chrono::duration<double>(now - start).count();
      double dt = std::chrono::duration<double>(now - last).count();
      p.ops = ops;
      p.ops_per_s = dt > 0 ? static_cast<double>(ops - last_ops) / dt : 0;
      progress(p);
      last_ops = ops;
      last = now;
      lock.lock();
    }
  }
  for (auto& t : threads) t.join();

  BenchPhaseResult out;
  auto end = start;
  for (auto& w : workers) {
    MergeInto(&out, w->stats);
    end = std::max(end, w->finished);
  }
  out.elapsed_s = std::chrono::duration<double>(end - start).count();
  return out;
}

std::string Ms(uint64_t us) { return fmt::format("{:.3f}", static_cast<double>(us) / 1000.0); }

json LatencyJson(const Histogram& h) {
  auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
  return json{{"count", h.count()},
              {"p50", ms(h.Percentile(0.50))},
              {"p90", ms(h.Percentile(0.90))},
              {"p99", ms(h.Percentile(0.99))},
              {"p999", ms(h.Percentile(0.999))},
              {"max", ms(h.max())},
              {"mean", h.mean() / 1000.0}};
}

json PhaseJson(const BenchPhaseResult& r) {
  json j = json::object();
  j["elapsed_s"] = r.elapsed_s;
  j["ops"] = r.ops;
  j["ops_per_s"] = r.ops_per_s();
  j["gets"] = r.gets;
  j["puts"] = r.puts;
  j["not_found"] = r.not_found;
  j["siblings_seen"] = r.siblings_seen;
  j["max_siblings"] = r.max_siblings;
  j["errors"] = r.error_count();
  json kinds = json::object();
  for (const auto& [k, v] : r.errors) kinds[k] = v;
  j["errors_by_kind"] = std::move(kinds);
  j["reconnects"] = r.reconnects;
  j["connect_failures"] = r.connect_failures;
  j["latency_ms"] = LatencyJson(r.latency);
  j["get_latency_ms"] = LatencyJson(r.get_latency);
  j["put_latency_ms"] = LatencyJson(r.put_latency);
  j["client_cpu_s"] = r.client_cpu_s;
  return j;
}

const char* ModeName(Mode m) {
  switch (m) {
    case Mode::kDefault: return "default";
    case Mode::kSloppy: return "sloppy";
    case Mode::kStrict: return "strict";
  }
  return "default";
}

std::string QuorumText(const Quorum& q) {
  auto v = [](uint32_t x) { return x == 0 ? std::string("default") : std::to_string(x); };
  std::string s = fmt::format("n={} r={} w={}", v(q.n), v(q.r), v(q.w));
  if (q.mode != Mode::kDefault) s += fmt::format(" {}", ModeName(q.mode));
  if (q.lww) s += " lww";
  return s;
}

std::string ErrorsText(const BenchPhaseResult& r) {
  if (r.errors.empty()) return "none";
  std::string s;
  for (const auto& [k, v] : r.errors) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", k, v);
  if (r.reconnects > 0 || r.connect_failures > 0) {
    s += fmt::format(" ({} reconnects, {} failed connection attempts)", r.reconnects,
                     r.connect_failures);
  }
  return s;
}

}  // namespace

uint64_t BenchPhaseResult::error_count() const {
  uint64_t n = 0;
  for (const auto& [k, v] : errors) n += v;
  return n;
}

// --- Zipf --------------------------------------------------------------------
// Rejection-inversion (W. Hörmann, G. Derflinger, "Rejection-inversion to
// generate variates from monotone discrete distributions", 1996), in the
// form Apache Commons RNG uses. H is the integral of h(x) = x^-s.

namespace {

// log1p(x)/x, stable near 0.
double Helper1(double x) {
  if (std::fabs(x) > 1e-8) return std::log1p(x) / x;
  return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

// expm1(x)/x, stable near 0.
double Helper2(double x) {
  if (std::fabs(x) > 1e-8) return std::expm1(x) / x;
  return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

}  // namespace

ZipfSampler::ZipfSampler(uint64_t n, double s) : n_(n), s_(s) {
  h_integral_x1_ = HIntegral(1.5) - 1.0;
  h_integral_n_ = HIntegral(static_cast<double>(n) + 0.5);
  threshold_ = 2.0 - HIntegralInverse(HIntegral(2.5) - H(2.0));
}

double ZipfSampler::H(double x) const { return std::exp(-s_ * std::log(x)); }

double ZipfSampler::HIntegral(double x) const {
  double log_x = std::log(x);
  return Helper2((1.0 - s_) * log_x) * log_x;
}

double ZipfSampler::HIntegralInverse(double x) const {
  double t = x * (1.0 - s_);
  if (t < -1.0) t = -1.0;  // rounding; the exact value is >= -1
  return std::exp(Helper1(t) * x);
}

// --- the engine ---------------------------------------------------------------

Status ValidateBenchOptions(const BenchOptions& o) {
  if (o.hosts.empty()) return Status::InvalidArgument("no host to benchmark");
  for (const auto& h : o.hosts) {
    if (h.empty() || h.rfind(':') == std::string::npos) {
      return Status::InvalidArgument(fmt::format("host '{}' is not HOST:PORT", h));
    }
  }
  if (o.clients < 1) return Status::InvalidArgument("--clients must be at least 1");
  if (o.threads < 1) return Status::InvalidArgument("--threads must be at least 1");
  if (o.pipeline < 1 || o.pipeline > kMaxPipeline) {
    return Status::InvalidArgument(fmt::format("--pipeline must be 1..{}", kMaxPipeline));
  }
  if (o.keys < 1) return Status::InvalidArgument("--keys must be at least 1");
  if (!o.bucket.empty()) {
    Status s = ValidateBucketName(o.bucket);
    if (!s.ok()) return Status::InvalidArgument("--bucket: " + s.message());
  }
  if (o.value_size > kDefaultMaxValueBytes) {
    return Status::InvalidArgument(
        fmt::format("--value-size {} is over the limit of {} bytes", o.value_size, kDefaultMaxValueBytes));
  }
  if (uint64_t{o.get_weight} + o.put_weight == 0) {
    return Status::InvalidArgument("--ratio needs a non-zero get or put share");
  }
  if (!o.requests_set && !(o.duration_s > 0)) {
    return Status::InvalidArgument("--duration must be more than 0 seconds");
  }
  if (o.requests_set && o.requests == 0 && !o.preload) {
    return Status::InvalidArgument("--requests 0 only makes sense with --preload (load, then stop)");
  }
  if (o.distribution == KeyDistribution::kZipf && !(o.zipf_exponent > 0)) {
    return Status::InvalidArgument("the zipf exponent must be positive");
  }
  if (o.timeout_ms < 1) return Status::InvalidArgument("the timeout must be at least 1 ms");
  if (o.type != DataType::kNone && o.type != DataType::kCounter && o.type != DataType::kSet) {
    return Status::InvalidArgument("--type must be plain, counter or set");
  }
  if (o.type != DataType::kNone && (o.rmw || o.quorum.lww)) {
    return Status::InvalidArgument(
        "--rmw and --lww are for plain values; counters and sets merge by themselves");
  }
  return Status::OK();
}

Result<BenchResult> RunBench(const BenchOptions& o,
                             const std::function<void(const BenchProgress&)>& progress) {
  Status valid = ValidateBenchOptions(o);
  if (!valid.ok()) return valid;

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < o.clients; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    w->address = o.hosts[static_cast<size_t>(i) % o.hosts.size()];
    w->rng.seed(SplitMix64(o.seed * 0x100000001b3ULL + static_cast<uint64_t>(i)));
    auto c = Client::StartConnect(w->address, o.timeout_ms, o.client);
    if (!c.ok()) {
      return Status::FromCode(c.status().code() == Status::Code::kInvalidArgument
                                  ? Status::Code::kInvalidArgument
                                  : Status::Code::kIOError,
                              fmt::format("client {} of {}: {}", i + 1, o.clients, c.status().message()));
    }
    w->client = std::move(c).value();
    workers.push_back(std::move(w));
  }
  // Every connection's TCP connect, TLS handshake and login run at once.
  auto connect_deadline = SteadyClock::now() + std::chrono::milliseconds(o.timeout_ms);
  for (;;) {
    bool all = true;
    for (auto& w : workers) {
      auto up = w->client->Connected();
      if (!up.ok()) {
        // Login and TLS refusals keep their code (exit 5), the rest is a
        // connection failure.
        Status::Code code = up.status().code();
        if (code != Status::Code::kUnauthenticated && code != Status::Code::kPermissionDenied &&
            code != Status::Code::kInvalidArgument) {
          code = Status::Code::kIOError;
        }
        return Status::FromCode(code, fmt::format("client {} of {}: {}", w->index + 1, o.clients,
                                                  up.status().message()));
      }
      all = all && *up;
    }
    if (all) break;
    if (SteadyClock::now() >= connect_deadline) {
      return Status::IOError(fmt::format("not every client could connect within {} ms", o.timeout_ms));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }

  std::unique_ptr<ZipfSampler> zipf;
  if (o.distribution == KeyDistribution::kZipf) {
    zipf = std::make_unique<ZipfSampler>(o.keys, o.zipf_exponent);
  }
  const std::string value = MakeValue(o.value_size, o.seed);

  Quorum get_q = o.quorum;
  get_q.w = 0;
  get_q.pw = 0;
  Quorum put_q = o.quorum;
  put_q.r = 0;
  put_q.pr = 0;

  BenchResult result;
  if (o.preload) {
    Phase phase;
    phase.options = &o;
    phase.preload = true;
    phase.value = &value;
    phase.get_quorum = get_q;
    phase.put_quorum = put_q;
    phase.limit = o.keys;
    result.preload = RunPhase(workers, &phase, progress);
    result.preloaded = true;
  }
  if (!(o.requests_set && o.requests == 0)) {
    Phase phase;
    phase.options = &o;
    phase.zipf = zipf.get();
    phase.value = &value;
    phase.get_quorum = get_q;
    phase.put_quorum = put_q;
    phase.use_deadline = !o.requests_set;
    phase.limit = o.requests;
    result.run = RunPhase(workers, &phase, progress);
    result.measured = true;
  }
  return result;
}

// --- reports -------------------------------------------------------------------

std::string FormatBenchReport(const BenchOptions& o, const BenchResult& result) {
  std::string hosts;
  for (const auto& h : o.hosts) hosts += (hosts.empty() ? "" : ",") + h;
  std::string values = o.type == DataType::kCounter ? "counters (a put is an increment by 1)"
                       : o.type == DataType::kSet ? "sets (a put adds a member)"
                                                  : fmt::format("{}-byte values", o.value_size);
  std::string puts = o.type != DataType::kNone ? "" : o.rmw ? "read-modify-write puts, " : "blind puts, ";
  std::string out = fmt::format(
      "ringkv bench: {} clients ({} thread{}) on {}, pipeline {}, {} keys ({}), {}, get:put {}:{}, "
      "{}{}\n",
      o.clients, std::min(o.clients, o.threads), std::min(o.clients, o.threads) == 1 ? "" : "s", hosts,
      o.pipeline, o.keys,
      o.distribution == KeyDistribution::kZipf ? fmt::format("zipf {}", o.zipf_exponent) : "uniform",
      values, o.get_weight, o.put_weight, puts, QuorumText(o.quorum));
  if (result.preloaded) {
    const auto& p = result.preload;
    out += fmt::format("preload: {} keys in {:.2f} s ({:.0f} puts/s, p99 {} ms), errors: {}\n",
                       p.puts, p.elapsed_s, p.ops_per_s(), Ms(p.latency.Percentile(0.99)),
                       ErrorsText(p));
  }
  if (!result.measured) return out;
  const auto& r = result.run;
  out += fmt::format("\nthroughput  {:.0f} ops/s  ({} ops in {:.2f} s: {} gets, {} puts, {} failed)\n",
                     r.ops_per_s(), r.ops, r.elapsed_s, r.gets, r.puts, r.error_count());
  out += fmt::format("\n{:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n", "latency ms", "count",
                     "p50", "p90", "p99", "p99.9", "max", "mean");
  auto row = [&](const char* name, const Histogram& h) {
    out += fmt::format("{:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10.3f}\n", name, h.count(),
                       Ms(h.Percentile(0.50)), Ms(h.Percentile(0.90)), Ms(h.Percentile(0.99)),
                       Ms(h.Percentile(0.999)), Ms(h.max()), h.mean() / 1000.0);
  };
  row("all", r.latency);
  if (r.gets > 0) row("get", r.get_latency);
  if (r.puts > 0) row("put", r.put_latency);
  out += "\n";
  out += fmt::format("not found   {} gets\n", r.not_found);
  if (o.type != DataType::kNone) {
    out += fmt::format("states      {} reads joined more than one state of a key (at most {}); "
                       "none shows siblings\n",
                       r.siblings_seen, r.max_siblings);
  } else {
    out += fmt::format("siblings    {} reads returned more than one live sibling (at most {})\n",
                       r.siblings_seen, r.max_siblings);
  }
  out += fmt::format("errors      {}\n", ErrorsText(r));
  out += fmt::format("client CPU  {:.2f} s ({:.0f}% of one core)\n", r.client_cpu_s,
                     r.elapsed_s > 0 ? 100.0 * r.client_cpu_s / r.elapsed_s : 0.0);
  return out;
}

std::string BenchReportJson(const BenchOptions& o, const BenchResult& result) {
  json j = json::object();
  j["hosts"] = o.hosts;
  j["clients"] = o.clients;
  j["threads"] = std::min(o.clients, o.threads);
  j["pipeline"] = o.pipeline;
  j["keys"] = o.keys;
  j["value_size"] = o.value_size;
  j["ratio"] = fmt::format("{}:{}", o.get_weight, o.put_weight);
  j["distribution"] = o.distribution == KeyDistribution::kZipf ? "zipf" : "uniform";
  if (o.distribution == KeyDistribution::kZipf) j["zipf_exponent"] = o.zipf_exponent;
  j["seed"] = o.seed;
  j["rmw"] = o.rmw;
  j["type"] = o.type == DataType::kNone ? "plain" : DataTypeName(o.type);
  if (!o.bucket.empty()) j["bucket"] = o.bucket;
  j["quorum"] = json{{"n", o.quorum.n},
                     {"r", o.quorum.r},
                     {"w", o.quorum.w},
                     {"mode", ModeName(o.quorum.mode)},
                     {"lww", o.quorum.lww}};
  if (result.preloaded) j["preload"] = PhaseJson(result.preload);
  if (result.measured) {
    json run = PhaseJson(result.run);
    for (auto& [k, v] : run.items()) j[k] = v;
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace ringkv
