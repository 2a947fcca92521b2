#include "server/output_queue.h"

#include <algorithm>
#include <utility>

namespace ringkv {

std::string* OutputQueue::Tail() {
  if (chunks_.empty() || chunks_.back().size() >= kCoalesceBytes) {
    chunks_.emplace_back();
    chunks_.back().reserve(4096);
  }
  return &chunks_.back();
}

void OutputQueue::Append(std::string_view bytes) {
  if (bytes.empty()) return;
  if (bytes.size() >= kCoalesceBytes) {
    chunks_.emplace_back(bytes);
  } else {
    Tail()->append(bytes);
  }
  bytes_ += bytes.size();
}

void OutputQueue::Append(std::string&& bytes) {
  if (bytes.empty()) return;
  if (bytes.size() < kCoalesceBytes) {
    Append(std::string_view(bytes));
    return;
  }
  bytes_ += bytes.size();
  chunks_.push_back(std::move(bytes));
}

void OutputQueue::Peek(std::vector<std::string_view>* out, size_t max_chunks) const {
  out->clear();
  for (size_t i = 0; i < chunks_.size() && out->size() < max_chunks; ++i) {
    std::string_view v(chunks_[i]);
    if (i == 0) v.remove_prefix(offset_);
    if (!v.empty()) out->push_back(v);
  }
}

std::string_view OutputQueue::Front() const {
  if (chunks_.empty()) return {};
  return std::string_view(chunks_.front()).substr(offset_);
}

void OutputQueue::Consume(size_t n) {
  n = std::min(n, bytes_);
  bytes_ -= n;
  while (n > 0 && !chunks_.empty()) {
    size_t left = chunks_.front().size() - offset_;
    if (n < left) {
      offset_ += n;
      return;
    }
    n -= left;
    chunks_.pop_front();
    offset_ = 0;
  }
  // An empty chunk left at the front (never appended to) goes too.
  while (!chunks_.empty() && chunks_.front().size() == offset_) {
    chunks_.pop_front();
    offset_ = 0;
  }
}

std::vector<std::string> OutputQueue::TakeAll(size_t* first_offset) {
  *first_offset = offset_;
  std::vector<std::string> out;
  out.reserve(chunks_.size());
  for (auto& c : chunks_) out.push_back(std::move(c));
  Clear();
  return out;
}

void OutputQueue::Clear() {
  chunks_.clear();
  offset_ = 0;
  bytes_ = 0;
}

}  // namespace ringkv
