// The two seams between protocol logic and the world: Transport sends
// messages, Clock tells time and runs timers. server/runtime.cc implements them
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
  virtual void Send(const NodeId& to, const Envelope& env) = 0;
  // Answers a client on the connection its request came from.
  virtual void Reply(ClientId client, Envelope env) = 0;
};

// Where a node's request ids start in one incarnation (process lifetime).
// Peers may answer a request long after it was sent (delays, pauses); ids
// that restart at 1 after a restart would let such a late answer complete a
// new request with the same id. The incarnation takes bits 35..58 (24 bits)
// and the count bits 0..34; bits 59..63 stay clear: components tag their ids
// with them (gossip 63, hint replay 62, ownership handoff 61, AAE 60,
// tombstone reaper 59).
inline uint64_t FirstRequestId(uint64_t incarnation) { return ((incarnation & 0xFFFFFF) << 35) | 1; }
static_assert((uint64_t{0xFFFFFF} << 35 | ((uint64_t{1} << 35) - 1)) < (uint64_t{1} << 59),
              "request ids of an incarnation must leave the component tag bits 59..63 clear");

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
