#include "core/dvv.h"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

namespace ringkv {

std::string Dot::ToString() const { return fmt::format("{}:{}", actor, counter); }

namespace {

// The first entry whose actor is not less than actor.
template <typename Entries>
auto LowerBound(Entries& entries, std::string_view actor) {
  return std::lower_bound(entries.begin(), entries.end(), actor,
                          [](const auto& e, std::string_view a) { return e.first < a; });
}

}  // namespace

uint64_t VersionVector::Get(std::string_view actor) const {
  auto it = LowerBound(entries_, actor);
  return it != entries_.end() && it->first == actor ? it->second : 0;
}

void VersionVector::Set(const NodeId& actor, uint64_t counter) {
  // Decoding sets entries in actor order: append without a search.
  if (counter != 0 && (entries_.empty() || entries_.back().first < actor)) {
    entries_.emplace_back(actor, counter);
    return;
  }
  auto it = LowerBound(entries_, actor);
  bool found = it != entries_.end() && it->first == actor;
  if (counter == 0) {
    if (found) entries_.erase(it);
  } else if (found) {
    it->second = counter;
  } else {
    entries_.emplace(it, actor, counter);
  }
}

bool VersionVector::Descends(const VersionVector& other) const {
  for (const auto& [actor, counter] : other.entries_) {
    if (Get(actor) < counter) return false;
  }
  return true;
}

void VersionVector::Join(const VersionVector& other) {
  if (Descends(other)) return;  // the common case on a replica: nothing new
  // Both sorted: merge in one pass.
  Entries out;
  out.reserve(entries_.size() + other.entries_.size());
  auto a = entries_.begin();
  auto b = other.entries_.begin();
  while (a != entries_.end() || b != other.entries_.end()) {
    if (b == other.entries_.end() || (a != entries_.end() && a->first < b->first)) {
      out.push_back(std::move(*a++));
    } else if (a == entries_.end() || b->first < a->first) {
      out.push_back(*b++);
    } else {
      out.emplace_back(std::move(a->first), std::max(a->second, b->second));
      ++a;
      ++b;
    }
  }
  entries_ = std::move(out);
}

std::string VersionVector::ToString() const {
  std::string s = "{";
  bool first = true;
  for (const auto& [actor, counter] : entries_) {
    if (!first) s += ",";
    first = false;
    s += fmt::format("{}:{}", actor, counter);
  }
  return s + "}";
}

DvvSet DvvSet::Update(const DvvSet& local, const VersionVector& context, const NodeId& actor,
                      std::string value, bool tombstone, uint64_t timestamp_ms,
                      uint64_t min_counter) {
  Sibling write;
  write.value = std::move(value);
  write.tombstone = tombstone;
  write.timestamp_ms = timestamp_ms;
  return Update(local, context, actor, std::move(write), min_counter);
}

DvvSet DvvSet::Update(const DvvSet& local, const VersionVector& context, const NodeId& actor,
                      Sibling write, uint64_t min_counter) {
  DvvSet out;
  out.clock_ = local.clock_;
  out.clock_.Join(context);
  // The minting replica's own entry can only be ahead in its own store, but a
  // context may carry a higher counter for this actor if the replica lost its
  // data; never reuse a dot that some client has seen.
  Dot dot{actor, std::max(out.clock_.Get(actor), min_counter) + 1};
  out.clock_.Set(actor, dot.counter);
  for (const Sibling& s : local.siblings_) {
    if (!context.Covers(s.dot)) out.siblings_.push_back(s);
  }
  Sibling fresh = std::move(write);
  fresh.dot = std::move(dot);
  if (fresh.tombstone) {
    fresh.value.clear();
    fresh.expires_ms = 0;
    fresh.datatype = 0;
  }
  out.siblings_.push_back(std::move(fresh));
  out.Canonicalize();
  return out;
}

namespace {

// Deterministic choice between two siblings that claim the same dot (which
// only happens if a replica reminted a dot after losing its data): keeps
// Sync commutative even then.
const Sibling& PickSameDot(const Sibling& a, const Sibling& b) {
  auto key = [](const Sibling& s) {
    return std::tie(s.timestamp_ms, s.tombstone, s.value, s.expires_ms, s.datatype);
  };
  return key(a) >= key(b) ? a : b;
}

}  // namespace

DvvSet DvvSet::Sync(const DvvSet& a, const DvvSet& b) {
  DvvSet out;
  out.clock_ = a.clock_;
  out.clock_.Join(b.clock_);
  // Both sibling lists are sorted by dot: merge them.
  size_t i = 0, j = 0;
  const auto& sa = a.siblings_;
  const auto& sb = b.siblings_;
  while (i < sa.size() || j < sb.size()) {
    if (j == sb.size() || (i < sa.size() && sa[i].dot < sb[j].dot)) {
      // Only in a: keep iff b has not seen it (else b has dropped it).
      if (!b.clock_.Covers(sa[i].dot)) out.siblings_.push_back(sa[i]);
      ++i;
    } else if (i == sa.size() || sb[j].dot < sa[i].dot) {
      if (!a.clock_.Covers(sb[j].dot)) out.siblings_.push_back(sb[j]);
      ++j;
    } else {
      out.siblings_.push_back(PickSameDot(sa[i], sb[j]));
      ++i;
      ++j;
    }
  }
  return out;
}

DvvSet DvvSet::CollapseLww(const DvvSet& object) {
  if (object.siblings_.size() <= 1) return object;
  DvvSet out;
  out.clock_ = object.clock_;
  const Sibling* best = &object.siblings_[0];
  for (const Sibling& s : object.siblings_) {
    if (std::tie(s.timestamp_ms, s.dot) > std::tie(best->timestamp_ms, best->dot)) best = &s;
  }
  out.siblings_.push_back(*best);
  return out;
}

std::vector<const Sibling*> DvvSet::LiveSiblings() const {
  std::vector<const Sibling*> live;
  for (const Sibling& s : siblings_) {
    if (!s.tombstone) live.push_back(&s);
  }
  return live;
}

bool DvvSet::IsDeleted() const {
  if (siblings_.empty()) return !clock_.empty();
  return std::all_of(siblings_.begin(), siblings_.end(),
                     [](const Sibling& s) { return s.tombstone; });
}

const Sibling* DvvSet::FindSibling(const Dot& dot) const {
  for (const Sibling& s : siblings_) {
    if (s.dot == dot) return &s;
  }
  return nullptr;
}

bool DvvSet::FromParts(VersionVector clock, std::vector<Sibling> siblings, DvvSet* out) {
  out->clock_ = std::move(clock);
  out->siblings_ = std::move(siblings);
  out->Canonicalize();
  for (size_t i = 0; i < out->siblings_.size(); ++i) {
    if (!out->clock_.Covers(out->siblings_[i].dot)) return false;
    if (i > 0 && out->siblings_[i - 1].dot == out->siblings_[i].dot) return false;
  }
  return true;
}

void DvvSet::Canonicalize() {
  std::sort(siblings_.begin(), siblings_.end(),
            [](const Sibling& x, const Sibling& y) { return x.dot < y.dot; });
}

std::string DvvSet::ToString() const {
  std::string s = clock_.ToString() + "[";
  for (size_t i = 0; i < siblings_.size(); ++i) {
    if (i) s += ",";
    s += siblings_[i].dot.ToString() + "=" +
         (siblings_[i].tombstone ? std::string("<deleted>") : siblings_[i].value);
  }
  return s + "]";
}

}  // namespace ringkv
