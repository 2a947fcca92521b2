#include "core/expiry.h"

#include <algorithm>

namespace ringkv {

size_t LiveCount(const DvvSet& object, uint64_t now_ms) {
  size_t n = 0;
  for (const Sibling& s : object.siblings()) n += IsLive(s, now_ms);
  return n;
}

std::vector<const Sibling*> LiveSiblingsAt(const DvvSet& object, uint64_t now_ms) {
  std::vector<const Sibling*> out;
  for (const Sibling& s : object.siblings()) {
    if (IsLive(s, now_ms)) out.push_back(&s);
  }
  return out;
}

DvvSet VisibleAt(const DvvSet& object, uint64_t now_ms) {
  bool any = std::any_of(object.siblings().begin(), object.siblings().end(),
                         [&](const Sibling& s) { return IsExpired(s, now_ms); });
  if (!any) return object;
  std::vector<Sibling> kept;
  for (const Sibling& s : object.siblings()) {
    if (!IsExpired(s, now_ms)) kept.push_back(s);
  }
  DvvSet out;
  // Dropping siblings keeps every remaining dot covered by the clock.
  DvvSet::FromParts(object.clock(), std::move(kept), &out);
  return out;
}

bool OnlyEndingSiblings(const DvvSet& object) {
  if (object.clock().empty()) return false;
  return std::all_of(object.siblings().begin(), object.siblings().end(),
                     [](const Sibling& s) { return s.tombstone || s.expires_ms != 0; });
}

uint64_t DeadSince(const DvvSet& object, uint64_t now_ms) {
  if (object.clock().empty()) return 0;
  uint64_t newest = 0;
  for (const Sibling& s : object.siblings()) {
    if (s.tombstone) {
      newest = std::max(newest, s.timestamp_ms);
    } else if (IsExpired(s, now_ms)) {
      newest = std::max(newest, s.expires_ms);
    } else {
      return 0;
    }
  }
  return std::max<uint64_t>(newest, 1);
}

}  // namespace ringkv
