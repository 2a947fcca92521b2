// libFuzzer target: the wire decoder (core/codec.h). Every byte a peer or a
// client sends goes through FrameReader and DecodeEnvelope; nothing may
// crash, hang or read out of bounds, and whatever decodes must encode and
// decode again to the same bytes.
//
// The input is used twice: as a raw byte stream (split into reads at
// points the input picks), and as the recipe of a well-formed envelope
// that is then corrupted at a few input-chosen bytes, which reaches the
// decoder's checks behind the FlatBuffers verifier without a seed corpus.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/codec.h"
#include "core/limits.h"

using namespace ringkv;

namespace {

// Reads input bytes as needed; zeros once it runs out.
struct Input {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  uint8_t Byte() { return pos < size ? data[pos++] : 0; }
  uint32_t U32() { return Byte() | (Byte() << 8) | (Byte() << 16) | (uint32_t{Byte()} << 24); }
  std::string Bytes(size_t max) {
    size_t n = std::min<size_t>(Byte() % (max + 1), size - std::min(pos, size));
    std::string out(reinterpret_cast<const char*>(data + pos), n);
    pos += n;
    return out;
  }
};

void Check(std::string_view bytes) {
  auto env = DecodeEnvelope(bytes);
  if (!env.ok()) return;
  std::string again = EncodeEnvelope(*env);
  auto back = DecodeEnvelope(again);
  if (!back.ok() || EncodeEnvelope(*back) != again) __builtin_trap();
}

DvvSet Object(Input& in) {
  VersionVector clock;
  std::vector<Sibling> siblings;
  int n = in.Byte() % 3;
  for (int i = 0; i < n; ++i) {
    Sibling s;
    s.dot = Dot{"n" + std::to_string(in.Byte() % 4), uint64_t{in.Byte()} + 1};
    s.value = in.Bytes(16);
    s.tombstone = in.Byte() & 1;
    if (clock.Get(s.dot.actor) < s.dot.counter) clock.Set(s.dot.actor, s.dot.counter);
    siblings.push_back(std::move(s));
  }
  DvvSet out;
  DvvSet::FromParts(std::move(clock), std::move(siblings), &out);
  return out;
}

Envelope Recipe(Input& in) {
  Envelope env;
  env.request_id = in.U32();
  if (in.Byte() & 1) {
    env.from = "n" + std::to_string(in.Byte() % 8);
    env.cluster = "ringkv";
  }
  std::string key = in.Bytes(8);
  if (key.empty()) key = "k";
  switch (in.Byte() % 9) {
    case 0: env.body = GetRequest{key, {}}; break;
    case 1: {
      PutRequest p;
      p.key = key;
      p.value = in.Bytes(32);
      p.context = in.Bytes(16);
      env.body = p;
      break;
    }
    case 2: env.body = Reply{Status::OK(), Object(in), std::nullopt}; break;
    case 3: env.body = InfoRequest{"status", in.Bytes(8)}; break;
    case 4: env.body = ReplicaWrite{key, Object(in), ""}; break;
    case 5: {
      GossipPush g;
      g.ring_size = 64;
      g.members.push_back(MemberState{"n1", "127.0.0.1:1", in.Byte(), in.Byte(), MemberStatus::kUp, in.Bytes(8)});
      env.body = g;
      break;
    }
    case 6: env.body = AaeHashesReply{Status::OK(), in.Byte(), in.Byte(), {in.Byte()}, in.Bytes(40)}; break;
    case 7: env.body = ReapCheck{{KeyedObject{key, Object(in)}}}; break;
    default: env.body = AuthRequest{in.Bytes(8), in.Bytes(8)}; break;
  }
  return env;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  // 1. A stream of frames, delivered in pieces.
  FrameReader reader(1 << 16);
  size_t at = 0;
  std::string frame;
  while (at < size) {
    size_t piece = 1 + data[at] % 97;
    reader.Append(all.substr(at, piece));
    at += piece;
    int r;
    while ((r = reader.Next(&frame)) == 1) Check(frame);
    if (r < 0) break;
  }
  // 2. The bytes as one envelope.
  Check(all);
  // 3. A well-formed envelope, corrupted.
  Input in{data, size};
  std::string bytes = EncodeEnvelope(Recipe(in));
  for (int i = 0, flips = in.Byte() % 4; i < flips && !bytes.empty(); ++i) {
    bytes[in.U32() % bytes.size()] ^= static_cast<char>(in.Byte() | 1);
  }
  Check(bytes);
  return 0;
}
