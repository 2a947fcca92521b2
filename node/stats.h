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
  uint64_t datatype_ops = 0;         // counter, set and map operations asked of this node
  uint64_t datatype_reads = 0;       // their reads (quorum reads, also counted in gets)
  uint64_t datatype_wrong_type = 0;  // operations refused: the key holds another type
  Histogram get_latency_us;
  Histogram put_latency_us;
};

}  // namespace ringkv
