// FailureDetector: the phi accrual failure detector (Hayashibara et al. 2004,
// as Cassandra uses it) over heartbeat arrivals observed through gossip.
//
// For each tracked peer it keeps the gaps between successive arrivals of news
// that the peer is alive (a newer heartbeat, first-hand or second-hand), the
// last `window` of them, bootstrapped with one gap of expected_interval_ms.
//
// Model (exponential inter-arrival times, as in Cassandra): after a silence of
// t since the last arrival, with m the mean gap of the window,
//
//   phi(t) = -log10(P(no arrival for t)) = t / (m * ln 10).
//
// m is floored at expected_interval_ms / 2: a peer beats once per interval
// and every arrival carries at least one new beat, so a smaller mean only
// comes from a few bunched early samples, and would make the detector
// trigger-happy.
//
// Verdict: a peer is convicted (not alive) iff phi >= phi_threshold AND the
// silence is >= min_silence_ms. Equivalently, it is convicted exactly when
//
//   silence >= ConvictionSilence = max(min_silence, phi_threshold * ln 10 * m)
//
// so, with interval 1 s, threshold 8 and m ~= 1 s, a peer that stops is
// convicted about 18.4 s after the last news of it reached this node. Any
// arrival makes it alive again at once (phi drops to 0).
//
// A gap at whose end the peer was already convicted is not sampled: it
// measures an outage, not the normal jitter, and would make the detector
// slow for the next `window` arrivals.
//
// Pure logic: time is passed in by the caller (microseconds, monotonic); no
// clock, no threads. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>

#include "core/dvv.h"  // NodeId

namespace ringkv {

struct FailureDetectorOptions {
  uint64_t expected_interval_ms = 1000;  // bootstrap gap; half of it floors m
  double phi_threshold = 8.0;
  uint64_t min_silence_ms = 2000;
  size_t window = 100;  // gaps kept per peer
};

class FailureDetector {
 public:
  explicit FailureDetector(FailureDetectorOptions options);

  // Records news that `id` is alive arriving at now_us. The first call for an
  // id starts tracking it (counted alive from now_us on).
  void Report(const NodeId& id, uint64_t now_us);
  // Discounts a stall of this node (a pause, a blocked loop) of stall_us that
  // ended at now_us: silence it could not observe must not count against its
  // peers. Moves every last arrival stall_us later (at most to now_us), which
  // keeps each verdict as it was before the stall.
  void DiscountStall(uint64_t stall_us, uint64_t now_us);
  // Stops tracking id (it left or was removed); its history is dropped.
  void Forget(const NodeId& id);
  // True iff id is tracked.
  bool Tracks(const NodeId& id) const;

  // phi at now_us; +infinity for an untracked id.
  double Phi(const NodeId& id, uint64_t now_us) const;
  // The verdict at now_us; false for an untracked id.
  bool IsAlive(const NodeId& id, uint64_t now_us) const;

  // The silence (microseconds) after which id is convicted, given its current
  // window; 0 for an untracked id.
  uint64_t ConvictionSilenceMicros(const NodeId& id) const;
  // When the last news of id arrived; 0 for an untracked id.
  uint64_t LastArrivalMicros(const NodeId& id) const;
  // The mean gap m used by phi (after the floor); 0 for an untracked id.
  double MeanGapMicros(const NodeId& id) const;

  const FailureDetectorOptions& options() const { return options_; }

 private:
  struct History {
    std::deque<uint64_t> gaps_us;
    uint64_t sum_us = 0;
    uint64_t last_us = 0;
  };

  double MeanOf(const History& h) const;
  double ConvictionSilenceOf(const History& h) const;

  FailureDetectorOptions options_;
  std::unordered_map<NodeId, History> peers_;
};

}  // namespace ringkv
