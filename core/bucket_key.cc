#include "core/bucket_key.h"

#include <fmt/format.h>

namespace ringkv {

namespace {

bool BucketChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

Status ValidateBucketName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("bucket name is empty");
  if (name.size() > kMaxBucketNameBytes) {
    return Status::InvalidArgument(fmt::format("bucket name is {} bytes; the limit is {}",
                                               name.size(), kMaxBucketNameBytes));
  }
  for (char c : name) {
    if (!BucketChar(c)) {
      return Status::InvalidArgument(
          "bucket names are letters, digits, '.', '_' and '-' (at most 64)");
    }
  }
  return Status::OK();
}

std::string_view BucketOrDefault(std::string_view bucket) {
  return bucket.empty() ? kDefaultBucket : bucket;
}

bool IsDefaultBucket(std::string_view bucket) { return bucket.empty() || bucket == kDefaultBucket; }

Result<std::string> InternalKey(std::string_view bucket, std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("key is empty");
  if (key.size() > kMaxKeyBytes) {
    return Status::InvalidArgument(
        fmt::format("key is {} bytes; the limit is {}", key.size(), kMaxKeyBytes));
  }
  if (IsDefaultBucket(bucket)) {
    if (key[0] == '\0') {
      return Status::InvalidArgument(
          "keys of the default bucket may not begin with a NUL byte (that prefix marks the "
          "keys of other buckets); use another bucket for such keys");
    }
    return std::string(key);
  }
  Status s = ValidateBucketName(bucket);
  if (!s.ok()) return s;
  std::string out;
  out.reserve(bucket.size() + 2 + key.size());
  out.push_back('\0');
  out.append(bucket);
  out.push_back('\0');
  out.append(key);
  return out;
}

bool SplitInternalKey(std::string_view internal, std::string* bucket, std::string* key) {
  if (internal.empty() || internal[0] != '\0') {
    *bucket = std::string(kDefaultBucket);
    *key = std::string(internal);
    return !internal.empty();
  }
  size_t end = internal.find('\0', 1);
  if (end == std::string_view::npos) return false;
  std::string_view name = internal.substr(1, end - 1);
  if (!ValidateBucketName(name).ok() || name == kDefaultBucket) return false;
  if (end + 1 == internal.size()) return false;  // empty key
  *bucket = std::string(name);
  *key = std::string(internal.substr(end + 1));
  return true;
}

bool KeyInBucket(std::string_view internal, std::string_view bucket, std::string_view* key) {
  if (internal.empty()) return false;
  if (IsDefaultBucket(bucket)) {
    if (internal[0] == '\0') return false;
    *key = internal;
    return true;
  }
  if (internal.size() < bucket.size() + 3 || internal[0] != '\0' ||
      internal[bucket.size() + 1] != '\0' || internal.substr(1, bucket.size()) != bucket) {
    return false;
  }
  *key = internal.substr(bucket.size() + 2);
  return true;
}

}  // namespace ringkv
