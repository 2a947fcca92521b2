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
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/env.h"
#include "node/metrics.h"
#include "node/node.h"
#include "resp/session.h"
#include "server/http_session.h"

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
  // Port 0: off.
  std::string http_host;
  uint16_t http_port = 0;
  HttpOptions http;
};

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
};

// Splits "host:port"; InvalidArgument with a clear message otherwise.
Status ParseHostPort(const std::string& s, std::string* host, uint16_t* port);

}  // namespace ringkv
