// Who a TLS certificate says its holder is, in a ringkv cluster.
//
// Every certificate `ringkv certs` makes is signed by the cluster CA and
// carries exactly one ringkv identity as a subject alternative name URI:
//   ringkv-node:ID      a node (also its subject CN = ID); the node
//                       certificate's other SANs are the hosts it is reached
//                       at (DNS names and IP addresses)
//   ringkv-client:NAME  a client (subject CN = NAME); NAME authenticates the
//                       connection as the ACL user of that name
// A node accepts peer messages only from a node certificate for the id they
// claim, so a client certificate can never pose as a node, and the CN alone
// (which any CA-signed certificate has) proves nothing.
#pragma once

#include <string>
#include <string_view>

namespace ringkv {

inline constexpr std::string_view kNodeUriPrefix = "ringkv-node:";
inline constexpr std::string_view kClientUriPrefix = "ringkv-client:";

enum class PeerKind { kNone, kNode, kClient };

// The identity a verified certificate carries; kNone without a certificate,
// or with one that names no (or more than one) ringkv identity.
struct PeerIdentity {
  PeerKind kind = PeerKind::kNone;
  std::string name;

  bool operator==(const PeerIdentity&) const = default;
};

// "node n1", "client alice", "no certificate identity".
inline std::string DescribeIdentity(const PeerIdentity& id) {
  switch (id.kind) {
    case PeerKind::kNode: return "node " + id.name;
    case PeerKind::kClient: return "client " + id.name;
    case PeerKind::kNone: break;
  }
  return "no certificate identity";
}

}  // namespace ringkv
