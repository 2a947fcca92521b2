// HintedHandoff: the durable hints a fallback keeps for primaries that were
// down when a sloppy-quorum write arrived, and the loop that delivers them.
//
// Promises:
//  - A hint is in the Store (its own key space) before the write that made it
//    is acknowledged; hinting the same key twice merges (DVV sync).
//  - Each target's hints are replayed in batches (at most one batch in
//    flight per target: back-pressure), as plain ReplicaWrites, so replay is
//    an idempotent DVV sync at the target.
//  - A hint is deleted only after the target acknowledged it, and only if it
//    did not change meanwhile (a newer hinted write stays for the next batch).
//  - A failed batch is retried with exponential backoff (250 ms .. 10 s);
//    OnPeerAlive() retries at once.
// Pure logic: Store, Transport and Clock only; the loop thread calls in.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/env.h"
#include "store/store.h"

namespace ringkv {

class HintedHandoff {
 public:
  // Request ids of replay writes carry this bit, so the node can route acks.
  // (Gossip uses bit 63.)
  static constexpr uint64_t kRequestBit = uint64_t{1} << 62;

  struct TargetStats {
    uint64_t queued = 0;
    uint64_t replayed = 0;  // delivered and deleted
    uint64_t failed = 0;    // writes that did not reach the target
    uint64_t in_flight = 0;
  };

  HintedHandoff(NodeId self, std::string cluster, Store* store, Transport* transport, Clock* clock);
  ~HintedHandoff();

  // Loads queue sizes from the store and starts the replay timer.
  Status Start();
  void Stop();

  // Merges object into the hint for (target, key). Durable on return.
  Status Add(const NodeId& target, const std::string& key, const DvvSet& object);
  // The hinted copy of key held for target, if any.
  std::optional<DvvSet> Find(const NodeId& target, const std::string& key);
  // Every hinted copy of key this node holds, whoever it is for, merged: what
  // a fallback answers to a sloppy read.
  std::optional<DvvSet> FindAny(const std::string& key);
  // Each hinted copy of key this node holds, with the target it is for.
  std::vector<std::pair<NodeId, DvvSet>> FindEach(const std::string& key);

  static bool IsReplayRequest(uint64_t request_id) {
    return (request_id >> 62) == 1;  // bit 62 set, bit 63 (gossip) clear
  }
  void OnAck(const NodeId& from, uint64_t request_id, const Status& status);
  void OnSendFailed(const NodeId& to, uint64_t request_id);
  // The failure detector believes peer is up: replay its hints now.
  void OnPeerAlive(const NodeId& peer);
  // This node is leaving: hints for targets that are down go to another
  // node instead (as hints for the same target), chosen by pick (empty: none
  // available, keep trying). alive tells whether a target is up.
  void Evacuate(std::function<NodeId(const NodeId& target)> pick,
                std::function<bool(const NodeId&)> alive);

  uint64_t queued() const;
  uint64_t stored() const { return stored_; }
  std::map<NodeId, TargetStats> Stats() const;
  // {"queued":N,"targets":{"n2":{"queued","oldest_age_s","replayed","failed","in_flight"}},...}
  std::string Json();

  // See FirstRequestId (core/env.h).
  void StartRequestIdsAt(uint64_t first) { next_id_ = first; }

 private:
  struct Target {
    TargetStats stats;
    uint64_t next_attempt_us = 0;
    uint64_t backoff_ms = 0;
    uint64_t batch_sent_us = 0;
    bool batch_failed = false;
  };
  struct InFlight {
    NodeId target;
    NodeId destination;  // the target, or another node holding it for the target
    std::string key;
    DvvSet object;
  };

  void Tick();
  void SendBatch(const NodeId& target, Target& t);
  void Finish(uint64_t request_id, bool ok);
  void BatchDone(const NodeId& target, Target& t);

  NodeId self_;
  std::string cluster_;
  Store* store_;
  Transport* transport_;
  Clock* clock_;
  std::map<NodeId, Target> targets_;
  std::map<uint64_t, InFlight> in_flight_;
  uint64_t next_id_ = 1;
  uint64_t stored_ = 0;
  Clock::TimerId timer_ = 0;
  bool running_ = false;
  std::function<NodeId(const NodeId&)> evacuate_to_;
  std::function<bool(const NodeId&)> alive_;
};

}  // namespace ringkv
