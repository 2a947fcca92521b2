#include "server/runtime.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <uv.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <set>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "core/codec.h"
#include "core/limits.h"
#include "server/access.h"
#include "server/output_queue.h"

namespace ringkv {

Status ParseHostPort(const std::string& s, std::string* host, uint16_t* port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    return Status::InvalidArgument(fmt::format("'{}' is not HOST:PORT", s));
  }
  std::string p = s.substr(colon + 1);
  char* end = nullptr;
  long v = std::strtol(p.c_str(), &end, 10);
  if (*end != '\0' || v <= 0 || v > 65535) {
    return Status::InvalidArgument(fmt::format("'{}' has no valid port (1-65535)", s));
  }
  *host = s.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  *port = static_cast<uint16_t>(v);
  return Status::OK();
}

namespace {

// A TLS record of the handshake starts with this byte; no RESP command and
// (almost) no ringkv frame does (see LooksLikeTls).
constexpr unsigned char kTlsHandshakeByte = 0x16;
// Ciphertext kept ready for the socket per TLS connection; the rest of the
// output stays plaintext (in the connection's queue) until the socket drains.
constexpr size_t kTlsWindow = 256 * 1024;
// A TLS handshake not finished within this is abandoned (it holds a slot).
constexpr uint64_t kHandshakeTimeoutMs = 10000;
// Password checks run on libuv's thread pool, at most this many at once.
constexpr int kMaxConcurrentAuth = 2;
// Refusals logged per connection (the rest are counted only).
constexpr int kRefusalsLogged = 3;

// A TCP connection, incoming (a client or a peer talking to us) or outgoing
// (ours to a peer). Owned by Impl; freed in the close callback.
struct Conn {
  uv_tcp_t tcp;
  Runtime::Impl* impl = nullptr;
  ClientId id = 0;
  bool outgoing = false;
  NodeId peer;          // outgoing only
  std::string remote;   // the other end's address, for logs
  bool tcp_up = false;  // the socket is connected: bytes may be written
  bool ready = false;   // TLS handshake done (at once without TLS): data flows
  bool closing = false;
  bool close_after_flush = false;
  std::string close_reason = "closed after error";  // logged when close_after_flush closes it
  bool reading = false;
  bool sniffed = false;     // the first bytes were checked for the wrong protocol
  bool backlogged = false;  // input waits for a later loop turn
  bool auth_pending = false;   // a password check runs: nothing else is read
  bool waiting_pending = false;  // too many requests in flight: not read
  FrameReader reader{kDefaultMaxFrameBytes};
  // Redis-protocol clients only: the adapter, and whether a call into it is
  // on the stack (the node may answer from inside OnMessage).
  std::unique_ptr<RespSession> resp;
  bool resp_busy = false;
  // Requests the session made that wait for a later turn (this turn's
  // share of work is used up).
  std::deque<Envelope> resp_later;
  // HTTP clients only (metrics, API, dashboard).
  std::unique_ptr<HttpSession> http;
  bool native_counted = false;  // in native_conns.open
  std::unique_ptr<TlsSession> tls;
  OutputQueue out;   // application bytes, written (TLS: encrypted) at the end of the turn
  OutputQueue wire;  // TLS: ciphertext not yet handed to the socket
  size_t in_flight = 0;  // bytes handed to uv_write, not yet completed
  // Identity: the node id the TLS certificate proves (incoming: the client
  // certificate; outgoing: the server's, which is the peer dialled, or any
  // node of the cluster for a seed); the ACL user.
  NodeId verified_node;
  bool authenticated = false;
  std::string user;
  Role role = Role::kRead;
  int refusals_logged = 0;
  // Native clients: requests handed to the node and not yet answered.
  std::unordered_map<uint64_t, size_t> pending;  // request id -> frame bytes
  size_t pending_bytes = 0;
  size_t accounted = 0;  // this connection's share of Impl::client_memory
  uint64_t read_turn = 0;    // the loop turn read_bytes counts in
  size_t read_bytes = 0;     // bytes read in that turn
  // Outgoing: request ids sent on this connection recently; if it breaks,
  // the Node is told they failed (it ignores those already answered).
  std::deque<std::pair<uint64_t, uint64_t>> sent_requests;  // (id, sent at ms)
  char read_buf[64 * 1024];
};

struct WriteReq {
  uv_write_t req;
  std::vector<std::string> chunks;
  size_t bytes = 0;
  Conn* conn;
};

struct PeerState {
  std::string address;
  Conn* conn = nullptr;
  uint64_t connects = 0;
  uint64_t connect_failures = 0;
  uint64_t dropped = 0;  // messages not sent: peer unreachable
  uint64_t failed_at_ms = 0;  // last connect failure
  std::string last_error;
  bool reachable = true;
};

// Counters of the runtime (Runtime::StatsJson).
struct RuntimeCounters {
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // --max-connections
  uint64_t tls_handshakes = 0;
  uint64_t tls_failures = 0;         // handshakes refused or broken
  uint64_t tls_mismatches = 0;       // plaintext on a TLS port, or TLS on a plaintext one
  uint64_t peer_identity_refused = 0;  // a peer message without the certificate of its sender
  uint64_t auth_successes = 0;
  uint64_t auth_failures = 0;
  uint64_t unauthenticated_refused = 0;
  uint64_t permission_denied = 0;
  uint64_t output_limit_disconnects = 0;
  uint64_t input_limit_disconnects = 0;  // frames over the connection's limit
  uint64_t memory_evictions = 0;         // --max-client-memory-mb
  uint64_t turns_yielded = 0;            // fairness: input left for a later turn
  uint64_t reads_paused_pending = 0;     // too many requests in flight
};

// The password check of one AuthRequest, run on the thread pool.
struct AuthWork {
  uv_work_t req;
  Runtime::Impl* impl = nullptr;
  ClientId conn = 0;
  uint64_t request_id = 0;
  bool resp = false;
  std::string user;
  std::string password;
  PasswordHash hash;
  bool known = false;  // the user exists (else a dummy hash is checked)
  bool ok = false;
};

uint64_t SteadyMillis() { return uv_hrtime() / 1000000; }

std::string PeerName(uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof(addr);
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char ip[64] = "?";
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    uv_ip4_name(a, ip, sizeof(ip));
    return fmt::format("{}:{}", ip, ntohs(a->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    uv_ip6_name(a, ip, sizeof(ip));
    return fmt::format("[{}]:{}", ip, ntohs(a->sin6_port));
  }
  return "?";
}

// A user name as a client sent it, safe to log.
std::string Printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 64; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c >= ' ' && c <= '~' && c != '\'') ? static_cast<char>(c) : '?';
  }
  return s.size() > 64 ? out + "..." : out;
}

// The first bytes of a plaintext connection are a TLS ClientHello: a
// handshake record (0x16, 0x03 0x0N). A ringkv frame has "RKV1" (the
// FlatBuffers file identifier) at bytes 8..11, which a ClientHello does not.
bool LooksLikeTls(std::string_view p) {
  return p.size() >= 12 && static_cast<unsigned char>(p[0]) == kTlsHandshakeByte && p[1] == 0x03 &&
         p.substr(8, 4) != "RKV1";
}

}  // namespace

struct Runtime::Impl {
  Runtime* owner;
  RuntimeOptions options;
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_tcp_t resp_listener;
  RespStats resp_stats;
  uv_tcp_t http_listener;
  HttpStats http_stats;
  ListenerConnections native_conns{"native"}, http_conns{"http"};
  // HTTP Basic logins (AuthorizeHttp): users whose password was checked,
  // as SHA-256 of a random salt and the password; failed checks this second.
  std::unordered_map<std::string, std::string> http_verified;
  std::string http_salt;
  uint64_t http_fail_window_ms = 0;
  int http_fail_checks = 0;
  static constexpr int kHttpFailedChecksPerSecond = 4;
  RuntimeCounters counters;
  uv_prepare_t flusher;
  uv_idle_t backlog_idle;
  uv_async_t wakeup;
  uv_signal_t sigterm, sigint, sighup;
  std::map<ClientId, Conn*> conns;
  std::set<Conn*> dirty;
  std::map<NodeId, PeerState> peers;
  // Timers: one libuv timer, armed for the earliest deadline, over a map
  // ordered by (deadline ms, id). Requests start and cancel two timers each,
  // so a libuv handle per timer (init, start, stop, close callback) was 6%
  // of a node's CPU under load.
  uv_timer_t timer;
  std::map<std::pair<uint64_t, Clock::TimerId>, std::function<void()>> timer_queue;
  std::unordered_map<Clock::TimerId, uint64_t> timer_deadlines;  // id -> deadline ms
  uint64_t armed_for = 0;  // deadline the libuv timer is set for; 0: not armed
  std::deque<std::function<void()>> posted;
  ClientId next_conn_id = 1;
  Clock::TimerId next_timer_id = 1;
  uint64_t turn = 0;  // loop turns (counted by the flush before each poll)
  bool stopping = false;
  // Connections whose input waits for a later turn (ids: a connection may
  // close meanwhile).
  std::vector<ClientId> backlog;
  bool backlog_active = false;
  size_t incoming = 0;       // incoming connections open
  size_t client_memory = 0;  // sum of Conn::accounted
  uint64_t last_refusal_log_ms = 0;
  // Users; a dummy hash is checked for unknown names, so that the time an
  // attempt takes does not say whether the user exists.
  std::shared_ptr<const Acl> acl;
  PasswordHash dummy_hash;
  int auth_running = 0;
  std::deque<AuthWork*> auth_queue;

  void Post(std::function<void()> fn) {
    posted.push_back(std::move(fn));
    uv_async_send(&wakeup);
  }

  void ArmTimer() {
    if (timer_queue.empty() || stopping) {
      if (armed_for != 0) uv_timer_stop(&timer);
      armed_for = 0;
      return;
    }
    uint64_t next = timer_queue.begin()->first.first;
    if (armed_for == next) return;
    armed_for = next;
    uint64_t now = uv_now(&loop);
    uv_timer_start(&timer, [](uv_timer_t* h) { static_cast<Impl*>(h->data)->RunTimers(); },
                   next > now ? next - now : 0, 0);
  }

  // Runs the timers due now; those that these start run on a later turn.
  void RunTimers() {
    armed_for = 0;
    uint64_t now = uv_now(&loop);
    std::vector<Clock::TimerId> due;
    for (auto it = timer_queue.begin(); it != timer_queue.end() && it->first.first <= now; ++it) {
      due.push_back(it->first.second);
    }
    for (Clock::TimerId id : due) {
      auto d = timer_deadlines.find(id);
      if (d == timer_deadlines.end()) continue;  // cancelled by an earlier one
      auto node = timer_queue.extract({d->second, id});
      timer_deadlines.erase(d);
      node.mapped()();
      if (stopping) return;
    }
    ArmTimer();
  }

  Clock::TimerId AddTimer(uint64_t delay_ms, std::function<void()> fn) {
    Clock::TimerId id = next_timer_id++;
    if (stopping) return id;
    uint64_t deadline = uv_now(&loop) + delay_ms;
    timer_queue.emplace(std::make_pair(deadline, id), std::move(fn));
    timer_deadlines.emplace(id, deadline);
    ArmTimer();
    return id;
  }

  Conn* Find(ClientId id) {
    auto it = conns.find(id);
    return it == conns.end() || it->second->closing ? nullptr : it->second;
  }

  void MarkDirty(Conn* c) {
    if (!c->closing) dirty.insert(c);
  }

  // --- accounting and limits ----------------------------------------------------

  // Bytes the connection holds for its client: unread input, unsent output.
  size_t OutputBytes(const Conn* c) const {
    return c->out.bytes() + c->wire.bytes() + c->in_flight;
  }
  size_t Footprint(const Conn* c) const {
    if (c->closing || c->outgoing || !c->verified_node.empty()) return 0;
    return OutputBytes(c) + (c->resp ? c->resp->memory() : c->http ? 0 : c->reader.memory());
  }
  void Account(Conn* c) {
    size_t now = Footprint(c);
    client_memory = client_memory - c->accounted + now;
    c->accounted = now;
  }

  // Past the budget, closes the connections that hold the most until it fits.
  void EnforceMemory() {
    while (client_memory > options.max_client_memory) {
      Conn* largest = nullptr;
      for (auto& [id, c] : conns) {
        if (!c->closing && (largest == nullptr || c->accounted > largest->accounted)) largest = c;
      }
      if (largest == nullptr || largest->accounted == 0) return;
      ++counters.memory_evictions;
      fmt::print(stderr,
                 "runtime: closing connection {} from {}: it holds {:.1f} MB of buffers, the most of "
                 "any while all connections hold {:.1f} MB, over --max-client-memory-mb {}\n",
                 largest->id, largest->remote, largest->accounted / 1048576.0,
                 client_memory / 1048576.0, options.max_client_memory >> 20);
      CloseConn(largest, "client memory budget exceeded");
    }
  }

  // After output was queued: a connection whose unsent output passes its
  // limit is closed (had_output: something was queued before this, so a
  // single large reply always goes out). True if it was closed.
  bool CheckOutputLimit(Conn* c, bool had_output) {
    size_t queued = OutputBytes(c) + (c->resp ? c->resp->memory() : 0);
    bool peer = c->outgoing || !c->verified_node.empty();
    size_t limit = peer ? options.peer_output_limit : options.client_output_limit;
    if (c->resp) {
      // A Redis reply of one GET is at most a value: never cut for that
      // alone; everything else counts, as it is made (checked after each
      // request, so one turn cannot pile up much more).
      limit = std::max(limit, options.max_value_bytes + (1u << 20));
      had_output = true;
    }
    Account(c);
    if (queued <= limit || !had_output) return false;
    ++counters.output_limit_disconnects;
    fmt::print(stderr,
               "runtime: closing {} {}: {:.1f} MB of output not read, over {} {} MB\n",
               c->outgoing ? "connection to" : "connection from",
               c->outgoing ? c->peer : fmt::format("{} ({})", c->remote, Who(c)), queued / 1048576.0,
               peer ? "--peer-output-limit-mb" : "--client-output-limit-mb", limit >> 20);
    CloseConn(c, "output limit exceeded");
    return true;
  }

  std::string Who(const Conn* c) const {
    if (!c->verified_node.empty()) return "node " + c->verified_node;
    if (c->authenticated) return "user " + c->user;
    return c->resp ? "Redis-protocol client" : "client";
  }

  // The frame limit of an incoming native connection, by what it has proved.
  void SetFrameLimit(Conn* c) {
    if (c->outgoing || c->resp) return;
    size_t limit = options.max_frame_bytes;
    if (options.tls && c->verified_node.empty()) {
      if (acl && !c->authenticated) {
        limit = kPreAuthFrameBytes;
      } else {
        limit = std::min(options.max_frame_bytes, options.max_value_bytes + kMaxKeyBytes + (1u << 20));
      }
    }
    // Without TLS a peer cannot be told from a client: the full limit (the
    // memory budget bounds what partial frames hold).
    c->reader.set_max_frame_bytes(limit);
  }

  // --- reading ---------------------------------------------------------------------

  void UpdateReading(Conn* c) {
    if (c->closing || !c->tcp_up) return;
    bool want = !c->close_after_flush && !c->backlogged && !c->auth_pending && !c->waiting_pending;
    if (c->resp) {
      want = want && !c->resp->full() && !c->resp->backlogged() && !c->resp->finished() &&
             c->resp_later.empty();
    }
    if (c->http) want = want && !c->http->finished();
    if (want && !c->reading) {
      StartReading(c);
    } else if (!want && c->reading) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
      c->reading = false;
    }
  }

  void StartReading(Conn* c) {
    c->reading = true;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* c = reinterpret_cast<Conn*>(h->data);
          *buf = uv_buf_init(c->read_buf, sizeof(c->read_buf));
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
          auto* c = reinterpret_cast<Conn*>(s->data);
          Impl* impl = c->impl;
          if (nread < 0) {
            impl->CloseConn(c, nread == UV_EOF ? "closed by peer" : uv_strerror(static_cast<int>(nread)));
            return;
          }
          if (nread == 0) return;
          impl->OnRead(c, std::string_view(buf->base, static_cast<size_t>(nread)));
          if (!c->closing) {
            impl->Account(c);
            // libuv reads a stream up to 32 times per turn: past this turn's
            // share, the rest waits, so one sender cannot hold the loop.
            if (c->read_turn != impl->turn) {
              c->read_turn = impl->turn;
              c->read_bytes = 0;
            }
            c->read_bytes += static_cast<size_t>(nread);
            if (c->read_bytes >= impl->options.bytes_per_turn && c->reading) {
              ++impl->counters.turns_yielded;
              impl->Backlog(c);
            }
          }
          impl->EnforceMemory();
        });
  }

  void OnRead(Conn* c, std::string_view data) {
    if (!c->tls) {
      Deliver(c, data);
      return;
    }
    if (!c->sniffed && !c->outgoing) {
      c->sniffed = true;
      if (static_cast<unsigned char>(data[0]) != kTlsHandshakeByte) {
        RefusePlaintext(c);
        return;
      }
    }
    std::string plain;
    Status s = c->tls->Receive(data, &plain);
    TakeTlsOutput(c);
    if (!s.ok()) {
      ++counters.tls_failures;
      std::string why = c->outgoing ? fmt::format("{} ({})", s.message(), c->peer) : s.message();
      fmt::print(stderr, "runtime: {} {}: {}\n",
                 c->outgoing ? "TLS connection to" : "TLS connection from",
                 c->outgoing ? c->peer : c->remote, s.message());
      if (c->outgoing) {
        // An impostor or a misconfigured peer: not reachable as that node.
        ++counters.peer_identity_refused;
      }
      // The alert (if any) goes out, then the connection closes.
      c->close_after_flush = true;
      c->close_reason = why;
      UpdateReading(c);
      MarkDirty(c);
      return;
    }
    if (!c->ready && c->tls->handshake_done()) {
      OnSecured(c);
      if (c->closing) return;
    }
    if (c->tls->closed()) {
      CloseConn(c, "closed by peer");
      return;
    }
    if (!plain.empty()) Deliver(c, plain);
  }

  // Plaintext on a TLS port: answer once in plaintext, in the client's
  // protocol, then close.
  void RefusePlaintext(Conn* c) {
    ++counters.tls_mismatches;
    c->tls.reset();
    c->ready = true;
    fmt::print(stderr, "runtime: refused a plaintext {}connection from {}: this node speaks TLS\n",
               c->resp ? "Redis-protocol " : "", c->remote);
    if (c->resp) {
      c->out.Append(std::string_view(
          "-ERR this port speaks TLS only (redis-cli --tls --cacert CA_FILE)\r\n"));
    } else if (c->http) {
      HttpResponse r;
      r.status = 400;
      r.body = "this port speaks TLS only: use https:// (and the cluster's CA)\n";
      c->out.Append(HttpSession::Serialize(r, false, false, false));
    } else {
      ReplyError(c, 0,
                 Status::Unauthenticated(fmt::format(
                     "node {} accepts TLS connections only: give the cluster's CA with --tls-ca "
                     "FILE (or RINGKV_TLS_CA)",
                     options.node_id)));
    }
    c->close_after_flush = true;
    c->close_reason = "plaintext connection to a TLS node";
    UpdateReading(c);
    MarkDirty(c);
  }

  // The ciphertext a TlsSession produced, queued for the socket.
  void TakeTlsOutput(Conn* c) {
    std::string cipher;
    if (c->tls && c->tls->TakeOutput(&cipher)) {
      c->wire.Append(std::move(cipher));
      MarkDirty(c);
    }
  }

  void OnSecured(Conn* c) {
    c->ready = true;
    ++counters.tls_handshakes;
    const PeerIdentity& id = c->tls->peer();
    if (c->outgoing) {
      // TlsSession checked that the certificate names the node dialled; a
      // seed is dialled by address, so any node of the cluster will do, and
      // its messages must then come from the node the certificate names.
      if (id.kind != PeerKind::kNode) {
        ++counters.peer_identity_refused;
        fmt::print(stderr, "runtime: TLS connection to {}: the server's certificate is for {}, not a node\n",
                   c->peer, DescribeIdentity(id));
        CloseConn(c, "not a node certificate");
        return;
      }
      c->verified_node = id.name;
      SetReachable(c->peer, true);
      MarkDirty(c);
      return;
    }
    if (id.kind == PeerKind::kNode) {
      c->verified_node = id.name;
    } else if (id.kind == PeerKind::kClient && acl) {
      if (const AclUser* u = acl->Find(id.name)) {
        Authenticate(c, u->name, u->role);
        ++counters.auth_successes;
      } else {
        fmt::print(stderr,
                   "runtime: connection {} from {} presents a client certificate for '{}', who is "
                   "not a user of the ACL: it must authenticate with a password\n",
                   c->id, c->remote, Printable(id.name));
      }
    }
    SetFrameLimit(c);
    Account(c);
    MarkDirty(c);
  }

  void Deliver(Conn* c, std::string_view data) {
    if (c->resp) {
      if (!c->sniffed) {
        c->sniffed = true;
        if (static_cast<unsigned char>(data[0]) == kTlsHandshakeByte) return RefuseTls(c);
      }
      c->resp->Feed(data);
      ServeResp(c);
      return;
    }
    if (c->http) {
      if (!c->sniffed) {
        c->sniffed = true;
        if (static_cast<unsigned char>(data[0]) == kTlsHandshakeByte) return RefuseTls(c);
      }
      c->http->Feed(data, OutputBytes(c));
      ServeHttp(c);
      return;
    }
    c->reader.Append(data);
    if (!c->sniffed && !c->outgoing) {
      std::string p = c->reader.Peek(12);
      if (static_cast<unsigned char>(p[0]) != kTlsHandshakeByte) {
        c->sniffed = true;
      } else if (p.size() >= 12) {
        c->sniffed = true;
        if (LooksLikeTls(p)) return RefuseTls(c);
      } else {
        return;  // wait for the bytes that tell
      }
    }
    ProcessFrames(c);
  }

  // A TLS client on a plaintext port: it cannot read a plaintext answer, so
  // the connection is just closed (the client reports the closed handshake).
  void RefuseTls(Conn* c) {
    ++counters.tls_mismatches;
    fmt::print(stderr,
               "runtime: closed connection {} from {}: it speaks TLS, this node does not (no "
               "--tls-cert)\n",
               c->id, c->remote);
    CloseConn(c, "TLS client on a plaintext node");
  }

  // Input waits for a later turn; reading pauses meanwhile.
  void Backlog(Conn* c) {
    if (c->backlogged || c->closing) return;
    c->backlogged = true;
    backlog.push_back(c->id);
    if (!backlog_active) {
      backlog_active = true;
      // An active idle handle makes the loop poll without blocking, so the
      // backlog runs on the next turn, after everyone else's input.
      uv_idle_start(&backlog_idle, [](uv_idle_t* h) { static_cast<Impl*>(h->data)->RunBacklog(); });
    }
    UpdateReading(c);
  }

  void RunBacklog() {
    std::vector<ClientId> ids = std::move(backlog);
    backlog.clear();
    for (ClientId id : ids) {
      Conn* c = Find(id);
      if (c == nullptr) continue;
      c->backlogged = false;
      if (c->auth_pending) continue;  // resumed when the check is done
      if (c->resp) {
        c->resp->RunBacklog();
        ServeResp(c);
      } else if (c->http) {
        UpdateReading(c);
      } else {
        ProcessFrames(c);
        UpdateReading(c);
      }
      if (!c->closing) Account(c);
    }
    if (backlog.empty() && backlog_active) {
      backlog_active = false;
      uv_idle_stop(&backlog_idle);
    }
    EnforceMemory();
  }

  // --- frames -------------------------------------------------------------------

  void ReplyError(Conn* c, uint64_t request_id, Status status) {
    Envelope env{request_id, {}, {}, ringkv::Reply{std::move(status), std::nullopt, std::nullopt}};
    c->out.AppendWith([&](std::string* s) { AppendFrame(env, s); });
    MarkDirty(c);
  }

  bool PendingFull(const Conn* c) const {
    return c->pending.size() >= options.max_pending_requests ||
           c->pending_bytes >= options.max_pending_bytes;
  }

  void ProcessFrames(Conn* c) {
    std::string frame;
    size_t frames = 0, bytes = 0;
    while (!c->closing && !c->close_after_flush && !c->auth_pending) {
      if (!c->outgoing && PendingFull(c)) {
        if (!c->waiting_pending) ++counters.reads_paused_pending;
        c->waiting_pending = true;  // resumed by the answers (TrackAnswer)
        break;
      }
      if (frames >= options.frames_per_turn || bytes >= options.bytes_per_turn) {
        // Fair share used: the rest runs on a later turn, after the others.
        if (c->reader.buffered() >= 4) {
          ++counters.turns_yielded;
          Backlog(c);
        }
        break;
      }
      int r = c->reader.Next(&frame);
      if (r == 0) break;
      if (r < 0) {
        // Cannot find the next frame boundary: answer once, then close.
        ++counters.input_limit_disconnects;
        fmt::print(stderr,
                   "runtime: connection {} from {} ({}) announced a frame of {} bytes, over its "
                   "limit of {}; closing it\n",
                   c->id, c->remote, Who(c), c->reader.oversize_length(),
                   c->reader.max_frame_bytes());
        ReplyError(c, 0,
                   Status::InvalidArgument(fmt::format(
                       "frame of {} bytes exceeds the limit of {} bytes{}; closing the connection",
                       c->reader.oversize_length(), c->reader.max_frame_bytes(),
                       c->reader.max_frame_bytes() == kPreAuthFrameBytes
                           ? " before authentication"
                           : "")));
        c->close_after_flush = true;
        c->close_reason = "frame over the limit";
        break;
      }
      ++frames;
      bytes += frame.size();
      auto env = DecodeEnvelope(frame);
      if (!env.ok()) {
        ReplyError(c, 0, env.status());
        continue;
      }
      // The work of a request is what it brought and what it produced here
      // (a get of a large value answered at once).
      size_t before = OutputBytes(c);
      HandleEnvelope(c, std::move(env).value(), frame.size());
      bytes += OutputBytes(c) > before ? OutputBytes(c) - before : 0;
    }
    UpdateReading(c);
  }

  void HandleEnvelope(Conn* c, Envelope env, size_t frame_bytes) {
    if (!env.from.empty()) {
      if (options.tls) {
        // Only the certificate says who a peer is.
        if (c->verified_node != env.from) return RefusePeer(c, env);
      }
      // A message from a peer proves it is up: stop backing off, so our
      // replies to it are not dropped (it may have just restarted).
      auto p = peers.find(env.from);
      if (p != peers.end()) p->second.failed_at_ms = 0;
      if (owner->node_ != nullptr) owner->node_->OnMessage(c->id, std::move(env));
      return;
    }
    if (c->outgoing) {
      // An answer on our own connection to a verified peer.
      if (owner->node_ != nullptr) owner->node_->OnMessage(c->id, std::move(env));
      return;
    }
    if (auto* auth = std::get_if<AuthRequest>(&env.body)) {
      return StartAuth(c, env.request_id, std::move(*auth));
    }
    Status refusal = CheckAllowed(c, env.body);
    if (!refusal.ok()) return RefuseClient(c, env, std::move(refusal));
    auto [it, fresh] = c->pending.try_emplace(env.request_id, frame_bytes);
    if (fresh) c->pending_bytes += frame_bytes;
    if (owner->node_ != nullptr) owner->node_->OnMessage(c->id, std::move(env));
  }

  void RefusePeer(Conn* c, const Envelope& env) {
    ++counters.peer_identity_refused;
    const NodeId& proven = c->verified_node;
    std::string why =
        proven.empty()
            ? fmt::format("a message from node '{}' on a connection without a node certificate",
                          Printable(env.from))
            : fmt::format("a message from node '{}' on the connection of node {}",
                          Printable(env.from), proven);
    fmt::print(stderr, "runtime: refused {} ({}, from {}); closing it\n", why, BodyName(env.body),
               c->remote);
    ReplyError(c, env.request_id,
               Status::Unauthenticated(fmt::format(
                   "node {} refuses {}: peers are known by their TLS certificate", options.node_id,
                   why)));
    c->close_after_flush = true;
    c->close_reason = "peer identity refused";
  }

  // OK, or why the connection may not send this client request.
  Status CheckAllowed(const Conn* c, const Body& body) const {
    if (!acl) return Status::OK();
    std::optional<Role> need = RequiredRole(body);
    if (!need) return Status::OK();
    if (!c->authenticated) {
      if (c->resp) return Status::Unauthenticated("Authentication required.");
      return Status::Unauthenticated(fmt::format(
          "authentication required: node {} has users; give --user NAME (or RINGKV_USER) and "
          "its password (RINGKV_PASSWORD or --password-file)",
          options.node_id));
    }
    if (!RoleAllows(c->role, *need)) {
      return Status::PermissionDenied(fmt::format("user '{}' (role {}) may not {}: that needs role {}",
                                                  c->user, RoleName(c->role), DescribeRequest(body),
                                                  RoleName(*need)));
    }
    return Status::OK();
  }

  void RefuseClient(Conn* c, const Envelope& env, Status why) {
    bool unauth = why.code() == Status::Code::kUnauthenticated;
    ++(unauth ? counters.unauthenticated_refused : counters.permission_denied);
    if (c->refusals_logged < kRefusalsLogged) {
      ++c->refusals_logged;
      fmt::print(stderr, "runtime: refused {} from {} ({}): {}{}\n", DescribeRequest(env.body),
                 c->remote, Who(c), unauth ? "not authenticated" : "permission denied",
                 c->refusals_logged == kRefusalsLogged
                     ? " (further refusals on this connection are counted, not logged)"
                     : "");
    }
    Body answer;
    if (std::holds_alternative<InfoRequest>(env.body)) {
      answer = InfoReply{std::move(why), ""};
    } else {
      answer = ringkv::Reply{std::move(why), std::nullopt, std::nullopt};
    }
    DeliverReply(c, Envelope{env.request_id, {}, {}, std::move(answer)});
  }

  void Authenticate(Conn* c, const std::string& user, Role role) {
    c->authenticated = true;
    c->user = user;
    c->role = role;
    if (c->resp) c->resp->SetAuthenticated();
    SetFrameLimit(c);
  }

  // --- authentication ---------------------------------------------------------------

  void StartAuth(Conn* c, uint64_t request_id, AuthRequest req) {
    if (!acl) {
      OPENSSL_cleanse(req.password.data(), req.password.size());
      DeliverReply(c, Envelope{request_id, {}, {},
                               ringkv::Reply{Status::InvalidArgument(fmt::format(
                                                 "node {} has no users (it runs without --acl): "
                                                 "there is nothing to log in to",
                                                 options.node_id)),
                                             std::nullopt, std::nullopt}});
      return;
    }
    auto* w = new AuthWork;
    w->req.data = w;
    w->impl = this;
    w->conn = c->id;
    w->request_id = request_id;
    w->resp = c->resp != nullptr;
    w->user = std::move(req.user);
    w->password = std::move(req.password);
    const AclUser* u = acl->Find(w->user);
    w->known = u != nullptr;
    w->hash = u != nullptr ? u->hash : dummy_hash;
    c->auth_pending = true;
    UpdateReading(c);
    auth_queue.push_back(w);
    RunAuthQueue();
  }

  void RunAuthQueue() {
    while (auth_running < kMaxConcurrentAuth && !auth_queue.empty() && !stopping) {
      AuthWork* w = auth_queue.front();
      auth_queue.pop_front();
      ++auth_running;
      uv_queue_work(
          &loop, &w->req,
          [](uv_work_t* req) {
            auto* w = static_cast<AuthWork*>(req->data);
            w->ok = VerifyPassword(w->password, w->hash) && w->known;
            OPENSSL_cleanse(w->password.data(), w->password.size());
          },
          [](uv_work_t* req, int status) {
            auto* w = static_cast<AuthWork*>(req->data);
            w->impl->FinishAuth(w, status);
          });
    }
  }

  void FinishAuth(AuthWork* w, int status) {
    --auth_running;
    std::unique_ptr<AuthWork> owned(w);
    RunAuthQueue();
    Conn* c = Find(w->conn);
    if (c == nullptr) return;
    c->auth_pending = false;
    // The ACL may have been reloaded meanwhile: the user must still exist.
    const AclUser* u = acl ? acl->Find(w->user) : nullptr;
    Status result;
    if (status == 0 && w->ok && u != nullptr) {
      ++counters.auth_successes;
      Authenticate(c, u->name, u->role);
    } else {
      ++counters.auth_failures;
      fmt::print(stderr, "runtime: authentication failed for user '{}' from {} (connection {})\n",
                 Printable(w->user), c->remote, c->id);
      result = Status::Unauthenticated(
          fmt::format("authentication failed: wrong user name or password (node {})", options.node_id));
    }
    DeliverReply(c, Envelope{w->request_id, {}, {}, ringkv::Reply{result, std::nullopt, std::nullopt}});
    // Frames that arrived behind the AuthRequest run now (next turn).
    if (!c->closing && !c->resp) Backlog(c);
    if (!c->closing) UpdateReading(c);
  }

  // --- answers and output -----------------------------------------------------------

  // An answer for a client connection (from the node, or made here).
  void DeliverReply(Conn* c, Envelope env) {
    if (c->resp) {
      c->resp->OnReply(env);
      ServeResp(c);
      return;
    }
    if (!c->outgoing) {
      auto it = c->pending.find(env.request_id);
      if (it != c->pending.end()) {
        c->pending_bytes -= it->second;
        c->pending.erase(it);
        if (c->waiting_pending && !PendingFull(c)) {
          c->waiting_pending = false;
          Backlog(c);  // frames left buffered run on the next turn
        }
      }
    }
    bool had = OutputBytes(c) > 0;
    c->out.AppendWith([&](std::string* s) { AppendFrame(env, s); });
    MarkDirty(c);
    CheckOutputLimit(c, had);
  }

  // Hands a Redis-protocol connection's requests to the node, queues its
  // reply bytes, and pauses reading while its command queue is full.
  void ServeResp(Conn* c) {
    if (c->resp_busy) return;  // the call further up the stack finishes the work
    c->resp_busy = true;
    // Answers the node gives at once (errors, info) may start new requests
    // (DEL's delete after its read): loop until none are left, or until this
    // turn's share of work (bytes answered) is used; the rest waits.
    size_t work = 0;
    for (;;) {
      std::vector<Envelope> more = c->resp->TakeRequests();
      for (Envelope& env : more) c->resp_later.push_back(std::move(env));
      if (c->resp_later.empty() || c->closing || owner->node_ == nullptr) break;
      if (work >= options.bytes_per_turn) break;
      Envelope env = std::move(c->resp_later.front());
      c->resp_later.pop_front();
      if (auto* auth = std::get_if<AuthRequest>(&env.body)) {
        StartAuth(c, env.request_id, std::move(*auth));
        continue;
      }
      Status refusal = CheckAllowed(c, env.body);
      if (!refusal.ok()) {
        RefuseClient(c, env, std::move(refusal));
        continue;
      }
      size_t before = c->resp->memory();
      owner->node_->OnMessage(c->id, std::move(env));
      work += std::max<size_t>(c->resp->memory() > before ? c->resp->memory() - before : 0, 256);
      if (CheckOutputLimit(c, true)) break;
    }
    c->resp_busy = false;
    if (c->closing) return;
    std::string bytes = c->resp->TakeOutput();
    if (!bytes.empty()) {
      c->out.Append(std::move(bytes));
      MarkDirty(c);
      if (CheckOutputLimit(c, true)) return;
    }
    if (c->resp->finished()) {
      c->close_after_flush = true;
      c->close_reason = c->resp->protocol_error() ? "Redis protocol error" : "client quit";
      if (OutputBytes(c) == 0) {
        CloseConn(c, c->close_reason);
        return;
      }
    }
    if (c->resp->backlogged() || !c->resp_later.empty()) {
      ++counters.turns_yielded;
      Backlog(c);
    }
    UpdateReading(c);
  }

  // Queues an HTTP connection's answers, and closes it once they are out
  // when the session finished.
  void ServeHttp(Conn* c) {
    std::string bytes = c->http->TakeOutput();
    if (!bytes.empty()) {
      c->out.Append(std::move(bytes));
      MarkDirty(c);
    }
    if (c->http->finished()) {
      c->close_after_flush = true;
      c->close_reason = c->http->close_reason();
      if (OutputBytes(c) == 0) {
        CloseConn(c, c->close_reason);
        return;
      }
    }
    UpdateReading(c);
  }

  // The HTTP port's users (a node with an ACL): Basic credentials of any
  // user (every role may read). A password is checked once (PBKDF2, about
  // 30 ms on the loop) and then remembered as a salted SHA-256 until the
  // users change; failed checks are limited to a few per second, so wrong
  // passwords cannot hold the loop.
  bool AuthorizeHttp(std::string_view user, std::string_view password) {
    if (acl == nullptr) return true;
    const AclUser* u = acl->Find(user);
    std::string digest = HttpDigest(password);
    if (u != nullptr) {
      auto it = http_verified.find(u->name);
      if (it != http_verified.end() && CRYPTO_memcmp(it->second.data(), digest.data(), digest.size()) == 0) {
        return true;
      }
    }
    uint64_t now = SteadyMillis();
    if (now - http_fail_window_ms >= 1000) {
      http_fail_window_ms = now;
      http_fail_checks = 0;
    }
    if (http_fail_checks >= kHttpFailedChecksPerSecond) {
      ++counters.auth_failures;
      return false;
    }
    bool ok = VerifyPassword(password, u != nullptr ? u->hash : dummy_hash) && u != nullptr;
    if (ok) {
      ++counters.auth_successes;
      if (http_verified.size() < 1024) http_verified[u->name] = digest;
      return true;
    }
    ++http_fail_checks;
    ++counters.auth_failures;
    fmt::print(stderr, "runtime: HTTP request with a wrong password for user '{}'\n", Printable(user));
    return false;
  }
  std::string HttpDigest(std::string_view password) {
    if (http_salt.empty()) {
      http_salt.resize(16);
      RAND_bytes(reinterpret_cast<unsigned char*>(http_salt.data()), static_cast<int>(http_salt.size()));
    }
    std::string material = http_salt;
    material.append(password);
    std::string out(SHA256_DIGEST_LENGTH, '\0');
    SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(),
           reinterpret_cast<unsigned char*>(out.data()));
    OPENSSL_cleanse(material.data(), material.size());
    return out;
  }

  void Flush() {
    ++turn;
    if (owner->before_writes_) owner->before_writes_();
    auto todo = std::move(dirty);
    dirty.clear();
    for (Conn* c : todo) FlushConn(c);
    EnforceMemory();
  }

  void FlushConn(Conn* c) {
    if (c->closing || !c->tcp_up) return;
    if (c->tls) {
      // Encrypt only what the socket will take soon: the rest stays in the
      // plaintext queue, counted against the output limit.
      while (c->ready && !c->out.empty() && c->wire.bytes() + c->in_flight < kTlsWindow) {
        std::string_view front = c->out.Front();
        size_t n = std::min<size_t>(front.size(), 64 * 1024);
        Status s = c->tls->Send(front.substr(0, n));
        if (!s.ok()) {
          CloseConn(c, s.message());
          return;
        }
        c->out.Consume(n);
        TakeTlsOutput(c);
      }
      WriteQueue(c, &c->wire);
    } else if (c->ready) {
      WriteQueue(c, &c->out);
    }
    if (!c->closing) {
      Account(c);
      MaybeCloseAfterFlush(c);
    }
  }

  void MaybeCloseAfterFlush(Conn* c) {
    if (!c->close_after_flush || c->closing || c->in_flight > 0 || !c->wire.empty()) return;
    // Application output of a TLS connection that never finished its
    // handshake cannot be sent.
    if (!c->out.empty() && (!c->tls || c->ready)) return;
    CloseConn(c, c->close_reason);
  }

  void WriteQueue(Conn* c, OutputQueue* q) {
    if (q->empty()) return;
    uv_stream_t* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
    if (c->in_flight == 0) {
      // Nothing queued in libuv: write now. Usually all of it goes (the
      // socket buffer has room), and then there is no write request, no
      // completion callback, and no epoll_ctl that libuv would make when
      // the request completes.
      std::vector<std::string_view> views;
      q->Peek(&views, 64);
      uv_buf_t bufs[64];
      for (size_t i = 0; i < views.size(); ++i) {
        bufs[i] = uv_buf_init(const_cast<char*>(views[i].data()), static_cast<unsigned>(views[i].size()));
      }
      int n = uv_try_write(stream, bufs, static_cast<unsigned>(views.size()));
      if (n < 0 && n != UV_EAGAIN) {
        CloseConn(c, uv_strerror(n));
        return;
      }
      if (n > 0) q->Consume(static_cast<size_t>(n));
      if (q->empty()) return;
    }
    auto* w = new WriteReq;
    w->conn = c;
    size_t offset = 0;
    w->chunks = q->TakeAll(&offset);
    std::vector<uv_buf_t> bufs;
    bufs.reserve(w->chunks.size());
    for (size_t i = 0; i < w->chunks.size(); ++i) {
      size_t skip = i == 0 ? offset : 0;
      if (w->chunks[i].size() <= skip) continue;
      bufs.push_back(uv_buf_init(w->chunks[i].data() + skip,
                                 static_cast<unsigned>(w->chunks[i].size() - skip)));
      w->bytes += w->chunks[i].size() - skip;
    }
    c->in_flight += w->bytes;
    int rc = uv_write(&w->req, stream, bufs.data(), static_cast<unsigned>(bufs.size()),
                      [](uv_write_t* req, int status) {
                        auto* w = reinterpret_cast<WriteReq*>(req);
                        Conn* c = w->conn;
                        c->in_flight -= w->bytes;
                        delete w;
                        Impl* impl = c->impl;
                        if (status < 0) {
                          impl->CloseConn(c, uv_strerror(status));
                          return;
                        }
                        if (c->closing) return;
                        impl->Account(c);
                        // TLS: more plaintext may wait to be encrypted.
                        if (!c->out.empty() || !c->wire.empty()) impl->MarkDirty(c);
                        impl->MaybeCloseAfterFlush(c);
                      });
    if (rc < 0) {
      c->in_flight -= w->bytes;
      delete w;
      CloseConn(c, uv_strerror(rc));
    }
  }

  void CloseConn(Conn* c, const std::string& why) {
    if (c->closing) return;
    c->closing = true;
    client_memory -= c->accounted;
    c->accounted = 0;
    // The buffers go now, not with the Conn in the close callback: memory a
    // connection was closed for must not outlive the decision (other reads
    // of this loop turn would stack on top of it).
    c->reader = FrameReader(0);
    c->out.Clear();
    c->wire.Clear();
    if (c->resp && !c->resp_busy) {
      c->resp->ReleaseMemory();
      c->resp_later.clear();
    }
    dirty.erase(c);
    conns.erase(c->id);
    if (!c->outgoing) --incoming;
    if (c->resp) --resp_stats.connections_open;
    if (c->http) --http_conns.open;
    if (c->native_counted) --native_conns.open;
    if (!c->outgoing && why != "closed by peer" && why != "node shutting down" &&
        why != "client quit") {
      fmt::print(stderr, "runtime: closed incoming connection {}: {}\n", c->id, why);
    }
    if (c->outgoing) {
      fmt::print(stderr, "runtime: connection to {} {}: {}\n", c->peer,
                 c->ready ? "lost" : "failed", why);
      auto it = peers.find(c->peer);
      if (it != peers.end() && it->second.conn == c) {
        it->second.conn = nullptr;
        if (!c->ready) {
          ++it->second.connect_failures;
          it->second.failed_at_ms = SteadyMillis();
          it->second.last_error = why;
          SetReachable(c->peer, false);
        }
      }
      // Requests that may never be answered: tell the node (deferred, so
      // the node is never re-entered from inside its own Send).
      std::vector<uint64_t> ids;
      for (auto& [id, at] : c->sent_requests) ids.push_back(id);
      NodeId peer = c->peer;
      std::string reason = c->ready ? fmt::format("connection to {} lost: {}", peer, why)
                                    : fmt::format("{} unreachable: {}", peer, why);
      if (!ids.empty()) {
        Post([this, peer, ids, reason] {
          if (owner->node_ == nullptr) return;
          for (uint64_t id : ids) owner->node_->OnSendFailed(peer, id, reason);
        });
      }
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
             [](uv_handle_t* h) { delete reinterpret_cast<Conn*>(h->data); });
  }

  void SetReachable(const NodeId& peer, bool reachable) {
    auto& ps = peers[peer];
    if (ps.reachable == reachable) return;
    ps.reachable = reachable;
    if (owner->reachability_) owner->reachability_(peer, reachable);
  }

  Conn* NewConn(bool outgoing) {
    auto* c = new Conn;
    c->impl = this;
    c->id = next_conn_id++;
    c->outgoing = outgoing;
    c->reader = FrameReader(options.max_frame_bytes);
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    conns[c->id] = c;
    if (!outgoing) ++incoming;
    return c;
  }

  enum class Listener { kNative, kResp, kHttp };

  // Binds and listens; new connections carry the listener's session.
  Status Bind(uv_tcp_t* listener, const std::string& host, uint16_t port, Listener kind) {
    const char* what = kind == Listener::kResp   ? " for Redis clients"
                       : kind == Listener::kHttp ? " for HTTP"
                                                 : "";
    struct sockaddr_storage addr {};
    if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
      return Status::InvalidArgument(fmt::format("cannot listen{} on '{}': not an IP address",
                                                 what, host));
    }
    int rc = uv_tcp_bind(listener, reinterpret_cast<sockaddr*>(&addr), 0);
    if (rc == 0) {
      auto on_connection = [](uv_stream_t* server, int status) {
        auto* impl = static_cast<Impl*>(server->data);
        if (status < 0) return;
        impl->Accept(server, server == reinterpret_cast<uv_stream_t*>(&impl->resp_listener)
                                 ? Listener::kResp
                             : server == reinterpret_cast<uv_stream_t*>(&impl->http_listener)
                                 ? Listener::kHttp
                                 : Listener::kNative);
      };
      rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener), 512, on_connection);
    }
    if (rc < 0) {
      return Status::IOError(fmt::format("cannot listen{} on {}:{}: {}", what, host, port,
                                         uv_strerror(rc)));
    }
    return Status::OK();
  }

  void Accept(uv_stream_t* server, Listener kind) {
    bool resp = kind == Listener::kResp;
    bool full = incoming >= options.max_connections;
    Conn* c = NewConn(false);
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
      CloseConn(c, "accept failed");
      return;
    }
    c->remote = PeerName(&c->tcp);
    c->tcp_up = true;
    uv_tcp_nodelay(&c->tcp, 1);
    if (full) return RefuseConnection(c, kind);
    ++counters.connections_accepted;
    if (resp) {
      RespOptions ro = options.resp;
      ro.auth_required = acl != nullptr;
      if (ro.commands_per_turn == 0) ro.commands_per_turn = options.frames_per_turn;
      Runtime* rt = owner;
      ro.wall_ms = [rt] { return rt->WallMillis(); };  // TTL, PTTL
      c->resp = std::make_unique<RespSession>(std::move(ro), &resp_stats);
      ++resp_stats.connections_accepted;
      ++resp_stats.connections_open;
    } else if (kind == Listener::kHttp) {
      HttpSession::Handler handler = owner->http_handler_;
      if (!handler) {
        handler = [](const HttpRequest&) {
          HttpResponse r;
          r.status = 503;
          r.body = "the node is starting\n";
          return r;
        };
      }
      HttpOptions ho = options.http;
      if (acl != nullptr && !ho.authorize) {
        ho.authorize = [this](std::string_view user, std::string_view password) {
          return AuthorizeHttp(user, password);
        };
      }
      c->http = std::make_unique<HttpSession>(std::move(ho), std::move(handler), &http_stats);
      ++http_conns.accepted;
      ++http_conns.open;
    } else {
      ++native_conns.accepted;
      ++native_conns.open;
      c->native_counted = true;
    }
    if (options.tls) {
      c->tls = std::make_unique<TlsSession>(options.tls, TlsSession::Side::kServer);
      ClientId id = c->id;
      AddTimer(kHandshakeTimeoutMs, [this, id] {
        Conn* c = Find(id);
        if (c == nullptr || c->ready || c->close_after_flush) return;
        ++counters.tls_failures;
        fmt::print(stderr, "runtime: TLS connection from {}: no handshake within {} s\n", c->remote,
                   kHandshakeTimeoutMs / 1000);
        CloseConn(c, "TLS handshake timed out");
      });
    } else {
      c->ready = true;
    }
    SetFrameLimit(c);
    StartReading(c);
  }

  // Past --max-connections: say so where the client can read it, then close.
  void RefuseConnection(Conn* c, Listener kind) {
    ++counters.connections_refused;
    uint64_t now = SteadyMillis();
    if (now - last_refusal_log_ms >= 1000) {
      last_refusal_log_ms = now;
      fmt::print(stderr,
                 "runtime: refused a connection from {}: {} connections are open, the "
                 "--max-connections limit\n",
                 c->remote, options.max_connections);
    }
    if (options.tls) {
      CloseConn(c, "too many connections");  // a TLS client could not read a plaintext answer
      return;
    }
    c->ready = true;
    if (kind == Listener::kResp) {
      c->out.Append(std::string_view("-ERR max number of clients reached\r\n"));
    } else if (kind == Listener::kHttp) {
      HttpResponse r;
      r.status = 503;
      r.body = "too many connections; try again later\n";
      c->out.Append(HttpSession::Serialize(r, false, false, false));
    } else {
      ReplyError(c, 0,
                 Status::Unavailable(fmt::format(
                     "node {} has {} connections open, its --max-connections; try again later",
                     options.node_id, options.max_connections)));
    }
    c->close_after_flush = true;
    c->close_reason = "too many connections";
    MarkDirty(c);
  }

  Conn* ConnectPeer(const NodeId& id, PeerState& ps) {
    std::string host;
    uint16_t port = 0;
    if (!ParseHostPort(ps.address, &host, &port).ok()) return nullptr;
    struct sockaddr_storage addr {};
    if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
      // A name: resolve it synchronously (peer names resolve from /etc/hosts
      // or the container DNS; rare, at connect time only).
      struct addrinfo hints {};
      hints.ai_socktype = SOCK_STREAM;
      struct addrinfo* res = nullptr;
      if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return nullptr;
      std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
      reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(port);
      freeaddrinfo(res);
    }
    Conn* c = NewConn(true);
    c->peer = id;
    c->remote = ps.address;
    c->sniffed = true;
    uv_tcp_nodelay(&c->tcp, 1);
    // A peer cut off by a partition must not hold a connection open for
    // minutes of TCP retransmission backoff: keepalives notice a silent
    // peer, and data unacknowledged for peer_timeout aborts the connection,
    // so the next message reconnects.
    uv_tcp_keepalive(&c->tcp, 1, 5);
    auto* req = new uv_connect_t;
    req->data = c;
    int rc = uv_tcp_connect(req, &c->tcp, reinterpret_cast<sockaddr*>(&addr), [](uv_connect_t* req, int status) {
      auto* c = reinterpret_cast<Conn*>(req->data);
      delete req;
      if (c->closing) return;
      Impl* impl = c->impl;
      if (status < 0) {
        impl->CloseConn(c, uv_strerror(status));
        return;
      }
      c->tcp_up = true;
      uv_os_fd_t fd;
      if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) == 0) {
        unsigned int timeout_ms = static_cast<unsigned int>(impl->options.peer_timeout_ms);
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof(timeout_ms));
      }
      if (impl->options.tls) {
        // The server's certificate must be the node certificate of c->peer
        // (of some node, for a seed known only by its address).
        bool seed = c->peer.rfind("seed:", 0) == 0;
        c->tls = std::make_unique<TlsSession>(impl->options.tls, TlsSession::Side::kClient,
                                              seed ? NodeId() : c->peer);
        Status s = c->tls->Start();
        if (!s.ok()) {
          impl->CloseConn(c, s.message());
          return;
        }
        impl->TakeTlsOutput(c);
        ClientId id = c->id;
        impl->AddTimer(kHandshakeTimeoutMs, [impl, id] {
          Conn* c = impl->Find(id);
          if (c != nullptr && !c->ready) impl->CloseConn(c, "TLS handshake timed out");
        });
      } else {
        c->ready = true;
        impl->SetReachable(c->peer, true);
      }
      impl->StartReading(c);
      impl->MarkDirty(c);
    });
    if (rc < 0) {
      delete req;
      CloseConn(c, uv_strerror(rc));
      return nullptr;
    }
    return c;
  }
};

Runtime::Runtime(RuntimeOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->owner = this;
  impl_->options = std::move(options);
  impl_->acl = impl_->options.acl;
  if (impl_->acl) {
    auto dummy = HashPassword("not a password", kDefaultPbkdf2Iterations);
    if (dummy.ok()) impl_->dummy_hash = std::move(dummy).value();
  }
  uv_loop_init(&impl_->loop);
  uv_timer_init(&impl_->loop, &impl_->timer);
  impl_->timer.data = impl_.get();
  uv_prepare_init(&impl_->loop, &impl_->flusher);
  impl_->flusher.data = impl_.get();
  uv_prepare_start(&impl_->flusher, [](uv_prepare_t* h) { static_cast<Impl*>(h->data)->Flush(); });
  uv_idle_init(&impl_->loop, &impl_->backlog_idle);
  impl_->backlog_idle.data = impl_.get();
  uv_async_init(&impl_->loop, &impl_->wakeup, [](uv_async_t* h) {
    auto* impl = static_cast<Impl*>(h->data);
    // Run what is queued now; what those tasks post runs on the next wakeup.
    auto todo = std::move(impl->posted);
    impl->posted.clear();
    for (auto& fn : todo) fn();
  });
  impl_->wakeup.data = impl_.get();
  uv_signal_init(&impl_->loop, &impl_->sigterm);
  uv_signal_init(&impl_->loop, &impl_->sigint);
  uv_signal_init(&impl_->loop, &impl_->sighup);
  impl_->sigterm.data = this;
  impl_->sigint.data = this;
  impl_->sighup.data = this;
  auto on_signal = [](uv_signal_t* h, int) { static_cast<Runtime*>(h->data)->Stop(); };
  uv_signal_start(&impl_->sigterm, on_signal, SIGTERM);
  uv_signal_start(&impl_->sigint, on_signal, SIGINT);
  uv_signal_start(&impl_->sighup, [](uv_signal_t* h, int) {
    auto* rt = static_cast<Runtime*>(h->data);
    if (rt->hangup_) rt->hangup_();
  }, SIGHUP);
  uv_tcp_init(&impl_->loop, &impl_->listener);
  impl_->listener.data = impl_.get();
  uv_tcp_init(&impl_->loop, &impl_->resp_listener);
  impl_->resp_listener.data = impl_.get();
  uv_tcp_init(&impl_->loop, &impl_->http_listener);
  impl_->http_listener.data = impl_.get();
}

Runtime::~Runtime() {
  if (!impl_->stopping) Stop();
  uv_run(&impl_->loop, UV_RUN_DEFAULT);  // let close callbacks (and password checks) finish
  uv_loop_close(&impl_->loop);
}

void Runtime::SetPeerAddress(const NodeId& id, const std::string& host_port) {
  impl_->peers[id].address = host_port;
}

Status Runtime::Listen() {
  const RuntimeOptions& o = impl_->options;
  Status s = impl_->Bind(&impl_->listener, o.listen_host, o.listen_port, Impl::Listener::kNative);
  if (s.ok() && o.resp_port != 0) {
    s = impl_->Bind(&impl_->resp_listener, o.resp_host, o.resp_port, Impl::Listener::kResp);
  }
  if (s.ok() && o.http_port != 0) {
    s = impl_->Bind(&impl_->http_listener, o.http_host, o.http_port, Impl::Listener::kHttp);
  }
  return s;
}

void Runtime::Run() { uv_run(&impl_->loop, UV_RUN_DEFAULT); }

void Runtime::Stop() {
  Impl* impl = impl_.get();
  if (impl->stopping) return;
  impl->stopping = true;
  impl->Flush();
  auto noop = [](uv_handle_t*) {};
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->listener), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->resp_listener), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->http_listener), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->flusher), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->backlog_idle), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->wakeup), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->sigterm), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->sigint), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->sighup), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->timer), noop);
  impl->timer_queue.clear();
  impl->timer_deadlines.clear();
  impl->armed_for = 0;
  for (AuthWork* w : impl->auth_queue) delete w;
  impl->auth_queue.clear();
  std::vector<Conn*> all;
  for (auto& [id, c] : impl->conns) all.push_back(c);
  for (Conn* c : all) {
    // Pending output is dropped for peers; clients already got their answers
    // flushed above when the write completed.
    impl->CloseConn(c, "node shutting down");
  }
  impl->posted.clear();
}

const RespStats& Runtime::resp_stats() const { return impl_->resp_stats; }

std::string Runtime::StatsJson() const {
  const Impl* impl = impl_.get();
  const RuntimeCounters& k = impl->counters;
  return fmt::format(
      "{{\"connections_open\":{},\"connections_accepted\":{},\"connections_refused\":{},"
      "\"tls_handshakes\":{},\"tls_failures\":{},\"tls_mismatches\":{},"
      "\"peer_identity_refused\":{},\"auth_successes\":{},\"auth_failures\":{},"
      "\"unauthenticated_refused\":{},\"permission_denied\":{},"
      "\"output_limit_disconnects\":{},\"input_limit_disconnects\":{},\"memory_evictions\":{},"
      "\"client_memory_bytes\":{},\"client_memory_limit_bytes\":{},\"turns_yielded\":{},"
      "\"reads_paused_pending\":{}}}",
      impl->incoming, k.connections_accepted, k.connections_refused, k.tls_handshakes,
      k.tls_failures, k.tls_mismatches, k.peer_identity_refused, k.auth_successes, k.auth_failures,
      k.unauthenticated_refused, k.permission_denied, k.output_limit_disconnects,
      k.input_limit_disconnects, k.memory_evictions, impl->client_memory,
      impl->options.max_client_memory, k.turns_yielded, k.reads_paused_pending);
}

std::vector<ListenerConnections> Runtime::ConnectionCounts() const {
  const Impl& i = *impl_;
  std::vector<ListenerConnections> out{i.native_conns};
  if (i.options.resp_port != 0) {
    out.push_back({"resp", i.resp_stats.connections_accepted, i.resp_stats.connections_open});
  }
  if (i.options.http_port != 0) out.push_back(i.http_conns);
  return out;
}

void Runtime::SetAcl(std::shared_ptr<const Acl> acl) {
  Impl* impl = impl_.get();
  impl->acl = std::move(acl);
  impl->http_verified.clear();  // passwords may have changed
  if (impl->acl && impl->dummy_hash.iterations == 0) {
    auto dummy = HashPassword("not a password", kDefaultPbkdf2Iterations);
    if (dummy.ok()) impl->dummy_hash = std::move(dummy).value();
  }
  std::vector<Conn*> gone;
  for (auto& [id, c] : impl->conns) {
    if (!c->authenticated) continue;
    const AclUser* u = impl->acl ? impl->acl->Find(c->user) : nullptr;
    if (u == nullptr) {
      gone.push_back(c);
    } else {
      c->role = u->role;
    }
  }
  for (Conn* c : gone) {
    fmt::print(stderr, "runtime: closing connection {} from {}: user '{}' is no longer in the ACL\n",
               c->id, c->remote, c->user);
    impl->CloseConn(c, "user removed");
  }
}

std::string Runtime::ConnectionsJson() const {
  std::string out = "{";
  bool first = true;
  for (const auto& [id, ps] : impl_->peers) {
    const char* state = ps.conn == nullptr ? "idle" : ps.conn->ready ? "connected" : "connecting";
    out += fmt::format("{}\"{}\":{{\"address\":\"{}\",\"state\":\"{}\",\"connects\":{},"
                       "\"connect_failures\":{},\"dropped\":{},\"reachable\":{}}}",
                       first ? "" : ",", id, ps.address, state, ps.connects, ps.connect_failures,
                       ps.dropped, ps.reachable ? "true" : "false");
    first = false;
  }
  return out + "}";
}

void Runtime::Send(const NodeId& to, const Envelope& env) {
  Impl* impl = impl_.get();
  if (impl->stopping) return;
  bool is_request = IsPeerRequest(env.body) && env.request_id != 0;
  uint64_t rid = env.request_id;
  auto fail = [&](const std::string& why) {
    if (auto p = impl->peers.find(to); p != impl->peers.end()) ++p->second.dropped;
    if (!is_request) return;
    impl->Post([this, to, rid, why] {
      if (node_ != nullptr) node_->OnSendFailed(to, rid, why);
    });
  };
  auto it = impl->peers.find(to);
  if ((it == impl->peers.end() || it->second.conn == nullptr) && resolver_) {
    std::string addr = resolver_(to);
    if (!addr.empty()) {
      impl->peers[to].address = addr;
      it = impl->peers.find(to);
    }
  }
  if (it == impl->peers.end() || it->second.address.empty()) {
    fail(fmt::format("no address known for node {}", to));
    return;
  }
  PeerState& ps = it->second;
  if (ps.conn == nullptr) {
    uint64_t now = SteadyMillis();
    if (ps.failed_at_ms != 0 && now - ps.failed_at_ms < impl->options.reconnect_backoff_ms) {
      fail(fmt::format("{} unreachable: {}", to, ps.last_error));
      return;
    }
    ++ps.connects;
    ps.conn = impl->ConnectPeer(to, ps);
    if (ps.conn == nullptr) {
      ps.failed_at_ms = now;
      ps.last_error = fmt::format("cannot resolve {}", ps.address);
      fail(fmt::format("{} unreachable: {}", to, ps.last_error));
      return;
    }
  }
  Conn* c = ps.conn;
  if (is_request) {
    uint64_t now = SteadyMillis();
    c->sent_requests.emplace_back(rid, now);
    // Keep only what could still be pending (requests time out long before).
    while (!c->sent_requests.empty() && now - c->sent_requests.front().second > 60000) {
      c->sent_requests.pop_front();
    }
    if (c->sent_requests.size() > 100000) c->sent_requests.pop_front();
  }
  bool had = impl->OutputBytes(c) > 0;
  c->out.AppendWith([&](std::string* s) { AppendFrame(env, s); });
  impl->MarkDirty(c);
  impl->CheckOutputLimit(c, had);
}

void Runtime::Reply(ClientId client, Envelope env) {
  Conn* c = impl_->Find(client);
  if (c == nullptr) return;  // client went away
  impl_->DeliverReply(c, std::move(env));
}

uint64_t Runtime::NowMicros() { return uv_hrtime() / 1000; }

uint64_t Runtime::WallMillis() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Clock::TimerId Runtime::After(uint64_t delay_ms, std::function<void()> fn) {
  return impl_->AddTimer(delay_ms, std::move(fn));
}

void Runtime::Cancel(TimerId id) {
  Impl* impl = impl_.get();
  auto it = impl->timer_deadlines.find(id);
  if (it == impl->timer_deadlines.end()) return;
  impl->timer_queue.erase({it->second, id});
  impl->timer_deadlines.erase(it);
  // The libuv timer stays armed for a cancelled head; RunTimers re-arms.
}

}  // namespace ringkv
