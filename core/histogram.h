// A log-linear histogram of non-negative integers (latencies in
// microseconds): exact below 128, then 64 sub-buckets per power of two, so
// any reported percentile is within 1% of the true value. Fixed memory
// (about 30 KiB), O(1) record; mergeable, so per-thread histograms can be
// summed.
#pragma once

#include <array>
#include <cstdint>

namespace ringkv {

class Histogram {
 public:
  void Record(uint64_t value);
  void Merge(const Histogram& other);
  void Clear() { *this = Histogram(); }

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  // The value at quantile q in [0, 1] (0.99 for p99), within 1%.
  uint64_t Percentile(double q) const;
  // The sum of every value recorded (Prometheus' _sum).
  uint64_t sum() const { return sum_; }
  // How many recorded values are at most `bound` (Prometheus' cumulative
  // le="bound" bucket): exact for bounds below 128; above, values in the
  // same bucket as the bound (at most 1.6% above it) count too.
  // Non-decreasing in bound, and equal to count() for bound >= max().
  uint64_t CountAtMost(uint64_t bound) const;

 private:
  static constexpr int kBuckets = 128 + 58 * 64;
  static int Index(uint64_t value);
  static uint64_t Midpoint(int index);

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace ringkv
