// Replica's part of counter, set and map operations (node/replica.h,
// core/datatypes.h).
#include <algorithm>

#include <fmt/format.h>

#include "node/replica.h"

namespace ringkv {

Status Replica::RefuseOverDataType(const DvvSet& object) {
  // Most keys hold plain values only: decide that without decoding anything.
  bool any = std::any_of(object.siblings().begin(), object.siblings().end(),
                         [](const Sibling& s) { return !s.tombstone && s.datatype != 0; });
  if (!any) return Status::OK();
  auto contents = ReadKeyContents(object);
  if (!contents.ok()) return contents.status();
  if (contents->type == DataType::kNone) return Status::OK();
  return Status::WrongType(fmt::format(
      "the key holds a {}; a value cannot be put over it (delete it first)",
      DataTypeName(contents->type)));
}

Result<Replica::MintedDataType> Replica::MintDataTypeWrite(const DataTypeRequest& req,
                                                           uint64_t wall_ms,
                                                           const NodeId& hint_for) {
  const std::string& key = req.key;
  DvvSet scratch;
  bool local_found = false;
  auto stored = MintBase(key, hint_for, &scratch, &local_found);
  if (!stored.ok()) return stored.status();
  NodeId actor = data_type_actor_.empty() ? config_->id : data_type_actor_;
  if (!hint_for.empty()) {
    // As MintWrite: a fallback forgets the key once its hint is delivered,
    // so it cannot know the dots (and counter entries) it made before.
    actor = NextFallbackActor();
  }
  const DvvSet& local = **stored;
  std::optional<DvvSet> fenced = reaper_->Fenced(key, local);
  const DvvSet& base = fenced ? *fenced : local;
  uint64_t min_counter = hint_for.empty() ? reaper_->counter_floor() : 0;

  auto contents = ReadKeyContents(base);
  if (!contents.ok()) return contents.status();
  if (contents->opaque) {
    return Status::WrongType(fmt::format("the key holds plain values, not a {}",
                                         DataTypeName(req.type)));
  }
  if (contents->type != DataType::kNone && contents->type != req.type) {
    return Status::WrongType(fmt::format("the key holds a {}, not a {}",
                                         DataTypeName(contents->type), DataTypeName(req.type)));
  }
  DataTypeState state = contents->type == DataType::kNone ? DataTypeState(req.type, wall_ms)
                                                          : std::move(contents->state);
  // The dot DvvSet::Update mints below, with the local clock as context.
  Dot dot{actor, std::max(base.clock().Get(actor), min_counter) + 1};
  auto applied = ApplyOperation(&state, req.op, req.args, req.delta, dot, wall_ms);
  if (!applied.ok()) return applied.status();
  MintedDataType out;
  out.result = *applied;
  if (!applied->changed) return out;

  Sibling write;
  write.value = state.Encode();
  write.datatype = static_cast<uint8_t>(req.type);
  write.timestamp_ms = wall_ms;
  if (write.value.size() > config_->max_value_bytes) {
    return Status::InvalidArgument(fmt::format("the {} would take {} bytes; the limit is {}",
                                               DataTypeName(req.type), write.value.size(),
                                               config_->max_value_bytes));
  }
  out.object = DvvSet::Update(base, base.clock(), actor, std::move(write), min_counter);
  out.dot = Dot{actor, out.object.clock().Get(actor)};
  if (out.dot != dot) {
    return Status::Internal(fmt::format("minted {} for a write applied as {}", out.dot.ToString(),
                                        dot.ToString()));
  }
  Status s = hint_for.empty() ? Write(key, local_found ? &local : nullptr, out.object)
                              : AddHint(hint_for, key, out.object);
  ++stats_->replica_writes;
  if (!s.ok()) return s;
  out.written = true;
  return out;
}

}  // namespace ringkv
