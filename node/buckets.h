// Buckets: the properties of every bucket this node knows, as cluster
// metadata.
//
// A bucket is a namespace of keys (core/bucket_key.h) with optional
// properties (BucketProps, core/message.h): quorum defaults n, r, w, pr, pw
// and mode, lww, the sibling cap and warning level, a default ttl. A
// request's own flags override the bucket's, which override the node's
// (NodeConfig); a bucket nobody set has no entry and uses the node's.
//
// Convergence. Each bucket's entry carries the version of its last change:
// (changed_ms, changed_by) = the wall clock of the node that made it and
// that node's id. Every push and ack of gossip carries all entries
// (gossip/gossiper.h, SetMetadata), and a merge keeps, per bucket, the entry
// with the greater version (ties, which need one node to change a bucket
// twice in one millisecond after a clock step, by the content). The merge is
// commutative, associative and idempotent, so every node ends with the same
// entries within a few gossip rounds. A change made on two nodes at once
// keeps the later one (ties: the greater node id) whole, losing the other
// even if it changed other fields: acceptable for configuration, which one
// operator changes now and then, and which must converge without a leader.
// A node stamps its change above the version it holds (max(now, held + 1)),
// so a change always wins over what its node has seen, even with a clock
// that runs behind.
//
// Bounds: at most kMaxBuckets (1024) buckets; creating more is refused, and
// a merge that would exceed it (two nodes creating different buckets at
// once near the limit) keeps the 1024 smallest names, deterministically.
//
// n: a bucket's n may be set when the bucket is created and never changed
// (Set refuses), and is at most the cluster's n (ownership handoff,
// anti-entropy and the reaper keep the cluster's n copies of a partition).
// The default bucket's n is the cluster's --n. The Node also refuses a
// first n for a bucket that already holds keys (written with the node's n).
//
// No I/O: the Node persists Serialize() in the store's metadata after every
// change and Loads it at start. Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/message.h"
#include "core/status.h"
#include "node/config.h"

namespace ringkv {

class Buckets {
 public:
  // The fields a `bucket set` gives; the others keep their values.
  struct Patch {
    std::optional<uint32_t> n, r, w, pr, pw, max_siblings, warn_siblings;
    std::optional<Mode> mode;
    std::optional<bool> lww;
    std::optional<uint64_t> ttl_s;
  };
  // The properties a request of a bucket runs with when neither it nor the
  // bucket says otherwise.
  static constexpr const char* kMetaName = "buckets";

  explicit Buckets(const NodeConfig* config);

  // The state persisted in metadata (Serialize's JSON). A corrupt document
  // is an error: the node should not start with half its configuration.
  Status Load(std::string_view json);
  std::string Serialize() const;

  // The entry of a bucket ("" = default), or nullptr if nobody set it.
  const BucketEntry* Find(std::string_view bucket) const;
  // Its properties (all unset if nobody set it).
  BucketProps PropsOf(std::string_view bucket) const;
  // Sibling cap and warning level in effect for a bucket.
  uint32_t MaxSiblings(const BucketProps& p) const;
  uint32_t WarnSiblings(const BucketProps& p) const;

  // A change made on this node at wall clock now_ms: the patch over the
  // bucket's current properties, checked, stamped and kept. InvalidArgument
  // for bad values, a change of n, more than kMaxBuckets buckets.
  Result<BucketEntry> Set(std::string_view bucket, const Patch& patch, uint64_t now_ms);
  // Checks a patch without applying it (Set does the same checks).
  Status Check(std::string_view bucket, const Patch& patch) const;

  // Entries from a peer (gossip). True if anything changed here.
  bool Merge(const std::vector<BucketEntry>& remote);
  // Every entry, sorted by name (what gossip carries).
  std::vector<BucketEntry> Entries() const;
  size_t size() const { return entries_.size(); }

  // The bucket-set request: {"name": B, "n": 3, "mode": "strict", ...}.
  static Result<std::pair<std::string, Patch>> ParseSetRequest(std::string_view json);
  // {"name", "n", "r", "w", "pr", "pw", "mode", "lww", "max_siblings",
  //  "warn_siblings", "ttl", "set": [fields the bucket sets], "changed_ms",
  //  "changed_by"}: the values in effect on this node.
  std::string Json(std::string_view bucket) const;
  std::string ListJson() const;

  // True iff a is a newer version of a bucket than b (the merge order).
  static bool Newer(const BucketEntry& a, const BucketEntry& b);

 private:
  void Trim();

  const NodeConfig* config_;
  std::map<std::string, BucketEntry, std::less<>> entries_;
};

}  // namespace ringkv
