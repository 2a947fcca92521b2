#include "server/runtime.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <set>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "core/codec.h"

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

// A TCP connection, incoming (a client or a peer talking to us) or outgoing
// (ours to a peer). Owned by Impl; freed in the close callback.
struct Conn {
  uv_tcp_t tcp;
  Runtime::Impl* impl = nullptr;
  ClientId id = 0;
  bool outgoing = false;
  NodeId peer;  // outgoing only
  bool connected = false;
  bool closing = false;
  bool close_after_flush = false;
  std::string close_reason = "closed after error";  // logged when close_after_flush closes it
  bool reading = false;
  FrameReader reader{kDefaultMaxFrameBytes};
  // Redis-protocol clients only: the adapter, and whether a call into it is
  // on the stack (the node may answer from inside OnMessage).
  std::unique_ptr<RespSession> resp;
  bool resp_busy = false;
  // HTTP clients only (metrics, API, dashboard).
  std::unique_ptr<HttpSession> http;
  std::string out;       // buffered, written at the end of the loop turn
  size_t in_flight = 0;  // bytes handed to uv_write, not yet completed
  // Outgoing: request ids sent on this connection recently; if it breaks,
  // the Node is told they failed (it ignores those already answered).
  std::deque<std::pair<uint64_t, uint64_t>> sent_requests;  // (id, sent at ms)
  char read_buf[64 * 1024];
};

struct WriteReq {
  uv_write_t req;
  std::string data;
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

uint64_t SteadyMillis() { return uv_hrtime() / 1000000; }

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
  uv_prepare_t flusher;
  uv_async_t wakeup;
  uv_signal_t sigterm, sigint;
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
  bool stopping = false;

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

  void MarkDirty(Conn* c) {
    if (!c->closing) dirty.insert(c);
  }

  void Flush() {
    if (owner->before_writes_) owner->before_writes_();
    auto todo = std::move(dirty);
    dirty.clear();
    for (Conn* c : todo) FlushConn(c);
  }

  void FlushConn(Conn* c) {
    if (c->closing || c->out.empty() || !c->connected) return;
    if (c->in_flight == 0) {
      // Nothing queued in libuv: write now. Usually all of it goes (the
      // socket buffer has room), and then there is no write request, no
      // completion callback, and no epoll_ctl that libuv would make when
      // the request completes. The buffer keeps its capacity.
      uv_buf_t buf = uv_buf_init(c->out.data(), static_cast<unsigned>(c->out.size()));
      int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1);
      if (n < 0 && n != UV_EAGAIN) {
        CloseConn(c, uv_strerror(n));
        return;
      }
      if (n > 0) c->out.erase(0, static_cast<size_t>(n));
      if (c->out.empty()) {
        if (c->close_after_flush) CloseConn(c, c->close_reason);
        return;
      }
    }
    auto* w = new WriteReq;
    w->data = std::move(c->out);
    c->out.clear();
    w->conn = c;
    c->in_flight += w->data.size();
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1,
                      [](uv_write_t* req, int status) {
                        auto* w = reinterpret_cast<WriteReq*>(req);
                        Conn* c = w->conn;
                        c->in_flight -= w->data.size();
                        delete w;
                        if (status < 0) {
                          c->impl->CloseConn(c, uv_strerror(status));
                        } else if (c->close_after_flush && c->in_flight == 0 && c->out.empty()) {
                          c->impl->CloseConn(c, c->close_reason);
                        }
                      });
    if (rc < 0) {
      c->in_flight -= w->data.size();
      delete w;
      CloseConn(c, uv_strerror(rc));
    }
  }

  void CloseConn(Conn* c, const std::string& why) {
    if (c->closing) return;
    c->closing = true;
    dirty.erase(c);
    conns.erase(c->id);
    if (c->resp) --resp_stats.connections_open;
    if (c->http) --http_conns.open;
    if (!c->outgoing && !c->resp && !c->http) --native_conns.open;
    if (!c->outgoing && why != "closed by peer" && why != "node shutting down" &&
        why != "client quit") {
      fmt::print(stderr, "runtime: closed incoming connection {}: {}\n", c->id, why);
    }
    if (c->outgoing) {
      fmt::print(stderr, "runtime: connection to {} {}: {}\n", c->peer,
                 c->connected ? "lost" : "failed", why);
      auto it = peers.find(c->peer);
      if (it != peers.end() && it->second.conn == c) {
        it->second.conn = nullptr;
        if (!c->connected) {
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
      std::string reason = c->connected ? fmt::format("connection to {} lost: {}", peer, why)
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

  Conn* NewConn() {
    auto* c = new Conn;
    c->impl = this;
    c->id = next_conn_id++;
    c->reader = FrameReader(options.max_frame_bytes);
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    conns[c->id] = c;
    return c;
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
          if (nread < 0) {
            c->impl->CloseConn(c, nread == UV_EOF ? "closed by peer" : uv_strerror(static_cast<int>(nread)));
            return;
          }
          if (nread == 0) return;
          if (c->resp) {
            c->resp->Feed(std::string_view(buf->base, static_cast<size_t>(nread)));
            c->impl->ServeResp(c);
            return;
          }
          if (c->http) {
            c->http->Feed(std::string_view(buf->base, static_cast<size_t>(nread)),
                          c->out.size() + c->in_flight);
            c->impl->ServeHttp(c);
            return;
          }
          c->reader.Append(std::string_view(buf->base, static_cast<size_t>(nread)));
          c->impl->ProcessFrames(c);
        });
  }

  // Hands a Redis-protocol connection's requests to the node, queues its
  // reply bytes, and pauses reading while its command queue is full.
  void ServeResp(Conn* c) {
    if (c->resp_busy) return;  // the call further up the stack finishes the work
    c->resp_busy = true;
    // Answers the node gives at once (errors, info) may start new requests
    // (DEL's delete after its read): loop until none are left.
    for (auto reqs = c->resp->TakeRequests(); !reqs.empty() && !c->closing;
         reqs = c->resp->TakeRequests()) {
      for (Envelope& env : reqs) {
        if (owner->node_ == nullptr || c->closing) break;
        owner->node_->OnMessage(c->id, std::move(env));
      }
    }
    c->resp_busy = false;
    if (c->closing) return;
    std::string bytes = c->resp->TakeOutput();
    if (!bytes.empty()) {
      c->out += bytes;
      MarkDirty(c);
    }
    if (c->resp->finished()) {
      c->close_after_flush = true;
      c->close_reason = c->resp->protocol_error() ? "Redis protocol error" : "client quit";
      if (c->out.empty() && c->in_flight == 0) {
        CloseConn(c, c->close_reason);
      } else if (c->reading) {
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
        c->reading = false;
      }
      return;
    }
    bool want = !c->resp->full();
    if (want && !c->reading) {
      StartReading(c);
    } else if (!want && c->reading) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
      c->reading = false;
    }
  }

  // Writes an HTTP connection's answers, and closes it once they are out
  // when the session finished.
  void ServeHttp(Conn* c) {
    std::string bytes = c->http->TakeOutput();
    if (!bytes.empty()) {
      c->out += bytes;
      MarkDirty(c);
    }
    if (!c->http->finished()) return;
    c->close_after_flush = true;
    c->close_reason = c->http->close_reason();
    if (c->out.empty() && c->in_flight == 0) {
      CloseConn(c, c->close_reason);
    } else if (c->reading) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
      c->reading = false;
    }
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
    Conn* c = NewConn();
    if (kind == Listener::kResp) {
      RespOptions resp_options = options.resp;
      Runtime* rt = owner;
      resp_options.wall_ms = [rt] { return rt->WallMillis(); };  // TTL, PTTL
      c->resp = std::make_unique<RespSession>(std::move(resp_options), &resp_stats);
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
      c->http = std::make_unique<HttpSession>(options.http, std::move(handler), &http_stats);
      ++http_conns.accepted;
      ++http_conns.open;
    } else {
      ++native_conns.accepted;
      ++native_conns.open;
    }
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
      CloseConn(c, "accept failed");
      return;
    }
    c->connected = true;
    uv_tcp_nodelay(&c->tcp, 1);
    StartReading(c);
  }

  void ReplyError(Conn* c, uint64_t request_id, Status status) {
    Envelope env{request_id, {}, {}, ringkv::Reply{std::move(status), std::nullopt, std::nullopt}};
    AppendFrame(env, &c->out);
    MarkDirty(c);
  }

  void ProcessFrames(Conn* c) {
    std::string frame;
    while (!c->closing && !c->close_after_flush) {
      int r = c->reader.Next(&frame);
      if (r == 0) return;
      if (r < 0) {
        // Cannot find the next frame boundary: answer once, then close.
        ReplyError(c, 0,
                   Status::InvalidArgument(fmt::format(
                       "frame of {} bytes exceeds the limit of {} bytes; closing the connection",
                       c->reader.oversize_length(), options.max_frame_bytes)));
        c->close_after_flush = true;
        return;
      }
      auto env = DecodeEnvelope(frame);
      if (!env.ok()) {
        ReplyError(c, 0, env.status());
        continue;
      }
      if (!env->from.empty()) {
        // A message from a peer proves it is up: stop backing off, so our
        // replies to it are not dropped (it may have just restarted).
        auto p = peers.find(env->from);
        if (p != peers.end()) p->second.failed_at_ms = 0;
      }
      if (owner->node_ != nullptr) owner->node_->OnMessage(c->id, std::move(env).value());
    }
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
    Conn* c = NewConn();
    c->outgoing = true;
    c->peer = id;
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
      if (status < 0) {
        c->impl->CloseConn(c, uv_strerror(status));
        return;
      }
      c->connected = true;
      uv_os_fd_t fd;
      if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) == 0) {
        unsigned int timeout_ms = static_cast<unsigned int>(c->impl->options.peer_timeout_ms);
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof(timeout_ms));
      }
      c->impl->SetReachable(c->peer, true);
      c->impl->StartReading(c);
      c->impl->MarkDirty(c);
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
  uv_loop_init(&impl_->loop);
  uv_timer_init(&impl_->loop, &impl_->timer);
  impl_->timer.data = impl_.get();
  uv_prepare_init(&impl_->loop, &impl_->flusher);
  impl_->flusher.data = impl_.get();
  uv_prepare_start(&impl_->flusher, [](uv_prepare_t* h) { static_cast<Impl*>(h->data)->Flush(); });
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
  impl_->sigterm.data = this;
  impl_->sigint.data = this;
  auto on_signal = [](uv_signal_t* h, int) { static_cast<Runtime*>(h->data)->Stop(); };
  uv_signal_start(&impl_->sigterm, on_signal, SIGTERM);
  uv_signal_start(&impl_->sigint, on_signal, SIGINT);
  uv_tcp_init(&impl_->loop, &impl_->listener);
  impl_->listener.data = impl_.get();
  uv_tcp_init(&impl_->loop, &impl_->resp_listener);
  impl_->resp_listener.data = impl_.get();
  uv_tcp_init(&impl_->loop, &impl_->http_listener);
  impl_->http_listener.data = impl_.get();
}

Runtime::~Runtime() {
  if (!impl_->stopping) Stop();
  uv_run(&impl_->loop, UV_RUN_DEFAULT);  // let close callbacks run
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
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->wakeup), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->sigterm), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->sigint), noop);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->timer), noop);
  impl->timer_queue.clear();
  impl->timer_deadlines.clear();
  impl->armed_for = 0;
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

std::vector<ListenerConnections> Runtime::ConnectionCounts() const {
  const Impl& i = *impl_;
  std::vector<ListenerConnections> out{i.native_conns};
  if (i.options.resp_port != 0) {
    out.push_back({"resp", i.resp_stats.connections_accepted, i.resp_stats.connections_open});
  }
  if (i.options.http_port != 0) out.push_back(i.http_conns);
  return out;
}

std::string Runtime::ConnectionsJson() const {
  std::string out = "{";
  bool first = true;
  for (const auto& [id, ps] : impl_->peers) {
    const char* state = ps.conn == nullptr ? "idle" : ps.conn->connected ? "connected" : "connecting";
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
  AppendFrame(env, &c->out);
  impl->MarkDirty(c);
}

void Runtime::Reply(ClientId client, Envelope env) {
  auto it = impl_->conns.find(client);
  if (it == impl_->conns.end()) return;  // client went away
  if (Conn* c = it->second; c->resp) {
    c->resp->OnReply(env);
    impl_->ServeResp(c);
    return;
  }
  AppendFrame(env, &it->second->out);
  impl_->MarkDirty(it->second);
}

uint64_t Runtime::NowMicros() { return uv_hrtime() / 1000; }

uint64_t Runtime::WallMillis() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Clock::TimerId Runtime::After(uint64_t delay_ms, std::function<void()> fn) {
  Impl* impl = impl_.get();
  Clock::TimerId id = impl->next_timer_id++;
  if (impl->stopping) return id;
  uint64_t deadline = uv_now(&impl->loop) + delay_ms;
  impl->timer_queue.emplace(std::make_pair(deadline, id), std::move(fn));
  impl->timer_deadlines.emplace(id, deadline);
  impl->ArmTimer();
  return id;
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
