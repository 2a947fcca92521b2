// MerkleTree: a hash tree over one partition's key space, kept up to date
// incrementally on every write, compared with a co-replica's tree by
// antientropy/exchange.h (DESIGN.md, "Anti-entropy").
//
// Shape. The tree covers the partition's hash range [start, start + 2^64/Q).
// Its leaves are fanout^depth equal *segments* of that range: the segment of
// a key hash is the depth * log2(fanout) bits right after the partition's
// log2(Q) bits. Because the store orders objects by (KeyHash, key), a segment
// is a contiguous store range (SegmentRange) that one Store::Scan visits.
// Level 0 is the root, level `depth` the leaves; node i at level l has
// children i * fanout + c, c in [0, fanout), at level l + 1.
//
// Hashes (all 32 bytes, SHA-256):
//  - Leaf: the XOR, over the keys of the segment, of
//    SHA-256(key || object digest). The digest is always 32 bytes, so the
//    concatenation is unambiguous. XOR makes the leaf a set hash: it does not
//    depend on the order keys were added, and a key's contribution can be
//    removed without knowing the other keys, so no key is kept in memory.
//    An empty segment hashes to 32 zero bytes.
//  - Inner node: 32 zero bytes when all its children are zero (an empty
//    subtree, so an empty partition has an all-zero root), otherwise
//    SHA-256 of its children's hashes concatenated in index order.
// Promise: two trees with the same shape whose Apply calls leave them with the
// same set of (key, digest) pairs have byte-identical hashes at every node,
// whatever order the writes came in.
//
// Cost: memory is 32 bytes per node (fanout 16, depth 3: 4096 leaves,
// ~140 KiB). Apply hashes once and flips one leaf; inner nodes are recomputed
// lazily, only along dirty paths, the next time a hash is read.
//
// Threading: not thread-safe. Reading hashes (Root, Hashes, NodeHash) may
// recompute the lazy cache, so even const calls must come from one thread
// (the node's loop thread).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dvv.h"
#include "core/status.h"

namespace ringkv {

// Size of every hash and digest in this module.
inline constexpr size_t kAaeHashBytes = 32;

struct MerkleTreeOptions {
  uint32_t fanout = 16;  // a power of two >= 2
  uint32_t depth = 3;    // levels below the root; >= 1
};

class MerkleTree {
 public:
  // The tree of `partition` on a ring of `ring_size` partitions. Fails with
  // InvalidArgument unless ring_size and fanout are powers of two,
  // partition < ring_size, depth >= 1, the segment bits fit in the 64-bit
  // hash after the partition bits, and there are at most 2^20 segments.
  static Result<MerkleTree> Create(uint32_t ring_size, uint32_t partition,
                                   MerkleTreeOptions options = {});

  uint32_t partition() const { return partition_; }
  uint32_t ring_size() const { return ring_size_; }
  uint32_t fanout() const { return fanout_; }
  uint32_t depth() const { return depth_; }
  // depth + 1 (root to leaves).
  uint32_t levels() const { return depth_ + 1; }
  // Number of leaves: fanout^depth.
  uint32_t segments() const { return NodesAt(depth_); }
  // Number of nodes at a level: fanout^level (0 for a level past the leaves).
  uint32_t NodesAt(uint32_t level) const;
  // Keys currently accounted for (Apply with no old digest adds one, with no
  // new digest removes one).
  uint64_t key_count() const { return key_count_; }

  // True iff hash lies in this partition's range.
  bool Contains(uint64_t hash) const;
  // The segment (leaf index) of a hash in this partition's range.
  uint32_t SegmentOf(uint64_t hash) const;
  // First and last hash (inclusive) of a segment; segment < segments().
  std::pair<uint64_t, uint64_t> SegmentRange(uint32_t segment) const;

  // Records that key (whose KeyHash is hash) changed from old_digest to
  // new_digest. An empty digest means "absent": old empty is an insert, new
  // empty a removal. Non-empty digests are kAaeHashBytes long (ObjectDigest).
  // Returns false and changes nothing when hash is outside the partition.
  bool Apply(std::string_view key, uint64_t hash, std::string_view old_digest,
             std::string_view new_digest);
  // Forgets every key (all hashes zero), e.g. before a rebuild from storage.
  void Clear();

  // The root hash (kAaeHashBytes).
  std::string Root() const;
  // The hash of one node; valid until the next Apply or Clear. level <=
  // depth, index < NodesAt(level).
  std::string_view NodeHash(uint32_t level, uint32_t index) const;
  // The hashes of the given nodes of one level, concatenated in the order
  // given (kAaeHashBytes each). InvalidArgument for a level or index out of
  // range (the indices may come from a peer).
  Result<std::string> Hashes(uint32_t level,
                             std::span<const uint32_t> indices) const;

 private:
  MerkleTree() = default;
  // Recomputes every dirty inner node, bottom-up.
  void Flush() const;
  void MarkDirty(uint32_t leaf);

  uint32_t ring_size_ = 1;
  uint32_t partition_ = 0;
  uint32_t fanout_ = 16;
  uint32_t fanout_bits_ = 4;
  uint32_t depth_ = 3;
  uint32_t partition_bits_ = 0;  // log2(ring_size)
  uint32_t segment_bits_ = 12;   // depth * fanout_bits
  uint64_t start_ = 0;           // first hash of the partition
  uint64_t key_count_ = 0;

  // nodes_[l] holds NodesAt(l) hashes of kAaeHashBytes each. Leaves are
  // always current; inner nodes flagged in dirty_ are stale.
  mutable std::vector<std::string> nodes_;
  mutable std::vector<std::vector<bool>> dirty_;  // per inner level
  mutable bool any_dirty_ = false;
};

// The digest of a stored object that the tree hashes: SHA-256 of this
// canonical encoding (integers big-endian, strings prefixed by a 4-byte
// big-endian length):
//   "ringkv.digest.v1"
//   u32 number of clock entries, then per entry in actor order:
//     string actor, u64 counter
//   u32 number of siblings, then per sibling in dot order:
//     string actor, u64 counter, u8 tombstone (1) or value (0)
// Values and timestamps are deliberately left out: a dot names one write, so
// two replicas with the same causal history (clock and sibling dots) hold the
// same values, and leaving values out keeps hashing cheap for large values.
// Any write changes the clock, hence the digest. kAaeHashBytes long.
std::string ObjectDigest(const DvvSet& object);

}  // namespace ringkv
