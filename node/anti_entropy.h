// AntiEntropy: Merkle-tree anti-entropy for the partitions a node owns.
//
// Keeps one MerkleTree (antientropy/merkle_tree.h) per owned partition,
// updated on every local write (OnWrite) and rebuilt from the store at start
// and on request, in slices of a few thousand keys per loop turn. Every
// interval it exchanges one partition's tree with one co-replica (round
// robin over partitions and peers; one exchange at a time): roots first,
// then only differing branches, then the key digests of differing leaves;
// each differing key is then read from the peer and the DVV merge is written
// to whichever side lacked something, at most max_keys_per_sec keys a second.
// Merging is the DVV sync, so a tombstone always beats the value it deleted:
// anti-entropy never brings a deleted key back.
// Pure logic over Store, Transport, Clock and the membership.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "antientropy/exchange.h"
#include "antientropy/merkle_tree.h"
#include "core/env.h"
#include "node/cluster_membership.h"
#include "store/store.h"

namespace ringkv {

struct AaeConfig {
  bool enabled = true;
  uint64_t interval_ms = 10000;       // one exchange per interval
  uint32_t max_keys_per_sec = 2000;   // repair rate limit
  MerkleTreeOptions tree;             // fanout 16, depth 3 by default
};

class AntiEntropy {
 public:
  // Request ids of exchange messages and repair reads carry this bit
  // (gossip 63, hints 62, ownership handoff 61).
  static constexpr uint64_t kRequestBit = uint64_t{1} << 60;
  static bool IsAaeRequest(uint64_t id) { return (id >> 60) == 1; }

  using MergeFn = std::function<Status(const std::string& key, const DvvSet& object)>;

  struct Stats {
    uint64_t exchanges = 0;
    uint64_t exchanges_failed = 0;
    uint64_t segments_differing = 0;
    uint64_t keys_differing = 0;
    uint64_t keys_repaired = 0;  // keys where either side got something new
    uint64_t repairs_sent = 0;   // merged objects written to the peer
    uint64_t repairs_local = 0;  // merged objects written here
    uint64_t bytes = 0;          // tree and digest messages, both ways
    uint64_t rebuilds = 0;
  };

  AntiEntropy(NodeId self, std::string cluster, AaeConfig config, Store* store,
              Transport* transport, Clock* clock, const ClusterMembership* membership,
              MergeFn merge);
  ~AntiEntropy();

  void Start();
  void Stop();

  // A main-store object changed (old/now: nullptr when absent).
  void OnWrite(const std::string& key, const DvvSet* old, const DvvSet* now);
  // Ownership may have changed: add trees for new partitions, drop others.
  void OnMembershipChange();
  // Rebuilds every tree from the store.
  void RebuildAll();
  // Starts an exchange now (tests, admin).
  void ExchangeNow();

  AaeHashesReply AnswerHashes(const AaeHashesRequest& req) const;
  AaeSegmentReply AnswerSegments(const AaeSegmentRequest& req) const;
  void OnHashesReply(const NodeId& from, uint64_t id, const AaeHashesReply& reply);
  void OnSegmentsReply(const NodeId& from, uint64_t id, const AaeSegmentReply& reply);
  void OnReadReply(const NodeId& from, uint64_t id, const ReplicaReadReply& reply);
  void OnSendFailed(const NodeId& to, uint64_t id);

  const Stats& stats() const { return stats_; }
  // Trees ready (built), trees in all, and whether an exchange is running.
  size_t trees_ready() const;
  size_t trees() const { return trees_.size(); }
  bool exchanging() const { return exchange_ != nullptr; }
  std::string Json() const;

  // See FirstRequestId (core/env.h).
  void StartRequestIdsAt(uint64_t first) { next_id_ = first; }

 private:
  struct TreeState {
    MerkleTree tree;
    bool ready = false;
    bool rebuilding = false;
    std::string cursor;  // store key of the last key scanned while rebuilding
  };
  struct Exchange {
    uint32_t partition = 0;
    NodeId peer;
    uint64_t id = 0;  // request id of the outstanding message
    uint64_t started_us = 0;
    uint64_t last_activity_us = 0;
    std::unique_ptr<TreeExchange> tree_exchange;
    std::deque<std::string> to_repair;
    std::map<uint64_t, std::string> reads;  // outstanding repair reads
    uint64_t repaired = 0;
  };
  struct LastExchange {
    NodeId peer;
    uint64_t at_ms = 0;
    uint64_t differences = 0;
    uint64_t repaired = 0;
    uint64_t bytes = 0;
    bool ok = true;
  };

  void Tick();
  void RebuildSlice();
  void MaybeStartExchange();
  void Send(const NodeId& to, Body body, uint64_t* id);
  void RepairSome(size_t budget);
  void Finish(bool ok);
  DigestScan Scanner() const;

  NodeId self_;
  std::string cluster_;
  AaeConfig config_;
  Store* store_;
  Transport* transport_;
  Clock* clock_;
  const ClusterMembership* membership_;
  MergeFn merge_;

  std::map<uint32_t, TreeState> trees_;
  std::unique_ptr<Exchange> exchange_;
  std::map<uint32_t, LastExchange> last_;
  uint32_t next_partition_ = 0;
  uint32_t next_peer_ = 0;
  uint32_t first_segment_ = 0;
  std::optional<uint32_t> retry_partition_;
  uint64_t next_id_ = 1;
  uint64_t last_exchange_start_us_ = 0;
  double repair_budget_ = 0;
  uint64_t last_tick_us_ = 0;
  Clock::TimerId timer_ = 0;
  bool running_ = false;
  Stats stats_;
};

}  // namespace ringkv
