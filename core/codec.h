// Encoding of messages, stored objects and causal contexts as FlatBuffers
// (proto/ringkv.fbs), and the length-prefixed framing of the wire.
//
// Every decode runs the FlatBuffers verifier first and then checks the
// semantic rules (required fields, clock covers dots, key size), so a
// Result that is ok() is safe to use; garbage yields InvalidArgument or
// Corruption, never a crash.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "core/dvv.h"
#include "core/message.h"
#include "core/status.h"

namespace ringkv {

// Envelope <-> bytes (no length prefix).
std::string EncodeEnvelope(const Envelope& env);
Result<Envelope> DecodeEnvelope(std::string_view bytes);

// Appends a 4-byte little-endian length and the encoded envelope.
void AppendFrame(const Envelope& env, std::string* out);

// Splits a byte stream into frames. Feed it what arrives; Next() yields each
// complete frame. A length above max_frame_bytes is an error after which the
// stream cannot be resynchronised (the caller closes the connection).
//
// Bytes are kept in chunks that are filled before the next is allocated (4
// KiB for the first, 64 KiB after), so a large frame that arrives slowly
// costs its size in memory, rounded up to a chunk: no buffer that doubles
// and copies itself as it grows. memory() is what the chunks take (a node's
// memory budget counts it).
class FrameReader {
 public:
  explicit FrameReader(size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  void Append(std::string_view data);
  // Returns 1 and sets *frame when a complete frame is buffered, 0 when more
  // bytes are needed, -1 when the next frame's length is over the limit.
  int Next(std::string* frame);
  // The length that broke the limit, for the error message.
  uint64_t oversize_length() const { return oversize_length_; }
  size_t buffered() const { return buffered_; }
  // Memory the buffered bytes take (the chunks' capacity).
  size_t memory() const { return capacity_; }
  // Up to n of the bytes buffered and not yet returned as frames.
  std::string Peek(size_t n) const;
  // Changes the limit for the frames not yet returned (a connection's limit
  // rises once it has authenticated).
  void set_max_frame_bytes(size_t max) { max_frame_bytes_ = max; }
  size_t max_frame_bytes() const { return max_frame_bytes_; }

 private:
  // Copies n buffered bytes, starting `skip` bytes in, to out.
  void CopyOut(size_t skip, size_t n, char* out) const;
  void Consume(size_t n);

  size_t max_frame_bytes_;
  std::deque<std::string> chunks_;
  size_t head_ = 0;      // bytes of chunks_.front() already consumed
  size_t buffered_ = 0;  // bytes not yet consumed
  size_t capacity_ = 0;  // bytes the chunks take
  uint64_t oversize_length_ = 0;
};

// Stored objects (key kept beside the object so a scan can rebuild keys).
std::string EncodeStoredObject(std::string_view key, const DvvSet& object);
// The same bytes, appended to *out (a buffer the caller reuses).
void AppendStoredObject(std::string_view key, const DvvSet& object, std::string* out);
Result<DvvSet> DecodeStoredObject(std::string_view bytes, std::string* key = nullptr);

// Causal contexts as handed to clients: opaque bytes.
std::string EncodeContext(const VersionVector& clock);
Result<VersionVector> DecodeContext(std::string_view bytes);

// Base64 (standard alphabet, padded) for printing contexts and non-UTF-8
// values.
std::string Base64Encode(std::string_view data);
Result<std::string> Base64Decode(std::string_view text);

// True iff data is valid UTF-8 with no NUL or control characters other than
// tab/newline (i.e. printable as text).
bool IsPrintableUtf8(std::string_view data);

}  // namespace ringkv
