#include "server/access.h"

#include <arpa/inet.h>

#include <fmt/format.h>

namespace ringkv {

namespace {

struct TopicRole {
  std::string_view topic;
  Role role;
};

// Info topics by the role they need. Unknown topics need admin.
constexpr TopicRole kInfoTopics[] = {
    {"status", Role::kRead},         {"ring", Role::kRead},
    {"stats", Role::kRead},          {"preflist", Role::kRead},
    {"hints", Role::kRead},          {"aae-status", Role::kRead},
    {"reaper", Role::kRead},         {"local", Role::kRead},
    {"bucket-show", Role::kRead},    {"bucket-list", Role::kRead},
    {"bucket-set", Role::kAdmin},
    {"admin-leave", Role::kAdmin},   {"admin-remove", Role::kAdmin},
    {"aae-rebuild", Role::kAdmin},   {"aae-exchange", Role::kAdmin},
};

}  // namespace

Role RequiredRoleForTopic(std::string_view topic) {
  for (const auto& t : kInfoTopics) {
    if (t.topic == topic) return t.role;
  }
  return Role::kAdmin;
}

std::optional<Role> RequiredRole(const Body& body) {
  if (std::holds_alternative<AuthRequest>(body)) return std::nullopt;
  if (std::holds_alternative<GetRequest>(body)) return Role::kRead;
  if (std::holds_alternative<PutRequest>(body)) return Role::kWrite;
  if (std::holds_alternative<ListKeysRequest>(body)) return Role::kRead;
  if (const auto* dt = std::get_if<DataTypeRequest>(&body)) {
    return dt->op == DataTypeOpCode::kRead ? Role::kRead : Role::kWrite;
  }
  if (const auto* info = std::get_if<InfoRequest>(&body)) return RequiredRoleForTopic(info->topic);
  return Role::kAdmin;
}

std::string DescribeRequest(const Body& body) {
  if (std::holds_alternative<GetRequest>(body)) return "get";
  if (std::holds_alternative<ListKeysRequest>(body)) return "keys";
  if (const auto* dt = std::get_if<DataTypeRequest>(&body)) {
    return dt->op == DataTypeOpCode::kRead ? "data-type read" : "data-type update";
  }
  if (const auto* put = std::get_if<PutRequest>(&body)) return put->tombstone ? "delete" : "put";
  if (const auto* info = std::get_if<InfoRequest>(&body)) {
    std::string topic = info->topic.substr(0, 64);
    for (char& c : topic) {
      if (c < ' ' || c > '~') c = '?';
    }
    return fmt::format("info '{}'", topic);
  }
  return BodyName(body);
}

bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

Status CheckProtectedMode(const std::vector<Listener>& listeners, bool tls, bool acl, bool insecure) {
  if (insecure || (tls && acl)) return Status::OK();
  std::string exposed;
  for (const Listener& l : listeners) {
    if (l.host.empty() || IsLoopback(l.host)) continue;
    exposed += fmt::format("{}{} {}", exposed.empty() ? "" : ", ", l.flag, l.host);
  }
  if (exposed.empty()) return Status::OK();
  std::string missing;
  if (!tls) {
    missing += "  --tls-cert FILE --tls-key FILE --tls-ca FILE   (make them with: ringkv certs ca DIR; "
               "ringkv certs node DIR --id ID --host HOST)\n";
  }
  if (!acl) {
    missing += "  --acl FILE   (users and roles; make it with: ringkv acl add FILE NAME --role admin)\n";
  }
  return Status::InvalidArgument(fmt::format(
      "protected mode: this node listens on an address other machines can reach ({}) without "
      "{}, so anyone who reaches the port could read, write, and remove nodes. Add:\n{}"
      "or listen on 127.0.0.1, or pass --insecure to run without them on a network you trust.",
      exposed, !tls && !acl ? "TLS and users" : !tls ? "TLS" : "users", missing));
}

}  // namespace ringkv
