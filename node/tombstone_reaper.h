// TombstoneReaper: removes deleted keys for good, without letting them come
// back.
//
// A delete writes a tombstone sibling (core/dvv.h); a key whose siblings are
// all tombstones reads as not found but still takes space. So does a key
// whose values all expired (TTL, core/expiry.h): expiry changes no stored
// byte, so the reaper treats an expired value as a tombstone from its expiry
// on, with the same agreement below (an expired value reaped without it
// could let an older sibling it replaced come back from a stale copy). The
// reaper of the key's first primary (in the current ring) removes it once
//  1. the newest tombstone (or expiry) is older than the grace period by its
//     wall clock;
//  2. every member that is not left or removed is alive (one that is down may
//     hold an older version on disk), and each answered a ReapCheck saying
//     nothing it holds for the key — its stored object, and every hint it
//     keeps for any node — is newer than or concurrent with the tombstone.
//     Answering, a member merges the tombstone into everything it holds for
//     the key, so an older copy anywhere (a stray, a fallback's hint) now
//     carries the tombstone; a member still holding a hint answers busy
//     (the key is tried again once the hint is delivered);
//  3. then Reap goes to every primary of the key (current ring, plus future
//     owners while a join or leave is in progress) and to every member that
//     said it stores a copy. Each erases its copy only if it is tombstone-only
//     with exactly the checked clock (compare-and-delete: a write that came
//     in between wins), through the node's EraseLocal so the Merkle trees
//     follow. Unacknowledged Reaps are retried a few times; a node that
//     never got one keeps its tombstone, anti-entropy copies it back to the
//     others and it is reaped again later: repeated work, never a
//     resurrection.
//
// Two holes the plain protocol leaves, and how they are closed:
//  - Messages in flight. A message that left before the check with an older
//    version (a hint replay, a read repair, an anti-entropy repair, a
//    handoff batch) could land after the reap and revive the key. Each
//    member that answered a check keeps the tombstone in memory for a while
//    (kFenceMs, a "fence") and the node merges it into every write for the
//    key that reaches its store or its hints, as if the tombstone were still
//    there. A message delayed longer than that (or a process stopped longer)
//    can still bring an old version back; the grace period makes that
//    unlikely, not impossible.
//  - Dot reuse. Once a replica forgets a key it would mint (self, 1) for the
//    next write, a dot the deleted history may already hold; a copy of the
//    tombstone that survived somewhere (a missed Reap) covers it and would
//    swallow the new, acknowledged write. Each member answering a check
//    raises a durable floor to its own entry in the tombstone's clock; the
//    node mints dots above it (DvvSet::Update's min_counter).
//
// Work is bounded: the store is scanned in slices (kScanSlice objects per
// tick, a resumable cursor per partition), a full pass at most every
// pass interval, one check round in flight, at most max_keys_per_sec keys
// checked a second. Pure logic over Store, Transport, Clock and membership.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/env.h"
#include "node/cluster_membership.h"
#include "node/hinted_handoff.h"
#include "store/store.h"

namespace ringkv {

struct TombstoneConfig {
  // A tombstone-only object is reaped once its newest tombstone is this old
  // (by the wall clock of the key's first primary); 0: never reap.
  uint64_t grace_ms = 3'600'000;
  // Keys checked per second at most (each costs a message to every member).
  uint32_t max_keys_per_sec = 200;
};

class TombstoneReaper {
 public:
  // Request ids of ReapCheck and Reap carry this bit (gossip 63, hints 62,
  // ownership handoff 61, anti-entropy 60); see FirstRequestId.
  static constexpr uint64_t kRequestBit = uint64_t{1} << 59;
  static bool IsReaperRequest(uint64_t id) { return (id >> 59) == 1; }

  // How long a member merges a checked tombstone into incoming writes.
  static constexpr uint64_t kFenceMs = 60'000;

  using MergeFn = std::function<Status(const std::string& key, const DvvSet& object)>;
  using EraseFn = std::function<Status(const std::string& key)>;

  struct Stats {
    uint64_t passes = 0;           // full scans of the partitions led here
    uint64_t scanned = 0;          // objects looked at
    uint64_t candidates = 0;       // tombstone-only objects past the grace
    uint64_t checks_sent = 0;      // ReapCheck messages
    uint64_t keys_checked = 0;     // keys put to a check round
    uint64_t keys_aborted = 0;     // a member holds something newer
    uint64_t keys_busy = 0;        // a hint or an unanswered member: later
    uint64_t keys_skipped = 0;     // not checked: a member was down
    uint64_t keys_reaped = 0;      // every member agreed; Reap sent
    uint64_t reaps_given_up = 0;   // Reaps never acknowledged after retries
    uint64_t checks_answered = 0;  // keys checked for other nodes (and self)
    uint64_t erased = 0;           // tombstones erased here (any coordinator)
    uint64_t expired_erased = 0;   // of those, objects of expired values
  };

  TombstoneReaper(NodeId self, std::string cluster, TombstoneConfig config, Store* store,
                  Transport* transport, Clock* clock, const ClusterMembership* membership,
                  HintedHandoff* hints, MergeFn merge, EraseFn erase);
  ~TombstoneReaper();
  TombstoneReaper(const TombstoneReaper&) = delete;
  TombstoneReaper& operator=(const TombstoneReaper&) = delete;

  // Loads the dot floor and, when reaping is on, starts the tick timer.
  Status Start();
  void Stop();

  // A member's side.
  ReapCheckReply AnswerCheck(const ReapCheck& req);
  ReapAck AnswerReap(const Reap& req);
  // The coordinator's side.
  void OnCheckReply(const NodeId& from, uint64_t id, const ReapCheckReply& reply);
  void OnReapAck(const NodeId& from, uint64_t id, const ReapAck& ack);
  void OnSendFailed(const NodeId& to, uint64_t id);

  // object merged with the tombstone this node checked for key lately, if
  // any: what every write to the store or the hints goes through. nullopt
  // when no fence applies (object stands as it is; nothing is copied).
  std::optional<DvvSet> Fenced(const std::string& key, const DvvSet& object);
  // Dots this node mints have counters above this.
  uint64_t counter_floor() const { return floor_; }
  // The actor of this node's data-type writes (Replica::SetDataTypeActor):
  // the floor covers its dots too.
  void SetDataTypeActor(NodeId actor) { data_type_actor_ = std::move(actor); }

  const Stats& stats() const { return stats_; }
  const TombstoneConfig& config() const { return config_; }
  std::string Json() const;

  // See FirstRequestId (core/env.h).
  void StartRequestIdsAt(uint64_t first) { next_id_ = first; }

 private:
  struct Entry {
    KeyedObject tombstone;
    bool failed = false;
    std::set<NodeId> holders;  // members that store a copy
  };
  struct Round {
    std::vector<Entry> entries;
    std::map<uint64_t, NodeId> pending;  // request id -> member
    uint64_t started_us = 0;
  };
  struct PendingReap {
    NodeId to;
    std::vector<KeyedObject> entries;
    int attempts = 0;
    uint64_t sent_us = 0;
  };
  struct Fence {
    DvvSet tombstone;
    uint64_t expires_us = 0;
  };

  void Tick();
  void ScanSlice();
  bool IsCandidate(const std::string& key, const DvvSet& object, uint64_t now_ms) const;
  void StartRound();
  void FinishRound();
  void AbortRound(const char* why);
  void SendReap(PendingReap reap);
  void RetryReaps();
  ReapVerdict CheckOne(const std::string& key, const DvvSet& tombstone, uint64_t* floor);
  // This node's highest counter in clock, as itself or its data-type actor.
  uint64_t OwnCounter(const VersionVector& clock) const;
  void SetFence(const std::string& key, const DvvSet& tombstone);
  uint64_t PassIntervalMs() const;

  NodeId self_;
  std::string cluster_;
  TombstoneConfig config_;
  Store* store_;
  Transport* transport_;
  Clock* clock_;
  const ClusterMembership* membership_;
  HintedHandoff* hints_;
  MergeFn merge_;
  EraseFn erase_;

  // Scan: the partitions this node leads (first primary) in this pass.
  std::vector<uint32_t> pass_partitions_;
  size_t pass_index_ = 0;
  std::string cursor_;  // store key of the last object scanned in the partition
  bool in_pass_ = false;
  uint64_t next_pass_us_ = 0;
  std::deque<KeyedObject> candidates_;
  std::set<std::string> candidate_keys_;

  std::optional<Round> round_;
  std::map<uint64_t, PendingReap> reaps_;  // by request id

  std::map<std::string, Fence> fences_;
  std::deque<std::pair<uint64_t, std::string>> fence_order_;  // (expires_us, key)

  uint64_t floor_ = 0;
  NodeId data_type_actor_;
  uint64_t next_id_ = 1;
  double budget_ = 0;
  uint64_t last_tick_us_ = 0;
  Clock::TimerId timer_ = 0;
  bool running_ = false;
  Stats stats_;
};

}  // namespace ringkv
