// Merkle-tree exchange: how two replicas of a partition find the keys on
// which they differ (DESIGN.md, "Anti-entropy").
//
// The initiator (TreeExchange) asks its peer for tree hashes level by level,
// starting at the root, and descends only into children of nodes whose hashes
// differ from its own tree; at the leaves it asks for the (key, digest) pairs
// of the differing segments and compares them with its own. So the hashes and
// bytes exchanged grow with the number of differing segments, not with the
// number of keys: identical replicas exchange one hash.
//
// Both sides are pure logic in the style of the rest of ringkv: no I/O, no
// clock, no threads. The responder is two functions that turn a request into
// a reply; the initiator is a state machine whose methods return the next
// message to send or say the exchange is done. The node sends the messages,
// matches replies to requests, applies timeouts, and repairs the keys found
// (reads both objects, syncs them, writes the merge both ways).
//
// Bounds: one exchange descends into at most ExchangeOptions::max_segments
// differing nodes per level and fetches at most that many leaf segments, so
// its messages stay bounded however far the replicas diverged; the
// differences it leaves are found by the next exchange (after this one's
// repairs, they are the only ones left to find).
//
// Both replicas must build their trees with the same ring size and
// MerkleTreeOptions (cluster configuration): trees of different shapes never
// compare equal, so such peers would find differences forever.
//
// Writes that land during an exchange may make it report a key that is
// already equal, or miss one that became different; the node's read-sync-
// write repair is harmless for equal keys, and the next exchange finds the
// rest.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "antientropy/merkle_tree.h"
#include "core/message.h"
#include "core/status.h"

namespace ringkv {

// Receives one (key, ObjectDigest(object)) pair.
using DigestVisitor =
    std::function<void(std::string_view key, const std::string& digest)>;
// Calls visit for every stored object whose KeyHash lies in
// [first_hash, last_hash], in any order; the node implements it with
// Store::Scan. A failed scan returns its Status.
using DigestScan = std::function<Status(uint64_t first_hash, uint64_t last_hash,
                                        const DigestVisitor& visit)>;

// --- responder ---------------------------------------------------------------

// The hashes of the requested nodes of the tree. An error reply
// (InvalidArgument) when the partition is not the tree's or a level or index
// is out of range.
AaeHashesReply AnswerHashes(const MerkleTree& tree,
                            const AaeHashesRequest& request);

// The (segment, key, digest) entries of every key in the requested segments
// (duplicates in the request are answered once). An error reply when the
// partition is not the tree's, a segment is out of range, or the scan fails.
AaeSegmentReply AnswerSegments(const MerkleTree& tree,
                               const AaeSegmentRequest& request,
                               const DigestScan& scan);

// The entries AnswerSegments would send, for the initiator's own side: one
// KeyDigest per key of the given segments, in segment order. InvalidArgument
// for a segment out of range; a failed scan's Status.
Result<std::vector<KeyDigest>> CollectSegments(
    const MerkleTree& tree, std::span<const uint32_t> segments,
    const DigestScan& scan);

// --- initiator ---------------------------------------------------------------

struct ExchangeOptions {
  // Most differing nodes descended into per level, and most leaf segments
  // whose keys are fetched, in one exchange. >= 1.
  uint32_t max_segments = 64;
  // When more than max_segments differ, the ones at or after this segment
  // (wrapping around) are taken first. Vary it between exchanges (e.g. a
  // counter) so a difference that cannot be repaired does not starve others.
  uint32_t first_segment = 0;
};

// What one exchange cost and found. Bytes are the encoded Envelope sizes of
// the messages (without the frame's length prefix, from and cluster).
struct ExchangeStats {
  uint64_t hash_requests = 0;     // AaeHashesRequests sent (round trips)
  uint64_t hashes_exchanged = 0;  // tree-node hashes received and compared
  uint64_t segments_differing =
      0;                          // differing leaves seen (may exceed fetched)
  uint64_t segments_fetched = 0;  // leaves whose key digests were requested
  uint64_t nodes_skipped = 0;     // differing nodes left to the next exchange
  uint64_t digests_received = 0;  // key digests the peer sent
  uint64_t keys_differing = 0;
  uint64_t request_bytes = 0;
  uint64_t reply_bytes = 0;

  uint64_t bytes() const { return request_bytes + reply_bytes; }
  // True iff the cap left differences for a later exchange.
  bool truncated() const { return nodes_skipped > 0; }
  // Adds every counter of other (for the node's totals).
  void Add(const ExchangeStats& other);
};

struct KeyDifference {
  enum class Kind : uint8_t {
    kMissingLocally,   // only the peer holds the key
    kMissingRemotely,  // only this replica holds the key
    kDigestsDiffer,    // both hold it, with different histories
  };
  std::string key;
  Kind kind = Kind::kDigestsDiffer;

  bool operator==(const KeyDifference&) const = default;
};

// Returned when the exchange has nothing more to ask: see differences().
struct ExchangeDone {
  bool operator==(const ExchangeDone&) const = default;
};

// The next message to send to the peer, or the end of the exchange.
using ExchangeStep =
    std::variant<AaeHashesRequest, AaeSegmentRequest, ExchangeDone>;

// One exchange of one partition's tree with one peer, from the initiator's
// side. Use: Start(), send; feed each reply to OnHashes / OnSegments, send
// what they return, until done(). Each step takes the *current* local tree
// (the exchange keeps no reference to it, so the tree may be updated or
// rebuilt between steps). A reply that does not answer the outstanding
// request, an error reply, or a call out of turn fails the exchange: the
// method returns the error and failed() is true; start a new exchange.
class TreeExchange {
 public:
  // For local's partition and shape.
  explicit TreeExchange(const MerkleTree& local, ExchangeOptions options = {});

  // The first request: the peer's root hash. Call once, first; a second
  // call fails the exchange.
  AaeHashesRequest Start();

  // Compares the reply's hashes with local's. Returns the next level's
  // request for the children of differing nodes; at the leaves, the
  // AaeSegmentRequest for the differing segments; ExchangeDone when nothing
  // differs (differences() is then empty).
  Result<ExchangeStep> OnHashes(const MerkleTree& local,
                                const AaeHashesReply& reply);

  // The segments of the outstanding AaeSegmentRequest, sorted: the local side
  // of the comparison must cover exactly these.
  const std::vector<uint32_t>& requested_segments() const { return segments_; }

  // Compares the peer's entries with the local ones for requested_segments()
  // (local entries of other segments are ignored) and finishes the exchange.
  Status OnSegments(const MerkleTree& local, const AaeSegmentReply& reply,
                    std::span<const KeyDigest> local_digests);
  // The same, scanning the local store for the requested segments.
  Status OnSegments(const MerkleTree& local, const AaeSegmentReply& reply,
                    const DigestScan& local_scan);

  uint32_t partition() const { return partition_; }
  bool done() const { return phase_ == Phase::kDone; }
  bool failed() const { return phase_ == Phase::kFailed; }
  // After done(): the differing keys with what differs, sorted by key.
  const std::vector<KeyDifference>& differences() const { return differences_; }
  // After done(): the keys of differences(), sorted.
  std::vector<std::string> DifferingKeys() const;
  const ExchangeStats& stats() const { return stats_; }

 private:
  enum class Phase : uint8_t {
    kIdle,
    kAwaitHashes,
    kAwaitSegments,
    kDone,
    kFailed
  };

  Status Fail(Status status);
  Status CheckShape(const MerkleTree& local) const;
  // Up to max_segments of the sorted indices at level, starting from the
  // cursor's node at that level and wrapping; returned sorted.
  std::vector<uint32_t> Choose(const std::vector<uint32_t>& sorted,
                               uint32_t level);
  AaeHashesRequest Ask(uint32_t level, std::vector<uint32_t> indices);

  uint32_t partition_;
  uint32_t ring_size_;
  uint32_t fanout_;
  uint32_t depth_;
  ExchangeOptions options_;
  Phase phase_ = Phase::kIdle;

  uint32_t level_ = 0;              // of the outstanding AaeHashesRequest
  std::vector<uint32_t> indices_;   // of the outstanding AaeHashesRequest
  std::vector<uint32_t> segments_;  // of the outstanding AaeSegmentRequest
  std::vector<KeyDifference> differences_;
  ExchangeStats stats_;
};

}  // namespace ringkv
