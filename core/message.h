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
#include <vector>

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
  NodeId hint_for;  // asked as a fallback standing in for this primary
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

// --- membership -------------------------------------------------------------

enum class MemberStatus : uint8_t { kJoining = 0, kUp = 1, kLeaving = 2, kLeft = 3, kRemoved = 4 };
// "joining", "up", "leaving", "left", "removed"
const char* MemberStatusName(MemberStatus s);

struct MemberState {
  NodeId id;
  std::string address;  // host:port
  uint64_t incarnation = 0;
  uint64_t heartbeat = 0;
  MemberStatus status = MemberStatus::kJoining;
  // Bitmap, bit p (byte p/8, bit p%8): holds a complete copy of partition p.
  std::string complete;

  bool operator==(const MemberState&) const = default;
};

struct GossipPush {
  uint32_t ring_size = 0;
  uint32_t n_val = 0;
  std::vector<MemberState> members;
};

struct GossipAck {
  uint32_t ring_size = 0;
  uint32_t n_val = 0;
  std::vector<MemberState> members;
};

// --- ownership handoff -------------------------------------------------------

struct KeyedObject {
  std::string key;
  DvvSet object;
};

struct HandoffRequest {
  uint32_t partition = 0;
  std::string after;  // store cursor; empty: from the start
  uint32_t max_objects = 0;
  uint32_t max_bytes = 0;
};

struct HandoffBatch {
  Status status;
  uint32_t partition = 0;
  std::vector<KeyedObject> objects;
  std::string next;
  bool done = false;
};

// --- anti-entropy ------------------------------------------------------------

struct AaeHashesRequest {
  uint32_t partition = 0;
  uint32_t level = 0;
  std::vector<uint32_t> indices;
};

struct AaeHashesReply {
  Status status;
  uint32_t partition = 0;
  uint32_t level = 0;
  std::vector<uint32_t> indices;
  std::string hashes;  // 32 bytes per index
};

struct AaeSegmentRequest {
  uint32_t partition = 0;
  std::vector<uint32_t> segments;
};

struct KeyDigest {
  uint32_t segment = 0;
  std::string key;
  std::string digest;  // 32 bytes
  bool operator==(const KeyDigest&) const = default;
};

struct AaeSegmentReply {
  Status status;
  uint32_t partition = 0;
  std::vector<KeyDigest> entries;
};

// --- tombstone reaping (node/tombstone_reaper.h) -----------------------------

// Asks a member whether anything it holds for each key (its stored object,
// every hint) is newer than or concurrent with the tombstone given, merging
// the tombstone into what it holds. Every object is tombstone-only.
struct ReapCheck {
  std::vector<KeyedObject> entries;
};

// One verdict per ReapCheck entry, in order.
enum class ReapVerdict : uint8_t {
  kOk = 0,         // nothing held for the key, or only older copies
  kOkHolding = 1,  // as kOk, and the member stores an object for the key
  kNewer = 2,      // something held is newer or concurrent: the key lives on
  kBusy = 3,       // a hint for the key waits for delivery: ask again later
};

struct ReapCheckReply {
  Status status;
  std::vector<ReapVerdict> verdicts;
};

// Erase each key whose stored object is tombstone-only with exactly the
// clock of the entry's object (compare-and-delete). Every object is
// tombstone-only.
struct Reap {
  std::vector<KeyedObject> entries;
};

struct ReapAck {
  Status status;
  uint32_t reaped = 0;  // entries erased here
};

// --- security -----------------------------------------------------------------

// A client logs in as a user of the node's ACL; answered with a Reply. Handled
// by the server runtime (server/access.h), never by the Node.
struct AuthRequest {
  std::string user;
  std::string password;
};

using Body = std::variant<GetRequest, PutRequest, Reply, InfoRequest, InfoReply, ReplicaRead,
                          ReplicaReadReply, ReplicaWrite, ReplicaWriteAck, GossipPush, GossipAck,
                          HandoffRequest, HandoffBatch, AaeHashesRequest, AaeHashesReply,
                          AaeSegmentRequest, AaeSegmentReply, ReapCheck, ReapCheckReply, Reap,
                          ReapAck, AuthRequest>;

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
