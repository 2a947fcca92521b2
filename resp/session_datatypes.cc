// RespSession's counter, set and map commands (resp/session.h): Redis's
// INCR/SADD/HSET families on ringkv's convergent data types
// (core/datatypes.h). Operations become DataTypeRequests; reads are GETs whose
// merged object the session reads with ReadKeyContents (the join of the
// key's states), so a data-type key never shows siblings.
#include <fmt/format.h>

#include <cctype>
#include <limits>

#include "core/limits.h"
#include "resp/session.h"

namespace ringkv {

namespace {

constexpr const char* kWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
constexpr const char* kNotInteger = "ERR value is not an integer or out of range";

std::string LowerName(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Arity(std::string_view name) {
  return fmt::format("ERR wrong number of arguments for '{}' command", LowerName(name));
}

std::string KeyProblem(const std::string& key) {
  if (key.empty()) return "ERR key is empty";
  if (key.size() > kMaxKeyBytes) {
    return fmt::format("ERR key is {} bytes; the limit is {}", key.size(), kMaxKeyBytes);
  }
  return {};
}

// The answer of a data-type read: what the key holds, or an error reply.
struct Contents {
  std::string error;
  KeyContents key;
};

Contents ReadContents(const Reply& reply) {
  Contents c;
  if (!reply.status.ok() && !reply.status.IsNotFound()) {
    c.error = RespErrorFor(reply.status);
    return c;
  }
  if (!reply.object) return c;
  auto contents = ReadKeyContents(*reply.object);
  if (!contents.ok()) {
    c.error = "ERR " + contents.status().ToString();
    return c;
  }
  c.key = std::move(contents).value();
  return c;
}

}  // namespace

bool RespSession::DispatchDataType(const std::string& name, std::vector<std::string>& a) {
  const size_t n = a.size();
  auto keyed = [&](size_t min_args, bool even = false) -> bool {
    if (n < min_args || (even && (n - 2) % 2 != 0)) {
      ImmediateError(Arity(a[0]));
      return false;
    }
    std::string bad = KeyProblem(a[1]);
    if (!bad.empty()) {
      ImmediateError(bad);
      return false;
    }
    return true;
  };
  auto exact = [&](size_t args) -> bool {
    if (n != args) {
      ImmediateError(Arity(a[0]));
      return false;
    }
    return keyed(args);
  };
  auto write = [&](DataType type, DataTypeOpCode op, std::vector<std::string> args,
                   int64_t delta) {
    DataTypeRequest req;
    req.key = a[1];
    req.type = type;
    req.op = op;
    req.args = std::move(args);
    req.delta = delta;
    StartDataTypeWrite(std::move(req));
  };
  auto rest = [&](size_t from) { return std::vector<std::string>(a.begin() + from, a.end()); };

  if (name == "INCR" || name == "DECR") {
    if (exact(2)) write(DataType::kCounter, DataTypeOpCode::kIncrement, {}, name == "INCR" ? 1 : -1);
  } else if (name == "INCRBY" || name == "DECRBY") {
    if (!exact(3)) return true;
    int64_t by = 0;
    if (!ParseInt64(a[2], &by)) {
      ImmediateError(kNotInteger);
      return true;
    }
    if (name == "DECRBY") {
      if (by == std::numeric_limits<int64_t>::min()) {
        ImmediateError("ERR decrement would overflow");
        return true;
      }
      by = -by;
    }
    write(DataType::kCounter, DataTypeOpCode::kIncrement, {}, by);
  } else if (name == "SADD" || name == "SREM") {
    if (n > kMaxDataTypeArgs + 2) {
      ImmediateError(fmt::format("ERR {} members in one command; ringkv takes at most {}", n - 2,
                                 kMaxDataTypeArgs));
      return true;
    }
    if (keyed(3)) {
      write(DataType::kSet, name == "SADD" ? DataTypeOpCode::kAdd : DataTypeOpCode::kRemove,
            rest(2), 0);
    }
  } else if (name == "HSET") {
    if (n > kMaxDataTypeArgs + 2) {
      ImmediateError(fmt::format("ERR {} arguments in one command; ringkv takes at most {}", n - 2,
                                 kMaxDataTypeArgs));
      return true;
    }
    if (keyed(4, /*even=*/true)) write(DataType::kMap, DataTypeOpCode::kSetFields, rest(2), 0);
  } else if (name == "HDEL") {
    if (n > kMaxDataTypeArgs + 2) {
      ImmediateError(fmt::format("ERR {} fields in one command; ringkv takes at most {}", n - 2,
                                 kMaxDataTypeArgs));
      return true;
    }
    if (keyed(3)) write(DataType::kMap, DataTypeOpCode::kRemoveFields, rest(2), 0);
  } else if (name == "HINCRBY") {
    if (!exact(4)) return true;
    int64_t by = 0;
    if (!ParseInt64(a[3], &by)) {
      ImmediateError(kNotInteger);
      return true;
    }
    write(DataType::kMap, DataTypeOpCode::kIncrementField, {a[2]}, by);
  } else if (name == "TYPE") {
    if (exact(2)) StartDataTypeRead(Op::kType, a[1], {});
  } else if (name == "SMEMBERS" || name == "SCARD" || name == "HGETALL" || name == "HLEN") {
    if (!exact(2)) return true;
    Op op = name == "SMEMBERS" ? Op::kSmembers
            : name == "SCARD"  ? Op::kScard
            : name == "HGETALL" ? Op::kHgetall
                                : Op::kHlen;
    StartDataTypeRead(op, a[1], {});
  } else if (name == "SISMEMBER" || name == "HGET" || name == "HEXISTS") {
    if (!exact(3)) return true;
    Op op = name == "SISMEMBER" ? Op::kSismember : name == "HGET" ? Op::kHget : Op::kHexists;
    StartDataTypeRead(op, a[1], {a[2]});
  } else {
    return false;
  }
  return true;
}

void RespSession::StartDataTypeWrite(DataTypeRequest req) {
  Pending p;
  p.seq = next_seq_++;
  p.op = Op::kDataWrite;
  p.parts.emplace_back(req.key);
  p.waiting = 1;
  uint64_t seq = p.seq;
  queue_.push_back(std::move(p));
  Send(seq, 0, std::move(req));
}

void RespSession::StartDataTypeRead(Op op, const std::string& key, std::vector<std::string> args) {
  Pending p;
  p.seq = next_seq_++;
  p.op = op;
  p.args = std::move(args);
  p.parts.emplace_back(key);
  p.waiting = 1;
  uint64_t seq = p.seq;
  queue_.push_back(std::move(p));
  Send(seq, 0, GetRequest{key, Quorum{}});
}

void RespSession::OnDataTypeReply(Pending& p, Part& part, const Envelope& env) {
  std::string& out = part.encoded;
  if (p.op == Op::kDataWrite) {
    const auto* reply = std::get_if<DataTypeReply>(&env.body);
    if (reply == nullptr) {
      const auto* other = std::get_if<Reply>(&env.body);
      part.error = other != nullptr && !other->status.ok() ? RespErrorFor(other->status)
                                                           : "ERR unexpected answer from the node";
    } else if (!reply->status.ok()) {
      part.error = RespErrorFor(reply->status);
    } else {
      AppendInteger(&out, reply->integer);
    }
    return FinishPart(p, part);
  }
  const auto* reply = std::get_if<Reply>(&env.body);
  if (reply == nullptr) {
    part.error = "ERR unexpected answer from the node";
    return FinishPart(p, part);
  }
  Contents c = ReadContents(*reply);
  if (!c.error.empty()) {
    part.error = std::move(c.error);
    return FinishPart(p, part);
  }
  const KeyContents& k = c.key;
  if (p.op == Op::kType) {
    const char* type = "none";
    if (k.opaque || k.type == DataType::kCounter) type = "string";
    if (k.type == DataType::kSet) type = "set";
    if (k.type == DataType::kMap) type = "hash";
    AppendSimpleString(&out, type);
    return FinishPart(p, part);
  }
  bool set_op = p.op == Op::kSmembers || p.op == Op::kSismember || p.op == Op::kScard;
  DataType want = set_op ? DataType::kSet : DataType::kMap;
  if (k.opaque || (k.type != DataType::kNone && k.type != want)) {
    part.error = kWrongType;
    return FinishPart(p, part);
  }
  // A missing key reads as an empty set or map, as in Redis.
  const OrSet& set = k.state.set();
  const OrMap& map = k.state.map();
  switch (p.op) {
    case Op::kSmembers: {
      std::vector<std::string> members = set.Members();
      AppendArrayHeader(&out, members.size());
      for (const auto& m : members) AppendBulkString(&out, m);
      break;
    }
    case Op::kSismember:
      AppendInteger(&out, set.Contains(p.args[0]) ? 1 : 0);
      break;
    case Op::kScard:
      AppendInteger(&out, static_cast<int64_t>(set.size()));
      break;
    case Op::kHget:
      if (auto v = map.Get(p.args[0])) {
        AppendBulkString(&out, *v);
      } else {
        AppendNil(&out);
      }
      break;
    case Op::kHgetall: {
      auto fields = map.Fields();
      AppendArrayHeader(&out, fields.size() * 2);
      for (const auto& [f, v] : fields) {
        AppendBulkString(&out, f);
        AppendBulkString(&out, v);
      }
      break;
    }
    case Op::kHlen:
      AppendInteger(&out, static_cast<int64_t>(map.size()));
      break;
    case Op::kHexists:
      AppendInteger(&out, map.Get(p.args[0]) ? 1 : 0);
      break;
    default:
      part.error = "ERR unexpected command";
      break;
  }
  FinishPart(p, part);
}

bool RespSession::OnDataTypeGet(Pending& p, Part& part, const DvvSet& object) {
  bool any = false;
  for (const Sibling& s : object.siblings()) any |= !s.tombstone && s.datatype != 0;
  if (!any) return false;  // plain values only: the usual path
  auto contents = ReadKeyContents(object);
  if (!contents.ok()) {
    part.error = "ERR " + contents.status().ToString();
    return true;
  }
  if (contents->type == DataType::kNone) return false;  // its first write was a plain value
  part.exists = true;
  if (contents->type == DataType::kCounter) {
    part.value = std::to_string(contents->state.counter().Value());
  } else if (p.op == Op::kGet) {
    part.error = kWrongType;
  } else if (p.op == Op::kMget) {
    part.exists = false;  // MGET answers nil for keys that are not strings
  }
  return true;
}

}  // namespace ringkv
