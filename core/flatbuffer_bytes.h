// Small helpers for reading FlatBuffers that every decoder needs: views of
// byte vectors and strings, and aligned storage for a buffer that sits at an
// odd address (after a one-byte format prefix, or inside a LevelDB block).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include <flatbuffers/flatbuffers.h>

namespace ringkv {

// FlatBuffers reads its buffer with aligned loads: copies the bytes into
// 8-byte-aligned storage when (and only when) they are misaligned.
class AlignedBytes {
 public:
  explicit AlignedBytes(std::string_view bytes) {
    if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(uint64_t) == 0) {
      view_ = bytes;
    } else {
      words_.resize((bytes.size() + 7) / 8);
      if (!bytes.empty()) std::memcpy(words_.data(), bytes.data(), bytes.size());
      view_ = std::string_view(reinterpret_cast<const char*>(words_.data()), bytes.size());
    }
  }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(view_.data()); }
  size_t size() const { return view_.size(); }

 private:
  std::vector<uint64_t> words_;
  std::string_view view_;
};

// A byte vector field holding s.
inline flatbuffers::Offset<flatbuffers::Vector<uint8_t>> Bytes(flatbuffers::FlatBufferBuilder& b,
                                                              std::string_view s) {
  return b.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// The bytes of a vector or string field; empty when the field is absent.
inline std::string_view View(const flatbuffers::Vector<uint8_t>* v) {
  if (v == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(v->data()), v->size());
}

inline std::string_view View(const flatbuffers::String* s) {
  if (s == nullptr) return {};
  return std::string_view(s->data(), s->size());
}

}  // namespace ringkv
