// Who may do what: the permission table the runtime checks every client
// request against before it reaches the Node, and protected mode.
//
// Roles (core/acl.h) are ordered: read < write < admin, each including the
// ones below it.
//   read   GetRequest, ListKeysRequest, a DataTypeRequest that reads;
//          InfoRequest topics status, ring, stats, preflist, hints,
//          aae-status, reaper, local, bucket-show, bucket-list
//   write  read + PutRequest (puts and deletes), DataTypeRequest updates
//   admin  write + InfoRequest topics admin-leave, admin-remove, aae-rebuild,
//          aae-exchange, bucket-set (bucket properties change every client's
//          defaults: cluster configuration)
// AuthRequest needs nothing (it is how a connection gets a role). A request
// this table does not know needs admin, so a new message type is closed until
// someone decides who may send it: add new client messages to RequiredRole,
// new info topics to kInfoTopics (access.cc).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/acl.h"
#include "core/message.h"
#include "core/status.h"

namespace ringkv {

// The role a client request needs; nullopt for one any connection may send.
std::optional<Role> RequiredRole(const Body& body);
// The role an info topic needs (admin for topics it does not know).
Role RequiredRoleForTopic(std::string_view topic);
// What a request is, for messages: "get", "put", "delete", "info 'stats'".
std::string DescribeRequest(const Body& body);

// One address a node listens on, and the flag that set it (for the message).
struct Listener {
  std::string flag;  // "--listen", "--resp-listen", ...
  std::string host;  // IP address or name
};

// True for addresses only this machine reaches: 127.0.0.0/8, ::1, localhost.
bool IsLoopback(const std::string& host);

// Protected mode: a node that listens on an address other machines can reach
// must have TLS and users. OK when every listener is loopback, or the node has
// both, or insecure (--insecure) is set; otherwise InvalidArgument with a
// message that says what to add.
Status CheckProtectedMode(const std::vector<Listener>& listeners, bool tls, bool acl, bool insecure);

}  // namespace ringkv
