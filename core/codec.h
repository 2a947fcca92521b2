// Encoding of messages, stored objects and causal contexts as FlatBuffers
// (proto/ringkv.fbs), and the length-prefixed framing of the wire.
//
// Every decode runs the FlatBuffers verifier first and then checks the
// semantic rules (required fields, clock covers dots, key size), so a
// Result that is ok() is safe to use; garbage yields InvalidArgument or
// Corruption, never a crash.
#pragma once

#include <cstdint>
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
class FrameReader {
 public:
  explicit FrameReader(size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  void Append(std::string_view data) { buffer_.append(data); }
  // Returns 1 and sets *frame when a complete frame is buffered, 0 when more
  // bytes are needed, -1 when the next frame's length is over the limit.
  int Next(std::string* frame);
  // The length that broke the limit, for the error message.
  uint64_t oversize_length() const { return oversize_length_; }
  size_t buffered() const { return buffer_.size() - consumed_; }
  // The bytes buffered and not yet returned as frames.
  std::string_view peek() const {
    return std::string_view(buffer_.data() + consumed_, buffer_.size() - consumed_);
  }
  // Changes the limit for the frames not yet returned (a connection's limit
  // rises once it has authenticated).
  void set_max_frame_bytes(size_t max) { max_frame_bytes_ = max; }
  size_t max_frame_bytes() const { return max_frame_bytes_; }

 private:
  size_t max_frame_bytes_;
  std::string buffer_;
  size_t consumed_ = 0;
  uint64_t oversize_length_ = 0;
};

// Stored objects (key kept beside the object so a scan can rebuild keys).
std::string EncodeStoredObject(std::string_view key, const DvvSet& object);
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
