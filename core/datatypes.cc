#include "core/datatypes.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <tuple>

#include <fmt/format.h>

#include "core/flatbuffer_bytes.h"
#include "proto/datatypes_generated.h"

namespace ringkv {

namespace fb = flatbuffers;
namespace dw = dtwire;

const char* DataTypeName(DataType type) {
  switch (type) {
    case DataType::kNone: return "none";
    case DataType::kCounter: return "counter";
    case DataType::kSet: return "set";
    case DataType::kMap: return "map";
  }
  return "unknown";
}

const char* DataTypeOpName(DataTypeOpCode op) {
  switch (op) {
    case DataTypeOpCode::kRead: return "read";
    case DataTypeOpCode::kIncrement: return "increment";
    case DataTypeOpCode::kAdd: return "add";
    case DataTypeOpCode::kRemove: return "remove";
    case DataTypeOpCode::kSetFields: return "set fields";
    case DataTypeOpCode::kRemoveFields: return "remove fields";
    case DataTypeOpCode::kIncrementField: return "increment a field";
  }
  return "unknown";
}

void ActorClock::Join(std::vector<std::string> actors, const std::vector<uint64_t>& a,
                      const std::vector<uint64_t>& b) {
  actors_ = std::move(actors);
  counters_.resize(actors_.size());
  for (size_t k = 0; k < actors_.size(); ++k) counters_[k] = std::max(a[k], b[k]);
}

namespace {

using Wide = __int128;
constexpr Wide kMinValue = std::numeric_limits<int64_t>::min();
constexpr Wide kMaxValue = std::numeric_limits<int64_t>::max();

Status Overflow() { return Status::InvalidArgument("increment or decrement would overflow"); }

// The index of actor in a sorted table, inserting it (with counter 0) if
// absent; *inserted tells whether it was, so the caller can shift its dots.
uint32_t Intern(std::vector<std::string>* actors, std::vector<uint64_t>* counters,
                const std::string& actor, bool* inserted) {
  auto it = std::lower_bound(actors->begin(), actors->end(), actor);
  auto at = static_cast<uint32_t>(it - actors->begin());
  *inserted = it == actors->end() || *it != actor;
  if (*inserted) {
    actors->insert(it, actor);
    counters->insert(counters->begin() + at, 0);
  }
  return at;
}

// The union of two sorted actor tables, and where each side's actors went.
struct ActorUnion {
  std::vector<std::string> actors;
  std::vector<uint64_t> mine;    // my counter per union index (0: absent)
  std::vector<uint64_t> theirs;  // the other's
  std::vector<uint32_t> map_mine, map_theirs;
};

ActorUnion Unite(const ActorClock& a, const ActorClock& b) {
  ActorUnion u;
  u.map_mine.resize(a.actors().size());
  u.map_theirs.resize(b.actors().size());
  size_t i = 0, j = 0;
  while (i < a.actors().size() || j < b.actors().size()) {
    auto idx = static_cast<uint32_t>(u.actors.size());
    if (j == b.actors().size() || (i < a.actors().size() && a.actors()[i] < b.actors()[j])) {
      u.actors.push_back(a.actors()[i]);
      u.mine.push_back(a.counters()[i]);
      u.theirs.push_back(0);
      u.map_mine[i++] = idx;
    } else if (i == a.actors().size() || b.actors()[j] < a.actors()[i]) {
      u.actors.push_back(b.actors()[j]);
      u.mine.push_back(0);
      u.theirs.push_back(b.counters()[j]);
      u.map_theirs[j++] = idx;
    } else {
      u.actors.push_back(a.actors()[i]);
      u.mine.push_back(a.counters()[i]);
      u.theirs.push_back(b.counters()[j]);
      u.map_mine[i++] = idx;
      u.map_theirs[j++] = idx;
    }
  }
  return u;
}

// Merges the dots (or dotted entries) of one member or field held by both
// sides, as an ORSWOT merge does: a dot both hold stays; a dot one side holds
// stays if the other has not seen it (else the other removed it).
// Items are sorted by dot; DotOf gives an item's dot (union indices).
template <typename T, typename DotOf, typename Pick>
std::vector<T> MergeDotted(const std::vector<T>& mine, const std::vector<T>& theirs,
                           const ActorUnion& u, DotOf dot_of, Pick pick) {
  std::vector<T> out;
  size_t i = 0, j = 0;
  while (i < mine.size() || j < theirs.size()) {
    if (j == theirs.size() || (i < mine.size() && dot_of(mine[i]) < dot_of(theirs[j]))) {
      DotRef d = dot_of(mine[i]);
      if (u.theirs[d.actor] < d.counter) out.push_back(mine[i]);
      ++i;
    } else if (i == mine.size() || dot_of(theirs[j]) < dot_of(mine[i])) {
      DotRef d = dot_of(theirs[j]);
      if (u.mine[d.actor] < d.counter) out.push_back(theirs[j]);
      ++j;
    } else {
      out.push_back(pick(mine[i], theirs[j]));
      ++i;
      ++j;
    }
  }
  return out;
}

// Items of one side kept when the other side does not hold the member at all.
template <typename T, typename DotOf>
std::vector<T> KeepUnseen(const std::vector<T>& items, const std::vector<uint64_t>& other_clock,
                          DotOf dot_of) {
  std::vector<T> out;
  for (const T& item : items) {
    DotRef d = dot_of(item);
    if (other_clock[d.actor] < d.counter) out.push_back(item);
  }
  return out;
}

}  // namespace

bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  size_t i = 0;
  bool negative = false;
  if (s[0] == '-') {
    negative = true;
    i = 1;
    if (s.size() == 1) return false;
  }
  if (s[i] == '0' && s.size() > i + 1) return false;
  if (negative && s[i] == '0') return false;
  Wide v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
    if (v > kMaxValue + 1) return false;
  }
  if (negative) v = -v;
  if (v < kMinValue || v > kMaxValue) return false;
  *out = static_cast<int64_t>(v);
  return true;
}


int ActorClock::Find(std::string_view actor) const {
  auto it = std::lower_bound(actors_.begin(), actors_.end(), actor);
  if (it == actors_.end() || *it != actor) return -1;
  return static_cast<int>(it - actors_.begin());
}

// ---------------------------------------------------------------------------
// PnCounter

int64_t PnCounter::Value() const {
  Wide v = 0;
  for (const Entry& e : entries_) v += Wide(e.inc) - Wide(e.dec);
  return static_cast<int64_t>(std::clamp(v, kMinValue, kMaxValue));
}

PnCounter::Entry& PnCounter::EntryFor(const Dot& dot) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), dot.actor,
                             [](const Entry& e, const std::string& a) { return e.actor < a; });
  if (it == entries_.end() || it->actor != dot.actor) {
    it = entries_.insert(it, Entry{dot.actor, 0, 0, 0});
  }
  it->last = std::max(it->last, dot.counter);
  return *it;
}

Status PnCounter::Add(const Dot& dot, int64_t delta) {
  Wide v = 0;
  for (const Entry& e : entries_) v += Wide(e.inc) - Wide(e.dec);
  Wide next = v + delta;
  if (next < kMinValue || next > kMaxValue) return Overflow();
  // The actor's own totals must fit too (they only grow).
  auto it = std::lower_bound(entries_.begin(), entries_.end(), dot.actor,
                             [](const Entry& e, const std::string& a) { return e.actor < a; });
  bool has = it != entries_.end() && it->actor == dot.actor;
  Wide inc = has ? Wide(it->inc) : 0, dec = has ? Wide(it->dec) : 0;
  Wide mag = delta >= 0 ? Wide(delta) : -Wide(delta);
  if ((delta >= 0 ? inc : dec) + mag > Wide(std::numeric_limits<uint64_t>::max())) return Overflow();
  Entry& e = EntryFor(dot);
  if (delta >= 0) {
    e.inc += static_cast<uint64_t>(mag);
  } else {
    e.dec += static_cast<uint64_t>(mag);
  }
  return Status::OK();
}

Status PnCounter::SetValue(const Dot& dot, int64_t value) {
  Wide v = 0;
  for (const Entry& e : entries_) v += Wide(e.inc) - Wide(e.dec);
  Wide diff = Wide(value) - v;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), dot.actor,
                             [](const Entry& e, const std::string& a) { return e.actor < a; });
  bool has = it != entries_.end() && it->actor == dot.actor;
  Wide inc = has ? Wide(it->inc) : 0, dec = has ? Wide(it->dec) : 0;
  Wide mag = diff >= 0 ? diff : -diff;
  if ((diff >= 0 ? inc : dec) + mag > Wide(std::numeric_limits<uint64_t>::max())) return Overflow();
  Entry& e = EntryFor(dot);
  if (diff >= 0) {
    e.inc += static_cast<uint64_t>(mag);
  } else {
    e.dec += static_cast<uint64_t>(mag);
  }
  return Status::OK();
}

void PnCounter::Join(const PnCounter& other) {
  std::vector<Entry> out;
  out.reserve(entries_.size() + other.entries_.size());
  size_t i = 0, j = 0;
  auto later = [](const Entry& a, const Entry& b) {
    return std::tie(a.last, a.inc, a.dec) >= std::tie(b.last, b.inc, b.dec) ? a : b;
  };
  while (i < entries_.size() || j < other.entries_.size()) {
    if (j == other.entries_.size() ||
        (i < entries_.size() && entries_[i].actor < other.entries_[j].actor)) {
      out.push_back(std::move(entries_[i++]));
    } else if (i == entries_.size() || other.entries_[j].actor < entries_[i].actor) {
      out.push_back(other.entries_[j++]);
    } else {
      out.push_back(later(entries_[i], other.entries_[j]));
      ++i;
      ++j;
    }
  }
  entries_ = std::move(out);
}

// ---------------------------------------------------------------------------
// OrSet

bool OrSet::Add(const Dot& dot, std::string member) {
  bool inserted = false;
  uint32_t a = Intern(&clock_.actors_, &clock_.counters_, dot.actor, &inserted);
  if (inserted) {
    for (Member& m : members_) {
      for (DotRef& d : m.dots) d.actor += d.actor >= a ? 1 : 0;
    }
  }
  clock_.counters_[a] = std::max(clock_.counters_[a], dot.counter);
  auto it = std::lower_bound(members_.begin(), members_.end(), member,
                             [](const Member& m, const std::string& n) { return m.name < n; });
  bool absent = it == members_.end() || it->name != member;
  if (absent) it = members_.insert(it, Member{std::move(member), {}});
  // The adder saw every dot the member had: its add replaces them.
  it->dots = {DotRef{a, dot.counter}};
  return absent;
}

bool OrSet::Remove(const Dot& dot, std::string_view member) {
  auto it = std::lower_bound(members_.begin(), members_.end(), member,
                             [](const Member& m, std::string_view n) { return m.name < n; });
  if (it == members_.end() || it->name != member) return false;
  members_.erase(it);
  bool inserted = false;
  uint32_t a = Intern(&clock_.actors_, &clock_.counters_, dot.actor, &inserted);
  if (inserted) {
    for (Member& m : members_) {
      for (DotRef& d : m.dots) d.actor += d.actor >= a ? 1 : 0;
    }
  }
  clock_.counters_[a] = std::max(clock_.counters_[a], dot.counter);
  return true;
}

bool OrSet::Contains(std::string_view member) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), member,
                             [](const Member& m, std::string_view n) { return m.name < n; });
  return it != members_.end() && it->name == member;
}

std::vector<std::string> OrSet::Members() const {
  std::vector<std::string> out;
  out.reserve(members_.size());
  for (const Member& m : members_) out.push_back(m.name);
  return out;
}

void OrSet::Join(const OrSet& other) {
  ActorUnion u = Unite(clock_, other.clock_);
  auto remap = [](const std::vector<DotRef>& dots, const std::vector<uint32_t>& map) {
    std::vector<DotRef> out = dots;
    for (DotRef& d : out) d.actor = map[d.actor];
    return out;
  };
  auto dot_of = [](const DotRef& d) { return d; };
  std::vector<Member> out;
  out.reserve(std::max(members_.size(), other.members_.size()));
  size_t i = 0, j = 0;
  const auto& theirs = other.members_;
  while (i < members_.size() || j < theirs.size()) {
    Member m;
    if (j == theirs.size() || (i < members_.size() && members_[i].name < theirs[j].name)) {
      m.name = std::move(members_[i].name);
      m.dots = KeepUnseen(remap(members_[i].dots, u.map_mine), u.theirs, dot_of);
      ++i;
    } else if (i == members_.size() || theirs[j].name < members_[i].name) {
      m.name = theirs[j].name;
      m.dots = KeepUnseen(remap(theirs[j].dots, u.map_theirs), u.mine, dot_of);
      ++j;
    } else {
      m.name = std::move(members_[i].name);
      m.dots = MergeDotted(remap(members_[i].dots, u.map_mine), remap(theirs[j].dots, u.map_theirs),
                           u, dot_of, [](const DotRef& a, const DotRef&) { return a; });
      ++i;
      ++j;
    }
    if (!m.dots.empty()) out.push_back(std::move(m));
  }
  members_ = std::move(out);
  clock_.Join(std::move(u.actors), u.mine, u.theirs);
}

// ---------------------------------------------------------------------------
// OrMap

namespace {

// A total order on entries that claim the same dot (only after a replica
// re-minted a dot), so merging them stays commutative.
bool EntryLess(const OrMap::Entry& a, const OrMap::Entry& b) {
  if (a.timestamp_ms != b.timestamp_ms) return a.timestamp_ms < b.timestamp_ms;
  if (a.counter != b.counter) return a.counter < b.counter;
  if (a.value != b.value) return a.value < b.value;
  auto key = [](const PnCounter::Entry& e) { return std::tie(e.actor, e.inc, e.dec, e.last); };
  return std::lexicographical_compare(
      a.count.entries().begin(), a.count.entries().end(), b.count.entries().begin(),
      b.count.entries().end(), [&](const auto& x, const auto& y) { return key(x) < key(y); });
}

}  // namespace

const OrMap::Entry& OrMap::Latest(const Field& f) const {
  const Entry* best = &f.entries.front();
  for (const Entry& e : f.entries) {
    // Actor indices follow the sorted actor names, so this orders by name.
    if (std::tie(e.timestamp_ms, e.dot) > std::tie(best->timestamp_ms, best->dot)) best = &e;
  }
  return *best;
}

PnCounter OrMap::JoinedCount(const Field& f) const {
  PnCounter c;
  for (const Entry& e : f.entries) {
    if (e.counter) c.Join(e.count);
  }
  return c;
}

OrMap::Entry& OrMap::Rewrite(const Dot& dot, uint64_t now_ms, std::string field,
                             bool* was_absent) {
  bool inserted = false;
  uint32_t a = Intern(&clock_.actors_, &clock_.counters_, dot.actor, &inserted);
  if (inserted) {
    for (Field& f : fields_) {
      for (Entry& e : f.entries) e.dot.actor += e.dot.actor >= a ? 1 : 0;
    }
  }
  clock_.counters_[a] = std::max(clock_.counters_[a], dot.counter);
  auto it = std::lower_bound(fields_.begin(), fields_.end(), field,
                             [](const Field& f, const std::string& n) { return f.name < n; });
  *was_absent = it == fields_.end() || it->name != field;
  uint64_t ts = now_ms;
  if (*was_absent) {
    it = fields_.insert(it, Field{std::move(field), {}});
  } else {
    // A write that saw the field's latest value comes after it, whatever the
    // clocks say.
    ts = std::max(ts, Latest(*it).timestamp_ms + 1);
  }
  Entry e;
  e.dot = DotRef{a, dot.counter};
  e.timestamp_ms = ts;
  it->entries = {std::move(e)};
  return it->entries.front();
}

bool OrMap::SetRegister(const Dot& dot, uint64_t now_ms, std::string field, std::string value) {
  bool absent = false;
  Entry& e = Rewrite(dot, now_ms, std::move(field), &absent);
  e.counter = false;
  e.value = std::move(value);
  return absent;
}

Result<int64_t> OrMap::IncrementField(const Dot& dot, uint64_t now_ms, std::string field,
                                      int64_t delta) {
  PnCounter count;
  auto it = std::lower_bound(fields_.begin(), fields_.end(), field,
                             [](const Field& f, const std::string& n) { return f.name < n; });
  if (it != fields_.end() && it->name == field) {
    count = JoinedCount(*it);
    const Entry& latest = Latest(*it);
    if (!latest.counter) {
      int64_t base = 0;
      if (!ParseInt64(latest.value, &base)) {
        return Status::InvalidArgument("hash value is not an integer");
      }
      Status s = count.SetValue(dot, base);
      if (!s.ok()) return s;
    }
  }
  Status s = count.Add(dot, delta);
  if (!s.ok()) return s;
  int64_t value = count.Value();
  bool absent = false;
  Entry& e = Rewrite(dot, now_ms, std::move(field), &absent);
  e.counter = true;
  e.count = std::move(count);
  return value;
}

bool OrMap::Remove(const Dot& dot, std::string_view field) {
  auto it = std::lower_bound(fields_.begin(), fields_.end(), field,
                             [](const Field& f, std::string_view n) { return f.name < n; });
  if (it == fields_.end() || it->name != field) return false;
  fields_.erase(it);
  bool inserted = false;
  uint32_t a = Intern(&clock_.actors_, &clock_.counters_, dot.actor, &inserted);
  if (inserted) {
    for (Field& f : fields_) {
      for (Entry& e : f.entries) e.dot.actor += e.dot.actor >= a ? 1 : 0;
    }
  }
  clock_.counters_[a] = std::max(clock_.counters_[a], dot.counter);
  return true;
}

std::optional<std::string> OrMap::Get(std::string_view field) const {
  auto it = std::lower_bound(fields_.begin(), fields_.end(), field,
                             [](const Field& f, std::string_view n) { return f.name < n; });
  if (it == fields_.end() || it->name != field) return std::nullopt;
  const Entry& latest = Latest(*it);
  if (!latest.counter) return latest.value;
  return std::to_string(JoinedCount(*it).Value());
}

std::vector<std::pair<std::string, std::string>> OrMap::Fields() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(fields_.size());
  for (const Field& f : fields_) out.emplace_back(f.name, *Get(f.name));
  return out;
}

void OrMap::Join(const OrMap& other) {
  ActorUnion u = Unite(clock_, other.clock_);
  auto remap = [](const std::vector<Entry>& entries, const std::vector<uint32_t>& map) {
    std::vector<Entry> out = entries;
    for (Entry& e : out) e.dot.actor = map[e.dot.actor];
    return out;
  };
  auto dot_of = [](const Entry& e) { return e.dot; };
  auto pick = [](const Entry& a, const Entry& b) { return EntryLess(a, b) ? b : a; };
  std::vector<Field> out;
  out.reserve(std::max(fields_.size(), other.fields_.size()));
  size_t i = 0, j = 0;
  const auto& theirs = other.fields_;
  while (i < fields_.size() || j < theirs.size()) {
    Field f;
    if (j == theirs.size() || (i < fields_.size() && fields_[i].name < theirs[j].name)) {
      f.name = std::move(fields_[i].name);
      f.entries = KeepUnseen(remap(fields_[i].entries, u.map_mine), u.theirs, dot_of);
      ++i;
    } else if (i == fields_.size() || theirs[j].name < fields_[i].name) {
      f.name = theirs[j].name;
      f.entries = KeepUnseen(remap(theirs[j].entries, u.map_theirs), u.mine, dot_of);
      ++j;
    } else {
      f.name = std::move(fields_[i].name);
      f.entries = MergeDotted(remap(fields_[i].entries, u.map_mine),
                              remap(theirs[j].entries, u.map_theirs), u, dot_of, pick);
      ++i;
      ++j;
    }
    if (!f.entries.empty()) out.push_back(std::move(f));
  }
  fields_ = std::move(out);
  clock_.Join(std::move(u.actors), u.mine, u.theirs);
}

// ---------------------------------------------------------------------------
// Encoding

namespace {

Status Bad(const std::string& what) {
  return Status::Corruption("data-type state is malformed: " + what);
}

}  // namespace

struct DataTypeCodec {
  using CounterEntries = fb::Offset<fb::Vector<fb::Offset<dw::CounterEntry>>>;

  static CounterEntries EncodeEntries(fb::FlatBufferBuilder& b, const PnCounter& c) {
    std::vector<fb::Offset<dw::CounterEntry>> out;
    out.reserve(c.entries_.size());
    for (const auto& e : c.entries_) {
      out.push_back(dw::CreateCounterEntry(b, b.CreateString(e.actor), e.inc, e.dec, e.last));
    }
    return b.CreateVector(out);
  }

  static Status DecodeEntries(const fb::Vector<fb::Offset<dw::CounterEntry>>* in, PnCounter* c) {
    if (in == nullptr) return Status::OK();
    c->entries_.reserve(in->size());
    for (const dw::CounterEntry* e : *in) {
      std::string actor(View(e->actor()));
      if (actor.empty()) return Bad("counter entry without an actor");
      if (!c->entries_.empty() && !(c->entries_.back().actor < actor)) {
        return Bad("counter entries out of order");
      }
      c->entries_.push_back(PnCounter::Entry{std::move(actor), e->inc(), e->dec(), e->last()});
    }
    return Status::OK();
  }

  static std::pair<fb::Offset<fb::Vector<fb::Offset<fb::String>>>, fb::Offset<fb::Vector<uint64_t>>>
  EncodeClock(fb::FlatBufferBuilder& b, const ActorClock& clock) {
    std::vector<fb::Offset<fb::String>> actors;
    actors.reserve(clock.actors_.size());
    for (const auto& a : clock.actors_) actors.push_back(b.CreateString(a));
    auto av = b.CreateVector(actors);
    auto cv = b.CreateVector(clock.counters_);
    return {av, cv};
  }

  static Status DecodeClock(const fb::Vector<fb::Offset<fb::String>>* actors,
                            const fb::Vector<uint64_t>* counters, ActorClock* out) {
    size_t n = actors == nullptr ? 0 : actors->size();
    if ((counters == nullptr ? 0 : counters->size()) != n) return Bad("clock sizes differ");
    out->actors_.reserve(n);
    out->counters_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      std::string a(View(actors->Get(static_cast<fb::uoffset_t>(i))));
      if (a.empty()) return Bad("empty actor");
      if (!out->actors_.empty() && !(out->actors_.back() < a)) return Bad("actors out of order");
      uint64_t c = counters->Get(static_cast<fb::uoffset_t>(i));
      if (c == 0) return Bad("a clock entry of zero");
      out->actors_.push_back(std::move(a));
      out->counters_.push_back(c);
    }
    return Status::OK();
  }

  static Status CheckDot(const ActorClock& clock, const DotRef& d) {
    if (d.actor >= clock.actors_.size()) return Bad("a dot names no actor");
    if (d.counter == 0 || d.counter > clock.counters_[d.actor]) {
      return Bad("a dot the clock does not cover");
    }
    return Status::OK();
  }

  static std::string Encode(const DataTypeState& s) {
    fb::FlatBufferBuilder b(256);
    fb::Offset<dw::Counter> counter;
    fb::Offset<dw::Set> set;
    fb::Offset<dw::Map> map;
    switch (s.type()) {
      case DataType::kCounter: {
        auto entries = EncodeEntries(b, s.counter());
        counter = dw::CreateCounter(b, s.created_ms(), entries);
        break;
      }
      case DataType::kSet: {
        const OrSet& os = s.set();
        auto [actors, counters] = EncodeClock(b, os.clock_);
        std::vector<fb::Offset<dw::SetMember>> members;
        members.reserve(os.members_.size());
        std::vector<dw::DotRef> dots;
        for (const auto& m : os.members_) {
          auto name = Bytes(b, m.name);
          dots.clear();
          for (const DotRef& d : m.dots) dots.emplace_back(d.actor, d.counter);
          auto dv = b.CreateVectorOfStructs(dots);
          members.push_back(dw::CreateSetMember(b, name, dv));
        }
        auto mv = b.CreateVector(members);
        set = dw::CreateSet(b, s.created_ms(), actors, counters, mv);
        break;
      }
      case DataType::kMap: {
        const OrMap& om = s.map();
        auto [actors, counters] = EncodeClock(b, om.clock_);
        std::vector<fb::Offset<dw::Field>> fields;
        fields.reserve(om.fields_.size());
        for (const auto& f : om.fields_) {
          auto name = Bytes(b, f.name);
          std::vector<fb::Offset<dw::FieldEntry>> entries;
          for (const auto& e : f.entries) {
            fb::Offset<fb::Vector<uint8_t>> value;
            CounterEntries ce;
            if (e.counter) {
              ce = EncodeEntries(b, e.count);
            } else {
              value = Bytes(b, e.value);
            }
            dw::DotRef dot(e.dot.actor, e.dot.counter);
            entries.push_back(dw::CreateFieldEntry(
                b, &dot, e.counter ? dw::FieldKind::Counter : dw::FieldKind::Register, value,
                e.timestamp_ms, ce));
          }
          auto ev = b.CreateVector(entries);
          fields.push_back(dw::CreateField(b, name, ev));
        }
        auto fv = b.CreateVector(fields);
        map = dw::CreateMap(b, s.created_ms(), actors, counters, fv);
        break;
      }
      case DataType::kNone:
        break;
    }
    b.Finish(dw::CreateState(b, counter, set, map), dw::StateIdentifier());
    return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  }

  static Result<DataTypeState> Decode(DataType type, std::string_view bytes) {
    AlignedBytes aligned(bytes);
    fb::Verifier verifier(aligned.data(), aligned.size());
    if (!dw::VerifyStateBuffer(verifier)) return Bad("not a data-type state");
    const dw::State* st = dw::GetState(aligned.data());
    int present = (st->counter() != nullptr) + (st->set() != nullptr) + (st->map() != nullptr);
    if (present != 1) return Bad("a state holds exactly one type");
    switch (type) {
      case DataType::kCounter: {
        if (st->counter() == nullptr) return Bad(fmt::format("not a {}", DataTypeName(type)));
        DataTypeState out(type, st->counter()->created_ms());
        Status s = DecodeEntries(st->counter()->entries(), &out.counter());
        if (!s.ok()) return s;
        return out;
      }
      case DataType::kSet: {
        const dw::Set* fs = st->set();
        if (fs == nullptr) return Bad(fmt::format("not a {}", DataTypeName(type)));
        DataTypeState out(type, fs->created_ms());
        OrSet& os = out.set();
        Status s = DecodeClock(fs->actors(), fs->clock(), &os.clock_);
        if (!s.ok()) return s;
        if (fs->members() != nullptr) {
          os.members_.reserve(fs->members()->size());
          for (const dw::SetMember* m : *fs->members()) {
            OrSet::Member member;
            member.name = std::string(View(m->name()));
            if (!os.members_.empty() && !(os.members_.back().name < member.name)) {
              return Bad("set members out of order");
            }
            if (m->dots() == nullptr || m->dots()->size() == 0) return Bad("a member without dots");
            member.dots.reserve(m->dots()->size());
            for (const dw::DotRef* d : *m->dots()) {
              DotRef dot{d->actor(), d->counter()};
              s = CheckDot(os.clock_, dot);
              if (!s.ok()) return s;
              if (!member.dots.empty() && !(member.dots.back() < dot)) return Bad("dots out of order");
              member.dots.push_back(dot);
            }
            os.members_.push_back(std::move(member));
          }
        }
        return out;
      }
      case DataType::kMap: {
        const dw::Map* fm = st->map();
        if (fm == nullptr) return Bad(fmt::format("not a {}", DataTypeName(type)));
        DataTypeState out(type, fm->created_ms());
        OrMap& om = out.map();
        Status s = DecodeClock(fm->actors(), fm->clock(), &om.clock_);
        if (!s.ok()) return s;
        if (fm->fields() != nullptr) {
          om.fields_.reserve(fm->fields()->size());
          for (const dw::Field* f : *fm->fields()) {
            OrMap::Field field;
            field.name = std::string(View(f->name()));
            if (!om.fields_.empty() && !(om.fields_.back().name < field.name)) {
              return Bad("map fields out of order");
            }
            if (f->entries() == nullptr || f->entries()->size() == 0) {
              return Bad("a field without entries");
            }
            for (const dw::FieldEntry* e : *f->entries()) {
              if (e->dot() == nullptr) return Bad("a field entry without a dot");
              OrMap::Entry entry;
              entry.dot = DotRef{e->dot()->actor(), e->dot()->counter()};
              s = CheckDot(om.clock_, entry.dot);
              if (!s.ok()) return s;
              if (!field.entries.empty() && !(field.entries.back().dot < entry.dot)) {
                return Bad("field entries out of order");
              }
              auto kind = static_cast<uint8_t>(e->kind());
              if (kind > static_cast<uint8_t>(dw::FieldKind::Counter)) return Bad("unknown field kind");
              entry.counter = e->kind() == dw::FieldKind::Counter;
              entry.value = std::string(View(e->value()));
              entry.timestamp_ms = e->timestamp_ms();
              s = DecodeEntries(e->counter(), &entry.count);
              if (!s.ok()) return s;
              field.entries.push_back(std::move(entry));
            }
            om.fields_.push_back(std::move(field));
          }
        }
        return out;
      }
      case DataType::kNone:
        break;
    }
    return Bad(fmt::format("unknown data type {}", static_cast<int>(type)));
  }
};

// ---------------------------------------------------------------------------
// DataTypeState

void DataTypeState::Join(const DataTypeState& other) {
  if (other.type_ != type_) return;
  if (created_ms_ == 0 || (other.created_ms_ != 0 && other.created_ms_ < created_ms_)) {
    created_ms_ = other.created_ms_;
  }
  switch (type_) {
    case DataType::kCounter: counter_.Join(other.counter_); break;
    case DataType::kSet: set_.Join(other.set_); break;
    case DataType::kMap: map_.Join(other.map_); break;
    case DataType::kNone: break;
  }
}

std::string DataTypeState::Encode() const { return DataTypeCodec::Encode(*this); }

Result<DataTypeState> DataTypeState::Decode(DataType type, std::string_view bytes) {
  return DataTypeCodec::Decode(type, bytes);
}

std::string DataTypeState::Describe() const {
  switch (type_) {
    case DataType::kCounter: return fmt::format("counter {}", counter_.Value());
    case DataType::kSet:
      return fmt::format("set of {} member{}", set_.size(), set_.size() == 1 ? "" : "s");
    case DataType::kMap:
      return fmt::format("map of {} field{}", map_.size(), map_.size() == 1 ? "" : "s");
    case DataType::kNone: break;
  }
  return "nothing";
}

// ---------------------------------------------------------------------------
// Keys and operations

Result<KeyContents> ReadKeyContents(const DvvSet& object) {
  KeyContents out;
  std::vector<const Sibling*> live = object.LiveSiblings();
  if (live.empty()) return out;
  // Decode every data-type sibling once; find the one written first.
  std::vector<std::optional<DataTypeState>> states(live.size());
  size_t first = 0;
  uint64_t first_birth = 0;
  for (size_t i = 0; i < live.size(); ++i) {
    const Sibling& s = *live[i];
    uint64_t birth = s.timestamp_ms;
    if (s.datatype != 0) {
      if (s.datatype > kLastDataType) {
        return Status::Corruption(fmt::format("a sibling of unknown data type {}", s.datatype));
      }
      auto st = DataTypeState::Decode(static_cast<DataType>(s.datatype), s.value);
      if (!st.ok()) return st.status();
      birth = st->created_ms();
      states[i] = std::move(st).value();
    }
    // Siblings are sorted by dot: ties on birth go to the smaller dot.
    if (i == 0 || birth < first_birth) {
      first = i;
      first_birth = birth;
    }
  }
  if (live[first]->datatype == 0) {
    out.opaque = true;
    return out;
  }
  out.type = static_cast<DataType>(live[first]->datatype);
  out.state = DataTypeState(out.type);
  bool any = false;
  for (size_t i = 0; i < live.size(); ++i) {
    if (live[i]->datatype != static_cast<uint8_t>(out.type)) continue;
    if (!any) {
      out.state = std::move(*states[i]);
      any = true;
    } else {
      out.state.Join(*states[i]);
    }
    ++out.joined;
  }
  return out;
}

Status ValidateOperation(DataType type, DataTypeOpCode op, const std::vector<std::string>& args) {
  auto wrong = [&] {
    return Status::InvalidArgument(
        fmt::format("{} is not an operation on a {}", DataTypeOpName(op), DataTypeName(type)));
  };
  switch (op) {
    case DataTypeOpCode::kRead:
      if (type == DataType::kNone) return wrong();
      if (!args.empty()) return Status::InvalidArgument("a read takes no arguments");
      return Status::OK();
    case DataTypeOpCode::kIncrement:
      if (type != DataType::kCounter) return wrong();
      if (!args.empty()) return Status::InvalidArgument("an increment takes no arguments");
      return Status::OK();
    case DataTypeOpCode::kAdd:
    case DataTypeOpCode::kRemove:
      if (type != DataType::kSet) return wrong();
      if (args.empty()) return Status::InvalidArgument("give at least one member");
      return Status::OK();
    case DataTypeOpCode::kSetFields:
      if (type != DataType::kMap) return wrong();
      if (args.empty() || args.size() % 2 != 0) {
        return Status::InvalidArgument("give fields and values in pairs");
      }
      return Status::OK();
    case DataTypeOpCode::kRemoveFields:
      if (type != DataType::kMap) return wrong();
      if (args.empty()) return Status::InvalidArgument("give at least one field");
      return Status::OK();
    case DataTypeOpCode::kIncrementField:
      if (type != DataType::kMap) return wrong();
      if (args.size() != 1) return Status::InvalidArgument("give exactly one field");
      return Status::OK();
  }
  return Status::InvalidArgument(fmt::format("unknown operation {}", static_cast<int>(op)));
}

Result<OperationResult> ApplyOperation(DataTypeState* state, DataTypeOpCode op,
                                       const std::vector<std::string>& args, int64_t delta,
                                       const Dot& dot, uint64_t now_ms) {
  Status valid = ValidateOperation(state->type(), op, args);
  if (!valid.ok()) return valid;
  OperationResult r;
  switch (op) {
    case DataTypeOpCode::kIncrement: {
      Status s = state->counter().Add(dot, delta);
      if (!s.ok()) return s;
      r.answer = state->counter().Value();
      return r;
    }
    case DataTypeOpCode::kAdd:
      for (const auto& m : args) r.answer += state->set().Add(dot, m) ? 1 : 0;
      return r;
    case DataTypeOpCode::kRemove:
      for (const auto& m : args) r.answer += state->set().Remove(dot, m) ? 1 : 0;
      r.changed = r.answer > 0;
      return r;
    case DataTypeOpCode::kSetFields:
      for (size_t i = 0; i + 1 < args.size(); i += 2) {
        r.answer += state->map().SetRegister(dot, now_ms, args[i], args[i + 1]) ? 1 : 0;
      }
      return r;
    case DataTypeOpCode::kRemoveFields:
      for (const auto& f : args) r.answer += state->map().Remove(dot, f) ? 1 : 0;
      r.changed = r.answer > 0;
      return r;
    case DataTypeOpCode::kIncrementField: {
      auto v = state->map().IncrementField(dot, now_ms, args[0], delta);
      if (!v.ok()) return v.status();
      r.answer = *v;
      return r;
    }
    case DataTypeOpCode::kRead:
      break;
  }
  return Status::InvalidArgument("a read changes nothing");
}

}  // namespace ringkv
