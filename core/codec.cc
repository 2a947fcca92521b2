#include "core/codec.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>
#include <utility>

#include <fmt/format.h>

#include "core/bucket_key.h"
#include "core/expiry.h"
#include "core/flatbuffer_bytes.h"
#include "core/limits.h"
#include "proto/ringkv_generated.h"

namespace ringkv {

namespace fb = flatbuffers;
namespace w = wire;

namespace {

// Stored objects and contexts start with a format byte so the layout can
// change later without guessing.
constexpr char kStoredObjectFormat = 1;
constexpr char kContextFormat = 1;

fb::Offset<fb::Vector<fb::Offset<w::ClockEntry>>> EncodeClock(fb::FlatBufferBuilder& b,
                                                              const VersionVector& clock) {
  std::vector<fb::Offset<w::ClockEntry>> entries;
  entries.reserve(clock.entries().size());
  for (const auto& [actor, counter] : clock.entries()) {
    entries.push_back(w::CreateClockEntry(b, b.CreateString(actor), counter));
  }
  return b.CreateVector(entries);
}

fb::Offset<w::Object> EncodeObject(fb::FlatBufferBuilder& b, const DvvSet& object) {
  auto clock = EncodeClock(b, object.clock());
  std::vector<fb::Offset<w::Sibling>> siblings;
  siblings.reserve(object.siblings().size());
  for (const Sibling& s : object.siblings()) {
    auto actor = b.CreateString(s.dot.actor);
    auto value = Bytes(b, s.value);
    siblings.push_back(w::CreateSibling(b, actor, s.dot.counter, s.timestamp_ms, s.tombstone, value,
                                        s.expires_ms, s.datatype));
  }
  return w::CreateObject(b, clock, b.CreateVector(siblings));
}

Status DecodeClock(const fb::Vector<fb::Offset<w::ClockEntry>>* entries, VersionVector* out) {
  if (entries == nullptr) return Status::OK();
  for (const w::ClockEntry* e : *entries) {
    if (e->actor()->size() == 0) return Status::InvalidArgument("clock entry with empty actor");
    if (out->Get(View(e->actor())) != 0) {
      return Status::InvalidArgument("clock names an actor twice");
    }
    out->Set(std::string(View(e->actor())), e->counter());
  }
  return Status::OK();
}

Result<DvvSet> DecodeObject(const w::Object* object) {
  VersionVector clock;
  Status s = DecodeClock(object->clock(), &clock);
  if (!s.ok()) return s;
  std::vector<Sibling> siblings;
  if (object->siblings() != nullptr) {
    siblings.reserve(object->siblings()->size());
    for (const w::Sibling* fs : *object->siblings()) {
      Sibling sib;
      sib.dot.actor = std::string(View(fs->actor()));
      sib.dot.counter = fs->counter();
      sib.timestamp_ms = fs->timestamp_ms();
      sib.tombstone = fs->tombstone();
      sib.value = std::string(View(fs->value()));
      sib.expires_ms = fs->expires_ms();
      sib.datatype = fs->datatype();
      if (sib.dot.counter == 0) return Status::InvalidArgument("sibling with a zero dot");
      siblings.push_back(std::move(sib));
    }
  }
  DvvSet out;
  if (!DvvSet::FromParts(std::move(clock), std::move(siblings), &out)) {
    return Status::InvalidArgument("object's clock does not cover its siblings' dots");
  }
  return out;
}

w::ErrorCode ToWire(Status::Code code) { return static_cast<w::ErrorCode>(code); }

Status FromWire(w::ErrorCode code, const fb::String* message) {
  auto c = static_cast<uint8_t>(code);
  if (c > static_cast<uint8_t>(Status::kLastCode)) {
    return Status::Internal(fmt::format("unknown error code {}: {}", c, View(message)));
  }
  if (code == w::ErrorCode::Ok) return Status::OK();
  return Status::FromCode(static_cast<Status::Code>(c), std::string(View(message)));
}

fb::Offset<w::Quorum> EncodeQuorum(fb::FlatBufferBuilder& b, const Quorum& q) {
  return w::CreateQuorum(b, q.n, q.r, q.w, q.pr, q.pw, q.timeout_ms,
                         static_cast<w::Mode>(q.mode), q.lww);
}

Result<Quorum> DecodeQuorum(const w::Quorum* fq) {
  Quorum q;
  if (fq == nullptr) return q;
  q.n = fq->n();
  q.r = fq->r();
  q.w = fq->w();
  q.pr = fq->pr();
  q.pw = fq->pw();
  q.timeout_ms = fq->timeout_ms();
  auto mode = static_cast<uint8_t>(fq->mode());
  if (mode > static_cast<uint8_t>(Mode::kStrict)) {
    return Status::InvalidArgument(fmt::format("unknown quorum mode {}", mode));
  }
  q.mode = static_cast<Mode>(mode);
  q.lww = fq->lww();
  return q;
}

Status CheckKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("key is empty");
  if (key.size() > kMaxKeyBytes) {
    return Status::InvalidArgument(
        fmt::format("key is {} bytes; the limit is {}", key.size(), kMaxKeyBytes));
  }
  return Status::OK();
}

// Keys between replicas are internal keys (core/bucket_key.h): a user's key
// with its bucket in front.
Status CheckInternalKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("key is empty");
  if (key.size() > kMaxInternalKeyBytes) {
    return Status::InvalidArgument(
        fmt::format("key is {} bytes; the limit is {}", key.size(), kMaxInternalKeyBytes));
  }
  return Status::OK();
}

// A request's bucket: empty (the default bucket) or a valid name.
Status CheckBucket(std::string_view bucket) {
  return bucket.empty() ? Status::OK() : ValidateBucketName(bucket);
}

// A listing's prefix or cursor: a key, or a part of one.
Status CheckListBound(std::string_view bytes, const char* what) {
  if (bytes.size() > kMaxKeyBytes) {
    return Status::InvalidArgument(
        fmt::format("{} is {} bytes; the limit is {}", what, bytes.size(), kMaxKeyBytes));
  }
  return Status::OK();
}

Status CheckListLimit(uint32_t limit) {
  if (limit > kMaxListPage) {
    return Status::InvalidArgument(
        fmt::format("a page of {} keys was asked; the most is {}", limit, kMaxListPage));
  }
  return Status::OK();
}

fb::Offset<fb::Vector<fb::Offset<w::ListedKey>>> EncodeKeys(fb::FlatBufferBuilder& b,
                                                            const std::vector<std::string>& keys) {
  std::vector<fb::Offset<w::ListedKey>> out;
  out.reserve(keys.size());
  for (const std::string& k : keys) out.push_back(w::CreateListedKey(b, Bytes(b, k)));
  return b.CreateVector(out);
}

Result<std::vector<std::string>> DecodeKeys(const fb::Vector<fb::Offset<w::ListedKey>>* keys) {
  std::vector<std::string> out;
  if (keys == nullptr) return out;
  if (keys->size() > kMaxListPage) {
    return Status::InvalidArgument(
        fmt::format("a page of {} keys; the most is {}", keys->size(), kMaxListPage));
  }
  out.reserve(keys->size());
  for (const w::ListedKey* k : *keys) {
    std::string key(View(k->key()));
    Status s = CheckKey(key);
    if (!s.ok()) return s;
    out.push_back(std::move(key));
  }
  return out;
}

fb::Offset<fb::Vector<fb::Offset<w::BucketEntry>>> EncodeBuckets(
    fb::FlatBufferBuilder& b, const std::vector<BucketEntry>& buckets) {
  std::vector<fb::Offset<w::BucketEntry>> out;
  out.reserve(buckets.size());
  for (const BucketEntry& e : buckets) {
    auto name = b.CreateString(e.name);
    auto by = b.CreateString(e.changed_by);
    const BucketProps& p = e.props;
    out.push_back(w::CreateBucketEntry(b, name, e.changed_ms, by, p.n, p.r, p.w, p.pr, p.pw,
                                       static_cast<w::Mode>(p.mode), p.lww, p.max_siblings,
                                       p.warn_siblings, p.ttl_s));
  }
  return b.CreateVector(out);
}

Result<std::vector<BucketEntry>> DecodeBuckets(
    const fb::Vector<fb::Offset<w::BucketEntry>>* buckets) {
  std::vector<BucketEntry> out;
  if (buckets == nullptr) return out;
  if (buckets->size() > kMaxBuckets) {
    return Status::InvalidArgument(
        fmt::format("{} buckets gossiped; the limit is {}", buckets->size(), kMaxBuckets));
  }
  out.reserve(buckets->size());
  for (const w::BucketEntry* fe : *buckets) {
    BucketEntry e;
    e.name = std::string(View(fe->name()));
    Status s = ValidateBucketName(e.name);
    if (!s.ok()) return s;
    e.changed_ms = fe->changed_ms();
    e.changed_by = std::string(View(fe->changed_by()));
    BucketProps& p = e.props;
    p.n = fe->n();
    p.r = fe->r();
    p.w = fe->w();
    p.pr = fe->pr();
    p.pw = fe->pw();
    auto mode = static_cast<uint8_t>(fe->mode());
    if (mode > static_cast<uint8_t>(Mode::kStrict)) {
      return Status::InvalidArgument(fmt::format("bucket {} has unknown mode {}", e.name, mode));
    }
    p.mode = static_cast<Mode>(mode);
    p.lww = fe->lww();
    p.max_siblings = fe->max_siblings();
    p.warn_siblings = fe->warn_siblings();
    p.ttl_s = fe->ttl_s();
    out.push_back(std::move(e));
  }
  return out;
}

fb::Offset<fb::Vector<fb::Offset<w::MemberState>>> EncodeMembers(
    fb::FlatBufferBuilder& b, const std::vector<MemberState>& members) {
  std::vector<fb::Offset<w::MemberState>> out;
  out.reserve(members.size());
  for (const MemberState& m : members) {
    auto id = b.CreateString(m.id);
    auto addr = b.CreateString(m.address);
    auto complete = Bytes(b, m.complete);
    out.push_back(w::CreateMemberState(b, id, addr, m.incarnation, m.heartbeat,
                                       static_cast<w::MemberStatus>(m.status), complete));
  }
  return b.CreateVector(out);
}

Result<std::vector<MemberState>> DecodeMembers(
    const fb::Vector<fb::Offset<w::MemberState>>* members) {
  std::vector<MemberState> out;
  if (members == nullptr) return out;
  for (const w::MemberState* fm : *members) {
    MemberState m;
    m.id = std::string(View(fm->id()));
    if (m.id.empty()) return Status::InvalidArgument("member with an empty id");
    m.address = std::string(View(fm->address()));
    m.incarnation = fm->incarnation();
    m.heartbeat = fm->heartbeat();
    auto st = static_cast<uint8_t>(fm->status());
    if (st > static_cast<uint8_t>(MemberStatus::kRemoved)) {
      return Status::InvalidArgument(fmt::format("member {} has unknown status {}", m.id, st));
    }
    m.status = static_cast<MemberStatus>(st);
    m.complete = std::string(View(fm->complete()));
    out.push_back(std::move(m));
  }
  return out;
}

fb::Offset<fb::Vector<uint32_t>> U32s(fb::FlatBufferBuilder& b, const std::vector<uint32_t>& v) {
  return b.CreateVector(v);
}

std::vector<uint32_t> FromU32s(const fb::Vector<uint32_t>* v) {
  if (v == nullptr) return {};
  return std::vector<uint32_t>(v->begin(), v->end());
}

fb::Offset<fb::Vector<fb::Offset<w::KeyedObject>>> EncodeKeyedObjects(
    fb::FlatBufferBuilder& b, const std::vector<KeyedObject>& objects) {
  std::vector<fb::Offset<w::KeyedObject>> out;
  out.reserve(objects.size());
  for (const KeyedObject& ko : objects) {
    auto key = Bytes(b, ko.key);
    auto obj = EncodeObject(b, ko.object);
    out.push_back(w::CreateKeyedObject(b, key, obj));
  }
  return b.CreateVector(out);
}

// The entries of a ReapCheck or Reap: valid keys, and objects that are
// tombstone-only (a peer asking to reap a live object is malformed).
Result<std::vector<KeyedObject>> DecodeReapEntries(
    const fb::Vector<fb::Offset<w::KeyedObject>>* entries, const char* what) {
  std::vector<KeyedObject> out;
  if (entries == nullptr) return out;
  if (entries->size() > kMaxReapEntries) {
    return Status::InvalidArgument(
        fmt::format("{} has {} entries; the limit is {}", what, entries->size(), kMaxReapEntries));
  }
  out.reserve(entries->size());
  for (const w::KeyedObject* ko : *entries) {
    KeyedObject o;
    o.key = std::string(View(ko->key()));
    Status s = CheckInternalKey(o.key);
    if (!s.ok()) return s;
    auto obj = DecodeObject(ko->object());
    if (!obj.ok()) return obj.status();
    if (!OnlyEndingSiblings(*obj)) {
      return Status::InvalidArgument(
          fmt::format("{} names an object that is not a tombstone or expired value", what));
    }
    o.object = std::move(obj).value();
    out.push_back(std::move(o));
  }
  return out;
}

struct BodyEncoder {
  fb::FlatBufferBuilder& b;

  std::pair<w::Body, fb::Offset<void>> operator()(const GetRequest& m) {
    auto key = Bytes(b, m.key);
    auto q = EncodeQuorum(b, m.quorum);
    auto bucket = m.bucket.empty() ? fb::Offset<fb::String>() : b.CreateString(m.bucket);
    return {w::Body::GetRequest, w::CreateGetRequest(b, key, q, bucket).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const PutRequest& m) {
    auto key = Bytes(b, m.key);
    auto value = Bytes(b, m.value);
    auto ctx = Bytes(b, m.context);
    auto q = EncodeQuorum(b, m.quorum);
    auto bucket = m.bucket.empty() ? fb::Offset<fb::String>() : b.CreateString(m.bucket);
    return {w::Body::PutRequest,
            w::CreatePutRequest(b, key, value, m.tombstone, ctx, q, m.forwarded, bucket, m.ttl_ms,
                                m.persist, m.if_absent, m.if_unchanged)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const Reply& m) {
    auto msg = b.CreateString(m.status.message());
    fb::Offset<w::Object> obj;
    if (m.object) obj = EncodeObject(b, *m.object);
    fb::Offset<fb::String> dot_actor;
    if (m.dot) dot_actor = b.CreateString(m.dot->actor);
    return {w::Body::Reply, w::CreateReply(b, ToWire(m.status.code()), msg, obj, dot_actor,
                                           m.dot ? m.dot->counter : 0, m.warn_siblings)
                                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const InfoRequest& m) {
    auto topic = b.CreateString(m.topic);
    auto arg = Bytes(b, m.arg);
    return {w::Body::InfoRequest, w::CreateInfoRequest(b, topic, arg).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const InfoReply& m) {
    auto msg = b.CreateString(m.status.message());
    auto json = b.CreateString(m.json);
    return {w::Body::InfoReply,
            w::CreateInfoReply(b, ToWire(m.status.code()), msg, json).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReplicaRead& m) {
    auto key = Bytes(b, m.key);
    auto hint = m.hint_for.empty() ? fb::Offset<fb::String>() : b.CreateString(m.hint_for);
    return {w::Body::ReplicaRead, w::CreateReplicaRead(b, key, hint).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReplicaReadReply& m) {
    auto msg = b.CreateString(m.status.message());
    fb::Offset<w::Object> obj;
    if (m.object) obj = EncodeObject(b, *m.object);
    return {w::Body::ReplicaReadReply,
            w::CreateReplicaReadReply(b, ToWire(m.status.code()), msg, obj).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReplicaWrite& m) {
    auto key = Bytes(b, m.key);
    auto obj = EncodeObject(b, m.object);
    auto hint = m.hint_for.empty() ? fb::Offset<fb::String>() : b.CreateString(m.hint_for);
    return {w::Body::ReplicaWrite, w::CreateReplicaWrite(b, key, obj, hint).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReplicaWriteAck& m) {
    auto msg = b.CreateString(m.status.message());
    return {w::Body::ReplicaWriteAck,
            w::CreateReplicaWriteAck(b, ToWire(m.status.code()), msg).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const GossipPush& m) {
    auto members = EncodeMembers(b, m.members);
    fb::Offset<fb::Vector<fb::Offset<w::BucketEntry>>> buckets;
    if (!m.buckets.empty()) buckets = EncodeBuckets(b, m.buckets);
    return {w::Body::GossipPush,
            w::CreateGossipPush(b, m.ring_size, m.n_val, members, buckets).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const GossipAck& m) {
    auto members = EncodeMembers(b, m.members);
    fb::Offset<fb::Vector<fb::Offset<w::BucketEntry>>> buckets;
    if (!m.buckets.empty()) buckets = EncodeBuckets(b, m.buckets);
    return {w::Body::GossipAck,
            w::CreateGossipAck(b, m.ring_size, m.n_val, members, buckets).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const HandoffRequest& m) {
    auto after = Bytes(b, m.after);
    return {w::Body::HandoffRequest,
            w::CreateHandoffRequest(b, m.partition, after, m.max_objects, m.max_bytes).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const HandoffBatch& m) {
    auto msg = b.CreateString(m.status.message());
    std::vector<fb::Offset<w::KeyedObject>> objs;
    objs.reserve(m.objects.size());
    for (const KeyedObject& ko : m.objects) {
      auto key = Bytes(b, ko.key);
      auto obj = EncodeObject(b, ko.object);
      objs.push_back(w::CreateKeyedObject(b, key, obj));
    }
    auto vec = b.CreateVector(objs);
    auto next = Bytes(b, m.next);
    return {w::Body::HandoffBatch,
            w::CreateHandoffBatch(b, ToWire(m.status.code()), msg, m.partition, vec, next, m.done)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const AaeHashesRequest& m) {
    auto idx = U32s(b, m.indices);
    return {w::Body::AaeHashesRequest,
            w::CreateAaeHashesRequest(b, m.partition, m.level, idx).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const AaeHashesReply& m) {
    auto msg = b.CreateString(m.status.message());
    auto idx = U32s(b, m.indices);
    auto hashes = Bytes(b, m.hashes);
    return {w::Body::AaeHashesReply,
            w::CreateAaeHashesReply(b, ToWire(m.status.code()), msg, m.partition, m.level, idx, hashes)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const AaeSegmentRequest& m) {
    auto segs = U32s(b, m.segments);
    return {w::Body::AaeSegmentRequest, w::CreateAaeSegmentRequest(b, m.partition, segs).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const AaeSegmentReply& m) {
    auto msg = b.CreateString(m.status.message());
    std::vector<fb::Offset<w::KeyDigest>> entries;
    entries.reserve(m.entries.size());
    for (const KeyDigest& e : m.entries) {
      auto key = Bytes(b, e.key);
      auto digest = Bytes(b, e.digest);
      entries.push_back(w::CreateKeyDigest(b, e.segment, key, digest));
    }
    auto vec = b.CreateVector(entries);
    return {w::Body::AaeSegmentReply,
            w::CreateAaeSegmentReply(b, ToWire(m.status.code()), msg, m.partition, vec).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReapCheck& m) {
    auto entries = EncodeKeyedObjects(b, m.entries);
    return {w::Body::ReapCheck, w::CreateReapCheck(b, entries).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReapCheckReply& m) {
    auto msg = b.CreateString(m.status.message());
    std::vector<uint8_t> verdicts;
    verdicts.reserve(m.verdicts.size());
    for (ReapVerdict v : m.verdicts) verdicts.push_back(static_cast<uint8_t>(v));
    auto vec = b.CreateVector(verdicts);
    return {w::Body::ReapCheckReply,
            w::CreateReapCheckReply(b, ToWire(m.status.code()), msg, vec).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const Reap& m) {
    auto entries = EncodeKeyedObjects(b, m.entries);
    return {w::Body::Reap, w::CreateReap(b, entries).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReapAck& m) {
    auto msg = b.CreateString(m.status.message());
    return {w::Body::ReapAck, w::CreateReapAck(b, ToWire(m.status.code()), msg, m.reaped).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const DataTypeRequest& m) {
    auto key = Bytes(b, m.key);
    auto bucket = m.bucket.empty() ? fb::Offset<fb::Vector<uint8_t>>() : Bytes(b, m.bucket);
    std::vector<fb::Offset<w::Argument>> args;
    args.reserve(m.args.size());
    for (const auto& a : m.args) args.push_back(w::CreateArgument(b, Bytes(b, a)));
    auto av = b.CreateVector(args);
    auto q = EncodeQuorum(b, m.quorum);
    return {w::Body::DataTypeRequest,
            w::CreateDataTypeRequest(b, key, bucket, static_cast<uint8_t>(m.type),
                                     static_cast<uint8_t>(m.op), av, m.delta, q, m.forwarded)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const DataTypeReply& m) {
    auto msg = b.CreateString(m.status.message());
    fb::Offset<fb::String> dot_actor;
    if (m.dot) dot_actor = b.CreateString(m.dot->actor);
    return {w::Body::DataTypeReply,
            w::CreateDataTypeReply(b, ToWire(m.status.code()), msg, m.integer, dot_actor,
                                   m.dot ? m.dot->counter : 0)

                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ListKeysRequest& m) {
    auto bucket = m.bucket.empty() ? fb::Offset<fb::String>() : b.CreateString(m.bucket);
    auto prefix = Bytes(b, m.prefix);
    auto after = Bytes(b, m.after);
    return {w::Body::ListKeysRequest,
            w::CreateListKeysRequest(b, bucket, prefix, after, m.limit, m.count_only, m.timeout_ms)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ListKeysReply& m) {
    auto msg = b.CreateString(m.status.message());
    auto keys = EncodeKeys(b, m.keys);
    auto missed = U32s(b, m.missed);
    return {w::Body::ListKeysReply, w::CreateListKeysReply(b, ToWire(m.status.code()), msg, keys,
                                                           m.more, missed, m.count)
                                        .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const PartitionKeysRequest& m) {
    auto partitions = U32s(b, m.partitions);
    auto bucket = m.bucket.empty() ? fb::Offset<fb::String>() : b.CreateString(m.bucket);
    auto prefix = Bytes(b, m.prefix);
    auto after = Bytes(b, m.after);
    return {w::Body::PartitionKeysRequest,
            w::CreatePartitionKeysRequest(b, partitions, bucket, prefix, after, m.limit,
                                          m.count_only)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const PartitionKeysReply& m) {
    auto msg = b.CreateString(m.status.message());
    auto keys = EncodeKeys(b, m.keys);
    return {w::Body::PartitionKeysReply,
            w::CreatePartitionKeysReply(b, ToWire(m.status.code()), msg, keys, m.truncated, m.count)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const AuthRequest& m) {
    auto user = b.CreateString(m.user);
    auto password = b.CreateString(m.password);
    return {w::Body::AuthRequest, w::CreateAuthRequest(b, user, password).Union()};
  }
};

Result<Body> DecodeBody(const w::Envelope* env) {
  // The verifier accepts a union whose type is set but whose table is
  // absent; every body_as_X() below would then be null.
  if (env->body_type() != w::Body::NONE && env->body() == nullptr) {
    return Status::InvalidArgument("envelope names a message type but carries no message");
  }
  switch (env->body_type()) {
    case w::Body::GetRequest: {
      const auto* m = env->body_as_GetRequest();
      GetRequest out;
      out.key = std::string(View(m->key()));
      Status s = CheckKey(out.key);
      if (!s.ok()) return s;
      auto q = DecodeQuorum(m->quorum());
      if (!q.ok()) return q.status();
      out.quorum = *q;
      out.bucket = std::string(View(m->bucket()));
      s = CheckBucket(out.bucket);
      if (!s.ok()) return s;
      return Body(std::move(out));
    }
    case w::Body::PutRequest: {
      const auto* m = env->body_as_PutRequest();
      PutRequest out;
      out.key = std::string(View(m->key()));
      Status s = CheckKey(out.key);
      if (!s.ok()) return s;
      out.value = std::string(View(m->value()));
      out.tombstone = m->tombstone();
      out.context = std::string(View(m->context()));
      auto q = DecodeQuorum(m->quorum());
      if (!q.ok()) return q.status();
      out.quorum = *q;
      out.forwarded = m->forwarded();
      out.bucket = std::string(View(m->bucket()));
      s = CheckBucket(out.bucket);
      if (!s.ok()) return s;
      out.ttl_ms = m->ttl_ms();
      out.persist = m->persist();
      out.if_absent = m->if_absent();
      out.if_unchanged = m->if_unchanged();
      return Body(std::move(out));
    }
    case w::Body::Reply: {
      const auto* m = env->body_as_Reply();
      Reply out;
      out.status = FromWire(m->code(), m->message());
      if (m->object() != nullptr) {
        auto obj = DecodeObject(m->object());
        if (!obj.ok()) return obj.status();
        out.object = std::move(obj).value();
      }
      if (m->dot_actor() != nullptr) out.dot = Dot{std::string(View(m->dot_actor())), m->dot_counter()};
      out.warn_siblings = m->warn_siblings();
      return Body(std::move(out));
    }
    case w::Body::InfoRequest: {
      const auto* m = env->body_as_InfoRequest();
      return Body(InfoRequest{std::string(View(m->topic())), std::string(View(m->arg()))});
    }
    case w::Body::InfoReply: {
      const auto* m = env->body_as_InfoReply();
      return Body(InfoReply{FromWire(m->code(), m->message()), std::string(View(m->json()))});
    }
    case w::Body::ReplicaRead: {
      const auto* m = env->body_as_ReplicaRead();
      ReplicaRead out{std::string(View(m->key())), std::string(View(m->hint_for()))};
      Status s = CheckInternalKey(out.key);
      if (!s.ok()) return s;
      return Body(std::move(out));
    }
    case w::Body::ReplicaReadReply: {
      const auto* m = env->body_as_ReplicaReadReply();
      ReplicaReadReply out;
      out.status = FromWire(m->code(), m->message());
      if (m->object() != nullptr) {
        auto obj = DecodeObject(m->object());
        if (!obj.ok()) return obj.status();
        out.object = std::move(obj).value();
      }
      return Body(std::move(out));
    }
    case w::Body::ReplicaWrite: {
      const auto* m = env->body_as_ReplicaWrite();
      ReplicaWrite out;
      out.key = std::string(View(m->key()));
      Status s = CheckInternalKey(out.key);
      if (!s.ok()) return s;
      auto obj = DecodeObject(m->object());
      if (!obj.ok()) return obj.status();
      out.object = std::move(obj).value();
      out.hint_for = std::string(View(m->hint_for()));
      return Body(std::move(out));
    }
    case w::Body::ReplicaWriteAck: {
      const auto* m = env->body_as_ReplicaWriteAck();
      return Body(ReplicaWriteAck{FromWire(m->code(), m->message())});
    }
    case w::Body::GossipPush: {
      const auto* m = env->body_as_GossipPush();
      auto members = DecodeMembers(m->members());
      if (!members.ok()) return members.status();
      auto buckets = DecodeBuckets(m->buckets());
      if (!buckets.ok()) return buckets.status();
      return Body(GossipPush{m->ring_size(), m->n_val(), std::move(members).value(),
                             std::move(buckets).value()});
    }
    case w::Body::GossipAck: {
      const auto* m = env->body_as_GossipAck();
      auto members = DecodeMembers(m->members());
      if (!members.ok()) return members.status();
      auto buckets = DecodeBuckets(m->buckets());
      if (!buckets.ok()) return buckets.status();
      return Body(GossipAck{m->ring_size(), m->n_val(), std::move(members).value(),
                            std::move(buckets).value()});
    }
    case w::Body::HandoffRequest: {
      const auto* m = env->body_as_HandoffRequest();
      return Body(HandoffRequest{m->partition(), std::string(View(m->after())), m->max_objects(),
                                 m->max_bytes()});
    }
    case w::Body::HandoffBatch: {
      const auto* m = env->body_as_HandoffBatch();
      HandoffBatch out;
      out.status = FromWire(m->code(), m->message());
      out.partition = m->partition();
      if (m->objects() != nullptr) {
        for (const w::KeyedObject* ko : *m->objects()) {
          KeyedObject o;
          o.key = std::string(View(ko->key()));
          Status s = CheckInternalKey(o.key);
          if (!s.ok()) return s;
          auto obj = DecodeObject(ko->object());
          if (!obj.ok()) return obj.status();
          o.object = std::move(obj).value();
          out.objects.push_back(std::move(o));
        }
      }
      out.next = std::string(View(m->next()));
      out.done = m->done();
      return Body(std::move(out));
    }
    case w::Body::AaeHashesRequest: {
      const auto* m = env->body_as_AaeHashesRequest();
      return Body(AaeHashesRequest{m->partition(), m->level(), FromU32s(m->indices())});
    }
    case w::Body::AaeHashesReply: {
      const auto* m = env->body_as_AaeHashesReply();
      AaeHashesReply out;
      out.status = FromWire(m->code(), m->message());
      out.partition = m->partition();
      out.level = m->level();
      out.indices = FromU32s(m->indices());
      out.hashes = std::string(View(m->hashes()));
      if (out.status.ok() && out.hashes.size() != out.indices.size() * 32) {
        return Status::InvalidArgument("AaeHashesReply: hashes do not match indices");
      }
      return Body(std::move(out));
    }
    case w::Body::AaeSegmentRequest: {
      const auto* m = env->body_as_AaeSegmentRequest();
      return Body(AaeSegmentRequest{m->partition(), FromU32s(m->segments())});
    }
    case w::Body::AaeSegmentReply: {
      const auto* m = env->body_as_AaeSegmentReply();
      AaeSegmentReply out;
      out.status = FromWire(m->code(), m->message());
      out.partition = m->partition();
      if (m->entries() != nullptr) {
        for (const w::KeyDigest* e : *m->entries()) {
          KeyDigest d{e->segment(), std::string(View(e->key())), std::string(View(e->digest()))};
          if (d.digest.size() != 32) return Status::InvalidArgument("key digest is not 32 bytes");
          out.entries.push_back(std::move(d));
        }
      }
      return Body(std::move(out));
    }
    case w::Body::ReapCheck: {
      auto entries = DecodeReapEntries(env->body_as_ReapCheck()->entries(), "ReapCheck");
      if (!entries.ok()) return entries.status();
      return Body(ReapCheck{std::move(entries).value()});
    }
    case w::Body::ReapCheckReply: {
      const auto* m = env->body_as_ReapCheckReply();
      ReapCheckReply out;
      out.status = FromWire(m->code(), m->message());
      if (m->verdicts() != nullptr) {
        if (m->verdicts()->size() > kMaxReapEntries) {
          return Status::InvalidArgument("ReapCheckReply has too many verdicts");
        }
        for (uint8_t v : *m->verdicts()) {
          if (v > static_cast<uint8_t>(ReapVerdict::kBusy)) {
            return Status::InvalidArgument(fmt::format("unknown reap verdict {}", v));
          }
          out.verdicts.push_back(static_cast<ReapVerdict>(v));
        }
      }
      return Body(std::move(out));
    }
    case w::Body::Reap: {
      auto entries = DecodeReapEntries(env->body_as_Reap()->entries(), "Reap");
      if (!entries.ok()) return entries.status();
      return Body(Reap{std::move(entries).value()});
    }
    case w::Body::ReapAck: {
      const auto* m = env->body_as_ReapAck();
      return Body(ReapAck{FromWire(m->code(), m->message()), m->reaped()});
    }
    case w::Body::DataTypeRequest: {
      const auto* m = env->body_as_DataTypeRequest();
      DataTypeRequest out;
      out.key = std::string(View(m->key()));
      Status s = CheckKey(out.key);
      if (!s.ok()) return s;
      out.bucket = std::string(View(m->bucket()));
      s = CheckBucket(out.bucket);
      if (!s.ok()) return s;
      if (m->type() == 0 || m->type() > kLastDataType) {
        return Status::InvalidArgument(fmt::format("unknown data type {}", m->type()));
      }
      out.type = static_cast<DataType>(m->type());
      if (m->op() > kLastDataTypeOpCode) {
        return Status::InvalidArgument(fmt::format("unknown data-type operation {}", m->op()));
      }
      out.op = static_cast<DataTypeOpCode>(m->op());
      if (m->args() != nullptr) {
        if (m->args()->size() > kMaxDataTypeArgs) {
          return Status::InvalidArgument(fmt::format(
              "{} arguments in one operation; the limit is {}", m->args()->size(), kMaxDataTypeArgs));
        }
        out.args.reserve(m->args()->size());
        for (const w::Argument* a : *m->args()) out.args.emplace_back(View(a->value()));
      }
      s = ValidateOperation(out.type, out.op, out.args);
      if (!s.ok()) return s;
      out.delta = m->delta();
      auto q = DecodeQuorum(m->quorum());
      if (!q.ok()) return q.status();
      out.quorum = *q;
      out.forwarded = m->forwarded();
      return Body(std::move(out));
    }
    case w::Body::DataTypeReply: {
      const auto* m = env->body_as_DataTypeReply();
      DataTypeReply out;
      out.status = FromWire(m->code(), m->message());
      out.integer = m->integer();
      if (m->dot_actor() != nullptr) out.dot = Dot{std::string(View(m->dot_actor())), m->dot_counter()};
      return Body(std::move(out));
    }
    case w::Body::ListKeysRequest: {
      const auto* m = env->body_as_ListKeysRequest();
      ListKeysRequest out;
      out.bucket = std::string(View(m->bucket()));
      out.prefix = std::string(View(m->prefix()));
      out.after = std::string(View(m->after()));
      out.limit = m->limit();
      out.count_only = m->count_only();
      out.timeout_ms = m->timeout_ms();
      for (Status s : {CheckBucket(out.bucket), CheckListBound(out.prefix, "prefix"),
                       CheckListBound(out.after, "cursor"), CheckListLimit(out.limit)}) {
        if (!s.ok()) return s;
      }
      return Body(std::move(out));
    }
    case w::Body::ListKeysReply: {
      const auto* m = env->body_as_ListKeysReply();
      ListKeysReply out;
      out.status = FromWire(m->code(), m->message());
      auto keys = DecodeKeys(m->keys());
      if (!keys.ok()) return keys.status();
      out.keys = std::move(keys).value();
      out.more = m->more();
      out.missed = FromU32s(m->missed());
      out.count = m->count();
      return Body(std::move(out));
    }
    case w::Body::PartitionKeysRequest: {
      const auto* m = env->body_as_PartitionKeysRequest();
      PartitionKeysRequest out;
      out.partitions = FromU32s(m->partitions());
      out.bucket = std::string(View(m->bucket()));
      out.prefix = std::string(View(m->prefix()));
      out.after = std::string(View(m->after()));
      out.limit = m->limit();
      out.count_only = m->count_only();
      if (out.partitions.size() > kMaxListPartitions) {
        return Status::InvalidArgument("PartitionKeysRequest names too many partitions");
      }
      for (Status s : {CheckBucket(out.bucket), CheckListBound(out.prefix, "prefix"),
                       CheckListBound(out.after, "cursor"), CheckListLimit(out.limit)}) {
        if (!s.ok()) return s;
      }
      return Body(std::move(out));
    }
    case w::Body::PartitionKeysReply: {
      const auto* m = env->body_as_PartitionKeysReply();
      PartitionKeysReply out;
      out.status = FromWire(m->code(), m->message());
      auto keys = DecodeKeys(m->keys());
      if (!keys.ok()) return keys.status();
      out.keys = std::move(keys).value();
      out.truncated = m->truncated();
      out.count = m->count();
      return Body(std::move(out));
    }
    case w::Body::AuthRequest: {
      const auto* m = env->body_as_AuthRequest();
      return Body(AuthRequest{std::string(View(m->user())), std::string(View(m->password()))});
    }
    case w::Body::NONE:
      return Status::InvalidArgument("envelope has no message");
  }
  return Status::InvalidArgument(
      fmt::format("unknown message type {}", static_cast<int>(env->body_type())));
}

}  // namespace

namespace {

void BuildEnvelope(fb::FlatBufferBuilder& b, const Envelope& env) {
  auto [type, body] = std::visit(BodyEncoder{b}, env.body);
  auto from = env.from.empty() ? fb::Offset<fb::String>() : b.CreateString(env.from);
  auto cluster = env.cluster.empty() ? fb::Offset<fb::String>() : b.CreateString(env.cluster);
  auto root = w::CreateEnvelope(b, env.request_id, from, cluster, type, body);
  w::FinishEnvelopeBuffer(b, root);
}

}  // namespace

std::string EncodeEnvelope(const Envelope& env) {
  fb::FlatBufferBuilder b(256 + (std::holds_alternative<PutRequest>(env.body)
                                     ? std::get<PutRequest>(env.body).value.size()
                                     : 0));
  BuildEnvelope(b, env);
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Result<Envelope> DecodeEnvelope(std::string_view raw) {
  AlignedBytes aligned(raw);
  std::string_view bytes(reinterpret_cast<const char*>(aligned.data()), aligned.size());
  fb::Verifier verifier(aligned.data(), aligned.size(),
                        /*max_depth=*/64, /*max_tables=*/10'000'000);
  if (!w::VerifyEnvelopeBuffer(verifier)) {
    return Status::InvalidArgument(
        fmt::format("malformed frame: {} bytes that are not a ringkv envelope", bytes.size()));
  }
  const w::Envelope* fe = w::GetEnvelope(bytes.data());
  auto body = DecodeBody(fe);
  if (!body.ok()) return body.status();
  Envelope env;
  env.request_id = fe->request_id();
  env.from = std::string(View(fe->from()));
  env.cluster = std::string(View(fe->cluster()));
  env.body = std::move(body).value();
  return env;
}

void AppendFrame(const Envelope& env, std::string* out) {
  // Built in a builder kept per thread (its buffer is reused, not allocated
  // per message) and copied once, straight into the output.
  thread_local fb::FlatBufferBuilder b(1024);
  b.Clear();
  BuildEnvelope(b, env);
  uint32_t len = b.GetSize();
  char prefix[4] = {static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
                    static_cast<char>((len >> 16) & 0xff), static_cast<char>((len >> 24) & 0xff)};
  out->append(prefix, 4);
  out->append(reinterpret_cast<const char*>(b.GetBufferPointer()), len);
  // A builder that grew for one large message does not keep the memory.
  if (len > (1u << 20)) b.Reset();
}

namespace {
// Chunks are allocated at these sizes (one less for the string's NUL), which
// allocators serve without rounding up, so memory() is what they take: a
// small first chunk for the usual small frame, full-size ones after it.
constexpr size_t kSmallChunkBytes = 4 * 1024;
constexpr size_t kFrameChunkBytes = 64 * 1024;
}  // namespace

void FrameReader::Append(std::string_view data) {
  buffered_ += data.size();
  while (!data.empty()) {
    if (chunks_.empty() || chunks_.back().size() == chunks_.back().capacity()) {
      size_t cap = chunks_.empty() && data.size() < kSmallChunkBytes ? kSmallChunkBytes : kFrameChunkBytes;
      chunks_.emplace_back();
      chunks_.back().reserve(cap - 1);
      capacity_ += chunks_.back().capacity() + 1;
    }
    std::string& tail = chunks_.back();
    size_t n = std::min(data.size(), tail.capacity() - tail.size());
    tail.append(data.substr(0, n));
    data.remove_prefix(n);
  }
}

void FrameReader::CopyOut(size_t skip, size_t n, char* out) const {
  size_t offset = head_ + skip;
  for (const std::string& c : chunks_) {
    if (n == 0) return;
    if (offset >= c.size()) {
      offset -= c.size();
      continue;
    }
    size_t take = std::min(n, c.size() - offset);
    std::memcpy(out, c.data() + offset, take);
    out += take;
    n -= take;
    offset = 0;
  }
}

void FrameReader::Consume(size_t n) {
  buffered_ -= n;
  while (n > 0 && !chunks_.empty()) {
    size_t left = chunks_.front().size() - head_;
    if (n < left) {
      head_ += n;
      return;
    }
    n -= left;
    capacity_ -= chunks_.front().capacity() + 1;
    chunks_.pop_front();
    head_ = 0;
  }
}

std::string FrameReader::Peek(size_t n) const {
  std::string out(std::min(n, buffered_), '\0');
  CopyOut(0, out.size(), out.data());
  return out;
}

int FrameReader::Next(std::string* frame) {
  if (buffered_ < 4) return 0;
  unsigned char p[4];
  CopyOut(0, 4, reinterpret_cast<char*>(p));
  uint64_t len = uint64_t{p[0]} | (uint64_t{p[1]} << 8) | (uint64_t{p[2]} << 16) |
                 (uint64_t{p[3]} << 24);
  if (len > max_frame_bytes_) {
    oversize_length_ = len;
    return -1;
  }
  if (buffered_ - 4 < len) return 0;
  const std::string& first = chunks_.front();
  if (first.size() - head_ >= 4 + len) {
    frame->assign(first.data() + head_ + 4, len);  // the usual case: one chunk
  } else {
    frame->resize(len);
    CopyOut(4, len, frame->data());
  }
  Consume(4 + len);
  return 1;
}

std::string EncodeStoredObject(std::string_view key, const DvvSet& object) {
  std::string out;
  AppendStoredObject(key, object, &out);
  return out;
}

void AppendStoredObject(std::string_view key, const DvvSet& object, std::string* out) {
  // A builder kept per thread, as AppendFrame's.
  thread_local fb::FlatBufferBuilder b(1024);
  b.Clear();
  auto k = Bytes(b, key);
  auto obj = EncodeObject(b, object);
  b.Finish(w::CreateStoredObject(b, k, obj));
  out->push_back(kStoredObjectFormat);
  out->append(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  if (b.GetSize() > (1u << 20)) b.Reset();
}

Result<DvvSet> DecodeStoredObject(std::string_view bytes, std::string* key) {
  if (bytes.empty() || bytes[0] != kStoredObjectFormat) {
    return Status::Corruption("stored object has an unknown format byte");
  }
  AlignedBytes aligned(bytes.substr(1));
  fb::Verifier verifier(aligned.data(), aligned.size());
  if (!verifier.VerifyBuffer<w::StoredObject>(nullptr)) {
    return Status::Corruption("stored object fails verification");
  }
  const auto* so = fb::GetRoot<w::StoredObject>(aligned.data());
  if (key != nullptr) *key = std::string(View(so->key()));
  auto obj = DecodeObject(so->object());
  if (!obj.ok()) return Status::Corruption(obj.status().message());
  return obj;
}

std::string EncodeContext(const VersionVector& clock) {
  fb::FlatBufferBuilder b(64);
  auto entries = EncodeClock(b, clock);
  b.Finish(w::CreateContext(b, entries));
  std::string out(1, kContextFormat);
  out.append(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  return out;
}

Result<VersionVector> DecodeContext(std::string_view bytes) {
  VersionVector clock;
  if (bytes.empty()) return clock;
  if (bytes[0] != kContextFormat) {
    return Status::InvalidArgument("context is not one that ringkv handed out");
  }
  AlignedBytes aligned(bytes.substr(1));
  fb::Verifier verifier(aligned.data(), aligned.size());
  if (!verifier.VerifyBuffer<w::Context>(nullptr)) {
    return Status::InvalidArgument("context is malformed");
  }
  const auto* ctx = fb::GetRoot<w::Context>(aligned.data());
  Status s = DecodeClock(ctx->clock(), &clock);
  if (!s.ok()) return Status::InvalidArgument("context is malformed: " + s.message());
  return clock;
}

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string Base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i + 1 == data.size()) {
    uint32_t v = uint8_t(data[i]) << 16;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return Status::InvalidArgument("not base64: wrong length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = val(c);
    if (v < 0) return Status::InvalidArgument(fmt::format("not base64: character '{}'", c));
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

bool IsPrintableUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n') return false;
      if (c == 0x7f) return false;
      ++i;
      continue;
    }
    int extra;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

bool IsPeerRequest(const Body& body) {
  return std::holds_alternative<ReplicaRead>(body) || std::holds_alternative<ReplicaWrite>(body) ||
         std::holds_alternative<PutRequest>(body) || std::holds_alternative<GossipPush>(body) ||
         std::holds_alternative<HandoffRequest>(body) ||
         std::holds_alternative<AaeHashesRequest>(body) ||
         std::holds_alternative<AaeSegmentRequest>(body) ||
         std::holds_alternative<ReapCheck>(body) || std::holds_alternative<Reap>(body) ||
         std::holds_alternative<DataTypeRequest>(body) ||
         std::holds_alternative<PartitionKeysRequest>(body);
}

const char* MemberStatusName(MemberStatus s) {
  switch (s) {
    case MemberStatus::kJoining: return "joining";
    case MemberStatus::kUp: return "up";
    case MemberStatus::kLeaving: return "leaving";
    case MemberStatus::kLeft: return "left";
    case MemberStatus::kRemoved: return "removed";
  }
  return "unknown";
}

const char* BodyName(const Body& body) {
  static constexpr const char* kNames[] = {
      "GetRequest",       "PutRequest",      "Reply",          "InfoRequest",
      "InfoReply",        "ReplicaRead",     "ReplicaReadReply", "ReplicaWrite",
      "ReplicaWriteAck",  "GossipPush",      "GossipAck",      "HandoffRequest",
      "HandoffBatch",     "AaeHashesRequest", "AaeHashesReply", "AaeSegmentRequest",
      "AaeSegmentReply",  "ReapCheck",       "ReapCheckReply", "Reap",
      "ReapAck",          "DataTypeRequest", "DataTypeReply",  "ListKeysRequest",
      "ListKeysReply",    "PartitionKeysRequest", "PartitionKeysReply", "AuthRequest"};
  static_assert(std::size(kNames) == std::variant_size_v<Body>);
  return kNames[body.index()];
}

}  // namespace ringkv
