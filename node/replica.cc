#include "node/replica.h"

#include <fmt/format.h>

#include "core/expiry.h"
#include "gossip/gossiper.h"

namespace ringkv {

Replica::Replica(const NodeConfig* config, Store* store, NodeStats* stats, HintedHandoff* hints,
                 AntiEntropy* aae, TombstoneReaper* reaper, const Gossiper* gossiper)
    : config_(config),
      store_(store),
      stats_(stats),
      hints_(hints),
      aae_(aae),
      reaper_(reaper),
      gossiper_(gossiper) {}

void Replica::CountObjects() { objects_ = store_->CountObjects(); }

ReplicaReadReply Replica::Read(const std::string& key, const NodeId& hint_for) {
  ++stats_->replica_reads;
  DvvSet object;
  Status s = store_->Get(key, &object);
  if (!s.ok() && !s.IsNotFound()) return ReplicaReadReply{s, std::nullopt};
  bool found = s.ok();
  if (!hint_for.empty() && hint_for != config_->id) {
    // Any hint for the key will do: which primary a fallback stands in for
    // depends on the order failures were noticed.
    if (auto hinted = hints_->FindAny(key)) {
      object = DvvSet::Sync(object, *hinted);
      found = true;
    }
  }
  if (!found) return ReplicaReadReply{Status::NotFound(""), std::nullopt};
  return ReplicaReadReply{Status::OK(), std::move(object)};
}

Status Replica::Merge(const std::string& key, const DvvSet& object) {
  ++stats_->replica_writes;
  const DvvSet* local = nullptr;  // the store's copy: no store calls until Write
  DvvSet scratch;
  Status s = store_->View(key, &local, &scratch);
  if (!s.ok() && !s.IsNotFound()) return s;
  // An older version still in flight when the key was reaped gets the
  // tombstone merged in instead of coming back to life.
  std::optional<DvvSet> fenced = reaper_->Fenced(key, object);
  DvvSet merged = DvvSet::Sync(*local, fenced ? *fenced : object);
  if (s.ok() && merged == *local) return Status::OK();  // nothing new
  return Write(key, s.ok() ? local : nullptr, merged);
}

Status Replica::AddHint(const NodeId& target, const std::string& key, const DvvSet& object) {
  std::optional<DvvSet> fenced = reaper_->Fenced(key, object);
  return hints_->Add(target, key, fenced ? *fenced : object);
}

Status Replica::Write(const std::string& key, const DvvSet* old, const DvvSet& now) {
  // The tree first: old may be the store's own copy (View), which the put
  // replaces. A put that fails has replaced the cached copy too (the store
  // then stops the node, see Store::Commit), so the tree still matches it.
  bool is_new = old == nullptr;
  aae_->OnWrite(key, old, &now);
  Status s = store_->Put(key, now);
  if (!s.ok()) return s;
  if (is_new) ++objects_;
  return s;
}

Status Replica::Erase(const std::string& key) {
  DvvSet old;
  Status s = store_->Get(key, &old);
  if (s.IsNotFound()) return Status::OK();
  if (!s.ok()) return s;
  s = store_->Erase(key);
  if (!s.ok()) return s;
  --objects_;
  aae_->OnWrite(key, &old, nullptr);
  return s;
}

Result<const DvvSet*> Replica::MintBase(const std::string& key, const NodeId& hint_for,
                                        DvvSet* scratch, bool* found) {
  const DvvSet* stored = nullptr;
  Status s = store_->View(key, &stored, scratch);
  if (!s.ok() && !s.IsNotFound()) return s;
  *found = s.ok();
  if (hint_for.empty()) return stored;
  // The hint joins a copy (the store's may not outlive the hint's read).
  DvvSet with_hint = *stored;
  if (auto hinted = hints_->Find(hint_for, key)) with_hint = DvvSet::Sync(with_hint, *hinted);
  *scratch = std::move(with_hint);
  return static_cast<const DvvSet*>(scratch);
}

NodeId Replica::NextFallbackActor() {
  return fmt::format("{}~{:x}.{:x}", config_->id, gossiper_->self().incarnation,
                     ++fallback_actors_);
}

Result<Replica::Minted> Replica::MintWrite(const std::string& key, const VersionVector& context,
                                           std::string value, bool tombstone, bool lww,
                                           uint64_t wall_ms, const NodeId& hint_for) {
  Sibling write;
  write.value = std::move(value);
  write.tombstone = tombstone;
  write.timestamp_ms = wall_ms;
  return MintWrite(key, context, std::move(write), lww, hint_for);
}

Result<Replica::Minted> Replica::MintWrite(const std::string& key, const VersionVector& context,
                                           Sibling write, bool lww, const NodeId& hint_for,
                                           uint32_t max_siblings) {
  uint64_t wall_ms = write.timestamp_ms;
  DvvSet scratch;
  bool local_found = false;
  auto stored = MintBase(key, hint_for, &scratch, &local_found);
  if (!stored.ok()) return stored.status();
  NodeId actor = config_->id;
  if (!hint_for.empty()) {
    // A fallback does not keep the key once its hint is delivered, so it
    // cannot know the dots it minted for the key before; a counter past them
    // would claim to have seen them (and drop them at the primary). It mints
    // as an actor used for this one write instead.
    actor = NextFallbackActor();
  }
  // A key reaped here lately still has its tombstone in the reaper's fence;
  // and dots this node mints stay above those of reaped keys (the floor).
  const DvvSet& local = **stored;
  std::optional<DvvSet> fenced = reaper_->Fenced(key, local);
  const DvvSet& base = fenced ? *fenced : local;
  if (!write.tombstone) {
    Status typed = RefuseOverDataType(base);
    if (!typed.ok()) return typed;
  }
  uint64_t min_counter = actor == config_->id ? reaper_->counter_floor() : 0;
  Minted out;
  out.object = DvvSet::Update(base, context, actor, std::move(write), min_counter);
  out.dot = Dot{actor, out.object.clock().Get(actor)};
  if (lww) out.object = DvvSet::CollapseLww(out.object);
  if (max_siblings != 0) {
    // Plain values only: the states of a data type are joined, never shown
    // as siblings (a delete may leave some beside its tombstone).
    size_t live = 0;
    for (const Sibling& sib : out.object.siblings()) live += sib.datatype == 0 && IsLive(sib, wall_ms);
    if (live > max_siblings) {
      ++sibling_cap_refusals_;
      return Status::TooManySiblings(fmt::format(
          "this write would leave {} live siblings on the key; the limit is {} (max_siblings). "
          "Nothing was stored: read the key (ringkv get) and write back with its --context to "
          "merge the siblings into one value",
          live, max_siblings));
    }
  }
  Status s = hint_for.empty() ? Write(key, local_found ? &local : nullptr, out.object)
                              : AddHint(hint_for, key, out.object);
  ++stats_->replica_writes;
  if (!s.ok()) return s;
  return out;
}

}  // namespace ringkv
