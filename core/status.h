// Status: the result of an operation that can fail.
//
// Errors are values, never exceptions across module boundaries. A Status is
// either OK or carries a code and a human-readable message that names what
// went wrong ("key is 70000 bytes; the limit is 65536"). Result<T> carries a
// value or a non-OK Status. Both are plain values: copy them freely, they
// are not thread-safe to mutate concurrently (no state is shared).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ringkv {

class Status {
 public:
  // The codes travel on the wire (proto/ringkv.fbs ErrorCode); keep in step.
  enum class Code : uint8_t {
    kOk = 0,
    kNotFound = 1,
    kInvalidArgument = 2,
    kUnavailable = 3,  // quorum not met, node down
    kTimeout = 4,
    kCorruption = 5,
    kIOError = 6,
    kInternal = 7,
    kWrongCluster = 8,
    kUnauthenticated = 9,    // no user, or a wrong password or certificate
    kPermissionDenied = 10,  // the user's role does not allow the request
    kConditionFailed = 11,   // a conditional write's condition did not hold
    kWrongType = 12,         // an operation of another data type than the key's
    kTooManySiblings = 13,   // a write that would pass the sibling cap
  };

  Status() = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status Timeout(std::string msg) { return Status(Code::kTimeout, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  static Status WrongCluster(std::string msg) {
    return Status(Code::kWrongCluster, std::move(msg));
  }
  static Status Unauthenticated(std::string msg) {
    return Status(Code::kUnauthenticated, std::move(msg));
  }
  static Status PermissionDenied(std::string msg) {
    return Status(Code::kPermissionDenied, std::move(msg));
  }
  static Status ConditionFailed(std::string msg) {
    return Status(Code::kConditionFailed, std::move(msg));
  }
  static Status WrongType(std::string msg) { return Status(Code::kWrongType, std::move(msg)); }
  static Status TooManySiblings(std::string msg) {
    return Status(Code::kTooManySiblings, std::move(msg));
  }
  // The highest code; codes above it from the wire are refused.
  static constexpr Code kLastCode = Code::kTooManySiblings;
  static Status FromCode(Code code, std::string msg) { return Status(code, std::move(msg)); }

  // Returns true iff the status indicates success.
  bool ok() const { return code_ == Code::kOk; }
  // Returns true iff the status indicates a NotFound error.
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }

  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid argument: key is empty"; "OK" for success.
  std::string ToString() const;

  bool operator==(const Status& o) const = default;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

const char* CodeName(Status::Code code);
// "not_found", "invalid_argument", ...: for JSON and error counts.
const char* CodeSlug(Status::Code code);

// A value or the Status saying why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace ringkv
