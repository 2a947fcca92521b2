// ReplicaSet: the replicas one quorum request talks to, and what each said.
//
// Built from a key's preference list: in strict mode the first n entries; in
// sloppy mode each primary believed down is replaced, in order, by the next
// live fallback, which then holds the write as a hint for that primary.
// Fallbacks left over stand by: when a replica fails or stays silent, the
// request may Substitute() the next one. Counts what a quorum needs: replies
// (any replica), replies from primaries, outstanding replicas.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/dvv.h"

namespace ringkv {

class ReplicaSet {
 public:
  struct Replica {
    NodeId node;
    bool primary = true;
    NodeId hint_for;  // a fallback: the primary it stands in for
  };
  enum class Answer : uint8_t { kNone, kOk, kFailed };

  // preference: the key's preference list (primaries first). n: the
  // request's n. sloppy: replace dead primaries by live fallbacks. alive:
  // the failure detector's verdict (self counts as alive).
  static ReplicaSet Choose(const std::vector<NodeId>& preference, uint32_t n, bool sloppy,
                           const std::function<bool(const NodeId&)>& alive);

  const std::vector<Replica>& replicas() const { return replicas_; }
  // Index of node among the replicas, or -1.
  int Find(const NodeId& node) const;
  bool Contains(const NodeId& node) const { return Find(node) >= 0; }

  // Records an answer. Returns false (and changes nothing) for a node that
  // was not asked or that already answered.
  bool RecordOk(const NodeId& node);
  bool RecordFailure(const NodeId& node, std::string why);
  bool Answered(const NodeId& node) const;

  // Adds the next standby fallback in place of replica `failed` (a primary,
  // or a fallback: the new one stands in for the same primary). Returns the
  // new replica, or nullopt when no fallback is left.
  std::optional<Replica> Substitute(const NodeId& failed);

  uint32_t ok() const { return ok_; }
  uint32_t ok_primaries() const { return ok_primaries_; }
  uint32_t ok_fallbacks() const { return ok_ - ok_primaries_; }
  uint32_t outstanding() const;
  uint32_t outstanding_primaries() const;
  // Replicas that have not answered, in order.
  std::vector<NodeId> Silent() const;

  // "write quorum not met: 1 of w=2 acknowledgements from n=3 replicas,
  //  0 from fallbacks (1 failed: n3 (...); 1 not answered: n2)"
  std::string DescribeFailure(bool is_read, uint32_t required, uint32_t n,
                              uint32_t primaries_required, bool timed_out) const;

 private:
  std::vector<Replica> replicas_;
  // What each replica answered, by its index in replicas_ (a node is asked
  // once per request, so an index names it). Kept beside the replicas, not in
  // maps by node id: recording an answer allocates nothing, which matters on
  // the path every request takes.
  std::vector<Answer> answers_;
  std::vector<std::string> failures_;  // why, for kFailed
  // Live fallbacks in order; those from next_standby_ on are not used yet.
  // (A vector: std::deque allocates even when empty, and every request
  // makes a ReplicaSet.)
  std::vector<NodeId> standby_;
  size_t next_standby_ = 0;
  uint32_t ok_ = 0;
  uint32_t ok_primaries_ = 0;
};

}  // namespace ringkv
