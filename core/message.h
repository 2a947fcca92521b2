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

#include "core/datatypes.h"
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
  std::string key;  // the user's key within bucket
  Quorum quorum;
  std::string bucket;  // empty: "default" (core/bucket_key.h)
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
  std::string bucket;  // empty: "default"
  // Expiry: ttl_ms after the coordinator's wall clock (0: the bucket's
  // default ttl, if any); persist: never expires, whatever the bucket says.
  uint64_t ttl_ms = 0;
  bool persist = false;
  // Conditional writes (checked by a quorum read at the coordinating
  // replica; not linearizable): no live value / nothing the context does
  // not cover. Otherwise ConditionFailed.
  bool if_absent = false;
  bool if_unchanged = false;
};

// The answer to a client's Get/Put: the merged object of a get (absent when
// nothing was found), the object as written for a put.
struct Reply {
  Status status;
  std::optional<DvvSet> object;
  std::optional<Dot> dot;  // puts: the dot minted for the write
  // Gets: the bucket's sibling warning level (0: not said).
  uint32_t warn_siblings = 0;
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

// A bucket's properties (node/buckets.h): zero (kDefault for mode) is "not
// set: the node's default". Cluster metadata, spread by gossip.
struct BucketProps {
  uint32_t n = 0;
  uint32_t r = 0;
  uint32_t w = 0;
  uint32_t pr = 0;
  uint32_t pw = 0;
  Mode mode = Mode::kDefault;
  bool lww = false;
  uint32_t max_siblings = 0;
  uint32_t warn_siblings = 0;
  uint64_t ttl_s = 0;  // default expiry of the bucket's values; 0: none

  bool operator==(const BucketProps&) const = default;
};

// One bucket's properties and the version of its last change: the wall
// clock (ms) and the node that made it. Merges keep the greater
// (changed_ms, changed_by).
struct BucketEntry {
  std::string name;
  uint64_t changed_ms = 0;
  NodeId changed_by;
  BucketProps props;

  bool operator==(const BucketEntry&) const = default;
};

struct GossipPush {
  uint32_t ring_size = 0;
  uint32_t n_val = 0;
  std::vector<MemberState> members;
  std::vector<BucketEntry> buckets;
};

struct GossipAck {
  uint32_t ring_size = 0;
  uint32_t n_val = 0;
  std::vector<MemberState> members;
  std::vector<BucketEntry> buckets;
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

// --- convergent data types (core/datatypes.h) ---------------------------------

// A counter, set or map operation. A read (kRead) is a quorum read answered
// with a Reply; any other operation is coordinated like a put (forwarded to a
// replica, applied there, replicated) and answered with a DataTypeReply.
struct DataTypeRequest {
  std::string key;
  // Empty: the default bucket (core/bucket_key.h), whose properties apply.
  std::string bucket;
  DataType type = DataType::kNone;
  DataTypeOpCode op = DataTypeOpCode::kRead;
  std::vector<std::string> args;  // members, fields, or field/value pairs
  int64_t delta = 0;              // kIncrement, kIncrementField
  Quorum quorum;
  bool forwarded = false;
};

struct DataTypeReply {
  Status status;
  int64_t integer = 0;     // the answer: INCR's new value, how many SADD added, ...
  std::optional<Dot> dot;  // the dot of the write (none when nothing was written)
};

// --- key listing by coverage (node/key_listing.h) ---------------------------

// A page of a bucket's live keys in key order: those that start with prefix
// and are greater than after (the cursor: the last key of the page before).
struct ListKeysRequest {
  std::string bucket;  // empty: "default"
  std::string prefix;
  std::string after;
  uint32_t limit = 0;  // page size; 0: kDefaultListPage; at most kMaxListPage
  bool count_only = false;  // count the live keys (with the prefix) instead
  uint32_t timeout_ms = 0;  // 0: the node's
};

struct ListKeysReply {
  Status status;
  std::vector<std::string> keys;  // sorted, at most limit
  bool more = false;               // keys after keys.back() may exist
  std::vector<uint32_t> missed;    // partitions no live replica answered for
  uint64_t count = 0;              // count_only
};

// Between nodes: the live keys a replica stores in these partitions.
struct PartitionKeysRequest {
  std::vector<uint32_t> partitions;
  std::string bucket;
  std::string prefix;
  std::string after;
  uint32_t limit = 0;
  bool count_only = false;
};

struct PartitionKeysReply {
  Status status;
  std::vector<std::string> keys;  // the user's keys, sorted, smallest first
  bool truncated = false;         // keys greater than keys.back() left out
  uint64_t count = 0;
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
                          ReapAck, DataTypeRequest, DataTypeReply, ListKeysRequest, ListKeysReply,
                          PartitionKeysRequest, PartitionKeysReply, AuthRequest>;

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
