#include "antientropy/exchange.h"

#include <algorithm>
#include <bit>
#include <map>
#include <utility>

#include "core/codec.h"
#include "core/hash.h"

namespace ringkv {
namespace {

template <typename Message>
uint64_t WireBytes(const Message& message) {
  Envelope env;
  env.body = message;
  return EncodeEnvelope(env).size();
}

std::vector<uint32_t> SortedUnique(std::span<const uint32_t> values) {
  std::vector<uint32_t> out(values.begin(), values.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status CheckPartition(const MerkleTree& tree, uint32_t partition) {
  if (partition == tree.partition()) return Status::OK();
  return Status::InvalidArgument(
      "anti-entropy: asked about partition " + std::to_string(partition) +
      ", the tree is of partition " + std::to_string(tree.partition()));
}

// Key -> digest of the entries whose segment is in `segments` (sorted).
// Entries of other segments are an error when `strict`, skipped otherwise.
Status IndexEntries(const MerkleTree& tree,
                    const std::vector<uint32_t>& segments,
                    std::span<const KeyDigest> entries, bool strict,
                    const char* side,
                    std::map<std::string_view, std::string_view>* out) {
  for (const KeyDigest& e : entries) {
    const uint64_t hash = KeyHash(e.key);
    const bool wanted =
        tree.Contains(hash) && tree.SegmentOf(hash) == e.segment &&
        std::binary_search(segments.begin(), segments.end(), e.segment);
    if (!wanted) {
      if (!strict) continue;
      return Status::InvalidArgument(
          std::string("anti-entropy: ") + side + " key of segment " +
          std::to_string(e.segment) + " is not in a requested segment");
    }
    if (e.digest.size() != kAaeHashBytes) {
      return Status::InvalidArgument(
          std::string("anti-entropy: ") + side + " digest is " +
          std::to_string(e.digest.size()) + " bytes, not 32");
    }
    if (!out->emplace(e.key, e.digest).second) {
      return Status::InvalidArgument(std::string("anti-entropy: ") + side +
                                     " entries repeat a key");
    }
  }
  return Status::OK();
}

}  // namespace

// --- responder ---------------------------------------------------------------

AaeHashesReply AnswerHashes(const MerkleTree& tree,
                            const AaeHashesRequest& request) {
  AaeHashesReply reply;
  reply.partition = request.partition;
  reply.level = request.level;
  if (Status s = CheckPartition(tree, request.partition); !s.ok()) {
    reply.status = std::move(s);
    return reply;
  }
  Result<std::string> hashes = tree.Hashes(request.level, request.indices);
  if (!hashes.ok()) {
    reply.status = hashes.status();
    return reply;
  }
  reply.indices = request.indices;
  reply.hashes = std::move(hashes).value();
  return reply;
}

Result<std::vector<KeyDigest>> CollectSegments(
    const MerkleTree& tree, std::span<const uint32_t> segments,
    const DigestScan& scan) {
  std::vector<KeyDigest> out;
  for (uint32_t segment : SortedUnique(segments)) {
    if (segment >= tree.segments()) {
      return Status::InvalidArgument(
          "anti-entropy: segment " + std::to_string(segment) +
          " is outside the tree (" + std::to_string(tree.segments()) +
          " segments)");
    }
    const auto [first, last] = tree.SegmentRange(segment);
    Status s =
        scan(first, last, [&](std::string_view key, const std::string& digest) {
          out.push_back(KeyDigest{segment, std::string(key), digest});
        });
    if (!s.ok()) return s;
  }
  return out;
}

AaeSegmentReply AnswerSegments(const MerkleTree& tree,
                               const AaeSegmentRequest& request,
                               const DigestScan& scan) {
  AaeSegmentReply reply;
  reply.partition = request.partition;
  if (Status s = CheckPartition(tree, request.partition); !s.ok()) {
    reply.status = std::move(s);
    return reply;
  }
  Result<std::vector<KeyDigest>> entries =
      CollectSegments(tree, request.segments, scan);
  if (!entries.ok()) {
    reply.status = entries.status();
    return reply;
  }
  reply.entries = std::move(entries).value();
  return reply;
}

// --- initiator ---------------------------------------------------------------

void ExchangeStats::Add(const ExchangeStats& o) {
  hash_requests += o.hash_requests;
  hashes_exchanged += o.hashes_exchanged;
  segments_differing += o.segments_differing;
  segments_fetched += o.segments_fetched;
  nodes_skipped += o.nodes_skipped;
  digests_received += o.digests_received;
  keys_differing += o.keys_differing;
  request_bytes += o.request_bytes;
  reply_bytes += o.reply_bytes;
}

TreeExchange::TreeExchange(const MerkleTree& local, ExchangeOptions options)
    : partition_(local.partition()),
      ring_size_(local.ring_size()),
      fanout_(local.fanout()),
      depth_(local.depth()),
      options_(options) {
  options_.max_segments = std::max<uint32_t>(options_.max_segments, 1);
}

Status TreeExchange::Fail(Status status) {
  phase_ = Phase::kFailed;
  return status;
}

Status TreeExchange::CheckShape(const MerkleTree& local) const {
  if (local.partition() == partition_ && local.ring_size() == ring_size_ &&
      local.fanout() == fanout_ && local.depth() == depth_) {
    return Status::OK();
  }
  return Status::Internal(
      "anti-entropy: the local tree changed shape during an exchange");
}

AaeHashesRequest TreeExchange::Ask(uint32_t level,
                                   std::vector<uint32_t> indices) {
  level_ = level;
  indices_ = std::move(indices);
  AaeHashesRequest request{partition_, level_, indices_};
  ++stats_.hash_requests;
  stats_.request_bytes += WireBytes(request);
  phase_ = Phase::kAwaitHashes;
  return request;
}

AaeHashesRequest TreeExchange::Start() {
  if (phase_ != Phase::kIdle) {
    // Restarting is a caller bug; answer with the same first request but
    // leave the exchange failed so its replies are refused.
    phase_ = Phase::kFailed;
    return AaeHashesRequest{partition_, 0, {0}};
  }
  return Ask(0, {0});
}

std::vector<uint32_t> TreeExchange::Choose(const std::vector<uint32_t>& sorted,
                                           uint32_t level) {
  if (sorted.size() <= options_.max_segments) return sorted;
  stats_.nodes_skipped += sorted.size() - options_.max_segments;
  // The cursor's ancestor at this level: drop one fanout digit per level
  // below it.
  const uint32_t fanout_bits = static_cast<uint32_t>(std::countr_zero(fanout_));
  const uint32_t cursor =
      (options_.first_segment % (uint32_t{1} << (depth_ * fanout_bits))) >>
      ((depth_ - level) * fanout_bits);
  const size_t from =
      std::lower_bound(sorted.begin(), sorted.end(), cursor) - sorted.begin();
  std::vector<uint32_t> out;
  out.reserve(options_.max_segments);
  for (size_t i = 0; i < options_.max_segments; ++i) {
    out.push_back(sorted[(from + i) % sorted.size()]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<ExchangeStep> TreeExchange::OnHashes(const MerkleTree& local,
                                            const AaeHashesReply& reply) {
  stats_.reply_bytes += WireBytes(reply);
  if (phase_ != Phase::kAwaitHashes) {
    return Fail(Status::Internal(
        "anti-entropy: hashes arrived when none were asked for"));
  }
  if (Status s = CheckShape(local); !s.ok()) return Fail(std::move(s));
  if (!reply.status.ok()) return Fail(reply.status);
  if (reply.partition != partition_ || reply.level != level_ ||
      reply.indices != indices_ ||
      reply.hashes.size() != indices_.size() * kAaeHashBytes) {
    return Fail(
        Status::InvalidArgument("anti-entropy: the hashes reply does not "
                                "answer the outstanding request"));
  }
  stats_.hashes_exchanged += indices_.size();

  std::vector<uint32_t> differing;  // sorted, as indices_ is
  for (size_t i = 0; i < indices_.size(); ++i) {
    std::string_view remote(reply.hashes.data() + i * kAaeHashBytes,
                            kAaeHashBytes);
    if (local.NodeHash(level_, indices_[i]) != remote)
      differing.push_back(indices_[i]);
  }

  if (level_ == depth_) stats_.segments_differing += differing.size();
  if (differing.empty()) {
    phase_ = Phase::kDone;
    return ExchangeStep(ExchangeDone{});
  }
  std::vector<uint32_t> chosen = Choose(differing, level_);
  if (level_ < depth_) {
    std::vector<uint32_t> children;
    children.reserve(chosen.size() * fanout_);
    for (uint32_t parent : chosen) {
      for (uint32_t c = 0; c < fanout_; ++c)
        children.push_back(parent * fanout_ + c);
    }
    return ExchangeStep(Ask(level_ + 1, std::move(children)));
  }
  segments_ = std::move(chosen);
  stats_.segments_fetched += segments_.size();
  AaeSegmentRequest request{partition_, segments_};
  stats_.request_bytes += WireBytes(request);
  phase_ = Phase::kAwaitSegments;
  return ExchangeStep(std::move(request));
}

Status TreeExchange::OnSegments(const MerkleTree& local,
                                const AaeSegmentReply& reply,
                                std::span<const KeyDigest> local_digests) {
  stats_.reply_bytes += WireBytes(reply);
  if (phase_ != Phase::kAwaitSegments) {
    return Fail(Status::Internal(
        "anti-entropy: key digests arrived when none were asked for"));
  }
  if (Status s = CheckShape(local); !s.ok()) return Fail(std::move(s));
  if (!reply.status.ok()) return Fail(reply.status);
  if (reply.partition != partition_) {
    return Fail(Status::InvalidArgument(
        "anti-entropy: key digests of another partition"));
  }
  stats_.digests_received += reply.entries.size();

  std::map<std::string_view, std::string_view> remote;
  std::map<std::string_view, std::string_view> mine;
  if (Status s = IndexEntries(local, segments_, reply.entries, /*strict=*/true,
                              "peer", &remote);
      !s.ok()) {
    return Fail(std::move(s));
  }
  if (Status s = IndexEntries(local, segments_, local_digests, /*strict=*/false,
                              "local", &mine);
      !s.ok()) {
    return Fail(std::move(s));
  }

  // Merge the two sorted maps.
  using Kind = KeyDifference::Kind;
  auto r = remote.begin();
  auto m = mine.begin();
  while (r != remote.end() || m != mine.end()) {
    if (m == mine.end() || (r != remote.end() && r->first < m->first)) {
      differences_.push_back({std::string(r->first), Kind::kMissingLocally});
      ++r;
    } else if (r == remote.end() || m->first < r->first) {
      differences_.push_back({std::string(m->first), Kind::kMissingRemotely});
      ++m;
    } else {
      if (r->second != m->second) {
        differences_.push_back({std::string(r->first), Kind::kDigestsDiffer});
      }
      ++r;
      ++m;
    }
  }
  stats_.keys_differing = differences_.size();
  phase_ = Phase::kDone;
  return Status::OK();
}

Status TreeExchange::OnSegments(const MerkleTree& local,
                                const AaeSegmentReply& reply,
                                const DigestScan& local_scan) {
  if (phase_ != Phase::kAwaitSegments) {
    stats_.reply_bytes += WireBytes(reply);
    return Fail(Status::Internal(
        "anti-entropy: key digests arrived when none were asked for"));
  }
  Result<std::vector<KeyDigest>> mine =
      CollectSegments(local, segments_, local_scan);
  if (!mine.ok()) {
    stats_.reply_bytes += WireBytes(reply);
    return Fail(mine.status());
  }
  return OnSegments(local, reply, mine.value());
}

std::vector<std::string> TreeExchange::DifferingKeys() const {
  std::vector<std::string> keys;
  keys.reserve(differences_.size());
  for (const KeyDifference& d : differences_) keys.push_back(d.key);
  return keys;
}

}  // namespace ringkv
