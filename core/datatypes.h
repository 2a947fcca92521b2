// Convergent data types: counters, sets and maps whose concurrent updates
// merge by themselves instead of becoming siblings (state-based CRDTs, as
// Riak 2.0's riak_dt).
//
// A data-type value is stored as the value of a DVV sibling whose `datatype`
// names the type (core/dvv.h), encoded with proto/datatypes.fbs. Every
// operation is made by an actor at a dot: the dot DvvSet::Update mints for
// the write that carries it. A replica's dots for a key only grow and are
// never reused (the tombstone reaper's floor sees to that after deletes), so
// the dots inside a state are unique too.
//
//  - PnCounter: per actor, the increments and decrements it made in all. An
//    actor's entry carries the dot counter of its latest write, and the later
//    entry replaces the earlier (within one life of the key the counts only
//    grow, so this is the usual pointwise maximum; after a delete the actor
//    starts again from zero with a higher dot, so its deleted counts do not
//    come back through a concurrent update that still holds them).
//  - OrSet: an add-wins observed-remove set without tombstones (ORSWOT, as
//    riak_dt_orswot): a version vector and, per member, the dots of the adds
//    that put it there. A remove drops the member's dots the remover saw; a
//    merge keeps a dot both sides hold, or one side holds and the other has
//    not seen. So a remove removes what it observed and a concurrent add wins.
//  - OrMap: fields present by dots, as set members; each dot carries what
//    the field's writer left: a register (last writer wins, by timestamp,
//    then dot) or a counter. A field shows the kind of its latest write; a
//    register holding an integer becomes a counter on HINCRBY.
//
// Promises: Join is commutative, associative and idempotent; Encode is
// canonical (equal states give equal bytes); Decode verifies everything
// (FlatBuffers verifier, sorted lists, clocks covering dots) and never
// crashes on bad bytes. Plain values: not thread-safe to share mutably.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dvv.h"
#include "core/status.h"

namespace ringkv {

// An integer written as Redis reads one from a string (INCRBY's argument, a
// hash value HINCRBY adds to): an optional '-', digits without leading zeros
// or spaces, within the int64 range.
bool ParseInt64(std::string_view s, int64_t* out);

// Sibling.datatype. Zero is an opaque value.
enum class DataType : uint8_t { kNone = 0, kCounter = 1, kSet = 2, kMap = 3 };
inline constexpr uint8_t kLastDataType = 3;

// "none", "counter", "set", "map".
const char* DataTypeName(DataType type);

// A dot whose actor is an index into a state's sorted actor table.
struct DotRef {
  uint32_t actor = 0;
  uint64_t counter = 0;
  auto operator<=>(const DotRef&) const = default;
};

// Sorted actors with a counter each: the version vector of a set or a map,
// kept as a table so a dot inside the state is 12 bytes, not a string.
class ActorClock {
 public:
  const std::vector<std::string>& actors() const { return actors_; }
  const std::vector<uint64_t>& counters() const { return counters_; }
  // The index of actor, or -1.
  int Find(std::string_view actor) const;
  bool Covers(const DotRef& dot) const { return counters_[dot.actor] >= dot.counter; }
  bool operator==(const ActorClock&) const = default;

 private:
  friend class OrSet;
  friend class OrMap;
  friend struct DataTypeCodec;
  // Becomes the join of two clocks laid over one actor table: actors, and
  // each side's counter per actor (0 where it has none).
  void Join(std::vector<std::string> actors, const std::vector<uint64_t>& a,
            const std::vector<uint64_t>& b);
  std::vector<std::string> actors_;
  std::vector<uint64_t> counters_;
};

class PnCounter {
 public:
  struct Entry {
    std::string actor;
    uint64_t inc = 0;
    uint64_t dec = 0;
    uint64_t last = 0;  // dot counter of the write that last set this entry
    bool operator==(const Entry&) const = default;
  };

  // Increments minus decrements, held to the int64 range.
  int64_t Value() const;
  // Adds delta as the write with `dot`. InvalidArgument if the value would
  // leave the int64 range, as Redis refuses INCR past it.
  Status Add(const Dot& dot, int64_t delta);
  // Changes dot.actor's entry so the value becomes `value`.
  Status SetValue(const Dot& dot, int64_t value);
  void Join(const PnCounter& other);
  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  bool operator==(const PnCounter&) const = default;

 private:
  friend struct DataTypeCodec;
  Entry& EntryFor(const Dot& dot);
  std::vector<Entry> entries_;  // sorted by actor
};

class OrSet {
 public:
  // Adds member as the write with `dot`; true if it was not a member.
  bool Add(const Dot& dot, std::string member);
  // Removes member (every dot of it this state holds); true if it was one.
  bool Remove(const Dot& dot, std::string_view member);
  bool Contains(std::string_view member) const;
  size_t size() const { return members_.size(); }
  // Sorted (bytewise).
  std::vector<std::string> Members() const;
  void Join(const OrSet& other);
  const ActorClock& clock() const { return clock_; }
  bool operator==(const OrSet&) const = default;

  struct Member {
    std::string name;
    std::vector<DotRef> dots;  // sorted, non-empty
    bool operator==(const Member&) const = default;
  };

 private:
  friend struct DataTypeCodec;
  ActorClock clock_;
  std::vector<Member> members_;  // sorted by name
};

class OrMap {
 public:
  // HSET: the field holds value (a register); true if the field was absent.
  bool SetRegister(const Dot& dot, uint64_t now_ms, std::string field, std::string value);
  // HINCRBY: adds delta to the field's counter (a register holding an
  // integer becomes a counter from that integer; an absent field starts at
  // 0). The new value, or InvalidArgument ("hash value is not an integer",
  // or it would overflow).
  Result<int64_t> IncrementField(const Dot& dot, uint64_t now_ms, std::string field,
                                 int64_t delta);
  // HDEL: true if the field was present.
  bool Remove(const Dot& dot, std::string_view field);
  // The field's value as text (a counter in decimal), or nullopt.
  std::optional<std::string> Get(std::string_view field) const;
  // Every field and its value, sorted by field.
  std::vector<std::pair<std::string, std::string>> Fields() const;
  size_t size() const { return fields_.size(); }
  void Join(const OrMap& other);
  const ActorClock& clock() const { return clock_; }
  bool operator==(const OrMap&) const = default;

  // One write of a field: its dot and what its writer left.
  struct Entry {
    DotRef dot;
    bool counter = false;  // else a register
    std::string value;     // register
    uint64_t timestamp_ms = 0;
    PnCounter count;       // counter
    bool operator==(const Entry&) const = default;
  };
  struct Field {
    std::string name;
    std::vector<Entry> entries;  // sorted by dot, non-empty
    bool operator==(const Field&) const = default;
  };

 private:
  friend struct DataTypeCodec;
  // The entry a field shows (greatest timestamp, then dot).
  const Entry& Latest(const Field& f) const;
  // The join of the field's counter entries.
  PnCounter JoinedCount(const Field& f) const;
  // Replaces field's entries with one new entry for the write with `dot`.
  Entry& Rewrite(const Dot& dot, uint64_t now_ms, std::string field, bool* was_absent);
  ActorClock clock_;
  std::vector<Field> fields_;  // sorted by name
};

// One data-type value: its type, the wall clock of the key's first write
// (which decides a key's type when first writes of two types raced), and the
// state of that type.
class DataTypeState {
 public:
  DataTypeState() = default;
  explicit DataTypeState(DataType type, uint64_t created_ms = 0)
      : type_(type), created_ms_(created_ms) {}

  DataType type() const { return type_; }
  uint64_t created_ms() const { return created_ms_; }
  PnCounter& counter() { return counter_; }
  const PnCounter& counter() const { return counter_; }
  OrSet& set() { return set_; }
  const OrSet& set() const { return set_; }
  OrMap& map() { return map_; }
  const OrMap& map() const { return map_; }

  // States of the same type only; the other is ignored otherwise.
  void Join(const DataTypeState& other);
  std::string Encode() const;
  static Result<DataTypeState> Decode(DataType type, std::string_view bytes);
  // "counter 5", "set of 3 members", "map of 2 fields": for people.
  std::string Describe() const;
  bool operator==(const DataTypeState&) const = default;

 private:
  DataType type_ = DataType::kNone;
  uint64_t created_ms_ = 0;
  PnCounter counter_;
  OrSet set_;
  OrMap map_;
};

// What an object holds, as reads and operations see it.
//  - No live sibling: nothing (type kNone, not opaque).
//  - Otherwise the kind of the live sibling written first decides (by the
//    state's created_ms for a data type, the write's timestamp for a plain
//    value, then the dot): a key's type is fixed by its first write, also
//    when first writes of two types raced. For a data type, state is the
//    join of the live siblings of that type; other live siblings are
//    ignored (the next operation of the key's type drops them).
struct KeyContents {
  DataType type = DataType::kNone;
  bool opaque = false;  // plain values (put); type is kNone
  DataTypeState state;
  size_t joined = 0;  // live siblings joined into state
  bool found() const { return opaque || type != DataType::kNone; }
};
// Corruption if a data-type sibling's value does not decode.
Result<KeyContents> ReadKeyContents(const DvvSet& object);

// The operations of DataTypeRequest (core/message.h).
enum class DataTypeOpCode : uint8_t {
  kRead = 0,            // a quorum read (any type)
  kIncrement = 1,       // counter: delta
  kAdd = 2,             // set: args = members
  kRemove = 3,          // set: args = members
  kSetFields = 4,       // map: args = field, value, field, value, ...
  kRemoveFields = 5,    // map: args = fields
  kIncrementField = 6,  // map: args = {field}, delta
};
inline constexpr uint8_t kLastDataTypeOpCode = 6;
const char* DataTypeOpName(DataTypeOpCode op);

// InvalidArgument if op does not belong to type or its arguments are wrong.
Status ValidateOperation(DataType type, DataTypeOpCode op, const std::vector<std::string>& args);

struct OperationResult {
  int64_t answer = 0;    // INCR: the new value; SADD/SREM/HSET/HDEL: how many
                         // members/fields it added or removed; HINCRBY: the value
  bool changed = true;   // false: a remove of nothing, which needs no write
};
// Applies a validated operation to state as the write with `dot` at wall
// time now_ms. InvalidArgument if the operation cannot apply (overflow, a
// field that is not an integer); state is then unchanged.
Result<OperationResult> ApplyOperation(DataTypeState* state, DataTypeOpCode op,
                                       const std::vector<std::string>& args, int64_t delta,
                                       const Dot& dot, uint64_t now_ms);

}  // namespace ringkv
