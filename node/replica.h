// Replica: what a node does with its own copies of keys.
//
// Every change to this node's objects and hints goes through here, so the
// side effects stay in step: the Merkle tree of the key's partition (AAE),
// the object count, the tombstone reaper's fence (a key reaped lately merges
// its tombstone into an older version still in flight instead of coming back
// to life), and the counters.
//
//  - Read: the stored object, or for a fallback also the hint it holds.
//  - Merge: the DVV sync of an object into the stored one (replica writes,
//    read repair, hinted handoff, anti-entropy, ownership handoff).
//  - MintWrite: the coordinator's local part of a put or delete: read the
//    key here, mint the dot for the client's write, store the result.
//  - MintDataTypeWrite: the same for a counter, set or map operation: join
//    the states held here, apply the operation, store the new state
//    (node/replica_datatypes.cc).
//  - AddHint / Erase: hints kept for a down primary; erasing after handoff
//    or reaping.
//
// No I/O but through Store; called on the loop thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/dvv.h"
#include "core/message.h"
#include "core/status.h"
#include "node/anti_entropy.h"
#include "node/config.h"
#include "node/hinted_handoff.h"
#include "node/stats.h"
#include "node/tombstone_reaper.h"
#include "store/store.h"

namespace ringkv {

class Gossiper;

class Replica {
 public:
  // The parts are owned by the Node; the replica only keeps pointers (the
  // AAE driver and the reaper call back into Merge and Erase).
  Replica(const NodeConfig* config, Store* store, NodeStats* stats, HintedHandoff* hints,
          AntiEntropy* aae, TombstoneReaper* reaper, const Gossiper* gossiper);

  // Counts the objects in the store (a scan: once, at start).
  void CountObjects();
  // Objects in this node's store (kept as they are written and erased).
  uint64_t objects() const { return objects_; }
  // Client writes refused by the sibling cap.
  uint64_t sibling_cap_refusals() const { return sibling_cap_refusals_; }

  // This node's copy of key. A read as a fallback for hint_for includes
  // the hinted copy. NotFound when nothing is held.
  ReplicaReadReply Read(const std::string& key, const NodeId& hint_for = {});
  // Merges object into the stored copy (DVV sync); writes only if it adds
  // something.
  Status Merge(const std::string& key, const DvvSet& object);
  // Keeps object as a hint for target (merged into any hint it has).
  Status AddHint(const NodeId& target, const std::string& key, const DvvSet& object);
  // Erases the stored object, if any.
  Status Erase(const std::string& key);

  // The write a client asked for, made here: the new object and its dot.
  struct Minted {
    DvvSet object;
    Dot dot;
  };
  // Reads key here (and the hint for hint_for, when this node stands in for
  // that primary), applies the client's write over context with a fresh dot
  // (as this node, or as a one-write actor when it is a fallback: it keeps no
  // history of the key after its hint is delivered), and stores the result
  // (as a hint when hint_for is set). lww keeps only the newest sibling.
  // A value (not a delete) is refused (WrongType) on a key holding a data
  // type.
  Result<Minted> MintWrite(const std::string& key, const VersionVector& context, std::string value,
                           bool tombstone, bool lww, uint64_t wall_ms, const NodeId& hint_for);
  // The same for a write described as a sibling to be minted (value,
  // tombstone, timestamp_ms = the coordinator's wall clock, expires_ms).
  // max_siblings (0: no cap): if the result would hold more live siblings
  // (not tombstones, not expired at the write's timestamp), nothing is stored
  // and the answer is TooManySiblings. Only client writes are capped: every
  // merge (read repair, hints, anti-entropy, handoff) keeps what it gets.
  Result<Minted> MintWrite(const std::string& key, const VersionVector& context, Sibling write,
                           bool lww, const NodeId& hint_for, uint32_t max_siblings = 0);


  struct MintedDataType {
    DvvSet object;
    Dot dot;
    OperationResult result;
    bool written = false;  // false: the operation changed nothing (nothing stored)
  };
  // A data-type operation (not a read) coordinated here: reads the key here
  // (and the hint for hint_for, as MintWrite), refuses an operation of
  // another type than the key holds (WrongType), joins the states of the
  // key's live siblings, applies the operation as the write's actor at its
  // dot (this node's data-type actor, or a one-write actor as a fallback),
  // and stores the result as one sibling through DvvSet::Update with the
  // local clock as context (it covers every sibling joined). A state over
  // max_value_bytes is refused.
  Result<MintedDataType> MintDataTypeWrite(const DataTypeRequest& req, uint64_t wall_ms,
                                           const NodeId& hint_for);
  // The actor of this node's data-type writes: "<id>~d<epoch>", where the
  // epoch (base 36, the wall clock when the data dir was first used) is kept
  // in the node's metadata. A node whose data dir is wiped comes back as a
  // new actor, so its dots and counter entries never collide with the ones
  // it made before. Empty: the node id.
  void SetDataTypeActor(NodeId actor) { data_type_actor_ = std::move(actor); }
  const NodeId& data_type_actor() const { return data_type_actor_; }

 private:
  // Every write to the main store goes through here, so the Merkle tree of
  // the key's partition stays in step. old: what was stored (nullptr: none).
  Status Write(const std::string& key, const DvvSet* old, const DvvSet& now);
  // What a write minted here goes over: the store's copy of key (a View: no
  // store calls until Write), joined with this node's hint for hint_for when
  // it writes as a fallback (then a copy in *scratch). *found: the store had
  // the key.
  Result<const DvvSet*> MintBase(const std::string& key, const NodeId& hint_for, DvvSet* scratch,
                                 bool* found);
  // A fresh actor for one write made as a fallback (see MintWrite).
  NodeId NextFallbackActor();
  // WrongType if object's type is a data type (a plain value may not be put
  // over it).
  static Status RefuseOverDataType(const DvvSet& object);

  const NodeConfig* config_;
  Store* store_;
  NodeStats* stats_;
  HintedHandoff* hints_;
  AntiEntropy* aae_;
  TombstoneReaper* reaper_;
  const Gossiper* gossiper_;
  // Objects in the store, counted once at start and kept by Write and Erase
  // (a full count is a scan of the store: too slow for status).
  uint64_t objects_ = 0;
  uint64_t fallback_actors_ = 0;  // actors minted for fallback writes this incarnation
  NodeId data_type_actor_;
  uint64_t sibling_cap_refusals_ = 0;
};

}  // namespace ringkv
