// The messages ringkv nodes and clients exchange, as plain C++ values.
//
// Protocol logic (node/, gossip/, antientropy/) speaks in these types; the
// codec (core/codec.h) turns them into FlatBuffers Envelopes for the wire
// (proto/ringkv.fbs). Keeping the two apart lets the simulator deliver
// messages without sockets while every byte that crosses a real socket is
// verified FlatBuffers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "core/dvv.h"
#include "core/status.h"

namespace ringkv {

// Where a request may look for replicas: kSloppy lets fallbacks stand in for
// primaries that are down (with hints); kStrict uses primaries only.
enum class Mode : uint8_t { kDefault = 0, kSloppy = 1, kStrict = 2 };

// Per-request quorum settings; zero means "the node's default".
struct Quorum {
  uint32_t n = 0;
  uint32_t r = 0;
  uint32_t w = 0;
  uint32_t pr = 0;
  uint32_t pw = 0;
  uint32_t timeout_ms = 0;
  Mode mode = Mode::kDefault;
  bool lww = false;  // last-write-wins (comparison experiments only)

  bool operator==(const Quorum&) const = default;
};

struct GetRequest {
  std::string key;
  Quorum quorum;
};

// A put, or a delete when tombstone is set. context: serialized causal
// context from a read (empty: a blind write).
struct PutRequest {
  std::string key;
  std::string value;
  bool tombstone = false;
  std::string context;
  Quorum quorum;
  bool forwarded = false;
};

// The answer to a client's Get/Put: the merged object of a get (absent when
// nothing was found), the object as written for a put.
struct Reply {
  Status status;
  std::optional<DvvSet> object;
  std::optional<Dot> dot;  // puts: the dot minted for the write
};

struct InfoRequest {
  std::string topic;  // status, ring, stats, preflist, hints
  std::string arg;
};

struct InfoReply {
  Status status;
  std::string json;
};

struct ReplicaRead {
  std::string key;
};

struct ReplicaReadReply {
  Status status;
  std::optional<DvvSet> object;
};

struct ReplicaWrite {
  std::string key;
  DvvSet object;
  NodeId hint_for;  // set when a fallback stores this for a down primary
};

struct ReplicaWriteAck {
  Status status;
};

using Body = std::variant<GetRequest, PutRequest, Reply, InfoRequest, InfoReply, ReplicaRead,
                          ReplicaReadReply, ReplicaWrite, ReplicaWriteAck>;

struct Envelope {
  uint64_t request_id = 0;
  NodeId from;          // set between nodes
  std::string cluster;  // set between nodes
  Body body;
};

// True for bodies that expect an answer from a peer (so a failed send must be
// reported to the requester).
bool IsPeerRequest(const Body& body);
// "GetRequest", "ReplicaWrite", ...
const char* BodyName(const Body& body);

}  // namespace ringkv
