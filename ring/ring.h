// The ring: Q equal partitions of the 64-bit key-hash space and who holds
// each one.
//
// Partition p covers hashes [p * 2^64/Q, (p+1) * 2^64/Q): a key's partition
// is the top log2(Q) bits of KeyHash(key). Q (the ring size) is a power of two
// fixed when the cluster is created.
//
// Ownership is a deterministic function of (Q, n_val, the set of owning
// members): every node that sees the same members computes the same Ring,
// with no leader and no history. The claim promises, for members >= n_val:
//  - each partition's first n_val preference-list entries (its primaries) are
//    distinct nodes;
//  - balance: every node holds within ±10% of the mean number of partition
//    replicas when Q >= 16 * members;
//  - little movement: a single join or leave changes at most 1.5x the
//    theoretical minimum number of partition replicas.
// These are property-tested in tests/unit/ring_test.cc.
//
// A partition's preference list orders *every* member: the first n_val are
// the primaries, the rest are fallbacks in a stable order (used by sloppy
// quorums). A request with n < n_val takes a prefix of the primaries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dvv.h"  // NodeId
#include "core/status.h"

namespace ringkv {

class Ring {
 public:
  // An empty ring (no members). Call Build() for a real one.
  Ring() = default;

  // Computes the claim. `members` may come in any order and contain
  // duplicates; the result depends only on the set. ring_size must be a power
  // of two in [1, 2^20]; n_val >= 1.
  static Result<Ring> Build(uint32_t ring_size, uint32_t n_val, std::vector<NodeId> members);

  uint32_t ring_size() const { return ring_size_; }
  uint32_t n_val() const { return n_val_; }
  // Sorted, distinct.
  const std::vector<NodeId>& members() const { return members_; }

  // Top log2(Q) bits of the hash.
  uint32_t PartitionOfHash(uint64_t key_hash) const;
  uint32_t PartitionOfKey(std::string_view key) const;
  // First and last hash of a partition (the range is inclusive).
  uint64_t PartitionStart(uint32_t partition) const;
  uint64_t PartitionEnd(uint32_t partition) const;

  // Every member, primaries first (min(n_val, members) of them, distinct),
  // then fallbacks in a stable order.
  const std::vector<NodeId>& PreferenceList(uint32_t partition) const;
  // The first min(n, members) entries of the preference list.
  std::vector<NodeId> Primaries(uint32_t partition, uint32_t n) const;
  // Partitions for which node is among the first n_val entries.
  std::vector<uint32_t> PartitionsOf(const NodeId& node) const;

  bool operator==(const Ring&) const = default;

 private:
  uint32_t ring_size_ = 0;
  uint32_t n_val_ = 0;
  uint32_t partition_bits_ = 0;
  std::vector<NodeId> members_;
  std::vector<std::vector<NodeId>> preference_;  // per partition
};

}  // namespace ringkv
