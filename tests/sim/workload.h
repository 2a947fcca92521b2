// Fault schedules with client workloads and their checker, on the simulator.
//
// RunSchedule() builds a World of 3–7 nodes (n=3 r=2 w=2, sloppy quorums,
// gossip every second, anti-entropy every two seconds) and, for a few
// simulated minutes, runs two workloads against random nodes while random
// faults come and go: symmetric and one-way partitions, crashes and
// restarts, pauses, bursts of drops, duplicates and long delays, clock skew.
// Then it heals everything, restarts what is down, lets the cluster run
// quiet until it converges (at most max_quiet_ms) and checks:
//
//  - lost adds: the set workload (Jepsen's set test) reads a key, unions the
//    elements of every live sibling, adds a fresh integer and writes the
//    union back with the read's context. Every acknowledged add must be in
//    an r=n=3 read and in the copy every primary stores.
//  - replicas differing: every primary of every key holds the same DvvSet,
//    where a tombstone-only object and no object count as the same: both
//    read as deleted, and which one a primary has depends only on whether
//    the tombstone reaper (node/tombstone_reaper.h) got to it yet (a primary
//    that missed a Reap keeps the tombstone until a later pass).
//  - reaping: nodes reap tombstones after a short grace (30 simulated
//    seconds by default), so keys deleted early are reaped while faults go
//    on; the checks above hold for them too (a reaped key reads as deleted).
//  - hints left: no node keeps a hint.
//  - resurrections: the register workload does blind puts and deletes with
//    the context of a read, on a few keys at a time (new keys every
//    window, deletes only in a window's last third, so many keys end
//    deleted). No live sibling may carry a dot that an acknowledged delete's
//    context covers; and a key whose last operation is an acknowledged
//    delete covering every put made to it must read as not found on every
//    primary and through an r=3 read.
//  - lost puts: a register put acknowledged with no delete issued after it
//    must be a live sibling on every primary and in an r=3 read. Now and
//    then a client writes again a key of a window long closed (deleted and
//    maybe reaped): a new write must not lose to the reaped history.
//  - answers: a put's answer names the dot its write got and carries the
//    object as written; the sibling with that dot must hold what the client
//    wrote (else the answer was another request's).
//  - counters (core/datatypes.h): increments through random nodes; every
//    primary and an r=3 read hold a value between the sum of acknowledged
//    increments and the sum of attempted ones (none counted twice).
//  - data-type sets: SADDs of fresh elements and SREMs of added ones. An
//    acknowledged add is present unless a remove that may have seen it was
//    made (one that answered 0 saw nothing); an element a remove answered 1
//    for is absent (no resurrection); nothing else appears.
//  - buckets: a config client changes properties of two buckets ("ttl":
//    its default ttl, r, w, max_siblings; "cfg": r, w, mode, warn level)
//    through random nodes. After healing every node must hold the same
//    bucket entries, none older than an acknowledged change.
//  - TTL: in the bucket "ttl", clients write values with and without a ttl
//    (own, the bucket's, or persist), replace them with the context of a
//    read and a ttl, and delete them. No read may return a value expired by
//    more than the largest clock skew (30 s) plus a second; no live sibling
//    may carry a dot an acknowledged write's context covered (an expired
//    value must not let what it replaced come back, even after the reaper
//    erased it); an acknowledged value without expiry that no later write
//    could have covered is never lost. Expired objects and tombstones count
//    as the same for replica agreement (which one a primary holds depends
//    on whether the reaper got to it).
//  - listings: a client lists the default and "ttl" buckets in small pages
//    while faults go on; every page must be in key order, after the cursor,
//    within the prefix, and hold only keys some client wrote to that bucket.
//    After healing (and once every expiry is past the skew), a listing of
//    each bucket must be complete and equal the keys the final reads found
//    live: no deleted or expired key, no live key missing.
//
// Everything follows from the seed, so a failing schedule replays exactly
// with ReplayCommand(). One schedule owns its World: separate schedules may
// run on separate threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ringkv::sim {

struct ScheduleOptions {
  uint64_t seed = 1;
  int nodes = 0;         // 3..7; 0 picks from the seed
  double minutes = 1.0;  // simulated time with clients and faults
  // After healing: time allowed to converge. Anti-entropy exchanges one
  // partition every 2 s, so a node of a 3-node cluster (all 64 partitions)
  // needs 128 s per round, and a replica whose partner in that round also
  // missed the write waits for the next: 300 s covers two rounds.
  uint64_t max_quiet_ms = 300'000;
  bool lww = false;  // control run: every put and delete with Quorum.lww
  int set_keys = 6;
  int register_keys = 4;  // in use at a time; a new set every register_window_ms
  uint64_t register_window_ms = 15'000;
  int set_clients = 6;
  int register_clients = 3;
  // Convergent data types (core/datatypes.h): counters incremented and sets
  // added to and removed from, through DataTypeRequests.
  int counter_keys = 3;
  int counter_clients = 2;
  int dtset_keys = 3;
  int dtset_clients = 2;
  uint64_t tombstone_grace_s = 30;  // nodes' --tombstone-grace (0: never reap)
  bool trace = false;     // keep a line per fault and per client write
  std::string watch_key;  // with trace: also every message about this key
};

struct ScheduleResult {
  uint64_t seed = 0;
  int nodes = 0;
  double minutes = 0;
  bool lww = false;

  uint64_t adds_attempted = 0;
  uint64_t adds_acked = 0;
  uint64_t adds_lost = 0;         // acked adds missing from a read or a primary
  uint64_t phantom_elements = 0;  // elements nobody tried to add (corruption)
  uint64_t puts_acked = 0;        // register workload
  uint64_t deletes_acked = 0;
  uint64_t deleted_keys_checked = 0;  // keys that must read as not found
  uint64_t deleted_keys_reaped = 0;   // of those, gone from every primary at the end
  uint64_t tombstones_reaped = 0;     // tombstones erased, all nodes (compare-and-delete)
  uint64_t tombstone_grace_s = 0;
  uint64_t replicas_differing = 0;    // keys whose primaries hold different objects
  uint64_t hints_left = 0;
  uint64_t resurrections = 0;        // keys where a deleted write came back
  uint64_t puts_lost = 0;            // acked register puts missing (no delete after them)
  uint64_t final_read_failures = 0;  // r=3 reads that failed after healing
  uint64_t acks_mismatched = 0;      // a put acknowledged with another write's object
  uint64_t counter_attempted = 0;    // increments tried (sum of deltas)
  uint64_t counter_acked = 0;        // of those, acknowledged
  uint64_t counters_out_of_bounds = 0;  // counter keys outside [acked, attempted] somewhere
  uint64_t dt_adds_attempted = 0;    // SADDs of the data-type set workload
  uint64_t dt_adds_acked = 0;
  uint64_t dt_adds_lost = 0;         // acknowledged, no remove could have seen them, missing
  uint64_t dt_members_back = 0;      // removed by a remove that held them, yet present
  uint64_t bucket_changes_acked = 0;  // bucket-set answered ok
  uint64_t buckets_diverged = 0;      // nodes whose bucket entries differ after healing
  uint64_t ttl_writes_acked = 0;
  uint64_t ttl_expiring_acked = 0;    // of those, values with an expiry
  uint64_t expired_returned = 0;      // reads that returned a value long expired
  uint64_t expired_reaped = 0;        // objects of expired values erased, all nodes
  uint64_t listings = 0;              // listing pages answered during the faults
  uint64_t listing_errors = 0;        // pages out of order, outside prefix/bucket, phantom keys
  uint64_t final_listings_wrong = 0;  // buckets whose final listing differed from the reads
  std::string exception;             // the run threw (codec failure, ...)

  uint64_t faults = 0;
  uint64_t client_ops = 0;
  uint64_t client_ops_failed = 0;  // error or no answer
  uint64_t messages = 0;
  uint64_t simulated_ms = 0;
  uint64_t converge_ms = 0;  // quiet time until hints drained and replicas agreed
  double wall_s = 0;

  std::vector<std::string> problems;  // what failed, readable (first few)
  std::vector<std::string> trace;     // faults as they happened (options.trace)

  bool ok() const {
    return adds_lost == 0 && phantom_elements == 0 && replicas_differing == 0 && hints_left == 0 &&
           resurrections == 0 && puts_lost == 0 && final_read_failures == 0 &&
           acks_mismatched == 0 && counters_out_of_bounds == 0 && dt_adds_lost == 0 &&
           dt_members_back == 0 && buckets_diverged == 0 && expired_returned == 0 &&
           listing_errors == 0 && final_listings_wrong == 0 && exception.empty();
  }
};

// The number of nodes a seed runs with when ScheduleOptions.nodes is 0.
int NodesForSeed(uint64_t seed);
// A whole number of minutes in [lo, hi] picked by the seed (a mix of short
// and long schedules).
double MinutesForSeed(uint64_t seed, double lo, double hi);

ScheduleResult RunSchedule(ScheduleOptions options);

// "build/ringkv-sim --seed S --minutes M --nodes N [--lww]"
std::string ReplayCommand(const ScheduleResult& result);

}  // namespace ringkv::sim
