// The two seams between protocol logic and the world: Transport sends
// messages, Clock tells time and runs timers. node/runtime.cc implements them
// with libuv sockets and timers; tests/sim with a seeded virtual network and
// virtual time. Protocol classes hold pointers to these and do no other I/O.
#pragma once

#include <cstdint>
#include <functional>

#include "core/message.h"

namespace ringkv {

// Identifies a client connection on the node that received its request.
using ClientId = uint64_t;

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends a message to a peer node, best effort. If the peer cannot be
  // reached and the message is a request (IsPeerRequest), the transport later
  // calls Node::OnSendFailed with its request id.
  virtual void Send(const NodeId& to, Envelope env) = 0;
  // Answers a client on the connection its request came from.
  virtual void Reply(ClientId client, Envelope env) = 0;
};

class Clock {
 public:
  using TimerId = uint64_t;

  virtual ~Clock() = default;
  // Monotonic time.
  virtual uint64_t NowMicros() = 0;
  // Wall-clock time, milliseconds since the Unix epoch (lww timestamps).
  virtual uint64_t WallMillis() = 0;
  // Runs fn once after delay_ms on the loop; returns an id for Cancel.
  virtual TimerId After(uint64_t delay_ms, std::function<void()> fn) = 0;
  // Cancels a timer that has not fired; a no-op otherwise.
  virtual void Cancel(TimerId id) = 0;
};

}  // namespace ringkv
