// NodeConfig: what a node is told at start (its id, cluster, quorum
// defaults, membership bootstrap, timings). Read by every part of node/;
// changed by none.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/limits.h"
#include "core/message.h"
#include "node/anti_entropy.h"
#include "node/tombstone_reaper.h"

namespace ringkv {

struct NodeConfig {
  NodeId id;
  std::string cluster = "ringkv";
  uint32_t n = 3;
  uint32_t r = 2;
  uint32_t w = 2;
  uint32_t timeout_ms = 2000;
  Mode mode = Mode::kSloppy;  // default for requests that do not say
  size_t max_value_bytes = kDefaultMaxValueBytes;
  // Siblings: a client write that would leave more live siblings than this
  // is refused (TooManySiblings); a get above the warning level says so.
  // Buckets may set their own (node/buckets.h).
  uint32_t max_siblings = 100;
  uint32_t warn_siblings = 25;
  std::string listen_address;  // host:port peers and clients reach this node at

  // Membership. With peers: every listed node (id -> host:port) is a member
  // from the start (all Up). With seeds: this node joins through them
  // (Joining, then Up once it holds its partitions). With neither: this node
  // founds a new cluster. A restarted node keeps what its data dir says.
  uint32_t ring_size = 64;
  std::map<NodeId, std::string> peers;
  std::vector<std::string> seeds;
  uint64_t gossip_interval_ms = 1000;
  double phi_threshold = 8.0;
  uint64_t random_seed = 0;

  AaeConfig aae;
  // Tombstone reaping: grace period (0: never) and rate; see
  // node/tombstone_reaper.h.
  TombstoneConfig tombstones;

  // A testing knob, never for production: this node applies every incoming
  // ReplicaWrite (and acknowledges it) after a delay drawn uniformly from
  // [min, max] ms, as if the network to it were slow. It shows the
  // staleness window of r + w <= n (`ringkv experiment staleness`).
  // 0: off. The coordinator's own copy is never delayed.
  uint64_t inject_replica_delay_min_ms = 0;
  uint64_t inject_replica_delay_max_ms = 0;
};

}  // namespace ringkv
