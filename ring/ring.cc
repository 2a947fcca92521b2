// The claim: which members hold each partition.
//
// Algorithm: rendezvous hashing with rank-grid scores, balanced by a min-cost
// flow.
//
//  1. Scores. Each node ranks all Q partitions by a hash of (partition, node);
//     a node's score for a partition is that rank (plus hash bits below it to
//     break ties between nodes). So every node's scores are exactly the grid
//     0..Q-1 in its own random order, instead of Q independent draws. Pure
//     rendezvous (highest-random-weight, HRW) hashing gives each partition the
//     n_val highest-scoring members. That alone moves the theoretical minimum
//     on a join or leave, because a partition's ranking of two nodes never
//     depends on who else is a member. The grid does not change that; it
//     only roughly halves the variance of HRW loads (no node can draw
//     unusually many high scores), which leaves less for step 2 to repair.
//  2. Balance. HRW loads are still binomial-like, too uneven for the ±10%
//     promise when Q is only 16x the membership. So the claim is the
//     assignment that maximises the total score of the chosen (partition,
//     node) pairs subject to every node's load lying in the band
//     [ceil(0.9 mean), floor(1.1 mean)] (widened to floor/ceil of the mean
//     when that is empty). It starts from pure HRW, the unconstrained
//     optimum, and runs successive shortest paths: each round moves one
//     unit of load from an over-full node (or any node, to fill an
//     under-full one) along the cheapest chain of single-partition moves,
//     where moving partition p from a to b costs score(p,a) - score(p,b).
//
// Why this shape: the result is a deterministic function of (Q, n_val, the
// sorted member set), never of input order or history. Because it departs
// from HRW only as far as the band forces it to, and the band is as wide as
// the promise allows, a join or leave disturbs little beyond the replicas
// that must move: nodes whose HRW load is inside the band keep it.
//
// Measured (tests/unit/ring_test.cc): with at least 48 replicas per node on
// average (n_val >= 3 and Q >= 16 * members) a join or leave moves at most
// ~1.35x the minimum. Sparser rings (n_val 1 or 2 near Q = 16 * members) do
// worse, up to ~2x: the band is then only a replica or two wide, and the
// random share a new node takes from each old node no longer fits in it.
//
// Cost: O(Q * m * n) to score and seed, then per round O(m^2) per
// Bellman-Ford pass plus a rescan of the few edges a round invalidates.
// Q = 1024 with 32 members builds in a few milliseconds.
#include "ring/ring.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <limits>
#include <string>
#include <utility>

#include "core/hash.h"

namespace ringkv {
namespace {

constexpr uint32_t kMaxRingSize = 1u << 20;
constexpr uint32_t kTieBits = 20;  // below the rank in a score; rank < 2^20

// Penalty for each replica a node holds outside its load band. Larger than
// any sum of score differences along a path (scores are below 2^40 and a
// path visits each node once), so the band always wins over score.
constexpr int64_t kBandPenalty = int64_t{1} << 60;
constexpr int64_t kNoMove = std::numeric_limits<int64_t>::max() / 4;

// Solves the claim for sorted, distinct members: Holds(p, v) says whether
// member v is one of the n primaries of partition p.
class Claim {
 public:
  Claim(uint32_t ring_size, uint32_t n, const std::vector<NodeId>& members)
      : q_(ring_size), n_(n), m_(static_cast<uint32_t>(members.size())) {
    ComputeScores(members);
    // The load band: ±10% of the mean, but never narrower than floor/ceil of
    // the mean, so it is feasible even when the mean is a handful of
    // replicas.
    const uint64_t total = uint64_t{n_} * q_;
    const uint64_t m = m_;
    const uint64_t floor_mean = total / m;
    const uint64_t ceil_mean = (total + m - 1) / m;
    const uint64_t band_low = (9 * total + 10 * m - 1) / (10 * m);  // ceil(0.9 mean)
    const uint64_t band_high = (11 * total) / (10 * m);             // floor(1.1 mean)
    low_ = static_cast<int64_t>(std::min(band_low, floor_mean));
    high_ = static_cast<int64_t>(std::max(band_high, ceil_mean));
  }

  void Solve() {
    holds_.assign(size_t{q_} * m_, 0);
    load_.assign(m_, 0);
    AssignRendezvous();
    if (n_ < m_) Rebalance();
  }

  bool Holds(uint32_t p, uint32_t v) const { return holds_[Index(p, v)] != 0; }
  int64_t score(uint32_t p, uint32_t v) const { return score_[Index(p, v)]; }

  // Ranks a before b for partition p: higher score first, then lower index
  // (members are sorted, so this is a fixed order of node ids).
  bool Before(uint32_t p, uint32_t a, uint32_t b) const {
    const int64_t sa = score(p, a), sb = score(p, b);
    return sa != sb ? sa > sb : a < b;
  }

 private:
  size_t Index(uint32_t p, uint32_t v) const { return size_t{p} * m_ + v; }

  void ComputeScores(const std::vector<NodeId>& members) {
    // A lone member has nothing to be ranked against; skipping the sort keeps
    // a one-node ring of 2^20 partitions cheap.
    if (m_ == 1) {
      score_.assign(q_, 0);
      return;
    }
    score_.resize(size_t{q_} * m_);
    // Sort keys carry the hash's high bits and the partition in the low 20
    // bits, so they are distinct and sorting them ranks the partitions (equal
    // hash prefixes fall back to partition order). The hashes are uniform, so
    // a bucket sort on the top log2(Q) bits leaves ~1 key per bucket: linear
    // time, which matters because the test suite builds thousands of rings.
    constexpr uint64_t kPartitionMask = (uint64_t{1} << 20) - 1;
    const uint32_t bits = static_cast<uint32_t>(std::countr_zero(q_));
    auto bucket = [bits](uint64_t key) -> uint32_t {
      return bits == 0 ? 0 : static_cast<uint32_t>(key >> (64 - bits));
    };
    std::vector<uint64_t> keys(q_), sorted(q_), tie(q_);
    std::vector<uint32_t> bucket_start(q_ + 1);
    for (uint32_t v = 0; v < m_; ++v) {
      const NodeId& id = members[v];
      std::fill(bucket_start.begin(), bucket_start.end(), 0);
      for (uint32_t p = 0; p < q_; ++p) {
        const uint64_t h = XXH64(id.data(), id.size(), p);
        keys[p] = (h & ~kPartitionMask) | p;
        tie[p] = h & kPartitionMask;
        ++bucket_start[bucket(keys[p]) + 1];
      }
      for (uint32_t b = 0; b < q_; ++b) bucket_start[b + 1] += bucket_start[b];
      for (uint32_t p = 0; p < q_; ++p) sorted[bucket_start[bucket(keys[p])]++] = keys[p];
      // bucket_start[b] is now the end of bucket b; each bucket is short,
      // so insertion sort within buckets finishes the job.
      for (uint32_t b = 0, begin = 0; b < q_; begin = bucket_start[b++]) {
        for (uint32_t i = begin + 1; i < bucket_start[b]; ++i) {
          for (uint32_t j = i; j > begin && sorted[j - 1] > sorted[j]; --j) {
            std::swap(sorted[j - 1], sorted[j]);
          }
        }
      }
      for (uint32_t rank = 0; rank < q_; ++rank) {
        const uint32_t p = static_cast<uint32_t>(sorted[rank] & kPartitionMask);
        score_[Index(p, v)] = (int64_t{rank} << kTieBits) | static_cast<int64_t>(tie[p]);
      }
    }
  }

  void AssignRendezvous() {
    std::vector<uint32_t> order(m_);
    for (uint32_t p = 0; p < q_; ++p) {
      for (uint32_t v = 0; v < m_; ++v) order[v] = v;
      std::partial_sort(order.begin(), order.begin() + n_, order.end(),
                        [&](uint32_t a, uint32_t b) { return Before(p, a, b); });
      for (uint32_t i = 0; i < n_; ++i) {
        holds_[Index(p, order[i])] = 1;
        ++load_[order[i]];
      }
    }
  }

  // Marginal band penalty of taking one replica from v / giving one to v.
  int64_t TakeCost(uint32_t v) const {
    if (load_[v] > high_) return -kBandPenalty;
    return load_[v] > low_ ? 0 : kBandPenalty;
  }
  int64_t GiveCost(uint32_t v) const {
    if (load_[v] < low_) return -kBandPenalty;
    return load_[v] < high_ ? 0 : kBandPenalty;
  }

  // The edge a->b of the node graph is the cheapest single move of a
  // partition from a to b. Keeping the lowest partition on equal costs makes
  // incremental updates agree with a full rescan.
  void Offer(uint32_t a, uint32_t b, uint32_t p) {
    const size_t e = size_t{a} * m_ + b;
    const int64_t c = score(p, a) - score(p, b);
    if (c < edge_cost_[e] || (c == edge_cost_[e] && p < edge_partition_[e])) {
      edge_cost_[e] = c;
      edge_partition_[e] = p;
    }
  }

  void OfferPartition(uint32_t p) {
    for (uint32_t a = 0; a < m_; ++a) {
      if (!Holds(p, a)) continue;
      for (uint32_t b = 0; b < m_; ++b) {
        if (!Holds(p, b)) Offer(a, b, p);
      }
    }
  }

  void RescanEdge(uint32_t a, uint32_t b) {
    const size_t e = size_t{a} * m_ + b;
    edge_cost_[e] = kNoMove;
    edge_partition_[e] = 0;
    for (uint32_t p = 0; p < q_; ++p) {
      if (Holds(p, a) && !Holds(p, b)) Offer(a, b, p);
    }
  }

  // Successive shortest paths over the graph of nodes. Each round takes the
  // cheapest path, band penalties included, from a node that may give up a
  // replica to a node that may take one, and applies it while that lowers
  // the total cost. Augmenting along shortest paths keeps the assignment
  // optimal for its loads at every step, so it ends at the constrained
  // optimum, and the residual graph never has a negative cycle.
  void Rebalance() {
    // If pure HRW is inside the band it is the optimum: from HRW every
    // single move has positive cost.
    bool violated = false;
    for (uint32_t v = 0; v < m_; ++v) violated |= load_[v] > high_ || load_[v] < low_;
    if (!violated) return;

    const size_t mm = size_t{m_} * m_;
    edge_cost_.assign(mm, kNoMove);
    edge_partition_.assign(mm, 0);
    for (uint32_t p = 0; p < q_; ++p) OfferPartition(p);

    std::vector<int64_t> dist(m_);
    std::vector<int64_t> pred(m_);
    std::vector<uint32_t> path, changed;
    // Every round strictly lowers the cost, so this ends on its own; the cap
    // only guards against a bug turning into a hang.
    const uint64_t max_rounds = 4 * uint64_t{n_} * q_ + 16;
    for (uint64_t rounds = 0; rounds < max_rounds; ++rounds) {
      // Bellman-Ford from a virtual source joined to each node by its take
      // cost. Without negative cycles m rounds suffice.
      for (uint32_t v = 0; v < m_; ++v) {
        dist[v] = TakeCost(v);
        pred[v] = -1;
      }
      for (uint32_t round = 0; round < m_; ++round) {
        bool relaxed = false;
        for (uint32_t a = 0; a < m_; ++a) {
          const int64_t* row = &edge_cost_[size_t{a} * m_];
          for (uint32_t b = 0; b < m_; ++b) {
            if (row[b] >= kNoMove) continue;
            const int64_t d = dist[a] + row[b];
            if (d < dist[b]) {
              dist[b] = d;
              pred[b] = a;
              relaxed = true;
            }
          }
        }
        if (!relaxed) break;
      }

      int64_t best = 0;
      int64_t sink = -1;
      for (uint32_t v = 0; v < m_; ++v) {
        if (pred[v] < 0) continue;  // empty path: moves nothing
        const int64_t c = dist[v] + GiveCost(v);
        if (c < best) {
          best = c;
          sink = v;
        }
      }
      if (sink < 0) return;  // no improving path: optimal

      path.clear();
      for (int64_t v = sink; v >= 0; v = pred[v]) {
        path.push_back(static_cast<uint32_t>(v));
        if (path.size() > m_) return;  // a cycle; impossible, but never loop
      }
      std::reverse(path.begin(), path.end());
      // Apply the moves in path order. Each is valid: a simple path touches
      // each node once, so no earlier move in it changed who holds the
      // partition of a later one, except as that move itself intends.
      changed.clear();
      for (size_t i = 0; i + 1 < path.size(); ++i) {
        const uint32_t a = path[i], b = path[i + 1];
        const uint32_t p = edge_partition_[size_t{a} * m_ + b];
        holds_[Index(p, a)] = 0;
        holds_[Index(p, b)] = 1;
        changed.push_back(p);
      }
      --load_[path.front()];
      ++load_[path.back()];

      // Refresh the edges: those whose best move used a changed partition
      // are rescanned; then the changed partitions offer their new moves.
      for (size_t e = 0; e < mm; ++e) {
        if (edge_cost_[e] < kNoMove &&
            std::find(changed.begin(), changed.end(), edge_partition_[e]) != changed.end()) {
          RescanEdge(static_cast<uint32_t>(e / m_), static_cast<uint32_t>(e % m_));
        }
      }
      for (uint32_t p : changed) OfferPartition(p);
    }
  }

  uint32_t q_, n_, m_;
  int64_t low_ = 0, high_ = 0;
  std::vector<int64_t> score_;
  std::vector<uint8_t> holds_;
  std::vector<int64_t> load_;
  std::vector<int64_t> edge_cost_;
  std::vector<uint32_t> edge_partition_;
};

}  // namespace

Result<Ring> Ring::Build(uint32_t ring_size, uint32_t n_val, std::vector<NodeId> members) {
  if (ring_size < 1 || ring_size > kMaxRingSize || !std::has_single_bit(ring_size)) {
    return Status::InvalidArgument("ring size " + std::to_string(ring_size) +
                                   " is not a power of two in [1, " + std::to_string(kMaxRingSize) +
                                   "]");
  }
  if (n_val < 1) return Status::InvalidArgument("n_val is 0; it must be at least 1");
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  if (members.empty()) return Status::InvalidArgument("a ring needs at least one member");

  Ring ring;
  ring.ring_size_ = ring_size;
  ring.n_val_ = n_val;
  ring.partition_bits_ = static_cast<uint32_t>(std::countr_zero(ring_size));

  const uint32_t m = static_cast<uint32_t>(members.size());
  Claim claim(ring_size, std::min(n_val, m), members);
  claim.Solve();

  // Primaries in score order, then every other member in score order. Both
  // orders depend only on (partition, node) scores, so a fallback's place is
  // stable while the member set is, and a request's n takes a prefix.
  ring.preference_.resize(ring_size);
  std::vector<uint32_t> primaries, fallbacks;
  for (uint32_t p = 0; p < ring_size; ++p) {
    primaries.clear();
    fallbacks.clear();
    for (uint32_t v = 0; v < m; ++v) (claim.Holds(p, v) ? primaries : fallbacks).push_back(v);
    auto before = [&](uint32_t a, uint32_t b) { return claim.Before(p, a, b); };
    std::sort(primaries.begin(), primaries.end(), before);
    std::sort(fallbacks.begin(), fallbacks.end(), before);
    std::vector<NodeId>& list = ring.preference_[p];
    list.reserve(m);
    for (uint32_t v : primaries) list.push_back(members[v]);
    for (uint32_t v : fallbacks) list.push_back(members[v]);
  }
  ring.members_ = std::move(members);
  return ring;
}

uint32_t Ring::PartitionOfHash(uint64_t key_hash) const {
  // Shifting a 64-bit value by 64 is undefined, so Q = 1 is its own case.
  if (partition_bits_ == 0) return 0;
  return static_cast<uint32_t>(key_hash >> (64 - partition_bits_));
}

uint32_t Ring::PartitionOfKey(std::string_view key) const { return PartitionOfHash(KeyHash(key)); }

uint64_t Ring::PartitionStart(uint32_t partition) const {
  if (partition_bits_ == 0) return 0;
  return uint64_t{partition} << (64 - partition_bits_);
}

uint64_t Ring::PartitionEnd(uint32_t partition) const {
  return partition + 1 >= ring_size() ? UINT64_MAX : PartitionStart(partition + 1) - 1;
}

const std::vector<NodeId>& Ring::PreferenceList(uint32_t partition) const {
  // Out of range (or an empty Ring): no nodes, rather than undefined behaviour.
  static const std::vector<NodeId> kEmpty;
  return partition < preference_.size() ? preference_[partition] : kEmpty;
}

std::vector<NodeId> Ring::Primaries(uint32_t partition, uint32_t n) const {
  const std::vector<NodeId>& list = PreferenceList(partition);
  const size_t count = std::min<size_t>(n, list.size());
  return std::vector<NodeId>(list.begin(), list.begin() + count);
}

std::vector<uint32_t> Ring::PartitionsOf(const NodeId& node) const {
  std::vector<uint32_t> out;
  const size_t n = std::min<size_t>(n_val_, members_.size());
  for (uint32_t p = 0; p < preference_.size(); ++p) {
    const auto first = preference_[p].begin();
    if (std::find(first, first + n, node) != first + n) out.push_back(p);
  }
  return out;
}

}  // namespace ringkv
