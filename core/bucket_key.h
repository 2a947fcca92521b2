// Buckets (namespaces) and the internal key a (bucket, key) pair is stored
// under.
//
// Clients name a key within a bucket; everything below the coordinator
// (node/, store/, the messages between replicas, hashing and placement)
// speaks one internal key. The mapping is:
//  - the bucket "default" (or an empty bucket name) keeps the raw key, so
//    data written before buckets existed, its hashes, its placement and
//    every existing data dir stay as they are;
//  - any other bucket B and key K give "\0" + B + "\0" + K. Bucket names are
//    [A-Za-z0-9._-]{1,64} (no NUL), so the first NUL after the leading one
//    ends the bucket name and the encoding is unambiguous;
//  - a key of the default bucket that begins with a NUL byte would read as
//    another bucket's key, so it is refused (InvalidArgument).
// The key limits (kMaxKeyBytes) apply to the user's key; an internal key is
// at most kMaxBucketPrefixBytes longer (kMaxInternalKeyBytes).
#pragma once

#include <string>
#include <string_view>

#include "core/limits.h"
#include "core/status.h"

namespace ringkv {

inline constexpr std::string_view kDefaultBucket = "default";
inline constexpr size_t kMaxBucketNameBytes = 64;
// "\0" + bucket + "\0"
inline constexpr size_t kMaxBucketPrefixBytes = kMaxBucketNameBytes + 2;
inline constexpr size_t kMaxInternalKeyBytes = kMaxKeyBytes + kMaxBucketPrefixBytes;

// OK iff name is a bucket name a client may use: 1..64 of [A-Za-z0-9._-].
Status ValidateBucketName(std::string_view name);
// "default" for an empty name, else the name itself.
std::string_view BucketOrDefault(std::string_view bucket);
bool IsDefaultBucket(std::string_view bucket);

// The internal key of (bucket, key); checks the bucket name and the key
// (empty, over kMaxKeyBytes, a default-bucket key starting with NUL).
Result<std::string> InternalKey(std::string_view bucket, std::string_view key);
// What an internal key stands for. False for bytes that no InternalKey
// produces (a leading NUL without a valid bucket name after it).
bool SplitInternalKey(std::string_view internal, std::string* bucket, std::string* key);
// The user's key if internal belongs to bucket, else false. Cheap: meant for
// scans that visit every key of a partition.
bool KeyInBucket(std::string_view internal, std::string_view bucket, std::string_view* key);

}  // namespace ringkv
