#include "resp/parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace ringkv {

namespace {

// A "*N" or "$N" line is at most a sign and 19 digits; anything much longer
// without a CRLF is garbage, refused before it is buffered further.
constexpr size_t kMaxHeaderLine = 64;
// What an argument costs beyond its bytes (a std::string in a vector).
constexpr uint64_t kArgOverhead = 32;

// Strict decimal: optional '-', digits only, fits int64.
bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out);
  return ec == std::errc() && ptr == end && s.front() != '+';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsInlineSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0'; }

// A printable excerpt of a client's bytes for an error message.
std::string Printable(char c) {
  if (std::isprint(static_cast<unsigned char>(c))) return std::string(1, c);
  return fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
}

}  // namespace

bool SplitInlineArgs(std::string_view line, std::vector<std::string>* args) {
  args->clear();
  size_t p = 0;
  const size_t end = line.size();
  while (true) {
    while (p < end && IsInlineSpace(line[p])) ++p;
    if (p == end) return true;
    std::string word;
    bool in_double = false, in_single = false;
    while (true) {
      if (in_double) {
        if (p == end) return false;  // unbalanced quotes
        char c = line[p];
        if (c == '\\' && p + 3 < end && line[p + 1] == 'x' && HexValue(line[p + 2]) >= 0 &&
            HexValue(line[p + 3]) >= 0) {
          word += static_cast<char>(HexValue(line[p + 2]) * 16 + HexValue(line[p + 3]));
          p += 4;
        } else if (c == '\\' && p + 1 < end) {
          char e = line[p + 1];
          switch (e) {
            case 'n':
              word += '\n';
              break;
            case 'r':
              word += '\r';
              break;
            case 't':
              word += '\t';
              break;
            case 'b':
              word += '\b';
              break;
            case 'a':
              word += '\a';
              break;
            default:
              word += e;
              break;
          }
          p += 2;
        } else if (c == '"') {
          // The closing quote must end the word.
          if (p + 1 < end && !IsInlineSpace(line[p + 1])) return false;
          ++p;
          break;
        } else {
          word += c;
          ++p;
        }
      } else if (in_single) {
        if (p == end) return false;
        char c = line[p];
        if (c == '\\' && p + 1 < end && line[p + 1] == '\'') {
          word += '\'';
          p += 2;
        } else if (c == '\'') {
          if (p + 1 < end && !IsInlineSpace(line[p + 1])) return false;
          ++p;
          break;
        } else {
          word += c;
          ++p;
        }
      } else {
        if (p == end || IsInlineSpace(line[p])) break;
        char c = line[p++];
        if (c == '"') {
          in_double = true;
        } else if (c == '\'') {
          in_single = true;
        } else {
          word += c;
        }
      }
    }
    args->push_back(std::move(word));
  }
}

void RespParser::Append(std::string_view data) {
  if (!failed_.empty()) return;  // nothing after a protocol error is read
  if (state_ == State::kSkip && buffered() == 0) {
    // Discard the skipped argument's bytes as they arrive, unbuffered.
    uint64_t n = std::min<uint64_t>(skip_left_, data.size());
    skip_left_ -= n;
    data.remove_prefix(n);
  }
  buffer_.append(data);
}

RespParser::Result RespParser::Fail(std::string why, std::string* error) {
  failed_ = "Protocol error: " + why;
  *error = failed_;
  buffer_.clear();
  buffer_.shrink_to_fit();
  pos_ = 0;
  current_ = RespCommand{};
  command_bytes_ = 0;
  return Result::kError;
}

bool RespParser::ReadLine(std::string_view* line) {
  std::string_view rest(buffer_.data() + pos_, buffer_.size() - pos_);
  size_t crlf = rest.find("\r\n");
  if (crlf == std::string_view::npos) return false;
  *line = rest.substr(0, crlf);
  pos_ += crlf + 2;
  return true;
}

void RespParser::Compact() {
  if (pos_ == buffer_.size()) {
    buffer_.clear();
    // A large argument's buffer is not kept for the rest of the connection.
    if (buffer_.capacity() > 64 * 1024) buffer_.shrink_to_fit();
    pos_ = 0;
  } else if (pos_ > 64 * 1024 && pos_ * 2 > buffer_.size()) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
}

RespParser::Result RespParser::ParseInline(RespCommand* cmd, std::string* error) {
  std::string_view rest(buffer_.data() + pos_, buffer_.size() - pos_);
  size_t nl = rest.find('\n', inline_scan_);
  if (nl == std::string_view::npos) {
    inline_scan_ = rest.size();
    if (rest.size() > limits_.max_inline_bytes) {
      return Fail(fmt::format("too big inline request (over {} bytes without a newline)",
                              limits_.max_inline_bytes),
                  error);
    }
    return Result::kNeedMore;
  }
  if (nl > limits_.max_inline_bytes) {
    return Fail(fmt::format("too big inline request ({} bytes; the limit is {})", nl,
                            limits_.max_inline_bytes),
                error);
  }
  std::string_view line = rest.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos_ += nl + 1;
  inline_scan_ = 0;
  RespCommand out;
  if (!SplitInlineArgs(line, &out.args)) return Fail("unbalanced quotes in request", error);
  if (out.args.size() > limits_.max_args) {
    return Fail(fmt::format("{} arguments; the limit is {}", out.args.size(), limits_.max_args),
                error);
  }
  if (out.args.empty()) return Result::kNeedMore;  // an empty line: nothing to run
  *cmd = std::move(out);
  return Result::kCommand;
}

RespParser::Result RespParser::Next(RespCommand* cmd, std::string* error) {
  if (!failed_.empty()) {
    *error = failed_;
    return Result::kError;
  }
  while (true) {
    if (state_ != State::kSkip && pos_ == buffer_.size()) {
      Compact();
      return Result::kNeedMore;
    }
    switch (state_) {
      case State::kStart: {
        if (buffer_[pos_] != '*') {
          size_t before = pos_;
          Result r = ParseInline(cmd, error);
          // An empty inline line consumed bytes but gave no command: go on.
          if (r == Result::kNeedMore && pos_ != before) continue;
          if (r == Result::kNeedMore) Compact();
          return r;
        }
        std::string_view line;
        if (!ReadLine(&line)) {
          if (buffered() > kMaxHeaderLine) return Fail("too big multibulk count string", error);
          return Result::kNeedMore;
        }
        int64_t count = 0;
        if (!ParseInt(line.substr(1), &count)) return Fail("invalid multibulk length", error);
        if (count <= 0) continue;  // "*0" and "*-1" are no command, as in Redis
        if (static_cast<uint64_t>(count) > limits_.max_args) {
          return Fail(
              fmt::format("command of {} arguments; the limit is {}", count, limits_.max_args),
              error);
        }
        current_ = RespCommand{};
        command_bytes_ = 0;
        current_.args.reserve(std::min<int64_t>(count, 1024));
        args_left_ = count;
        state_ = State::kBulkHeader;
        break;
      }
      case State::kBulkHeader: {
        if (buffer_[pos_] != '$') {
          return Fail(fmt::format("expected '$', got '{}'", Printable(buffer_[pos_])), error);
        }
        std::string_view line;
        if (!ReadLine(&line)) {
          if (buffered() > kMaxHeaderLine) return Fail("too big bulk count string", error);
          return Result::kNeedMore;
        }
        int64_t len = 0;
        if (!ParseInt(line.substr(1), &len) || len < 0) return Fail("invalid bulk length", error);
        if (static_cast<uint64_t>(len) > limits_.max_bulk_header_bytes) {
          return Fail(fmt::format("bulk string of {} bytes; the limit is {}", len,
                                  limits_.max_bulk_header_bytes),
                      error);
        }
        if (static_cast<uint64_t>(len) <= limits_.max_bulk_bytes &&
            command_bytes_ + static_cast<uint64_t>(len) + kArgOverhead > limits_.max_command_bytes) {
          return Fail(fmt::format("command of over {} bytes; the limit is {}",
                                  command_bytes_ + static_cast<uint64_t>(len),
                                  limits_.max_command_bytes),
                      error);
        }
        if (static_cast<uint64_t>(len) > limits_.max_bulk_bytes) {
          if (current_.error.empty()) {
            current_.error = fmt::format("ERR argument {} is {} bytes; the limit is {}",
                                         current_.args.size() + 1, len, limits_.max_bulk_bytes);
          }
          skip_left_ = static_cast<uint64_t>(len) + 2;
          state_ = State::kSkip;
        } else {
          bulk_len_ = static_cast<uint64_t>(len);
          state_ = State::kBulkBody;
        }
        break;
      }
      case State::kBulkBody: {
        if (buffered() < bulk_len_ + 2) {
          Compact();
          return Result::kNeedMore;
        }
        if (buffer_[pos_ + bulk_len_] != '\r' || buffer_[pos_ + bulk_len_ + 1] != '\n') {
          return Fail("bulk string not followed by CRLF", error);
        }
        current_.args.emplace_back(buffer_.data() + pos_, bulk_len_);
        command_bytes_ += bulk_len_ + kArgOverhead;
        pos_ += bulk_len_ + 2;
        --args_left_;
        state_ = State::kBulkHeader;
        break;
      }
      case State::kSkip: {
        uint64_t n = std::min<uint64_t>(skip_left_, buffered());
        pos_ += n;
        skip_left_ -= n;
        if (skip_left_ > 0) {
          Compact();
          return Result::kNeedMore;
        }
        current_.args.emplace_back();  // keeps the argument count right
        command_bytes_ += kArgOverhead;
        --args_left_;
        state_ = State::kBulkHeader;
        break;
      }
    }
    if (state_ == State::kBulkHeader && args_left_ == 0) {
      *cmd = std::move(current_);
      current_ = RespCommand{};
      command_bytes_ = 0;
      state_ = State::kStart;
      return Result::kCommand;
    }
  }
}

// --- encoding --------------------------------------------------------------------

namespace {

void AppendLine(std::string* out, char type, std::string_view text) {
  out->push_back(type);
  size_t start = out->size();
  out->append(text);
  for (size_t i = start; i < out->size(); ++i) {
    if ((*out)[i] == '\r' || (*out)[i] == '\n') (*out)[i] = ' ';
  }
  out->append("\r\n");
}

}  // namespace

void AppendSimpleString(std::string* out, std::string_view text) { AppendLine(out, '+', text); }

void AppendError(std::string* out, std::string_view text) { AppendLine(out, '-', text); }

void AppendInteger(std::string* out, int64_t value) {
  fmt::format_to(std::back_inserter(*out), ":{}\r\n", value);
}

void AppendBulkString(std::string* out, std::string_view data) {
  fmt::format_to(std::back_inserter(*out), "${}\r\n", data.size());
  out->append(data);
  out->append("\r\n");
}

void AppendNil(std::string* out) { out->append("$-1\r\n"); }

void AppendArrayHeader(std::string* out, size_t count) {
  fmt::format_to(std::back_inserter(*out), "*{}\r\n", count);
}

}  // namespace ringkv
