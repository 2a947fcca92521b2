#include "node/buckets.h"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/bucket_key.h"
#include "core/expiry.h"
#include "core/limits.h"

namespace ringkv {

using json = nlohmann::ordered_json;

namespace {

constexpr uint64_t kMaxTtlSeconds = kMaxTtlMs / 1000;
constexpr uint32_t kMaxSiblingCap = 1'000'000;

const char* ModeText(Mode m) {
  switch (m) {
    case Mode::kSloppy: return "sloppy";
    case Mode::kStrict: return "strict";
    default: return "default";
  }
}

std::string Name(std::string_view bucket) { return std::string(BucketOrDefault(bucket)); }

json EntryToJson(const BucketEntry& e) {
  const BucketProps& p = e.props;
  return json{{"name", e.name},
              {"changed_ms", e.changed_ms},
              {"changed_by", e.changed_by},
              {"n", p.n},
              {"r", p.r},
              {"w", p.w},
              {"pr", p.pr},
              {"pw", p.pw},
              {"mode", static_cast<int>(p.mode)},
              {"lww", p.lww},
              {"max_siblings", p.max_siblings},
              {"warn_siblings", p.warn_siblings},
              {"ttl_s", p.ttl_s}};
}

}  // namespace

Buckets::Buckets(const NodeConfig* config) : config_(config) {}

bool Buckets::Newer(const BucketEntry& a, const BucketEntry& b) {
  auto content = [](const BucketEntry& e) {
    const BucketProps& p = e.props;
    return std::tie(p.n, p.r, p.w, p.pr, p.pw, p.mode, p.lww, p.max_siblings, p.warn_siblings,
                    p.ttl_s);
  };
  if (a.changed_ms != b.changed_ms) return a.changed_ms > b.changed_ms;
  if (a.changed_by != b.changed_by) return a.changed_by > b.changed_by;
  return content(a) > content(b);
}

Status Buckets::Load(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("buckets") || !j["buckets"].is_array()) {
    return Status::Corruption("bucket metadata is not the document this node writes");
  }
  std::vector<BucketEntry> loaded;
  try {
    for (const json& b : j["buckets"]) {
      BucketEntry e;
      e.name = b.at("name").get<std::string>();
      if (!ValidateBucketName(e.name).ok()) {
        return Status::Corruption(fmt::format("bucket metadata names a bad bucket '{}'", e.name));
      }
      e.changed_ms = b.at("changed_ms").get<uint64_t>();
      e.changed_by = b.at("changed_by").get<std::string>();
      BucketProps& p = e.props;
      p.n = b.at("n").get<uint32_t>();
      p.r = b.at("r").get<uint32_t>();
      p.w = b.at("w").get<uint32_t>();
      p.pr = b.at("pr").get<uint32_t>();
      p.pw = b.at("pw").get<uint32_t>();
      int mode = b.at("mode").get<int>();
      if (mode < 0 || mode > static_cast<int>(Mode::kStrict)) {
        return Status::Corruption("bucket metadata has an unknown mode");
      }
      p.mode = static_cast<Mode>(mode);
      p.lww = b.at("lww").get<bool>();
      p.max_siblings = b.at("max_siblings").get<uint32_t>();
      p.warn_siblings = b.at("warn_siblings").get<uint32_t>();
      p.ttl_s = b.at("ttl_s").get<uint64_t>();
      loaded.push_back(std::move(e));
    }
  } catch (const json::exception& e) {
    return Status::Corruption(fmt::format("bucket metadata: {}", e.what()));
  }
  entries_.clear();
  Merge(loaded);
  return Status::OK();
}

std::string Buckets::Serialize() const {
  json list = json::array();
  for (const auto& [name, e] : entries_) list.push_back(EntryToJson(e));
  return json{{"version", 1}, {"buckets", list}}.dump();
}

const BucketEntry* Buckets::Find(std::string_view bucket) const {
  auto it = entries_.find(BucketOrDefault(bucket));
  return it == entries_.end() ? nullptr : &it->second;
}

BucketProps Buckets::PropsOf(std::string_view bucket) const {
  const BucketEntry* e = Find(bucket);
  return e ? e->props : BucketProps{};
}

uint32_t Buckets::MaxSiblings(const BucketProps& p) const {
  return p.max_siblings ? p.max_siblings : config_->max_siblings;
}

uint32_t Buckets::WarnSiblings(const BucketProps& p) const {
  return p.warn_siblings ? p.warn_siblings : config_->warn_siblings;
}

Status Buckets::Check(std::string_view bucket, const Patch& patch) const {
  std::string name = Name(bucket);
  Status s = ValidateBucketName(name);
  if (!s.ok()) return s;
  const BucketEntry* current = Find(name);
  if (current == nullptr && entries_.size() >= kMaxBuckets) {
    return Status::InvalidArgument(fmt::format(
        "the cluster has {} buckets with properties, the most it keeps; change one of them",
        entries_.size()));
  }
  BucketProps p = current ? current->props : BucketProps{};
  uint32_t cluster_n = config_->n;
  if (patch.n) {
    uint32_t held_n = p.n ? p.n : cluster_n;
    if (*patch.n == 0 || *patch.n > cluster_n) {
      return Status::InvalidArgument(fmt::format(
          "n={} for bucket '{}': a bucket's n is 1..{} (the cluster's n: anti-entropy, handoff "
          "and the reaper keep that many copies of each partition)",
          *patch.n, name, cluster_n));
    }
    if (IsDefaultBucket(name) && *patch.n != cluster_n) {
      return Status::InvalidArgument(fmt::format(
          "the default bucket's n is the cluster's n ({}); create another bucket for keys with "
          "n={}",
          cluster_n, *patch.n));
    }
    if (current != nullptr && *patch.n != held_n) {
      return Status::InvalidArgument(fmt::format(
          "bucket '{}' exists with n={}; ringkv does not change a bucket's n (its keys are stored "
          "on {} replicas: a larger n would read replicas that never had them, a smaller one "
          "would leave copies behind). Create a new bucket with n={} and copy the keys",
          name, held_n, held_n, *patch.n));
    }
    p.n = *patch.n;
  }
  if (patch.r) p.r = *patch.r;
  if (patch.w) p.w = *patch.w;
  if (patch.pr) p.pr = *patch.pr;
  if (patch.pw) p.pw = *patch.pw;
  uint32_t n = p.n ? p.n : cluster_n;
  if (p.r > n) return Status::InvalidArgument(fmt::format("r={} is more than n={}", p.r, n));
  if (p.w > n) return Status::InvalidArgument(fmt::format("w={} is more than n={}", p.w, n));
  if (p.pr > (p.r ? p.r : n)) {
    return Status::InvalidArgument(fmt::format("pr={} is more than r={}", p.pr, p.r ? p.r : n));
  }
  if (p.pw > (p.w ? p.w : n)) {
    return Status::InvalidArgument(fmt::format("pw={} is more than w={}", p.pw, p.w ? p.w : n));
  }
  if (patch.max_siblings && *patch.max_siblings > kMaxSiblingCap) {
    return Status::InvalidArgument(
        fmt::format("max_siblings={}; the most is {}", *patch.max_siblings, kMaxSiblingCap));
  }
  if (patch.warn_siblings && *patch.warn_siblings > kMaxSiblingCap) {
    return Status::InvalidArgument(
        fmt::format("warn_siblings={}; the most is {}", *patch.warn_siblings, kMaxSiblingCap));
  }
  if (patch.ttl_s && *patch.ttl_s > kMaxTtlSeconds) {
    return Status::InvalidArgument(
        fmt::format("ttl={} s; the most is {} s (ten years)", *patch.ttl_s, kMaxTtlSeconds));
  }
  return Status::OK();
}

Result<BucketEntry> Buckets::Set(std::string_view bucket, const Patch& patch, uint64_t now_ms) {
  Status s = Check(bucket, patch);
  if (!s.ok()) return s;
  std::string name = Name(bucket);
  auto it = entries_.find(name);
  BucketEntry e;
  if (it != entries_.end()) {
    e = it->second;
  } else {
    e.name = name;
  }
  BucketProps& p = e.props;
  if (patch.n) p.n = *patch.n;
  if (patch.r) p.r = *patch.r;
  if (patch.w) p.w = *patch.w;
  if (patch.pr) p.pr = *patch.pr;
  if (patch.pw) p.pw = *patch.pw;
  if (patch.mode) p.mode = *patch.mode;
  if (patch.lww) p.lww = *patch.lww;
  if (patch.max_siblings) p.max_siblings = *patch.max_siblings;
  if (patch.warn_siblings) p.warn_siblings = *patch.warn_siblings;
  if (patch.ttl_s) p.ttl_s = *patch.ttl_s;
  // Above every version held here, whatever this node's clock says.
  e.changed_ms = std::max(now_ms, it != entries_.end() ? it->second.changed_ms + 1 : 0);
  e.changed_by = config_->id;
  entries_[name] = e;
  return e;
}

bool Buckets::Merge(const std::vector<BucketEntry>& remote) {
  bool changed = false;
  for (const BucketEntry& r : remote) {
    if (!ValidateBucketName(r.name).ok()) continue;
    auto it = entries_.find(r.name);
    if (it == entries_.end()) {
      entries_.emplace(r.name, r);
      changed = true;
    } else if (Newer(r, it->second)) {
      it->second = r;
      changed = true;
    }
  }
  if (entries_.size() > kMaxBuckets) Trim();
  return changed;
}

void Buckets::Trim() {
  // Deterministic: every node keeps the same (the smallest names).
  while (entries_.size() > kMaxBuckets) entries_.erase(std::prev(entries_.end()));
}

std::vector<BucketEntry> Buckets::Entries() const {
  std::vector<BucketEntry> out;
  out.reserve(entries_.size());
  for (const auto& [name, e] : entries_) out.push_back(e);
  return out;
}

Result<std::pair<std::string, Buckets::Patch>> Buckets::ParseSetRequest(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::InvalidArgument("bucket-set takes a JSON object");
  if (!j.contains("name") || !j["name"].is_string()) {
    return Status::InvalidArgument("bucket-set needs \"name\": the bucket");
  }
  std::string name = j["name"].get<std::string>();
  Patch patch;
  for (const auto& [field, v] : j.items()) {
    if (field == "name") continue;
    auto count = [&](std::optional<uint32_t>* out) -> Status {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX) {
        return Status::InvalidArgument(fmt::format("{} must be a whole number >= 0", field));
      }
      *out = v.get<uint32_t>();
      return Status::OK();
    };
    Status s;
    if (field == "n") {
      s = count(&patch.n);
    } else if (field == "r") {
      s = count(&patch.r);
    } else if (field == "w") {
      s = count(&patch.w);
    } else if (field == "pr") {
      s = count(&patch.pr);
    } else if (field == "pw") {
      s = count(&patch.pw);
    } else if (field == "max_siblings") {
      s = count(&patch.max_siblings);
    } else if (field == "warn_siblings") {
      s = count(&patch.warn_siblings);
    } else if (field == "ttl") {
      if (!v.is_number_unsigned()) return Status::InvalidArgument("ttl must be seconds >= 0");
      patch.ttl_s = v.get<uint64_t>();
    } else if (field == "lww") {
      if (!v.is_boolean()) return Status::InvalidArgument("lww must be true or false");
      patch.lww = v.get<bool>();
    } else if (field == "mode") {
      std::string m = v.is_string() ? v.get<std::string>() : "";
      if (m == "sloppy") {
        patch.mode = Mode::kSloppy;
      } else if (m == "strict") {
        patch.mode = Mode::kStrict;
      } else if (m == "default") {
        patch.mode = Mode::kDefault;
      } else {
        return Status::InvalidArgument("mode must be \"sloppy\", \"strict\" or \"default\"");
      }
    } else {
      return Status::InvalidArgument(fmt::format(
          "unknown bucket property '{}' (n, r, w, pr, pw, mode, lww, max_siblings, "
          "warn_siblings, ttl)",
          field));
    }
    if (!s.ok()) return s;
  }
  if (patch.n && *patch.n == 0) return Status::InvalidArgument("n must be at least 1");
  return std::make_pair(std::move(name), patch);
}

std::string Buckets::Json(std::string_view bucket) const {
  std::string name = Name(bucket);
  const BucketEntry* e = Find(name);
  BucketProps p = e ? e->props : BucketProps{};
  uint32_t n = p.n ? p.n : config_->n;
  json set = json::array();
  auto mark = [&](const char* field, bool is_set) {
    if (is_set) set.push_back(field);
  };
  mark("n", p.n != 0);
  mark("r", p.r != 0);
  mark("w", p.w != 0);
  mark("pr", p.pr != 0);
  mark("pw", p.pw != 0);
  mark("mode", p.mode != Mode::kDefault);
  mark("lww", p.lww);
  mark("max_siblings", p.max_siblings != 0);
  mark("warn_siblings", p.warn_siblings != 0);
  mark("ttl", p.ttl_s != 0);
  json j = {{"name", name},
            {"n", n},
            {"r", p.r ? p.r : std::min(config_->r, n)},
            {"w", p.w ? p.w : std::min(config_->w, n)},
            {"pr", p.pr},
            {"pw", p.pw},
            {"mode", ModeText(p.mode != Mode::kDefault ? p.mode : config_->mode)},
            {"lww", p.lww},
            {"max_siblings", MaxSiblings(p)},
            {"warn_siblings", WarnSiblings(p)},
            {"ttl", p.ttl_s},
            {"set", set},
            {"exists", e != nullptr}};
  if (e != nullptr) {
    j["changed_ms"] = e->changed_ms;
    j["changed_by"] = e->changed_by;
  }
  return j.dump();
}

std::string Buckets::ListJson() const {
  json list = json::array();
  for (const auto& [name, e] : entries_) list.push_back(json::parse(Json(name)));
  return json{{"buckets", list}}.dump();
}

}  // namespace ringkv
