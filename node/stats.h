// NodeStats: the counters `ringkv stats` shows for the coordinator and the
// replica of one node. Plain counters, owned by the Node, written by the
// coordinator and the replica on the loop thread.
#pragma once

#include <array>
#include <cstdint>

#include "core/histogram.h"
#include "core/status.h"

namespace ringkv {

// The client operations a coordinator answers, for per-operation metrics.
// kDataType: an operation on a counter, set or map (reads of one are gets).
enum class RequestOp : uint8_t { kGet = 0, kPut = 1, kDelete = 2, kDataType = 3 };
inline constexpr size_t kRequestOps = 4;
inline const char* RequestOpName(RequestOp op) {
  static const char* kNames[] = {"get", "put", "delete", "datatype"};
  return kNames[static_cast<size_t>(op)];
}

// Client requests this node answered as the coordinator the client asked
// (a put forwarded to a replica is counted once, where the client sent it),
// by operation and by the status code of the answer, and the time from the
// request's arrival to its answer, whatever the outcome. What /metrics
// shows as ringkv_requests_total and ringkv_request_duration_seconds.
struct RequestMetrics {
  static constexpr size_t kCodes = static_cast<size_t>(Status::kLastCode) + 1;
  std::array<std::array<uint64_t, kCodes>, kRequestOps> answered{};
  std::array<Histogram, kRequestOps> latency_us;

  void Record(RequestOp op, Status::Code code, uint64_t micros) {
    auto o = static_cast<size_t>(op);
    auto c = static_cast<size_t>(code);
    if (c < kCodes) ++answered[o][c];
    latency_us[o].Record(micros);
  }
};

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
  uint64_t sibling_warnings = 0;     // gets above the bucket's sibling warning level
  uint64_t sibling_cap_refused = 0;  // client writes refused: too many siblings
  uint64_t expired_hidden = 0;       // expired siblings left out of get answers
  uint64_t conditional_writes = 0;   // if-absent / if-unchanged writes coordinated
  uint64_t conditions_failed = 0;    // of those, refused: the condition did not hold
  uint64_t key_listings = 0;         // key listing pages (and counts) coordinated
  uint64_t listing_partitions_missed = 0;  // partitions a listing found no replica for
  Histogram get_latency_us;
  Histogram put_latency_us;
  RequestMetrics requests;
  Histogram siblings_per_read;  // live siblings of each successful get
};

}  // namespace ringkv
