// OutputQueue: the bytes a connection has yet to write, as a queue of
// chunks.
//
// Promises (what makes a pipelining client cost linear time):
//  - Appending copies only the new bytes: small appends go into the tail
//    chunk while it is under kCoalesceBytes, anything larger becomes (or is
//    moved in as) a chunk of its own. What is queued is never copied again.
//  - Consuming n written bytes drops whole chunks and moves an offset into
//    the first one; nothing is shifted.
//  - bytes() is exact and O(1), for the connection's output limit.
// Single-threaded, like the loop that owns it.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace ringkv {

class OutputQueue {
 public:
  // Small appends share a chunk up to this size.
  static constexpr size_t kCoalesceBytes = 64 * 1024;

  void Append(std::string_view bytes);
  // Takes the string's buffer as a chunk when it is large (no copy).
  void Append(std::string&& bytes);
  // Lets `fill` append to a chunk directly (e.g. AppendFrame(env, out)).
  template <typename Fill>
  void AppendWith(Fill&& fill) {
    std::string* tail = Tail();
    size_t before = tail->size();
    fill(tail);
    bytes_ += tail->size() - before;
  }

  size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }
  size_t chunks() const { return chunks_.size(); }

  // Up to max_chunks views of the queued bytes, front first.
  void Peek(std::vector<std::string_view>* out, size_t max_chunks) const;
  // The unwritten part of the first chunk (empty when the queue is).
  std::string_view Front() const;
  // Drops the first n bytes (n <= bytes()).
  void Consume(size_t n);
  // Moves every chunk out (to hand them to an asynchronous write); the first
  // one starts at *first_offset. The queue is empty afterwards.
  std::vector<std::string> TakeAll(size_t* first_offset);
  void Clear();

 private:
  std::string* Tail();

  std::deque<std::string> chunks_;
  size_t offset_ = 0;  // bytes of chunks_.front() already written
  size_t bytes_ = 0;   // queued, not yet written
};

}  // namespace ringkv
