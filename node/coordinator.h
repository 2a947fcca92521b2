// Coordinator: the request state machines of the node that a client (or a
// forwarding peer) asked, as Riak's get and put FSMs.
//
//  - GET: ask the first n replicas of the key's preference list, answer after
//    r replies (pr of them from primaries) with their DVV merge, then keep
//    collecting until all n answered or the timeout, and send the merge to
//    every replica whose copy was missing or older (read repair).
//  - PUT/DELETE: a node that is not among the key's replicas forwards the
//    request to one that is; that replica mints the dot (Replica::MintWrite),
//    sends the object to the other replicas and answers after w
//    acknowledgements (pw from primaries; its own counts).
//  - Sloppy mode: a replica that fails, or stays silent past half the
//    timeout, gets the next live fallback beside it (ReplicaSet::Substitute),
//    which keeps the write as a hint. With no fallback left the coordinator
//    keeps the hint itself; it does not count toward w.
//  - A request that cannot reach its quorum answers with an error that says
//    what it got. Writes that reached fewer than w replicas stay where they
//    landed (no rollback).
//  - Buckets: a request names a bucket and a key; the coordinator turns them
//    into the internal key (core/bucket_key.h) that replicas, stores and
//    messages between nodes use, and runs with the request's own quorum
//    flags over the bucket's properties over the node's (node/buckets.h).
//  - Expiry: a value written with a ttl (or in a bucket with one) expires at
//    the coordinating replica's wall clock + ttl; reads treat an expired
//    sibling as a tombstone (core/expiry.h), by this node's wall clock.
//  - Sibling cap: a client write that would leave more live siblings than
//    the bucket's max_siblings is refused at the coordinating replica, and
//    nothing is stored (Replica::MintWrite); merges are never capped.
//  - Conditional writes (if_absent, if_unchanged): the coordinating replica
//    first reads the key at the read quorum, checks the condition against
//    the merged answer, and only then mints and sends the write. Not
//    linearizable: two conditional writes that read at the same time can
//    both pass and leave siblings.
//
// Emits messages through Transport and timers through Clock; no other I/O.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/env.h"
#include "core/message.h"
#include "node/buckets.h"
#include "node/config.h"
#include "node/membership.h"
#include "node/replica.h"
#include "node/replica_set.h"
#include "node/stats.h"

namespace ringkv {

class Coordinator {
 public:
  // Where the answer goes: a client connection, or a peer node (a put it
  // forwarded here).
  struct Origin {
    ClientId conn = 0;
    NodeId peer;  // non-empty: reply goes to this peer
    uint64_t request_id = 0;
    // For the request metrics of a client's request (NodeStats::requests).
    RequestOp op = RequestOp::kGet;
    uint64_t start_us = 0;
  };

  Coordinator(const NodeConfig* config, NodeStats* stats, const Membership* membership,
              Transport* transport, Clock* clock, Replica* replica, const Buckets* buckets);
  ~Coordinator();  // cancels the timers of requests in flight
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Request ids of this incarnation start here (FirstRequestId).
  void StartRequestIdsAt(uint64_t first) { next_op_id_ = first; }

  void StartGet(Origin origin, GetRequest req);
  // A client's put or delete.
  void StartPut(Origin origin, PutRequest req);
  // A put another node forwarded here; one that arrives twice (a network
  // that duplicates, or a retry) is coordinated once.
  void OnForwardedPut(const NodeId& from, uint64_t request_id, PutRequest req);
  // A client's counter, set or map operation (node/coordinator_datatypes.cc):
  // a read is a GET; any other operation is coordinated as a put is, with
  // Replica::MintDataTypeWrite in place of MintWrite.
  void StartDataType(Origin origin, DataTypeRequest req);
  // One another node forwarded here (coordinated once, as puts are).
  void OnForwardedDataType(const NodeId& from, uint64_t request_id, DataTypeRequest req);

  // Answers from replicas.
  void OnReadReply(uint64_t op_id, const NodeId& from, Status status,
                   std::optional<DvvSet> object);
  void OnWriteAck(uint64_t op_id, const NodeId& from, Status status);
  void OnForwardReply(uint64_t op_id, const NodeId& from, Reply reply);
  void OnForwardReply(uint64_t op_id, const NodeId& from, DataTypeReply reply);
  // A request to `to` could not be sent. False if request_id is not one of
  // the coordinator's.
  bool OnSendFailed(const NodeId& to, uint64_t request_id, const std::string& why);

  // Requests in flight (coordinated here).
  size_t pending() const { return gets_.size() + puts_.size() + forwards_.size(); }
  // A fresh request id from the coordinator's sequence, for parts that share
  // its id space (node/key_listing.h).
  uint64_t NextRequestId() { return next_op_id_++; }

 private:
  struct GetOp;
  struct PutOp;
  struct ForwardOp;
  struct Resolved {
    uint32_t n, r, w, pr, pw, timeout_ms;
    Mode mode;
    bool lww;
    uint32_t max_siblings, warn_siblings;
    uint64_t ttl_ms;  // the bucket's default expiry (0: none)
  };

  // Request flags over the bucket's properties over the node's defaults.
  Result<Resolved> ResolveQuorum(const Quorum& q, const BucketProps& bucket) const;
  ReplicaSet ChooseReplicas(const std::string& key, const Resolved& q) const;

  // Arms op's one timer (GetOp or PutOp, not yet filed in *ops). In a sloppy
  // quorum the straggler check comes first, at half the timeout: replicas
  // still silent get a fallback (add_fallback) beside them, and the rest of
  // the timeout is armed. `deadline` runs at the timeout.
  template <typename Op>
  void ArmTimer(std::unordered_map<uint64_t, std::unique_ptr<Op>>* ops, Op& op,
                std::function<void()> deadline,
                void (Coordinator::*add_fallback)(Op&, const NodeId&));
  void AddGetFallback(GetOp& op, const NodeId& failed);
  void OnGetTimeout(uint64_t op_id);
  void MaybeFinishGet(GetOp& op);
  void FinishReadRepair(uint64_t op_id);

  // False for a forwarded request already seen (by forwarder and request id).
  bool FirstForward(const NodeId& from, uint64_t request_id);
  // Passes a write to the key's replicas (this node is none of them).
  void StartForward(std::unique_ptr<ForwardOp> op, const Resolved& q, const ReplicaSet& replicas);
  void Forward(std::unique_ptr<ForwardOp> op);
  void FinishForward(uint64_t op_id, const NodeId& from, Body answer);
  // The answer for a forwarded write that failed here (a Reply, or a
  // DataTypeReply for a data-type operation).
  Body ForwardError(const ForwardOp& op, Status s) const;
  // This node's place among the replicas (-1: none) and, when it keeps its
  // copy as a hint, the primary the hint is for.
  NodeId LocalHintFor(const ReplicaSet& replicas, int* self) const;
  void CoordinateDataType(Origin origin, DataTypeRequest req, const Resolved& q,
                          ReplicaSet replicas);
  // Sends a minted write (op->object) to the other replicas and answers
  // after w acknowledgements; self: this node's index among the replicas.
  void Replicate(std::unique_ptr<PutOp> op, int self);
  // The answer to a put or data-type operation: its result, or the error.
  void AnswerWrite(PutOp& op, Status s);
  // key: the internal key of req's (bucket, key).
  void CoordinatePut(Origin origin, PutRequest req, std::string key, const Resolved& q,
                     ReplicaSet replicas);
  // A conditional put: a quorum read first, then the put if the condition holds.
  void StartConditionRead(Origin origin, PutRequest req, std::string key, const Resolved& q,
                          ReplicaSet replicas);
  // Starts a GetOp; `then`, if set, takes the answer instead of the origin.
  void RunGet(Origin origin, std::string key, const Resolved& q,
              std::function<void(Reply)> then = {});
  void AddPutFallback(PutOp& op, const NodeId& failed);
  void MaybeFinishPut(PutOp& op);

  void Answer(const Origin& origin, Reply reply);
  void Answer(const Origin& origin, Body answer);
  void SendPeer(const NodeId& to, uint64_t request_id, Body body);

  const NodeConfig* config_;
  NodeStats* stats_;
  const Membership* membership_;
  Transport* transport_;
  Clock* clock_;
  Replica* replica_;
  const Buckets* buckets_;
  uint64_t next_op_id_ = 1;
  // Forwarded puts seen lately, by (forwarder, its request id), to ignore
  // duplicates. Request ids are unique per incarnation (FirstRequestId).
  static constexpr size_t kForwardedRemembered = 1 << 16;
  std::set<std::pair<NodeId, uint64_t>> forwarded_seen_;
  std::deque<std::pair<NodeId, uint64_t>> forwarded_order_;
  // Requests in flight by id: every reply and ack looks its request up, so a
  // hash table (one probe) rather than a tree (a dozen cold nodes at -P 16).
  std::unordered_map<uint64_t, std::unique_ptr<GetOp>> gets_;
  std::unordered_map<uint64_t, std::unique_ptr<PutOp>> puts_;
  std::unordered_map<uint64_t, std::unique_ptr<ForwardOp>> forwards_;
};

}  // namespace ringkv
