// KeyLister: a bucket's keys listed by coverage, as Riak's coverage plans.
//
// A ListKeysRequest asks for one page: the live keys of a bucket that start
// with a prefix and are greater than a cursor, smallest first. The objects
// of a partition sit in the store in hash order, not key order, so there is
// no index to walk: the lister asks one live replica of every partition
// (preferring, among the partition's primaries, those that hold it
// completely, in preference-list order) for its smallest matching keys, in
// one PartitionKeysRequest per node naming all the partitions that node
// covers. Each replica scans those partitions (KeyScan, run in slices of
// kScanSlice objects per loop turn by KeyScanRunner, so a large store does
// not stall its loop) keeping a heap of at most a page of keys, and answers
// them with whether it left keys out ("truncated": then every key it has up
// to its last one is in the answer). The lister merges: the page is the smallest `limit` keys of
// the union that are not above any truncated answer's last key, so a page
// never skips a key, and `more` says whether a later page may hold keys.
// Memory is bounded by (nodes x page) keys, at the lister and a page per
// replica.
//
// A replica that fails or stays silent past the timeout is replaced, for
// its partitions, by the partition's next live primary; a partition with
// none left is "missed" and named in the answer (the page is then not
// complete). Tombstoned and expired keys are left out by the replica that
// scans, by its own wall clock. A listing reads one copy of each partition
// (like an r=1 read): a key a write has not reached on that replica yet is
// not listed until read repair, hints or anti-entropy bring it.
//
// count_only counts the live matching keys instead (RESP DBSIZE; the
// bucket-set check that a bucket is empty).
//
// Request ids come from the coordinator's sequence (one id space for the
// node's client requests). Pure state machine over Transport and Clock.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/env.h"
#include "core/message.h"
#include "node/cluster_membership.h"
#include "node/config.h"
#include "node/coordinator.h"
#include "node/stats.h"
#include "store/store.h"

namespace ringkv {

// One replica's answer to a PartitionKeysRequest, built a slice at a time:
// the live keys of the bucket it stores in the partitions, with the prefix,
// after the cursor, smallest first, at most a page (or their count).
// Expired siblings count as deleted by the wall clock given at the start.
class KeyScan {
 public:
  KeyScan(PartitionKeysRequest req, uint64_t now_ms);
  // Scans at most `budget` more objects; true once the answer is complete.
  bool Step(Store* store, const Ring& ring, size_t budget);
  PartitionKeysReply TakeReply();

 private:
  void Keep(std::string_view key);

  PartitionKeysRequest req_;
  uint64_t now_ms_;
  size_t limit_;
  size_t next_partition_ = 0;
  std::string cursor_;  // store key of the last object scanned in the partition
  // The smallest keys seen so far, largest on top.
  std::priority_queue<std::string> page_;
  size_t page_bytes_ = 0;
  PartitionKeysReply reply_;
};

// Runs KeyScans on the node's loop, a slice per timer turn, round robin, so
// a listing never blocks request handling for more than one slice. At most
// kMaxScans wait; more are answered "busy" (Unavailable) at once.
class KeyScanRunner {
 public:
  static constexpr size_t kScanSlice = 2000;  // objects per slice (a few ms)
  static constexpr size_t kMaxScans = 64;
  using Done = std::function<void(PartitionKeysReply)>;

  KeyScanRunner(Store* store, Clock* clock, const ClusterMembership* membership);
  ~KeyScanRunner();
  KeyScanRunner(const KeyScanRunner&) = delete;
  KeyScanRunner& operator=(const KeyScanRunner&) = delete;

  void Start(PartitionKeysRequest req, Done done);
  size_t running() const { return scans_.size(); }

 private:
  struct Job {
    KeyScan scan;
    Done done;
  };
  void Slice();

  Store* store_;
  Clock* clock_;
  const ClusterMembership* membership_;
  std::deque<Job> scans_;
  Clock::TimerId timer_ = 0;
};

// The node that coordinates a listing. The KeyScanRunner given runs this
// node's own share and must outlive the lister (it does: the Node declares
// it first, and a scan's callback runs only from the runner's timer).
class KeyLister {
 public:
  using Done = std::function<void(ListKeysReply)>;

  KeyLister(const NodeConfig* config, NodeStats* stats, const ClusterMembership* membership,
            Transport* transport, Clock* clock, KeyScanRunner* scans,
            std::function<uint64_t()> next_request_id);
  ~KeyLister();  // cancels the timers of listings in flight
  KeyLister(const KeyLister&) = delete;
  KeyLister& operator=(const KeyLister&) = delete;

  // A client's listing: the answer goes to the origin.
  void Start(Coordinator::Origin origin, ListKeysRequest req);
  // A listing made by the node itself: done gets the answer.
  void Start(ListKeysRequest req, Done done);

  // A replica's answer / a request that could not be sent. OnSendFailed is
  // false if request_id is not one of the lister's.
  void OnReply(const NodeId& from, uint64_t request_id, PartitionKeysReply reply);
  bool OnSendFailed(const NodeId& to, uint64_t request_id);

  size_t pending() const { return ops_.size(); }

 private:
  struct Part {
    std::vector<NodeId> candidates;  // live primaries, best first
    size_t next = 0;                 // the candidate asked (or to ask)
  };
  struct Ask {
    uint64_t op = 0;
    NodeId node;
    std::vector<uint32_t> partitions;
    Clock::TimerId timer = 0;
  };
  struct ListOp {
    uint64_t id = 0;
    Coordinator::Origin origin;
    Done done;
    ListKeysRequest req;
    uint32_t limit = 0;
    uint64_t timeout_ms = 0;
    std::map<uint32_t, Part> parts;
    std::vector<std::string> keys;     // the smallest keys answered so far, sorted
    std::optional<std::string> bound;  // least last key of a truncated answer
    bool overflow = false;             // keys beyond `limit` were dropped
    uint64_t count = 0;
    std::vector<uint32_t> missed;
    size_t asks = 0;  // in flight
  };

  void Begin(std::unique_ptr<ListOp> op);
  // Asks the current candidate of each partition in `partitions`.
  void Dispatch(uint64_t op_id, const std::vector<uint32_t>& partitions);
  // An ask failed: its partitions move to their next candidates.
  void Fail(uint64_t request_id);
  void Merge(ListOp& op, PartitionKeysReply reply);
  void MaybeFinish(uint64_t op_id);

  const NodeConfig* config_;
  NodeStats* stats_;
  const ClusterMembership* membership_;
  Transport* transport_;
  Clock* clock_;
  KeyScanRunner* scans_;
  std::function<uint64_t()> next_request_id_;
  uint64_t next_op_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<ListOp>> ops_;
  std::unordered_map<uint64_t, Ask> asks_;  // by request id
};

}  // namespace ringkv
