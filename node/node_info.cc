// The JSON documents a node answers to InfoRequest topics (status, ring,
// stats, preflist, local): what `ringkv status`, `ring`, `stats`, `preflist`
// and `get --local` print.
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/bucket_key.h"
#include "core/codec.h"
#include "core/expiry.h"
#include "core/hash.h"
#include "node/node.h"

namespace ringkv {

using json = nlohmann::json;

namespace {

json LatencyJson(const Histogram& h) {
  auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
  return json{{"count", h.count()},
              {"p50_ms", ms(h.Percentile(0.50))},
              {"p90_ms", ms(h.Percentile(0.90))},
              {"p99_ms", ms(h.Percentile(0.99))},
              {"p999_ms", ms(h.Percentile(0.999))},
              {"max_ms", ms(h.max())}};
}

}  // namespace


std::string Node::StatusJson() const {
  json members = json::array();
  const Ring& ring = membership_->ring();
  for (const auto& [id, m] : gossiper_.members()) {
    size_t held = 0;
    for (uint32_t p = 0; p < ring.ring_size(); ++p) held += ClusterMembership::HasPartition(m.complete, p);
    double phi = gossiper_.Phi(id);
    members.push_back({{"id", id},
                       {"address", m.address},
                       {"state", MemberStatusName(m.status)},
                       {"alive", id == config_.id || cluster_.IsAlive(id)},
                       {"phi", std::isfinite(phi) ? phi : -1.0},
                       {"incarnation", m.incarnation},
                       {"heartbeat", m.heartbeat},
                       {"partitions_held", held},
                       {"owns", ring.PartitionsOf(id).size()}});
  }
  json j = {{"node", config_.id},
            {"cluster", config_.cluster},
            {"address", config_.listen_address},
            {"version", "0.1.0"},
            {"uptime_s", (clock_->NowMicros() - started_us_) / 1000000},
            {"ring_size", ring.ring_size()},
            {"defaults", {{"n", config_.n}, {"r", config_.r}, {"w", config_.w},
                          {"timeout_ms", config_.timeout_ms},
                          {"mode", config_.mode == Mode::kStrict ? "strict" : "sloppy"}}},
            {"objects", replica_.objects()},
            {"buckets", buckets_.size()},
            {"pending_requests", pending_requests()},
            {"state", MemberStatusName(gossiper_.self().status)},
            {"handoff", json::parse(handoff_.Json())},
            {"gossip", {{"rounds", gossiper_.rounds()},
                        {"interval_ms", config_.gossip_interval_ms},
                        {"phi_threshold", config_.phi_threshold},
                        {"convictions", gossiper_.convictions()},
                        {"refused_mismatched", gossiper_.mismatched()},
                        {"last_mismatch", gossiper_.last_mismatch()}}},
            {"members", members}};
  if (connections_report_) j["connections"] = json::parse(connections_report_());
  return j.dump();
}

std::string Node::RingJson() const {
  const Ring& ring = membership_->ring();
  json partitions = json::array();
  std::map<NodeId, std::pair<uint32_t, uint32_t>> share;  // first, any primary
  for (const auto& m : ring.members()) share[m] = {0, 0};
  for (uint32_t p = 0; p < ring.ring_size(); ++p) {
    auto primaries = ring.Primaries(p, ring.n_val());
    for (size_t i = 0; i < primaries.size(); ++i) {
      if (i == 0) share[primaries[i]].first++;
      share[primaries[i]].second++;
    }
    partitions.push_back({{"partition", p},
                          {"start", fmt::format("{:016x}", ring.PartitionStart(p))},
                          {"primaries", primaries}});
  }
  json nodes = json::array();
  double mean = ring.members().empty()
                    ? 0.0
                    : static_cast<double>(ring.ring_size()) * ring.n_val() / ring.members().size();
  for (const auto& [id, s] : share) {
    nodes.push_back({{"id", id},
                     {"first_owner_of", s.first},
                     {"replicas", s.second},
                     {"percent_of_mean", mean > 0 ? 100.0 * s.second / mean : 0.0}});
  }
  json j = {{"ring_size", ring.ring_size()},
            {"n_val", ring.n_val()},
            {"members", ring.members()},
            {"nodes", nodes},
            {"partitions", partitions}};
  return j.dump();
}

std::string Node::StatsJson() const {
  const NodeStats& s = stats_;
  Store::CacheStats cache = store_->object_cache();
  json j = {{"node", config_.id},
            {"gets", s.gets},
            {"puts", s.puts},
            {"deletes", s.deletes},
            {"forwarded_puts", s.forwarded_puts},
            {"duplicate_forwards", s.duplicate_forwards},
            {"get_not_found", s.get_not_found},
            {"read_quorum_failures", s.read_quorum_failures},
            {"write_quorum_failures", s.write_quorum_failures},
            {"invalid_requests", s.invalid_requests},
            {"read_repairs", s.read_repairs},
            {"siblings_seen", s.siblings_seen},
            {"max_siblings", s.max_siblings},
            {"replica_reads", s.replica_reads},
            {"replica_writes", s.replica_writes},
            {"wrong_cluster_refused", s.wrong_cluster_refused},
            {"coordinator_hints", s.coordinator_hints},
            {"sibling_warnings", s.sibling_warnings},
            {"sibling_cap_refused", s.sibling_cap_refused},
            {"expired_hidden", s.expired_hidden},
            {"conditional_writes", s.conditional_writes},
            {"conditions_failed", s.conditions_failed},
            {"key_listings", s.key_listings},
            {"listing_partitions_missed", s.listing_partitions_missed},
            {"expired_reaped", reaper_.stats().expired_erased},
            {"hints_queued", hints_.queued()},
            {"hints_stored", hints_.stored()},
            {"aae_exchanges", aae_.stats().exchanges},
            {"aae_keys_repaired", aae_.stats().keys_repaired},
            {"aae_bytes", aae_.stats().bytes},
            {"tombstones_reaped", reaper_.stats().erased},
            {"reap_keys_coordinated", reaper_.stats().keys_reaped},
            {"reap_checks_sent", reaper_.stats().checks_sent},
            {"reap_keys_checked", reaper_.stats().keys_checked},
            {"reap_keys_aborted", reaper_.stats().keys_aborted},
            {"reap_keys_deferred", reaper_.stats().keys_busy + reaper_.stats().keys_skipped},
            {"pending_requests", pending_requests()},
            {"objects", replica_.objects()},
            {"object_cache_hits", cache.hits},
            {"object_cache_misses", cache.misses},
            {"object_cache_entries", cache.entries},
            {"object_cache_bytes", cache.bytes},
            {"object_cache_budget", cache.budget},
            {"get_latency", LatencyJson(s.get_latency_us)},
            {"put_latency", LatencyJson(s.put_latency_us)}};
  j["datatype_ops"] = s.datatype_ops;
  j["datatype_reads"] = s.datatype_reads;
  j["datatype_wrong_type"] = s.datatype_wrong_type;
  if (stats_report_) {
    json extra = json::parse(stats_report_(), nullptr, /*allow_exceptions=*/false);
    if (extra.is_object()) {
      for (auto& [k, v] : extra.items()) j[k] = v;
    }
  }
  return j.dump();
}

namespace {

Status CheckInfoKey(const std::string& key) {
  if (key.empty()) return Status::InvalidArgument("key is empty");
  if (key.size() > kMaxInternalKeyBytes) {
    return Status::InvalidArgument(
        fmt::format("key is {} bytes; the limit is {}", key.size(), kMaxInternalKeyBytes));
  }
  return Status::OK();
}

// Text as itself, other bytes as base64 with a marker.
void PutBytes(json& j, const char* field, const std::string& bytes) {
  if (IsPrintableUtf8(bytes)) {
    j[field] = bytes;
  } else {
    j[field] = Base64Encode(bytes);
    j[std::string(field) == "value" ? "encoding" : std::string(field) + "_encoding"] = "base64";
  }
}

}  // namespace

Result<std::string> Node::LocalJson(const std::string& key) const {
  Status s = CheckInfoKey(key);
  if (!s.ok()) return s;
  DvvSet object;
  s = store_->Get(key, &object);
  if (!s.ok() && !s.IsNotFound()) return s;
  json j;
  // The argument is an internal key (the client puts the bucket in front).
  std::string bucket, user_key;
  if (!SplitInternalKey(key, &bucket, &user_key)) user_key = key;
  PutBytes(j, "key", user_key);
  if (!bucket.empty() && bucket != kDefaultBucket) j["bucket"] = bucket;
  j["node"] = config_.id;
  uint64_t now_ms = clock_->WallMillis();
  j["found"] = s.ok() && LiveCount(object, now_ms) > 0;
  json siblings = json::array();
  uint64_t tombstones = 0, expired = 0;
  for (const Sibling& sib : object.siblings()) {
    if (sib.tombstone) {
      ++tombstones;
      continue;
    }
    if (IsExpired(sib, now_ms)) {
      ++expired;
      continue;
    }
    json e;
    PutBytes(e, "value", sib.value);
    e["dot"] = sib.dot.ToString();
    if (sib.datatype != 0 && sib.datatype <= kLastDataType) {
      // A counter, set or map state: what it holds, for people.
      auto st = DataTypeState::Decode(static_cast<DataType>(sib.datatype), sib.value);
      e["type"] = DataTypeName(static_cast<DataType>(sib.datatype));
      e["state"] = st.ok() ? st->Describe() : st.status().ToString();
    }
    if (sib.expires_ms != 0) e["expires_ms"] = sib.expires_ms;
    siblings.push_back(e);
  }
  j["siblings"] = siblings;
  j["tombstones"] = tombstones;
  j["expired"] = expired;
  j["clock"] = object.clock().ToString();
  return j.dump();
}

Result<std::string> Node::PreflistJson(const std::string& key) const {
  Status s = CheckInfoKey(key);
  if (!s.ok()) return s;
  const Ring& ring = membership_->ring();
  uint64_t h = KeyHash(key);
  uint32_t p = ring.PartitionOfHash(h);
  const auto& pref = ring.PreferenceList(p);
  json primaries = json::array(), fallbacks = json::array();
  for (size_t i = 0; i < pref.size(); ++i) {
    json e = {{"id", pref[i]}, {"alive", pref[i] == config_.id || membership_->IsAlive(pref[i])}};
    (i < ring.n_val() ? primaries : fallbacks).push_back(e);
  }
  std::string bucket, user_key;
  if (!SplitInternalKey(key, &bucket, &user_key)) user_key = key;
  json j = {{"key", IsPrintableUtf8(user_key) ? user_key : Base64Encode(user_key)},
            {"bucket", bucket.empty() ? std::string(kDefaultBucket) : bucket},
            {"hash", fmt::format("{:016x}", h)},
            {"partition", p},
            {"primaries", primaries},
            {"fallbacks", fallbacks}};
  return j.dump();
}

}  // namespace ringkv
