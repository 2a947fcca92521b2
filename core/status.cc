#include "core/status.h"

namespace ringkv {

const char* CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kNotFound: return "not found";
    case Status::Code::kInvalidArgument: return "invalid argument";
    case Status::Code::kUnavailable: return "unavailable";
    case Status::Code::kTimeout: return "timeout";
    case Status::Code::kCorruption: return "corruption";
    case Status::Code::kIOError: return "I/O error";
    case Status::Code::kInternal: return "internal error";
    case Status::Code::kWrongCluster: return "wrong cluster";
    case Status::Code::kUnauthenticated: return "not authenticated";
    case Status::Code::kPermissionDenied: return "permission denied";
    case Status::Code::kConditionFailed: return "condition not met";
    case Status::Code::kWrongType: return "wrong type";
    case Status::Code::kTooManySiblings: return "too many siblings";
  }
  return "unknown";
}

const char* CodeSlug(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "ok";
    case Status::Code::kNotFound: return "not_found";
    case Status::Code::kInvalidArgument: return "invalid_argument";
    case Status::Code::kUnavailable: return "unavailable";
    case Status::Code::kTimeout: return "timeout";
    case Status::Code::kCorruption: return "corruption";
    case Status::Code::kIOError: return "io_error";
    case Status::Code::kInternal: return "internal";
    case Status::Code::kWrongCluster: return "wrong_cluster";
    case Status::Code::kUnauthenticated: return "unauthenticated";
    case Status::Code::kPermissionDenied: return "permission_denied";
    case Status::Code::kConditionFailed: return "condition_failed";
    case Status::Code::kWrongType: return "wrong_type";
    case Status::Code::kTooManySiblings: return "too_many_siblings";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = CodeName(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

}  // namespace ringkv
