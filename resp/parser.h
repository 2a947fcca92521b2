// RESP2, the Redis serialization protocol: a pure, incremental command
// parser and the reply encoder. No I/O: the runtime feeds bytes in and writes
// the bytes out (see resp/session.h for what the commands do).
//
// Requests are arrays of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
// what redis-cli and redis-benchmark send) or inline commands, one line of
// space-separated words with Redis's quoting rules ("SET k \"a b\"\n", what
// a person types into nc or telnet).
//
// Promises:
//  - Bytes may arrive split anywhere; the commands come out the same. A
//    partial command costs no re-parsing of what was already parsed.
//  - Nothing a client sends crashes the parser or makes it buffer without
//    bound: header lines, inline commands, argument counts and argument sizes
//    are all limited. An argument longer than max_bulk_bytes (but within
//    max_bulk_header_bytes) is skipped without being buffered and its command
//    comes out with an error to answer, so the connection stays usable.
//  - Anything else malformed (a bad length, a missing CRLF, an unbalanced
//    quote) is a protocol error: the stream cannot be resynchronised, so the
//    caller answers the error and closes the connection, as Redis does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringkv {

struct RespLimits {
  // Longest argument kept (a value); longer ones are skipped and answered
  // with an error.
  size_t max_bulk_bytes = 16 * 1024 * 1024;
  // A bulk length above this is a protocol error (Redis's proto-max-bulk-len).
  uint64_t max_bulk_header_bytes = 512ull * 1024 * 1024;
  // Most arguments of one command (MGET, DEL, EXISTS take many keys).
  size_t max_args = 1024 * 1024;
  // Longest inline command line.
  size_t max_inline_bytes = 64 * 1024;
  // Most bytes the arguments of one command may hold together (each counted
  // with 32 bytes of overhead), so a command of many large arguments cannot
  // grow the parser without bound; more is a protocol error.
  uint64_t max_command_bytes = 64ull * 1024 * 1024;
};

// One command: its arguments, the name first. error is non-empty when the
// command was well-formed but cannot run (an argument over the limit); it is
// the message to answer with, after the replies of earlier commands.
struct RespCommand {
  std::vector<std::string> args;
  std::string error;
};

class RespParser {
 public:
  enum class Result { kCommand, kNeedMore, kError };

  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}

  void Append(std::string_view data);
  // kCommand: *cmd holds the next command. kNeedMore: feed more bytes.
  // kError: a protocol error, *error says what (without the "ERR " prefix);
  // every later call returns kError again.
  Result Next(RespCommand* cmd, std::string* error);

  // Bytes received and not yet consumed by a returned command.
  size_t buffered() const { return buffer_.size() - pos_; }
  // Memory held for the client: unconsumed bytes and the arguments of the
  // command being read.
  size_t memory() const { return buffer_.capacity() + static_cast<size_t>(command_bytes_); }
  // Changes the limits for what is parsed from now on (a connection's limits
  // rise once it has authenticated).
  void set_limits(const RespLimits& limits) { limits_ = limits; }
  const RespLimits& limits() const { return limits_; }

 private:
  enum class State { kStart, kBulkHeader, kBulkBody, kSkip };

  Result Fail(std::string why, std::string* error);
  // Finds "\r\n" in the unconsumed bytes; the line without it, or false
  // when it is not there yet.
  bool ReadLine(std::string_view* line);
  Result ParseInline(RespCommand* cmd, std::string* error);
  void Compact();

  RespLimits limits_;
  std::string buffer_;
  size_t pos_ = 0;          // start of unconsumed bytes
  size_t inline_scan_ = 0;  // bytes after pos_ already searched for '\n'
  State state_ = State::kStart;
  RespCommand current_;
  int64_t args_left_ = 0;   // bulk strings still expected in the current array
  uint64_t bulk_len_ = 0;   // kBulkBody: length of the bulk being read
  uint64_t skip_left_ = 0;  // kSkip: bytes (with the CRLF) still to discard
  uint64_t command_bytes_ = 0;  // arguments of current_, with overhead
  std::string failed_;      // set once a protocol error happened
};

// Splits an inline command line into words as Redis's sdssplitargs does:
// words separated by spaces; "double quotes" with \n \r \t \b \a \\ \" \xHH
// escapes; 'single quotes' with \'. False on unbalanced quotes or a closing
// quote not followed by a space.
bool SplitInlineArgs(std::string_view line, std::vector<std::string>* args);

// --- reply encoding -------------------------------------------------------------

// "+text\r\n". CR and LF in text become spaces (they would end the line).
void AppendSimpleString(std::string* out, std::string_view text);
// "-text\r\n", text starting with the error code ("ERR ...", "CONFLICT ...").
void AppendError(std::string* out, std::string_view text);
void AppendInteger(std::string* out, int64_t value);
void AppendBulkString(std::string* out, std::string_view data);
// "$-1\r\n": the nil reply (a missing key).
void AppendNil(std::string* out);
void AppendArrayHeader(std::string* out, size_t count);

}  // namespace ringkv
