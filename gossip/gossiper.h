// Gossiper: cluster membership spread by push-pull gossip, with a phi accrual
// failure detector (gossip/failure_detector.h) over the heartbeats it carries.
//
// A pure state machine (DESIGN.md, "The one architectural rule"): input is
// peer messages (OnPush, OnAck, OnSendFailed), operator/owner calls (SetStatus,
// SetComplete, Remove) and its own round timer; output is Envelopes handed to
// the Transport. Time comes from the Clock only, randomness from a
// std::mt19937_64 seeded with GossipConfig::random_seed, so the same inputs at
// the same virtual times give the same outputs. Single-threaded: call it from
// the thread that runs the Clock's timers. Not thread-safe.
//
// Membership. Every member has one entry (id, address, incarnation,
// heartbeat, status, complete bitmap) whose version is (incarnation,
// heartbeat). Only a node writes its own entry, except that an operator may
// mark a dead node Removed. Merging two entries of one id (MergeMember):
//  - the entry with the greater version wins (ties: a fixed order on the other
//    fields, so the merge stays commutative);
//  - Removed is sticky and terminal: if either side is Removed, the result is
//    Removed, with the greater version and the winner's other fields.
// A node never takes a remote version of its own entry, with two exceptions:
// a remote Removed is adopted (the node should notice and stop), and a remote
// copy of self with a version >= ours but different content (stale state from
// before a restart) makes this node bump its own version past it, so ours
// wins everywhere.
//
// Rounds. Every interval_ms this node bumps its heartbeat and sends a
// GossipPush{ring_size, n_val, all members (Removed ones too, so removal
// spreads)} to:
//  - one random peer the detector believes alive (never Left/Removed);
//  - also, with probability down/(alive+1), one random peer believed down,
//    so that recovery is noticed (Cassandra's rule);
//  - when no other active member is known (a joining node), a random seed,
//    every round; otherwise, with probability 1/(alive+1), a random seed whose
//    address no known member has. A seed is addressed by the pseudo node id
//    "seed:" + host:port (kSeedPrefix); the runtime maps it to the address.
// The receiver merges the push and answers with a GossipAck carrying its
// whole (merged) view, which the sender merges in turn: push-pull, so a change
// reaches all N nodes in O(log N) rounds.
//
// Compatibility. A push or ack whose ring_size or n_val differs from ours is
// not merged; it is counted (mismatched()) with a readable reason
// (last_mismatch()). A refused push is still answered, with an ack carrying
// only our ring_size/n_val, so the other side learns of the mismatch too.
//
// Failure detection. Every merge that brings a newer version of a peer's
// entry (first- or second-hand; that is the point of gossip) is an arrival
// for that peer's detector. A member first learned counts as alive until it
// stays silent. Left and Removed members are never alive and never gossiped
// to. The promised bound: a peer that stops is convicted by this node at most
// ConvictionSilence after the last news of it arrived here, where
//   ConvictionSilence = max(min_silence_ms, phi_threshold * ln10 * m),
// m the peer's mean arrival gap over the last 100 (floored at interval/2).
// With the defaults (interval 1 s, threshold 8, min_silence 2 s) and m ~= 1 s
// that is ~18.4 s, plus the few rounds the last heartbeat takes to spread.
// A round that comes more than 2 intervals after the previous one (or a
// Start() after a Stop()) means this node itself stalled (a pause, a blocked
// loop): the detector discounts the stall (FailureDetector::DiscountStall) so
// that a paused node does not convict every peer when it wakes (Cassandra's
// "not marking nodes down due to local pause"). IsAlive() is exact at every
// call. OnChange listeners hear of a flip to down
// at this node's next round, of a flip back up on the message with the news.
//
// Request ids. Pushes carry request ids with kRequestIdBit set (a private
// range, so the Node can route OnSendFailed; see IsGossipRequestId).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/env.h"
#include "core/message.h"
#include "core/status.h"
#include "gossip/failure_detector.h"

namespace ringkv {

struct GossipConfig {
  NodeId id;
  std::string address;  // this node, host:port
  uint32_t ring_size = 64;
  uint32_t n_val = 3;
  uint64_t interval_ms = 1000;     // one round
  double phi_threshold = 8.0;      // phi accrual conviction threshold
  uint64_t min_silence_ms = 0;     // never convict before this much silence (0: 2*interval)
  std::vector<std::string> seeds;  // host:port of seeds; empty: start a new cluster
  uint64_t random_seed = 0;
  // Stamped on outgoing envelopes; may stay empty when the transport (or the
  // Node wrapping it) stamps the cluster name itself.
  std::string cluster;
};

// The merge of two entries for the same id, as described above. Commutative
// and idempotent; associative for entries of distinct versions.
MemberState MergeMember(const MemberState& a, const MemberState& b);

class Gossiper {
 public:
  static constexpr const char* kSeedPrefix = "seed:";
  static constexpr uint64_t kRequestIdBit = uint64_t{1} << 63;
  // True iff request_id belongs to a push sent by a Gossiper.
  static bool IsGossipRequestId(uint64_t request_id) { return (request_id & kRequestIdBit) != 0; }

  // self: this node's starting entry (status Joining for --join nodes, Up for
  // a new cluster's first node; incarnation already bumped by the caller from
  // disk). self.id and self.address are overridden by config.id/address when
  // those are set. transport and clock must outlive the Gossiper.
  Gossiper(GossipConfig config, MemberState self, Transport* transport, Clock* clock);
  ~Gossiper();
  Gossiper(const Gossiper&) = delete;
  Gossiper& operator=(const Gossiper&) = delete;

  // Schedules rounds on the clock (the first after a random delay in
  // (0, interval], then every interval). Idempotent.
  void Start();
  // Cancels the round timer. Incoming messages are still merged and answered
  // if delivered; stop delivering them to silence the node.
  void Stop();
  bool running() const { return running_; }

  // Runs one round now (what the timer does, without rescheduling). For
  // tests and for a runtime that drives rounds itself.
  void RunRound();

  // Incoming messages (the Node dispatches them). A push is merged and
  // answered with a GossipAck (same request id) carrying our whole view.
  void OnPush(const NodeId& from, uint64_t request_id, const GossipPush& push);
  void OnAck(const NodeId& from, const GossipAck& ack);
  // The transport could not reach `to`. Counted only: a failed connection
  // says as much about our own link as about the peer, so the verdict stays
  // with the detector.
  void OnSendFailed(const NodeId& to);

  // This node's own changes; each bumps our heartbeat so it spreads, and
  // notifies OnChange listeners. SetStatus is ignored once this node has been
  // Removed (terminal).
  void SetStatus(MemberStatus status);
  void SetComplete(std::string bitmap);

  // Operator: marks a dead node Removed (terminal; wins every merge).
  // NotFound for an unknown id, InvalidArgument for this node itself or for a
  // node the detector believes alive (stop it first). Removing an already
  // removed node is OK.
  // known_down: the caller has other evidence the node is down (refused
  // connections) and the detector has not convicted it yet.
  Status Remove(const NodeId& id, bool known_down = false);

  const MemberState& self() const;
  // Every known member, including self and Left/Removed ones.
  const std::map<NodeId, MemberState>& members() const { return members_; }
  // Failure-detector verdict: self is always alive; unknown, Left and Removed
  // members are not.
  bool IsAlive(const NodeId& id) const;
  // phi of a peer now: 0 for self, +infinity for unknown/Left/Removed.
  double Phi(const NodeId& id) const;
  // The detector, for its bound and statistics.
  const FailureDetector& detector() const { return detector_; }

  // Listeners called after any change other than a heartbeat-only update: a
  // new member, a status, address or complete-bitmap change, a liveness flip.
  // Adds a listener; listeners may call back into the Gossiper.
  void OnChange(std::function<void()> fn);

  // Cluster metadata that rides on every push and ack (bucket properties,
  // node/buckets.h): snapshot says what to send, merge takes what a
  // compatible peer sent (the owner's merge must be commutative and
  // idempotent, as the members' is). Unset: nothing is sent or taken.
  void SetMetadata(std::function<std::vector<BucketEntry>()> snapshot,
                   std::function<void(const std::vector<BucketEntry>&)> merge);

  // Counters (for `stats`).
  uint64_t rounds() const { return rounds_; }
  // Messages refused because ring_size/n_val differ from ours, and why the
  // last one was ("peer n4 uses ring size 128; this node 64").
  uint64_t mismatched() const { return mismatched_; }
  const std::string& last_mismatch() const { return last_mismatch_; }
  // Alive -> down verdict flips of active members (each one a suspicion).
  uint64_t convictions() const { return convictions_; }
  uint64_t send_failures() const { return send_failures_; }
  uint64_t pushes_sent() const { return pushes_sent_; }
  // Stalls of this node discounted by the detector.
  uint64_t stalls() const { return stalls_; }

  const GossipConfig& config() const { return config_; }

 private:
  uint64_t Now() const { return clock_->NowMicros(); }
  void ScheduleRound(uint64_t delay_ms);
  // Detects and discounts a stall of this node since the last round.
  void DiscountStall();
  void BumpSelf();
  // True iff the sizes match; else counts and records the mismatch.
  bool Compatible(const NodeId& from, uint32_t ring_size, uint32_t n_val);
  void MergeView(const std::vector<MemberState>& view);
  void MergeSelf(MemberState& own, const MemberState& remote);
  void MergeInto(MemberState& local, const MemberState& remote);
  void Push(const NodeId& to);
  std::vector<MemberState> View() const;
  // Re-evaluates the verdicts of peers believed alive (flips to down are
  // time-driven; flips to up happen in MergeInto when news arrives).
  void CheckVerdicts();
  // Calls listeners if something changed since the last call.
  void Notify();

  GossipConfig config_;
  Transport* transport_;
  Clock* clock_;
  std::mt19937_64 rng_;
  FailureDetector detector_;

  std::map<NodeId, MemberState> members_;
  std::unordered_map<NodeId, bool> verdicts_;  // last notified verdict per active peer
  std::vector<std::function<void()>> listeners_;
  std::function<std::vector<BucketEntry>()> metadata_snapshot_;
  std::function<void(const std::vector<BucketEntry>&)> metadata_merge_;
  uint64_t merge_now_ = 0;  // Now() at the start of the current MergeView
  bool changed_ = false;
  bool notifying_ = false;

  bool running_ = false;
  std::optional<Clock::TimerId> timer_;
  uint64_t next_request_ = 1;
  uint64_t rounds_ = 0;
  uint64_t mismatched_ = 0;
  std::string last_mismatch_;
  uint64_t convictions_ = 0;
  uint64_t send_failures_ = 0;
  uint64_t pushes_sent_ = 0;
  uint64_t stalls_ = 0;
  uint64_t last_round_us_ = 0;  // 0: no round yet
};

}  // namespace ringkv
