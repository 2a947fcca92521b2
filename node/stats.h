// NodeStats: the counters `ringkv stats` shows for the coordinator and the
// replica of one node. Plain counters, owned by the Node, written by the
// coordinator and the replica on the loop thread.
#pragma once

#include <cstdint>

#include "core/histogram.h"

namespace ringkv {

struct NodeStats {
  uint64_t gets = 0;
  uint64_t puts = 0;
  uint64_t deletes = 0;
  uint64_t forwarded_puts = 0;
  uint64_t duplicate_forwards = 0;  // forwarded puts received twice, ignored
  uint64_t get_not_found = 0;
  uint64_t read_quorum_failures = 0;
  uint64_t write_quorum_failures = 0;
  uint64_t invalid_requests = 0;
  uint64_t read_repairs = 0;       // repair writes sent
  uint64_t siblings_seen = 0;      // gets that returned more than one sibling
  uint64_t max_siblings = 0;
  uint64_t replica_reads = 0;      // served for coordinators (incl. self)
  uint64_t replica_writes = 0;
  uint64_t wrong_cluster_refused = 0;
  uint64_t coordinator_hints = 0;  // hints kept by a coordinator with no fallback left
  uint64_t sibling_warnings = 0;     // gets above the bucket's sibling warning level
  uint64_t sibling_cap_refused = 0;  // client writes refused: too many siblings
  uint64_t expired_hidden = 0;       // expired siblings left out of get answers
  uint64_t conditional_writes = 0;   // if-absent / if-unchanged writes coordinated
  uint64_t conditions_failed = 0;    // of those, refused: the condition did not hold
  uint64_t key_listings = 0;         // key listing pages (and counts) coordinated
  uint64_t listing_partitions_missed = 0;  // partitions a listing found no replica for
  Histogram get_latency_us;
  Histogram put_latency_us;
};

}  // namespace ringkv
