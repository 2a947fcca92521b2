#include "gossip/failure_detector.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace ringkv {

FailureDetector::FailureDetector(FailureDetectorOptions options) : options_(options) {
  if (options_.window == 0) options_.window = 1;
  if (options_.expected_interval_ms == 0) options_.expected_interval_ms = 1;
}

void FailureDetector::Report(const NodeId& id, uint64_t now_us) {
  auto [it, inserted] = peers_.try_emplace(id);
  History& h = it->second;
  if (inserted) {
    uint64_t bootstrap_us = options_.expected_interval_ms * 1000;
    h.gaps_us.push_back(bootstrap_us);
    h.sum_us = bootstrap_us;
    h.last_us = now_us;
    return;
  }
  if (now_us <= h.last_us) return;  // same instant (or clock glitch): no gap
  uint64_t gap = now_us - h.last_us;
  h.last_us = now_us;
  if (static_cast<double>(gap) >= ConvictionSilenceOf(h)) return;  // an outage
  h.gaps_us.push_back(gap);
  h.sum_us += gap;
  if (h.gaps_us.size() > options_.window) {
    h.sum_us -= h.gaps_us.front();
    h.gaps_us.pop_front();
  }
}

void FailureDetector::DiscountStall(uint64_t stall_us, uint64_t now_us) {
  for (auto& [id, h] : peers_)
    h.last_us = std::min(h.last_us + stall_us, std::max(h.last_us, now_us));
}

void FailureDetector::Forget(const NodeId& id) { peers_.erase(id); }

bool FailureDetector::Tracks(const NodeId& id) const { return peers_.contains(id); }

double FailureDetector::MeanOf(const History& h) const {
  double mean = static_cast<double>(h.sum_us) / static_cast<double>(h.gaps_us.size());
  double floor = static_cast<double>(options_.expected_interval_ms) * 1000.0 / 2.0;
  return std::max(mean, floor);
}

double FailureDetector::ConvictionSilenceOf(const History& h) const {
  double by_phi = options_.phi_threshold * std::numbers::ln10 * MeanOf(h);
  return std::max(by_phi, static_cast<double>(options_.min_silence_ms) * 1000.0);
}

double FailureDetector::Phi(const NodeId& id, uint64_t now_us) const {
  auto it = peers_.find(id);
  if (it == peers_.end()) return std::numeric_limits<double>::infinity();
  const History& h = it->second;
  double silence = now_us > h.last_us ? static_cast<double>(now_us - h.last_us) : 0.0;
  return silence / (MeanOf(h) * std::numbers::ln10);
}

bool FailureDetector::IsAlive(const NodeId& id, uint64_t now_us) const {
  auto it = peers_.find(id);
  if (it == peers_.end()) return false;
  const History& h = it->second;
  double silence = now_us > h.last_us ? static_cast<double>(now_us - h.last_us) : 0.0;
  return silence < ConvictionSilenceOf(h);
}

uint64_t FailureDetector::ConvictionSilenceMicros(const NodeId& id) const {
  auto it = peers_.find(id);
  if (it == peers_.end()) return 0;
  return static_cast<uint64_t>(std::ceil(ConvictionSilenceOf(it->second)));
}

uint64_t FailureDetector::LastArrivalMicros(const NodeId& id) const {
  auto it = peers_.find(id);
  return it == peers_.end() ? 0 : it->second.last_us;
}

double FailureDetector::MeanGapMicros(const NodeId& id) const {
  auto it = peers_.find(id);
  return it == peers_.end() ? 0.0 : MeanOf(it->second);
}

}  // namespace ringkv
