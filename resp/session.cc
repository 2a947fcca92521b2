#include "resp/session.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include <chrono>

#include "core/codec.h"
#include "core/expiry.h"
#include "core/limits.h"
#include "resp/glob.h"

namespace ringkv {

using nlohmann::json;

namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A client's bytes inside an error message: printable, bounded.
std::string Excerpt(std::string_view s, size_t max = 64) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (std::isprint(c) && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

std::string ArityError(std::string_view name) {
  return fmt::format("ERR wrong number of arguments for '{}' command", Lower(Excerpt(name, 128)));
}

// Keys are checked here because RESP requests reach the node without going
// through the codec, which checks them for the native protocol.
std::string CheckKey(const std::string& key) {
  if (key.empty()) return "ERR key is empty";
  if (key.size() > kMaxKeyBytes) {
    return fmt::format("ERR key is {} bytes; the limit is {}", key.size(), kMaxKeyBytes);
  }
  return {};
}

std::string ConflictError(const std::string& key, size_t siblings) {
  return fmt::format(
      "CONFLICT key '{}' has {} siblings; read it with 'ringkv get' to merge them (or CLIENT "
      "SETNAME lww for the newest)",
      Excerpt(key), siblings);
}

// "key:value" lines for every number in a JSON object, nested objects
// flattened with '_' ("get_latency_p50_ms:0.4").
void AppendNumbers(const json& j, const std::string& prefix, std::string* out) {
  if (!j.is_object()) return;
  for (const auto& [k, v] : j.items()) {
    if (v.is_number()) {
      *out += fmt::format("{}{}:{}\r\n", prefix, k, v.dump());
    } else if (v.is_object()) {
      AppendNumbers(v, prefix + k + "_", out);
    }
  }
}

// A decimal integer argument (Redis's string2ll rules, roughly): optional
// '-', digits, no spaces, fits in int64.
bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  __int128 v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
    if (v > INT64_MAX) return false;
  }
  *out = static_cast<int64_t>(s[0] == '-' ? -v : v);
  return true;
}

std::string JsonText(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const json& v = j[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

std::string RespErrorFor(const Status& status) {
  switch (status.code()) {
    case Status::Code::kUnavailable:
      return "UNAVAILABLE " + status.message();
    case Status::Code::kTimeout:
      return "TIMEOUT " + status.message();
    case Status::Code::kInvalidArgument:
      return "ERR " + status.message();
    case Status::Code::kUnauthenticated:
      return "NOAUTH " + status.message();
    case Status::Code::kPermissionDenied:
      return "NOPERM " + status.message();
    case Status::Code::kWrongType:
      // Redis's words (the node's message says which types, for ringkv's CLI).
      return "WRONGTYPE Operation against a key holding the wrong kind of value";
    default:
      return "ERR " + status.ToString();
  }
}

RespLimits PreAuthLimits(const RespLimits& limits) {
  RespLimits pre = limits;
  pre.max_bulk_bytes = std::min<size_t>(limits.max_bulk_bytes, 16 * 1024);
  pre.max_bulk_header_bytes = std::min<uint64_t>(limits.max_bulk_header_bytes, 16 * 1024);
  pre.max_args = std::min<size_t>(limits.max_args, 16);
  pre.max_inline_bytes = std::min<size_t>(limits.max_inline_bytes, 16 * 1024);
  pre.max_command_bytes = std::min<uint64_t>(limits.max_command_bytes, 64 * 1024);
  return pre;
}

RespSession::RespSession(RespOptions options, RespStats* stats)
    : options_(options),
      stats_(stats),
      parser_(options.auth_required ? PreAuthLimits(options.limits) : options.limits),
      lww_(options.lww),
      authenticated_(!options.auth_required) {}

void RespSession::Feed(std::string_view data) {
  if (stop_reading_) return;
  parser_.Append(data);
  RunBacklog();
}

void RespSession::RunBacklog() {
  budget_ = options_.commands_per_turn == 0 ? SIZE_MAX : options_.commands_per_turn;
  Pump();
}

bool RespSession::backlogged() const {
  return budget_ == 0 && !stop_reading_ && !auth_barrier_ && !full() && parser_.buffered() > 0;
}

void RespSession::ReleaseMemory() {
  parser_ = RespParser(parser_.limits());
  queue_.clear();
  in_flight_.clear();
  requests_.clear();
  output_.clear();
  output_.shrink_to_fit();
  held_reply_bytes_ = 0;
  stop_reading_ = true;
}

void RespSession::SetAuthenticated() {
  if (authenticated_) return;
  authenticated_ = true;
  parser_.set_limits(options_.limits);
}

std::vector<Envelope> RespSession::TakeRequests() {
  std::vector<Envelope> out = std::move(requests_);
  requests_.clear();
  return out;
}

std::string RespSession::TakeOutput() {
  std::string out = std::move(output_);
  output_.clear();
  return out;
}

void RespSession::Pump() {
  while (!stop_reading_ && !full() && !auth_barrier_ && budget_ > 0) {
    RespCommand cmd;
    std::string error;
    RespParser::Result r = parser_.Next(&cmd, &error);
    if (r == RespParser::Result::kNeedMore) break;
    if (r == RespParser::Result::kError) {
      // The stream cannot be resynchronised: answer, then disconnect.
      ++stats_->protocol_errors;
      ImmediateError("ERR " + error);
      stop_reading_ = true;
      protocol_error_ = true;
      break;
    }
    --budget_;
    Dispatch(std::move(cmd));
  }
  Flush();
}

void RespSession::Flush() {
  while (!queue_.empty() && queue_.front().done) {
    const std::string& reply = queue_.front().reply;
    if (!reply.empty() && reply[0] == '-') ++stats_->error_replies;
    output_ += reply;
    held_reply_bytes_ -= std::min(held_reply_bytes_, reply.size());
    queue_.pop_front();
  }
}

void RespSession::Immediate(std::string reply) {
  Pending p;
  p.seq = next_seq_++;
  p.done = true;
  p.reply = std::move(reply);
  held_reply_bytes_ += p.reply.size();
  queue_.push_back(std::move(p));
}

void RespSession::ImmediateError(std::string_view message) {
  std::string reply;
  AppendError(&reply, message);
  Immediate(std::move(reply));
}

void RespSession::Dispatch(RespCommand cmd) {
  ++stats_->commands;
  std::vector<std::string>& a = cmd.args;
  const size_t n = a.size();
  std::string name = Upper(a[0]);
  std::string reply;
  if (!authenticated_ && name != "AUTH" && name != "PING" && name != "QUIT" && name != "HELLO") {
    return ImmediateError("NOAUTH Authentication required.");
  }
  if (!cmd.error.empty()) return ImmediateError(cmd.error);
  if (name == "AUTH") {
    StartAuth(a);
  } else if (name == "GET") {
    if (n != 2) return ImmediateError(ArityError(a[0]));
    StartKeyed(Op::kGet, a, 1);
  } else if (name == "SET") {
    if (n < 3) return ImmediateError(ArityError(a[0]));
    StartSet(a, /*setnx=*/false);
  } else if (name == "SETNX") {
    if (n != 3) return ImmediateError(ArityError(a[0]));
    StartSet(a, /*setnx=*/true);
  } else if (name == "EXPIRE" || name == "PEXPIRE") {
    if (n < 3) return ImmediateError(ArityError(a[0]));
    StartExpiry(Op::kExpire, a);
  } else if (name == "PERSIST" || name == "TTL" || name == "PTTL") {
    if (n != 2) return ImmediateError(ArityError(a[0]));
    StartExpiry(name == "PERSIST" ? Op::kPersist : Op::kTtl, a);
  } else if (name == "SCAN" || name == "KEYS" || name == "DBSIZE") {
    StartListing(name == "SCAN" ? Op::kScan : name == "KEYS" ? Op::kKeys : Op::kDbsize, a);
  } else if (name == "MGET" || name == "DEL" || name == "UNLINK" || name == "EXISTS") {
    if (n < 2) return ImmediateError(ArityError(a[0]));
    StartKeyed(name == "MGET" ? Op::kMget : name == "EXISTS" ? Op::kExists : Op::kDel, a, 1);
  } else if (name == "PING") {
    if (n > 2) return ImmediateError(ArityError(a[0]));
    if (n == 1) {
      AppendSimpleString(&reply, "PONG");
    } else {
      AppendBulkString(&reply, a[1]);
    }
    Immediate(std::move(reply));
  } else if (name == "ECHO") {
    if (n != 2) return ImmediateError(ArityError(a[0]));
    AppendBulkString(&reply, a[1]);
    Immediate(std::move(reply));
  } else if (name == "QUIT") {
    AppendSimpleString(&reply, "OK");
    Immediate(std::move(reply));
    stop_reading_ = true;
  } else if (name == "SELECT") {
    if (n != 2) return ImmediateError(ArityError(a[0]));
    if (a[1] != "0")
      return ImmediateError("ERR DB index is out of range (ringkv has only database 0)");
    AppendSimpleString(&reply, "OK");
    Immediate(std::move(reply));
  } else if (name == "INFO") {
    StartInfo();  // sections are accepted and ignored: INFO is short
  } else if (name == "COMMAND") {
    Command(a);
  } else if (name == "CLIENT") {
    Client(a);
  } else if (name == "CONFIG") {
    Config(a);
  } else if (name == "RINGKV") {
    Ringkv(a);
  } else if (DispatchDataType(name, a)) {
    // a counter, set, map or TYPE command
  } else {
    std::string msg =
        fmt::format("ERR unknown command '{}', with args beginning with: ", Excerpt(a[0], 128));
    for (size_t i = 1; i < n && i <= 8; ++i) msg += fmt::format("'{}' ", Excerpt(a[i], 128));
    ImmediateError(msg);
  }
}

void RespSession::Command(const std::vector<std::string>& args) {
  // redis-cli and redis-benchmark ask for command docs and counts at start;
  // an empty answer is enough for them.
  std::string reply;
  if (args.size() >= 2 && Upper(args[1]) == "COUNT") {
    AppendInteger(&reply, 0);
  } else {
    AppendArrayHeader(&reply, 0);
  }
  Immediate(std::move(reply));
}

void RespSession::Client(const std::vector<std::string>& args) {
  if (args.size() < 2) return ImmediateError(ArityError(args[0]));
  std::string sub = Upper(args[1]);
  std::string reply;
  if (sub == "SETNAME") {
    if (args.size() != 3) return ImmediateError(ArityError("client|setname"));
    for (char c : args[2]) {
      if (c <= ' ' || c > '~') {
        return ImmediateError(
            "ERR Client names cannot contain spaces, newlines or special characters.");
      }
    }
    name_ = args[2];
    lww_ = Lower(name_) == "lww";
    AppendSimpleString(&reply, "OK");
  } else if (sub == "GETNAME") {
    if (name_.empty()) {
      AppendNil(&reply);
    } else {
      AppendBulkString(&reply, name_);
    }
  } else if (sub == "SETINFO") {
    if (args.size() != 4) return ImmediateError(ArityError("client|setinfo"));
    AppendSimpleString(&reply, "OK");  // client libraries announce themselves; nothing to keep
  } else {
    return ImmediateError(fmt::format(
        "ERR unknown subcommand '{}'. ringkv knows CLIENT SETNAME, GETNAME and SETINFO.",
        Excerpt(args[1])));
  }
  Immediate(std::move(reply));
}

void RespSession::Config(const std::vector<std::string>& args) {
  if (args.size() < 2) return ImmediateError(ArityError(args[0]));
  if (Upper(args[1]) != "GET") {
    return ImmediateError("ERR ringkv answers only CONFIG GET (and only for save and appendonly)");
  }
  // redis-benchmark reads these two to describe the server; ringkv has no
  // snapshots or append-only file (durability: README, "What ringkv promises").
  std::string reply;
  std::vector<std::pair<std::string, std::string>> found;
  for (size_t i = 2; i < args.size(); ++i) {
    std::string p = Lower(args[i]);
    if (p == "save") found.emplace_back("save", "");
    if (p == "appendonly") found.emplace_back("appendonly", "no");
  }
  AppendArrayHeader(&reply, found.size() * 2);
  for (const auto& [k, v] : found) {
    AppendBulkString(&reply, k);
    AppendBulkString(&reply, v);
  }
  Immediate(std::move(reply));
}

void RespSession::Ringkv(const std::vector<std::string>& args) {
  std::string reply;
  if (args.size() >= 2 && Upper(args[1]) == "LWW") {
    if (args.size() == 2) {
      AppendBulkString(&reply, lww_ ? "on" : "off");
      return Immediate(std::move(reply));
    }
    std::string v = Upper(args[2]);
    if (args.size() == 3 && (v == "ON" || v == "OFF")) {
      lww_ = v == "ON";
      AppendSimpleString(&reply, "OK");
      return Immediate(std::move(reply));
    }
  }
  ImmediateError("ERR usage: RINGKV LWW [ON|OFF]");
}

void RespSession::StartKeyed(Op op, std::vector<std::string>& args, size_t first_key) {
  size_t last_key = op == Op::kGet || op == Op::kSet ? first_key + 1 : args.size();
  if (last_key - first_key > options_.max_keys) {
    // Each key is a quorum request of its own: bound one command's fan-out.
    return ImmediateError(fmt::format("ERR {} keys in one command; ringkv takes at most {}",
                                      last_key - first_key, options_.max_keys));
  }
  for (size_t i = first_key; i < last_key; ++i) {
    std::string bad = CheckKey(args[i]);
    if (!bad.empty()) return ImmediateError(bad);
  }
  Pending p;
  p.seq = next_seq_++;
  p.op = op;
  p.lww = lww_;
  for (size_t i = first_key; i < last_key; ++i) p.parts.emplace_back(args[i]);
  p.waiting = p.parts.size();
  uint64_t seq = p.seq;
  queue_.push_back(std::move(p));
  const std::vector<Part>& parts = queue_.back().parts;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (op == Op::kSet) {
      PutRequest put;
      put.key = parts[i].key;
      put.value = std::move(args[first_key + 1]);  // values can be large
      // An lww write keeps only the newest sibling; a plain one is blind.
      put.quorum.lww = lww_;
      Send(seq, i, std::move(put));
    } else {
      // lww GETs are plain reads (the newest sibling is picked here): a read
      // with the lww flag would make read repair drop the others' siblings.
      Send(seq, i, GetRequest{parts[i].key, Quorum{}});
    }
  }
}

void RespSession::StartSet(std::vector<std::string>& a, bool setnx) {
  bool nx = setnx, xx = false;
  uint64_t ttl_ms = 0;
  for (size_t i = 3; i < a.size(); ++i) {
    std::string o = Upper(a[i]);
    if (o == "NX" && !xx) {
      nx = true;
    } else if (o == "XX" && !nx) {
      xx = true;
    } else if ((o == "EX" || o == "PX") && ttl_ms == 0 && i + 1 < a.size()) {
      int64_t v = 0;
      if (!ParseInt(a[++i], &v)) return ImmediateError("ERR value is not an integer or out of range");
      uint64_t unit = o == "EX" ? 1000 : 1;
      if (v <= 0 || static_cast<uint64_t>(v) > kMaxTtlMs / unit) {
        return ImmediateError("ERR invalid expire time in 'set' command");
      }
      ttl_ms = static_cast<uint64_t>(v) * unit;
    } else if (o == "GET" || o == "KEEPTTL" || o == "EXAT" || o == "PXAT") {
      return ImmediateError(fmt::format(
          "ERR syntax error: ringkv's SET takes NX, XX, EX and PX, not {}", Excerpt(o)));
    } else {
      return ImmediateError("ERR syntax error");
    }
  }
  std::string bad = CheckKey(a[1]);
  if (!bad.empty()) return ImmediateError(bad);
  Pending p;
  p.seq = next_seq_++;
  p.op = setnx ? Op::kSetNx : nx || xx ? Op::kSetIf : Op::kSet;
  p.lww = lww_;
  p.ttl_ms = ttl_ms;
  p.xx = xx;
  p.parts.emplace_back(a[1]);
  p.waiting = 1;
  uint64_t seq = p.seq;
  if (xx) {
    p.value = std::move(a[2]);
    queue_.push_back(std::move(p));
    Send(seq, 0, GetRequest{a[1], Quorum{}, {}});
    return;
  }
  PutRequest put;
  put.key = a[1];
  put.value = std::move(a[2]);  // values can be large
  put.ttl_ms = ttl_ms;
  put.if_absent = nx;
  // An lww write keeps only the newest sibling; a plain one is blind.
  put.quorum.lww = lww_;
  queue_.push_back(std::move(p));
  Send(seq, 0, std::move(put));
}

void RespSession::StartExpiry(Op op, std::vector<std::string>& a) {
  std::string name = Upper(a[0]);
  Pending p;
  p.op = op;
  p.millis = name == "PEXPIRE" || name == "PTTL";
  if (op == Op::kExpire) {
    if (a.size() > 3) {
      return ImmediateError("ERR ringkv's EXPIRE takes no options (NX, XX, GT, LT)");
    }
    int64_t v = 0;
    if (!ParseInt(a[2], &v)) return ImmediateError("ERR value is not an integer or out of range");
    uint64_t unit = p.millis ? 1 : 1000;
    if (v > 0 && static_cast<uint64_t>(v) > kMaxTtlMs / unit) {
      return ImmediateError(
          fmt::format("ERR invalid expire time in '{}' command", Lower(Excerpt(a[0]))));
    }
    p.expire_now = v <= 0;
    p.ttl_ms = v > 0 ? static_cast<uint64_t>(v) * unit : 0;
  }
  std::string bad = CheckKey(a[1]);
  if (!bad.empty()) return ImmediateError(bad);
  p.seq = next_seq_++;
  p.lww = lww_;
  p.parts.emplace_back(a[1]);
  p.waiting = 1;
  uint64_t seq = p.seq;
  queue_.push_back(std::move(p));
  Send(seq, 0, GetRequest{a[1], Quorum{}, {}});
}

void RespSession::StartListing(Op op, const std::vector<std::string>& a) {
  Pending p;
  p.op = op;
  std::string after;
  uint32_t limit = kMaxListPage;
  if (op == Op::kDbsize) {
    if (a.size() != 1) return ImmediateError(ArityError(a[0]));
  } else if (op == Op::kKeys) {
    if (a.size() != 2) return ImmediateError(ArityError(a[0]));
    p.pattern = a[1];
  } else {
    if (a.size() < 2) return ImmediateError(ArityError(a[0]));
    const std::string& cursor = a[1];
    uint64_t id = 0;
    bool digits = !cursor.empty() && cursor.size() <= 20 &&
                  std::all_of(cursor.begin(), cursor.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) return ImmediateError("ERR invalid cursor");
    id = std::strtoull(cursor.c_str(), nullptr, 10);
    if (id != 0) {
      auto it = scan_cursors_.find(id);
      if (it == scan_cursors_.end()) {
        return ImmediateError(fmt::format(
            "ERR invalid cursor (ringkv keeps the newest {} cursors of a connection; start again "
            "with 0)",
            kMaxScanCursors));
      }
      after = it->second;
    }
    p.pattern = "*";
    int64_t count = 10;
    for (size_t i = 2; i < a.size(); ++i) {
      std::string o = Upper(a[i]);
      if (o == "MATCH" && i + 1 < a.size()) {
        p.pattern = a[++i];
      } else if (o == "COUNT" && i + 1 < a.size()) {
        if (!ParseInt(a[++i], &count)) {
          return ImmediateError("ERR value is not an integer or out of range");
        }
        if (count < 1) return ImmediateError("ERR syntax error");
      } else if (o == "TYPE" && i + 1 < a.size()) {
        p.type_ok = Lower(a[++i]) == "string";
      } else {
        return ImmediateError("ERR syntax error");
      }
    }
    limit = static_cast<uint32_t>(std::min<int64_t>(count, kMaxListPage));
  }
  p.seq = next_seq_++;
  p.lww = lww_;
  p.parts.emplace_back(std::string());
  p.waiting = 1;
  queue_.push_back(std::move(p));
  SendListing(queue_.back(), std::move(after), limit);
}

void RespSession::SendListing(Pending& p, std::string after, uint32_t limit) {
  ListKeysRequest req;
  req.prefix = GlobLiteralPrefix(p.pattern);
  req.after = std::move(after);
  req.limit = limit;
  req.count_only = p.op == Op::kDbsize;
  Send(p.seq, 0, std::move(req));
}

uint64_t RespSession::NowMs() const {
  if (options_.wall_ms) return options_.wall_ms();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void RespSession::StartInfo() {
  Pending p;
  p.seq = next_seq_++;
  p.op = Op::kInfo;
  p.parts.emplace_back("status");
  p.parts.emplace_back("stats");
  p.waiting = 2;
  uint64_t seq = p.seq;
  queue_.push_back(std::move(p));
  Send(seq, 0, InfoRequest{"status", ""});
  Send(seq, 1, InfoRequest{"stats", ""});
}

void RespSession::StartAuth(std::vector<std::string>& args) {
  if (args.size() != 2 && args.size() != 3) return ImmediateError(ArityError(args[0]));
  Pending p;
  p.seq = next_seq_++;
  p.op = Op::kAuth;
  p.parts.emplace_back("auth");
  p.waiting = 1;
  uint64_t seq = p.seq;
  queue_.push_back(std::move(p));
  AuthRequest req;
  req.user = args.size() == 3 ? std::move(args[1]) : "default";
  req.password = std::move(args.back());
  auth_barrier_ = true;
  Send(seq, 0, std::move(req));
}

void RespSession::Send(uint64_t seq, size_t part, Body body) {
  uint64_t id = next_request_id_++;
  in_flight_[id] = {seq, part};
  requests_.push_back(Envelope{id, {}, {}, std::move(body)});
}

void RespSession::OnReply(const Envelope& env) {
  auto it = in_flight_.find(env.request_id);
  if (it == in_flight_.end()) return;
  auto [seq, index] = it->second;
  in_flight_.erase(it);
  if (queue_.empty() || seq < queue_.front().seq || seq - queue_.front().seq >= queue_.size())
    return;
  Pending& p = queue_[seq - queue_.front().seq];
  OnPartReply(p, index, env);
  Flush();
  Pump();  // the queue may have room again for commands already buffered
}

void RespSession::OnPartReply(Pending& p, size_t index, const Envelope& env) {
  Part& part = p.parts[index];
  if (p.op == Op::kAuth) {
    auth_barrier_ = false;
    const auto* reply = std::get_if<Reply>(&env.body);
    if (reply == nullptr) {
      part.error = "ERR unexpected answer from the node";
    } else if (reply->status.code() == Status::Code::kUnauthenticated) {
      part.error = "WRONGPASS invalid username-password pair or user is disabled.";
    } else if (!reply->status.ok()) {
      part.error = RespErrorFor(reply->status);
    } else {
      SetAuthenticated();
    }
    return FinishPart(p, part);
  }
  if (p.op >= Op::kDataWrite && p.op <= Op::kHexists) return OnDataTypeReply(p, part, env);
  if (p.op == Op::kInfo) {
    const auto* info = std::get_if<InfoReply>(&env.body);
    if (info == nullptr) {
      part.error = "ERR unexpected answer from the node";
    } else if (!info->status.ok()) {
      part.error = RespErrorFor(info->status);
    } else {
      part.value = info->json;
    }
    return FinishPart(p, part);
  }
  if (p.op == Op::kScan || p.op == Op::kKeys || p.op == Op::kDbsize) {
    return OnListReply(p, part, env);
  }
  const auto* reply = std::get_if<Reply>(&env.body);
  if (reply == nullptr) {
    part.error = "ERR unexpected answer from the node";
    return FinishPart(p, part);
  }
  bool direct_put = p.op == Op::kSet || p.op == Op::kSetNx || (p.op == Op::kSetIf && !p.xx);
  if (direct_put || part.deleting) {
    if (reply->status.ok()) {
      part.exists = true;
      part.number = 1;
    } else if (reply->status.code() == Status::Code::kConditionFailed && p.op != Op::kSet) {
      part.exists = false;  // NX: the key has a value
    } else {
      part.error = RespErrorFor(reply->status);
    }
    return FinishPart(p, part);
  }
  if (p.op == Op::kSetIf || p.op == Op::kExpire || p.op == Op::kPersist || p.op == Op::kTtl) {
    return OnReadForWrite(p, index, *reply);
  }
  OnGetReply(p, part, *reply);
  if (p.op == Op::kDel && part.exists && part.error.empty()) {
    // Delete exactly what was read: the context covers every sibling seen.
    part.deleting = true;
    PutRequest del;
    del.key = part.key;
    del.tombstone = true;
    del.context = EncodeContext(reply->object->clock());
    Send(p.seq, index, std::move(del));
    return;
  }
  FinishPart(p, part);
}

void RespSession::OnReadForWrite(Pending& p, size_t index, const Reply& reply) {
  Part& part = p.parts[index];
  if (!reply.status.ok() && !reply.status.IsNotFound()) {
    part.error = RespErrorFor(reply.status);
    return FinishPart(p, part);
  }
  // The node left expired siblings out of its answer already.
  const DvvSet* object = reply.status.ok() && reply.object ? &*reply.object : nullptr;
  std::vector<const Sibling*> live;
  if (object) live = object->LiveSiblings();
  PutRequest write;
  write.key = part.key;
  write.quorum.lww = p.lww;
  if (object) write.context = EncodeContext(object->clock());
  if (p.op == Op::kSetIf) {  // XX: replace what was read, if anything
    if (live.empty()) return FinishPart(p, part);
    write.value = std::move(p.value);
    write.ttl_ms = p.ttl_ms;
    part.deleting = true;
    Send(p.seq, index, std::move(write));
    return;
  }
  // One value: the newest in lww mode, else the only one.
  std::optional<Sibling> one;
  if (object && p.lww) {
    DvvSet newest = DvvSet::CollapseLww(*object);
    if (!newest.siblings().empty() && !newest.siblings()[0].tombstone) one = newest.siblings()[0];
  } else if (live.size() > 1) {
    ++stats_->conflicts;
    part.error = ConflictError(part.key, live.size());
    return FinishPart(p, part);
  } else if (live.size() == 1) {
    one = *live[0];
  }
  if (!one) {
    part.number = p.op == Op::kTtl ? -2 : 0;
    return FinishPart(p, part);
  }
  if (p.op == Op::kTtl) {
    uint64_t now = NowMs();
    if (one->expires_ms == 0) {
      part.number = -1;
    } else if (one->expires_ms <= now) {
      part.number = -2;
    } else {
      uint64_t left = one->expires_ms - now;
      part.number = static_cast<int64_t>(p.millis ? left : (left + 500) / 1000);
    }
    return FinishPart(p, part);
  }
  if (p.op == Op::kPersist) {
    if (one->expires_ms == 0) return FinishPart(p, part);  // 0: nothing to persist
    write.persist = true;
  } else if (p.expire_now) {
    write.tombstone = true;  // EXPIRE with a time <= 0 deletes, as in Redis
  } else {
    write.ttl_ms = p.ttl_ms;
  }
  if (!write.tombstone) write.value = std::move(one->value);
  part.deleting = true;
  Send(p.seq, index, std::move(write));
}

void RespSession::OnListReply(Pending& p, Part& part, const Envelope& env) {
  const auto* reply = std::get_if<ListKeysReply>(&env.body);
  if (reply == nullptr) {
    part.error = "ERR unexpected answer from the node";
    return FinishPart(p, part);
  }
  if (!reply->status.ok()) {
    part.error = RespErrorFor(reply->status);
    return FinishPart(p, part);
  }
  if (!reply->missed.empty()) {
    std::string which;
    for (size_t i = 0; i < reply->missed.size() && i < 8; ++i) {
      which += (i ? "," : "") + std::to_string(reply->missed[i]);
    }
    part.error = fmt::format(
        "UNAVAILABLE the listing is incomplete: no live replica answered for {} partition{} "
        "({}{})",
        reply->missed.size(), reply->missed.size() == 1 ? "" : "s", which,
        reply->missed.size() > 8 ? ",..." : "");
    return FinishPart(p, part);
  }
  if (p.op == Op::kDbsize) {
    part.number = static_cast<int64_t>(reply->count);
    return FinishPart(p, part);
  }
  for (const std::string& key : reply->keys) {
    if (p.type_ok && GlobMatch(p.pattern, key)) p.listed.push_back(key);
  }
  bool more = reply->more && !reply->keys.empty();
  if (p.op == Op::kKeys) {
    if (p.listed.size() > options_.max_keys_reply) {
      part.error = fmt::format("ERR KEYS matched more than {} keys; use SCAN",
                               options_.max_keys_reply);
      p.listed.clear();
      return FinishPart(p, part);
    }
    if (more) return SendListing(p, reply->keys.back(), kMaxListPage);
    return FinishPart(p, part);
  }
  if (more) {
    uint64_t id = next_scan_cursor_++;
    scan_cursors_[id] = reply->keys.back();
    while (scan_cursors_.size() > kMaxScanCursors) scan_cursors_.erase(scan_cursors_.begin());
    p.next_cursor = std::to_string(id);
  }
  FinishPart(p, part);
}

void RespSession::OnGetReply(Pending& p, Part& part, const Reply& reply) {
  if (!reply.status.ok() && !reply.status.IsNotFound()) {
    part.error = RespErrorFor(reply.status);
    return;
  }
  if (reply.status.IsNotFound() || !reply.object) return;  // missing or deleted: nil
  const DvvSet& object = *reply.object;
  if (OnDataTypeGet(p, part, object)) return;
  if (p.lww) {
    // The newest sibling by (timestamp, dot), as an lww write would keep.
    DvvSet newest = DvvSet::CollapseLww(object);
    if (newest.siblings().empty() || newest.siblings()[0].tombstone) return;
    part.exists = true;
    part.value = newest.siblings()[0].value;
    return;
  }
  std::vector<const Sibling*> live = object.LiveSiblings();
  if (live.empty()) return;
  part.exists = true;
  if (live.size() == 1) {
    part.value = live[0]->value;
  } else if (p.op == Op::kGet || p.op == Op::kMget) {
    ++stats_->conflicts;
    part.error = ConflictError(part.key, live.size());
  }
}

void RespSession::FinishPart(Pending& p, Part& part) {
  part.done = true;
  if (--p.waiting > 0) return;
  p.done = true;
  p.reply = EncodeReply(p);
  held_reply_bytes_ += p.reply.size();
  p.parts.clear();  // values can be large; only the reply is kept
  p.parts.shrink_to_fit();
  p.listed.clear();
  p.listed.shrink_to_fit();
  p.value.clear();
}

std::string RespSession::EncodeReply(const Pending& p) {
  std::string out;
  for (const Part& part : p.parts) {
    if (!part.error.empty()) {
      AppendError(&out, part.error);
      return out;
    }
  }
  int64_t count = 0;
  for (const Part& part : p.parts) count += part.exists ? 1 : 0;
  switch (p.op) {
    case Op::kGet:
      if (p.parts[0].exists) {
        AppendBulkString(&out, p.parts[0].value);
      } else {
        AppendNil(&out);
      }
      break;
    case Op::kMget:
      AppendArrayHeader(&out, p.parts.size());
      for (const Part& part : p.parts) {
        if (part.exists) {
          AppendBulkString(&out, part.value);
        } else {
          AppendNil(&out);
        }
      }
      break;
    case Op::kSet:
    case Op::kAuth:
      AppendSimpleString(&out, "OK");
      break;
    case Op::kDel:
    case Op::kExists:
      AppendInteger(&out, count);
      break;
    case Op::kInfo:
      AppendBulkString(&out, InfoText(p));
      break;
    case Op::kSetNx:
      AppendInteger(&out, p.parts[0].exists ? 1 : 0);
      break;
    case Op::kSetIf:
      if (p.parts[0].exists) {
        AppendSimpleString(&out, "OK");
      } else {
        AppendNil(&out);
      }
      break;
    case Op::kExpire:
    case Op::kPersist:
    case Op::kTtl:
    case Op::kDbsize:
      AppendInteger(&out, p.parts[0].number);
      break;
    case Op::kScan:
      AppendArrayHeader(&out, 2);
      AppendBulkString(&out, p.next_cursor);
      [[fallthrough]];
    case Op::kKeys:
      AppendArrayHeader(&out, p.listed.size());
      for (const std::string& k : p.listed) AppendBulkString(&out, k);
      break;
    default:  // data types
      out += p.parts[0].encoded;
      break;
  }
  return out;
}

std::string RespSession::InfoText(const Pending& p) const {
  json status = json::parse(p.parts[0].value, nullptr, false);
  json stats = json::parse(p.parts[1].value, nullptr, false);
  std::string out = "# Server\r\n";
  out += fmt::format("ringkv_version:{}\r\n", JsonText(status, "version"));
  for (const char* k : {"node", "cluster", "address", "state", "uptime_s", "ring_size"}) {
    out += fmt::format("{}:{}\r\n", k, JsonText(status, k));
  }
  if (status.is_object() && status.contains("defaults") && status["defaults"].is_object()) {
    for (const auto& [k, v] : status["defaults"].items()) {
      out += fmt::format("default_{}:{}\r\n", k, v.is_string() ? v.get<std::string>() : v.dump());
    }
  }
  out += "\r\n# Members\r\n";
  size_t members = 0, up = 0, alive = 0;
  std::string lines;
  if (status.is_object() && status.contains("members") && status["members"].is_array()) {
    for (const json& m : status["members"]) {
      ++members;
      bool is_up = JsonText(m, "state") == "up";
      bool is_alive = m.value("alive", false);
      up += is_up ? 1 : 0;
      alive += is_alive ? 1 : 0;
      lines += fmt::format("member_{}:address={},state={},alive={}\r\n", JsonText(m, "id"),
                           JsonText(m, "address"), JsonText(m, "state"), is_alive ? 1 : 0);
    }
  }
  out += fmt::format("members:{}\r\nmembers_up:{}\r\nmembers_alive:{}\r\n", members, up, alive);
  out += lines;
  out += "\r\n# Stats\r\n";
  AppendNumbers(stats, "", &out);
  out += "\r\n# RESP\r\n";
  out += fmt::format("resp_mode:{}\r\n", lww_ ? "lww" : "siblings");
  out += fmt::format("resp_connections_open:{}\r\nresp_connections_accepted:{}\r\n",
                     stats_->connections_open, stats_->connections_accepted);
  out += fmt::format("resp_commands:{}\r\nresp_error_replies:{}\r\nresp_conflicts:{}\r\n",
                     stats_->commands, stats_->error_replies, stats_->conflicts);
  out += fmt::format("resp_protocol_errors:{}\r\n", stats_->protocol_errors);
  return out;
}

}  // namespace ringkv
