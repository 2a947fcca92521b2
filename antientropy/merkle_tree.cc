#include "antientropy/merkle_tree.h"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <memory>
#include <tuple>

namespace ringkv {
namespace {

constexpr uint32_t kMaxSegmentBits = 20;

// SHA-256 of the concatenation of parts. Every write hashes, so the EVP
// context and the algorithm are made once per thread and reused (creating
// them costs more than hashing a small item).
class Sha256 {
 public:
  Sha256() : ctx_(Context()) { EVP_DigestInit_ex(ctx_, Algorithm(), nullptr); }
  void Update(std::string_view data) { EVP_DigestUpdate(ctx_, data.data(), data.size()); }
  std::string Final() {
    std::string out(kAaeHashBytes, '\0');
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, reinterpret_cast<unsigned char*>(out.data()), &len);
    assert(len == kAaeHashBytes);
    return out;
  }

 private:
  static EVP_MD_CTX* Context() {
    thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                             &EVP_MD_CTX_free);
    return ctx.get();
  }
  // Fetched explicitly, once: with the implicit EVP_sha256() OpenSSL 3
  // looks the algorithm up again on every EVP_DigestInit_ex (EVP_MD_fetch
  // was 3.5% of a node's CPU under a write load). Kept for the process's life.
  static const EVP_MD* Algorithm() {
    static const EVP_MD* md = [] {
      const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
      return fetched != nullptr ? fetched : EVP_sha256();
    }();
    return md;
  }
  EVP_MD_CTX* ctx_;
};

void XorInto(char* dst, std::string_view src) {
  for (size_t i = 0; i < kAaeHashBytes; ++i) dst[i] ^= src[i];
}

bool IsZero(std::string_view hash) {
  return std::all_of(hash.begin(), hash.end(), [](char c) { return c == 0; });
}

// The contribution of one (key, digest) pair to its leaf.
std::string LeafItem(std::string_view key, std::string_view digest) {
  Sha256 sha;
  sha.Update(key);
  sha.Update(digest);
  return sha.Final();
}

void AppendU32(uint32_t v, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xff));
}

void AppendU64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xff));
}

void AppendString(std::string_view s, std::string* out) {
  AppendU32(static_cast<uint32_t>(s.size()), out);
  out->append(s);
}

}  // namespace

Result<MerkleTree> MerkleTree::Create(uint32_t ring_size, uint32_t partition,
                                      MerkleTreeOptions options) {
  if (ring_size == 0 || !std::has_single_bit(ring_size)) {
    return Status::InvalidArgument("merkle tree: ring size " +
                                   std::to_string(ring_size) +
                                   " is not a power of two");
  }
  if (partition >= ring_size) {
    return Status::InvalidArgument(
        "merkle tree: partition " + std::to_string(partition) +
        " is outside a ring of " + std::to_string(ring_size));
  }
  if (options.fanout < 2 || !std::has_single_bit(options.fanout)) {
    return Status::InvalidArgument("merkle tree: fanout " +
                                   std::to_string(options.fanout) +
                                   " is not a power of two >= 2");
  }
  if (options.depth < 1)
    return Status::InvalidArgument("merkle tree: depth must be >= 1");
  const uint32_t partition_bits =
      static_cast<uint32_t>(std::countr_zero(ring_size));
  const uint32_t fanout_bits =
      static_cast<uint32_t>(std::countr_zero(options.fanout));
  const uint64_t segment_bits = uint64_t{fanout_bits} * options.depth;
  if (segment_bits > kMaxSegmentBits || partition_bits + segment_bits > 64) {
    return Status::InvalidArgument(
        "merkle tree: fanout " + std::to_string(options.fanout) +
        " and depth " + std::to_string(options.depth) + " give 2^" +
        std::to_string(segment_bits) + " segments; the limit is 2^" +
        std::to_string(kMaxSegmentBits) +
        " and the segment bits must fit after the partition bits");
  }

  MerkleTree tree;
  tree.ring_size_ = ring_size;
  tree.partition_ = partition;
  tree.fanout_ = options.fanout;
  tree.fanout_bits_ = fanout_bits;
  tree.depth_ = options.depth;
  tree.partition_bits_ = partition_bits;
  tree.segment_bits_ = static_cast<uint32_t>(segment_bits);
  // With Q = 1 the partition is the whole space and starts at 0; shifting by
  // 64 would be undefined.
  tree.start_ =
      partition_bits == 0 ? 0 : uint64_t{partition} << (64 - partition_bits);
  tree.nodes_.resize(tree.levels());
  for (uint32_t l = 0; l <= tree.depth_; ++l) {
    tree.nodes_[l].assign(size_t{tree.NodesAt(l)} * kAaeHashBytes, '\0');
  }
  tree.dirty_.resize(tree.depth_);
  for (uint32_t l = 0; l < tree.depth_; ++l)
    tree.dirty_[l].assign(tree.NodesAt(l), false);
  return tree;
}

uint32_t MerkleTree::NodesAt(uint32_t level) const {
  if (level > depth_) return 0;
  return uint32_t{1} << (level * fanout_bits_);
}

bool MerkleTree::Contains(uint64_t hash) const {
  return partition_bits_ == 0 || (hash >> (64 - partition_bits_)) == partition_;
}

uint32_t MerkleTree::SegmentOf(uint64_t hash) const {
  assert(Contains(hash));
  // Drop the partition bits, then keep the next segment_bits_ bits.
  // segment_bits_ >= 1, so the right shift is at most 63.
  return static_cast<uint32_t>((hash << partition_bits_) >>
                               (64 - segment_bits_));
}

std::pair<uint64_t, uint64_t> MerkleTree::SegmentRange(uint32_t segment) const {
  assert(segment < segments());
  // segment_bits_ >= 1, so low_bits <= 63 and the shifts are defined.
  const uint32_t low_bits = 64 - partition_bits_ - segment_bits_;
  const uint64_t first = start_ | (uint64_t{segment} << low_bits);
  const uint64_t span_minus_one = (uint64_t{1} << low_bits) - 1;
  return {first, first + span_minus_one};
}

bool MerkleTree::Apply(std::string_view key, uint64_t hash,
                       std::string_view old_digest,
                       std::string_view new_digest) {
  if (!Contains(hash)) return false;
  assert(old_digest.empty() || old_digest.size() == kAaeHashBytes);
  assert(new_digest.empty() || new_digest.size() == kAaeHashBytes);
  if (old_digest == new_digest) return true;
  const uint32_t leaf = SegmentOf(hash);
  char* slot = nodes_[depth_].data() + size_t{leaf} * kAaeHashBytes;
  if (!old_digest.empty()) {
    XorInto(slot, LeafItem(key, old_digest));
    --key_count_;
  }
  if (!new_digest.empty()) {
    XorInto(slot, LeafItem(key, new_digest));
    ++key_count_;
  }
  MarkDirty(leaf);
  return true;
}

void MerkleTree::MarkDirty(uint32_t leaf) {
  any_dirty_ = true;
  uint32_t index = leaf;
  for (uint32_t l = depth_; l-- > 0;) {
    index >>= fanout_bits_;
    // A dirty node's ancestors are dirty already.
    if (dirty_[l][index]) return;
    dirty_[l][index] = true;
  }
}

void MerkleTree::Clear() {
  for (std::string& level : nodes_) std::fill(level.begin(), level.end(), '\0');
  for (std::vector<bool>& level : dirty_)
    std::fill(level.begin(), level.end(), false);
  any_dirty_ = false;
  key_count_ = 0;
}

void MerkleTree::Flush() const {
  if (!any_dirty_) return;
  const size_t child_bytes = size_t{fanout_} * kAaeHashBytes;
  for (uint32_t l = depth_; l-- > 0;) {
    std::vector<bool>& dirty = dirty_[l];
    for (uint32_t i = 0; i < dirty.size(); ++i) {
      if (!dirty[i]) continue;
      dirty[i] = false;
      std::string_view children(nodes_[l + 1].data() + size_t{i} * child_bytes,
                                child_bytes);
      char* slot = nodes_[l].data() + size_t{i} * kAaeHashBytes;
      if (IsZero(children)) {
        std::fill(slot, slot + kAaeHashBytes, '\0');
      } else {
        Sha256 sha;
        sha.Update(children);
        std::string h = sha.Final();
        std::copy(h.begin(), h.end(), slot);
      }
    }
  }
  any_dirty_ = false;
}

std::string MerkleTree::Root() const { return std::string(NodeHash(0, 0)); }

std::string_view MerkleTree::NodeHash(uint32_t level, uint32_t index) const {
  assert(level <= depth_ && index < NodesAt(level));
  Flush();
  return std::string_view(nodes_[level].data() + size_t{index} * kAaeHashBytes,
                          kAaeHashBytes);
}

Result<std::string> MerkleTree::Hashes(
    uint32_t level, std::span<const uint32_t> indices) const {
  if (level > depth_) {
    return Status::InvalidArgument(
        "merkle tree: level " + std::to_string(level) +
        " is below the leaves (depth " + std::to_string(depth_) + ")");
  }
  const uint32_t count = NodesAt(level);
  std::string out;
  out.reserve(indices.size() * kAaeHashBytes);
  for (uint32_t index : indices) {
    if (index >= count) {
      return Status::InvalidArgument(
          "merkle tree: index " + std::to_string(index) + " is outside level " +
          std::to_string(level) + " (" + std::to_string(count) + " nodes)");
    }
    out.append(NodeHash(level, index));
  }
  return out;
}

std::string ObjectDigest(const DvvSet& object) {
  std::string encoded = "ringkv.digest.v1";
  AppendU32(static_cast<uint32_t>(object.clock().entries().size()), &encoded);
  for (const auto& [actor, counter] :
       object.clock().entries()) {  // sorted by actor
    AppendString(actor, &encoded);
    AppendU64(counter, &encoded);
  }
  // Siblings are kept sorted by dot, but sort here too so the digest never
  // depends on how the object was built.
  std::vector<std::tuple<std::string_view, uint64_t, bool>> dots;
  dots.reserve(object.siblings().size());
  for (const Sibling& s : object.siblings()) {
    dots.emplace_back(s.dot.actor, s.dot.counter, s.tombstone);
  }
  std::sort(dots.begin(), dots.end());
  AppendU32(static_cast<uint32_t>(dots.size()), &encoded);
  for (const auto& [actor, counter, tombstone] : dots) {
    AppendString(actor, &encoded);
    AppendU64(counter, &encoded);
    encoded.push_back(tombstone ? 1 : 0);
  }
  Sha256 sha;
  sha.Update(encoded);
  return sha.Final();
}

}  // namespace ringkv
