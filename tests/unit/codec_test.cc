// The wire and disk codec: every message survives a round trip, and no byte
// string, however mangled, crashes a decoder.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/codec.h"
#include "core/histogram.h"
#include "core/limits.h"
#include "report.h"

using namespace ringkv;

namespace {

DvvSet SampleObject() {
  DvvSet o = DvvSet::Update({}, {}, "n1", "milk", false, 1000);
  o = DvvSet::Update(o, {}, "n2", std::string("\x00\xff", 2), false, 1001);
  return DvvSet::Update(o, {}, "n3", "", true, 1002);
}

DvvSet SampleTombstone() {
  DvvSet o = DvvSet::Update({}, {}, "n1", "milk", false, 1000);
  return DvvSet::Update(o, o.clock(), "n2", "", true, 1001);
}

std::vector<Body> AllBodies() {
  Quorum q{3, 2, 2, 1, 1, 500, Mode::kSloppy, true};
  MemberState m{"n1", "127.0.0.1:7101", 3, 99, MemberStatus::kLeaving, std::string("\x0f\x01", 2)};
  return {
      GetRequest{"key", q},
      PutRequest{"key", "value", true, EncodeContext(SampleObject().clock()), q, true},
      Reply{Status::Unavailable("quorum"), SampleObject(), Dot{"n2", 7}},
      InfoRequest{"preflist", "k"},
      InfoReply{Status::OK(), "{\"a\":1}"},
      ReplicaRead{"k", "n2"},
      ReplicaReadReply{Status::NotFound("x"), std::nullopt},
      ReplicaWrite{"k", SampleObject(), "n4"},
      ReplicaWriteAck{Status::IOError("disk")},
      GossipPush{64, 3, {m, m}},
      GossipAck{64, 3, {m}},
      HandoffRequest{5, "cursor", 100, 1 << 20},
      HandoffBatch{Status::OK(), 5, {{"a", SampleObject()}, {"b", SampleObject()}}, "next", true},
      AaeHashesRequest{7, 2, {1, 2, 3}},
      AaeHashesReply{Status::OK(), 7, 2, {1, 2}, std::string(64, 'h')},
      AaeSegmentRequest{7, {9, 10}},
      AaeSegmentReply{Status::OK(), 7, {{9, "k", std::string(32, 'd')}}},
      ReapCheck{{{"a", SampleTombstone()}, {"b", SampleTombstone()}}},
      ReapCheckReply{Status::OK(), {ReapVerdict::kOk, ReapVerdict::kOkHolding,
                                    ReapVerdict::kNewer, ReapVerdict::kBusy}},
      Reap{{{"a", SampleTombstone()}}},
      ReapAck{Status::OK(), 3},
      GetRequest{"key", q, "users"},
      PutRequest{"key", "v", false, "", q, false, "users", 60000, true, true, false},
      Reply{Status::OK(), SampleObject(), std::nullopt, 25},
      GossipPush{64, 3, {m}, {BucketEntry{"users", 1234, "n2", {3, 1, 2, 0, 1, Mode::kStrict, true, 50, 10, 3600}}}},
      GossipAck{64, 3, {m}, {BucketEntry{"b", 1, "n1", {}}}},
      ListKeysRequest{"users", "pre", "after", 500, false, 3000},
      ListKeysReply{Status::OK(), {"a", "b", std::string("\x00\x01", 2)}, true, {3, 7}, 0},
      PartitionKeysRequest{{1, 2, 3}, "users", "p", "a", 100, true},
      PartitionKeysReply{Status::OK(), {"k1", "k2"}, true, 12},
  };
}

}  // namespace

TEST_CASE("codec: every message type survives a round trip unchanged") {
  for (const Body& body : AllBodies()) {
    Envelope env{42, "n9", "prod", body};
    auto decoded = DecodeEnvelope(EncodeEnvelope(env));
    REQUIRE_MESSAGE(decoded.ok(), BodyName(body) << ": " << decoded.status().ToString());
    CHECK(decoded->request_id == 42);
    CHECK(decoded->from == "n9");
    CHECK(decoded->cluster == "prod");
    CHECK(decoded->body.index() == body.index());
    // Re-encoding the decoded message gives the same bytes.
    CHECK(EncodeEnvelope(*decoded) == EncodeEnvelope(env));
  }
}

TEST_CASE("codec: new request fields survive, and bad buckets and listings are refused") {
  PutRequest put{"key", "v", false, "", {}, false, "users", 60000, true, true, false};
  auto back = DecodeEnvelope(EncodeEnvelope(Envelope{1, {}, {}, put}));
  REQUIRE(back.ok());
  const auto& p = std::get<PutRequest>(back->body);
  CHECK(p.bucket == "users");
  CHECK(p.ttl_ms == 60000);
  CHECK(p.persist);
  CHECK(p.if_absent);
  CHECK_FALSE(p.if_unchanged);
  auto refused = [](Body body) { return !DecodeEnvelope(EncodeEnvelope(Envelope{1, {}, {}, body})).ok(); };
  CHECK(refused(GetRequest{"k", {}, "no spaces"}));
  CHECK(refused(GetRequest{"k", {}, std::string(65, 'b')}));
  CHECK(refused(PutRequest{"k", "v", false, "", {}, false, "bad/name"}));
  CHECK(refused(ListKeysRequest{"", "", "", 1001, false, 0}));
  CHECK(refused(ListKeysRequest{"", std::string(kMaxKeyBytes + 1, 'p'), "", 10, false, 0}));
  CHECK(refused(GossipPush{64, 3, {}, {BucketEntry{"bad name", 1, "n1", {}}}}));
  std::vector<BucketEntry> many(kMaxBuckets + 1, BucketEntry{"b", 1, "n1", {}});
  CHECK(refused(GossipAck{64, 3, {}, many}));
  // A live value is no reaper's business; an expiring one may be.
  CHECK(refused(ReapCheck{{{"a", SampleObject()}}}));
  Sibling expiring;
  expiring.value = "v";
  expiring.timestamp_ms = 1000;
  expiring.expires_ms = 2000;
  DvvSet ttl = DvvSet::Update({}, {}, "n1", expiring);
  CHECK_FALSE(refused(ReapCheck{{{"a", ttl}}}));
  // Keys between replicas are internal keys: a full-size user key in a bucket.
  std::string internal = std::string(1, '\0') + "users" + std::string(1, '\0') + std::string(kMaxKeyBytes, 'k');
  CHECK_FALSE(refused(ReplicaRead{internal, ""}));
  CHECK(refused(GetRequest{std::string(kMaxKeyBytes + 1, 'k'), {}, "users"}));
}

TEST_CASE("codec: stored objects and contexts round-trip and reject garbage") {
  DvvSet o = SampleObject();
  std::string key;
  auto back = DecodeStoredObject(EncodeStoredObject("the-key", o), &key);
  REQUIRE(back.ok());
  CHECK(*back == o);
  CHECK(key == "the-key");
  CHECK(!DecodeStoredObject("").ok());
  CHECK(!DecodeStoredObject("\x01garbage").ok());
  auto ctx = DecodeContext(EncodeContext(o.clock()));
  REQUIRE(ctx.ok());
  CHECK(*ctx == o.clock());
  CHECK(DecodeContext("")->empty());
  CHECK(DecodeContext("\x02xx").status().IsInvalidArgument());
}

TEST_CASE("codec: random and mutated frames never crash the decoder") {
  std::mt19937_64 rng(1234);
  std::vector<std::string> valid;
  for (const Body& body : AllBodies()) valid.push_back(EncodeEnvelope(Envelope{1, "n1", "c", body}));
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng() % 300);
      for (auto& c : bytes) c = static_cast<char>(rng());
    } else {
      bytes = valid[rng() % valid.size()];
      int flips = 1 + rng() % 8;
      for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
      if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
    }
    auto r = DecodeEnvelope(bytes);  // must not crash (ASan/UBSan builds check more)
    if (r.ok()) {
      ++accepted;
      EncodeEnvelope(*r);  // whatever decoded is usable
    }
  }
  REPORT("codec: 20000 mangled frames decoded without a crash; " << accepted << " still valid");
}

TEST_CASE("codec: frames split at any byte boundary are reassembled; oversize is refused") {
  std::string stream;
  for (const Body& body : AllBodies()) AppendFrame(Envelope{3, {}, {}, body}, &stream);
  for (size_t chunk : {1u, 3u, 7u, 64u, 100000u}) {
    FrameReader reader(1 << 20);
    int frames = 0;
    std::string frame;
    for (size_t pos = 0; pos < stream.size(); pos += chunk) {
      reader.Append(std::string_view(stream).substr(pos, chunk));
      while (reader.Next(&frame) == 1) {
        CHECK(DecodeEnvelope(frame).ok());
        ++frames;
      }
    }
    CHECK(frames == static_cast<int>(AllBodies().size()));
  }
  FrameReader small(16);
  small.Append(std::string("\xff\x00\x00\x00", 4));
  std::string frame;
  CHECK(small.Next(&frame) == -1);
  CHECK(small.oversize_length() == 255);
}

TEST_CASE("codec: base64 and UTF-8 checks") {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\x00\x01\xff"}) {
    CHECK(*Base64Decode(Base64Encode(s)) == s);
  }
  CHECK(Base64Encode("hello") == "aGVsbG8=");
  CHECK(!Base64Decode("a$b=").ok());
  CHECK(IsPrintableUtf8("héllo wörld"));
  CHECK(!IsPrintableUtf8(std::string("\x00", 1)));
  CHECK(!IsPrintableUtf8("\xc3"));
  CHECK(!IsPrintableUtf8("\xed\xa0\x80"));  // surrogate
}

TEST_CASE("histogram: percentiles are within 1% of the exact values") {
  Histogram h;
  std::vector<uint64_t> values;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = 1 + rng() % 1000000;
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double exact = static_cast<double>(values[static_cast<size_t>(q * values.size()) - 1]);
    double got = static_cast<double>(h.Percentile(q));
    CHECK(std::abs(got - exact) / exact < 0.01);
  }
  CHECK(h.max() == values.back());
  CHECK(h.min() == values.front());
}
