#include "core/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ringkv {

int Histogram::Index(uint64_t v) {
  if (v < 128) return static_cast<int>(v);
  int msb = 63 - std::countl_zero(v);
  int shift = msb - 6;  // v >> shift is in [64, 128)
  return 128 + (shift - 1) * 64 + static_cast<int>((v >> shift) - 64);
}

uint64_t Histogram::Midpoint(int index) {
  if (index < 128) return static_cast<uint64_t>(index);
  int shift = (index - 128) / 64 + 1;
  uint64_t sub = static_cast<uint64_t>((index - 128) % 64 + 64);
  uint64_t low = sub << shift;
  uint64_t width = uint64_t{1} << shift;
  return low + width / 2;
}

void Histogram::Record(uint64_t value) {
  ++buckets_[Index(value)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(Midpoint(i), min_, max_);
  }
  return max_;
}

uint64_t Histogram::CountAtMost(uint64_t bound) const {
  if (count_ == 0 || bound >= max_) return count_;
  if (bound < min_) return 0;
  uint64_t n = 0;
  int last = Index(bound);
  for (int i = 0; i <= last; ++i) n += buckets_[i];
  return n;
}

}  // namespace ringkv
