// Runtime: runs a Node on a libuv loop with real sockets, timers and signals.
//
// One loop thread owns everything (as Redis does): it accepts client and peer
// connections, splits frames, verifies and decodes them, hands envelopes to
// the Node, and writes what the Node emits. Output is buffered per connection
// and written once per loop turn. Connections to the optional Redis-protocol
// listener carry a RespSession, which turns their commands into the same
// client envelopes and the Node's replies back into RESP. Connections to
// the optional HTTP listener carry an HttpSession (metrics, JSON, the
// dashboard), answered at once on the loop. Each peer has one
// outgoing connection used for every message to it; replies from a peer
// arrive on the peer's own outgoing connection, so every message is one-way
// and carries a request id.
//
// Security (README "Security", docs/design-notes.md): with a TlsContext every
// connection, on every listener and to every peer, is TLS (server/tls.h); a
// message that names a peer is taken only from a connection whose
// certificate proves that node id. With an ACL every client request is
// checked against the connection's role (server/access.h) before it reaches
// the Node; a connection that has not authenticated (AuthRequest, or a
// client certificate naming a user) may only authenticate.
//
// Bounded resources: a connection's output is a queue of chunks
// (server/output_queue.h) with a limit (clients and peers apart); each loop
// turn runs a bounded number of a connection's frames or commands, the rest
// waits for a later turn with reading paused; a native client has a bounded
// number (and size) of requests in flight; the input and output all incoming
// connections buffer together has a budget, past which the largest holder is
// disconnected; the number of incoming connections is capped. Every refusal
// and disconnection is counted (StatsJson) and logged.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/acl.h"
#include "core/env.h"
#include "node/metrics.h"
#include "node/node.h"
#include "resp/session.h"
#include "server/http_session.h"
#include "server/tls.h"

namespace ringkv {

struct RuntimeOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 7100;
  size_t max_frame_bytes = kDefaultMaxFrameBytes;
  // After a failed connect, messages to that peer fail at once for this long.
  uint64_t reconnect_backoff_ms = 500;
  // Data to a peer unacknowledged this long aborts the connection
  // (TCP_USER_TIMEOUT); the next message reconnects.
  uint64_t peer_timeout_ms = 5000;
  // A second listener for Redis-protocol clients (resp/session.h):
  // their commands become the same requests as native clients'. Port 0: off.
  std::string resp_host;
  uint16_t resp_port = 0;
  RespOptions resp;
  // A third listener for HTTP (server/http_session.h): metrics, the JSON
  // API and the dashboard, answered by the handler SetHttpHandler gives.
  // Port 0: off. Behind TLS like the others; with an ACL every request
  // needs Basic credentials of a user (any role may read), unless
  // http.authorize is given.
  std::string http_host;
  uint16_t http_port = 0;
  HttpOptions http;
  // This node's id, for messages and logs.
  std::string node_id;

  // TLS on every connection when set (server/tls.h).
  std::shared_ptr<const TlsContext> tls;
  // Users (core/acl.h); null: no ACL, every client may do everything.
  // Replaced at run time with SetAcl.
  std::shared_ptr<const Acl> acl;

  // Largest value a client may put: sets the frame limit of an
  // authenticated client connection (value, key and 1 MiB of the rest).
  size_t max_value_bytes = kDefaultMaxValueBytes;
  // Unsent output a client connection may hold (checked once more than one
  // reply is queued) before it is disconnected; peers get their own.
  size_t client_output_limit = 32u << 20;
  size_t peer_output_limit = 256u << 20;
  // What all incoming connections together may hold in buffers (unread
  // input, unsent output); past it the largest holder is disconnected.
  // Connections proven to be peers by their certificate are not counted.
  size_t max_client_memory = 128u << 20;
  // Incoming connections open at once; more are refused.
  size_t max_connections = 4096;
  // Fairness: frames (or RESP commands) and bytes one connection may run per
  // loop turn before the others get theirs.
  size_t frames_per_turn = 64;
  size_t bytes_per_turn = 1u << 20;
  // A native client's requests in flight (sent to the node, not answered);
  // past either bound the connection is not read until answers go out.
  size_t max_pending_requests = 4096;
  size_t max_pending_bytes = 64u << 20;
};

// Frames a connection may send before it has authenticated, on a node with
// users and TLS (an AuthRequest is far smaller).
inline constexpr size_t kPreAuthFrameBytes = 4096;

class Runtime final : public Transport, public Clock {
 public:
  explicit Runtime(RuntimeOptions options);
  ~Runtime() override;

  // Address of every peer, by node id.
  void SetPeerAddress(const NodeId& id, const std::string& host_port);
  // Looked up whenever a connection to a peer is (re)made, so peers that
  // gossip brings in, or that restart elsewhere, are reachable.
  void SetAddressResolver(std::function<std::string(const NodeId&)> fn) { resolver_ = std::move(fn); }
  // Called when a peer becomes reachable or unreachable.
  void OnReachability(std::function<void(const NodeId&, bool)> fn) { reachability_ = std::move(fn); }
  void SetNode(Node* node) { node_ = node; }
  // Called once per loop turn before anything is written to a socket (the
  // node's store commits its buffered writes there, so no reply or ack
  // leaves before the write it acknowledges is stored).
  void BeforeWrites(std::function<void()> fn) { before_writes_ = std::move(fn); }

  // JSON: per peer, the state of the outgoing connection and its counters.
  std::string ConnectionsJson() const;
  const RespStats& resp_stats() const;
  // Answers the HTTP listener's requests (GET and HEAD only).
  void SetHttpHandler(HttpSession::Handler fn) { http_handler_ = std::move(fn); }
  // Incoming connections accepted and open, per listener (native, resp, http).
  std::vector<ListenerConnections> ConnectionCounts() const;
  // JSON object of the runtime's counters (connections, TLS, authentication,
  // limits), added to the node's stats.
  std::string StatsJson() const;
  // Replaces the users (a reload). Authenticated connections of users that
  // are gone are closed; the others take their user's new role.
  void SetAcl(std::shared_ptr<const Acl> acl);
  // Called on SIGHUP (the node reloads its ACL there).
  void OnHangup(std::function<void()> fn) { hangup_ = std::move(fn); }

  // Binds the listening sockets (so callers can report a clear error).
  Status Listen();
  // Runs until SIGTERM/SIGINT or Stop(). Returns when every handle closed.
  void Run();
  void Stop();

  // Transport
  void Send(const NodeId& to, const Envelope& env) override;
  void Reply(ClientId client, Envelope env) override;

  // Clock
  uint64_t NowMicros() override;
  uint64_t WallMillis() override;
  TimerId After(uint64_t delay_ms, std::function<void()> fn) override;
  void Cancel(TimerId id) override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  Node* node_ = nullptr;
  std::function<void(const NodeId&, bool)> reachability_;
  std::function<std::string(const NodeId&)> resolver_;
  std::function<void()> before_writes_;
  HttpSession::Handler http_handler_;
  std::function<void()> hangup_;
};

// Splits "host:port"; InvalidArgument with a clear message otherwise.
Status ParseHostPort(const std::string& s, std::string* host, uint16_t* port);

}  // namespace ringkv
