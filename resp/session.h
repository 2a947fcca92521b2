// RespSession: one Redis-protocol (RESP2) client connection, translated into
// the node's own client requests.
//
// The runtime feeds it the bytes a client sends and the node's answers; it
// hands back request envelopes for the node (GetRequest, PutRequest,
// InfoRequest, with request ids of its own) and the reply bytes for the
// client. It does no I/O, so tests drive it with crafted bytes and replies.
//
// Promises:
//  - Replies go out in command order, whatever order the node answers in
//    (pipelined commands run concurrently; a queue holds finished replies
//    behind unfinished ones).
//  - At most max_pending commands are queued, and about max_pending node
//    requests in flight (plus one command's keys, at most max_keys); past
//    that the session parses nothing more (full() tells the runtime to stop
//    reading) until replies drain, so a pipelining client cannot make the
//    node buffer or fan out without bound.
//  - Requests use the node's default n/r/w and mode.
//
// Commands and what they mean on a Dynamo store (README, "Redis protocol"):
//  GET k          the value; nil if missing or deleted. A key with siblings is
//                 an error, "-CONFLICT key 'k' has 2 siblings; ...", unless the
//                 connection is in last-writer-wins mode, where GET returns the
//                 sibling with the newest timestamp (nil if that is a delete).
//  SET k v [NX|XX] [EX s|PX ms]
//                 a blind write (no causal context): concurrent with whatever
//                 the key holds, so it adds a sibling to it. In lww mode it is
//                 an lww write, which keeps only the newest sibling. EX/PX: the
//                 value expires (a ttl). NX: a conditional write (if-absent:
//                 the coordinating replica reads at the quorum first; not
//                 linearizable), nil when the key has a value. XX: reads the
//                 key and, if it has a value, writes with the read's context
//                 (replacing what was read); nil otherwise.
//  SETNX k v      SET k v NX, answered 1 / 0.
//  EXPIRE k s, PEXPIRE k ms
//                 a read, then a write of the same value with the read's
//                 context and the new expiry (a time <= 0 deletes the key);
//                 1, or 0 when the key has no value.
//  PERSIST k      the same with no expiry; 0 when the key has none.
//  TTL k, PTTL k  seconds / ms left (by this node's clock); -2 when the key
//                 has no value, -1 when it does not expire.
//  SCAN cursor [MATCH p] [COUNT n] [TYPE string]
//                 a page of the default bucket's keys by coverage (node/
//                 key_listing.h). redis-cli parses cursors as integers, so
//                 the session keeps a table from integer cursors to listing
//                 cursors (the last key of a page), the newest
//                 kMaxScanCursors of them; "0" starts and ends.
//  KEYS p         every matching key (at most max_keys_reply, else an error).
//  DBSIZE         the live keys of the default bucket, counted by coverage.
//  A listing that misses partitions (no live replica) is an error, since
//  RESP cannot say "incomplete".
//  DEL k...       reads each key, then deletes it with the context it read (a
//                 blind delete would leave the values it did not see); answers
//                 how many keys existed (had a value GET would not give as nil).
//  MGET k...      the GETs of each key, in order; if one fails (conflict,
//                 quorum), the whole command answers that key's error.
//  EXISTS k...    how many of the keys exist (repeats count again, as in Redis).
//  PING [msg], ECHO msg, SELECT 0, QUIT, INFO [section], COMMAND ...,
//  CONFIG GET save|appendonly (what redis-benchmark asks), CLIENT SETNAME |
//  GETNAME | SETINFO, RINGKV LWW [ON|OFF].
//  AUTH password | AUTH user password: logs in as an ACL user ("default" when
//                 no user is given, as Redis does) through an AuthRequest;
//                 "+OK", or "-WRONGPASS ...". Commands after an AUTH run once
//                 it is answered. On a node with users (auth_required), every
//                 command but AUTH, PING, QUIT (and HELLO, which is unknown)
//                 answers "-NOAUTH Authentication required." until then, and
//                 the parser takes only small commands (a few KB).
//  The mode: CLIENT SETNAME lww or RINGKV LWW ON turn lww on for the
//  connection; any other name or RINGKV LWW OFF turn it off.
// Convergent data types (resp/session_datatypes.cc; core/datatypes.h): a key
// is a counter, a set or a map (a Redis hash) from its first write on.
//  INCR, INCRBY, DECR, DECRBY k   counter operations: the value the
//                 coordinating replica holds afterwards; GET k on a counter
//                 answers its value (MGET too).
//  SADD, SREM k m...; SMEMBERS, SCARD k; SISMEMBER k m   an add-wins set.
//  HSET k f v [f v ...]; HGET k f; HDEL k f...; HGETALL, HLEN k; HEXISTS k f;
//  HINCRBY k f n   a map of registers (last writer wins) and counters.
//  TYPE k         none, string (plain values, counters), set or hash.
// An operation on a key of another type is -WRONGTYPE, as in Redis (SET on a
// data-type key too: a key's type is fixed by its first write).
// Node errors map to "-UNAVAILABLE <message>" (quorum not met), "-TIMEOUT
// <message>", and "-ERR <message>" (bad input, too large).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/message.h"
#include "resp/parser.h"

namespace ringkv {

// Counters shared by every RESP connection of a node (shown by INFO).
struct RespStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0;
  uint64_t commands = 0;
  uint64_t error_replies = 0;    // commands answered with an error of any kind
  uint64_t conflicts = 0;        // GET/MGET refused because a key has siblings
  uint64_t protocol_errors = 0;  // connections closed for malformed input
};

struct RespOptions {
  RespLimits limits;
  bool lww = false;           // the mode a new connection starts in
  size_t max_pending = 1024;  // queued commands (and node requests) per connection
  size_t max_keys = 10000;    // keys of one MGET, DEL or EXISTS
  size_t max_keys_reply = 100000;  // keys one KEYS answers (more: an error, use SCAN)
  // The node's wall clock (ms since the epoch), for TTL and PTTL. Unset:
  // TTL answers as if no time had passed since the write.
  std::function<uint64_t()> wall_ms;
  // The node has users: a connection must AUTH first.
  bool auth_required = false;
  // Commands parsed per Feed or RunBacklog call (0: no limit), so one
  // pipelining client cannot hold the node's loop: the rest wait for
  // RunBacklog on a later loop turn (backlogged()).
  size_t commands_per_turn = 0;
};

// The parser's limits before a connection has authenticated: a few small
// arguments (AUTH user password), as Redis limits unauthenticated clients.
RespLimits PreAuthLimits(const RespLimits& limits);

class RespSession {
 public:
  RespSession(RespOptions options, RespStats* stats);

  // Bytes from the client.
  void Feed(std::string_view data);
  // Runs commands left buffered when the turn's budget ran out.
  void RunBacklog();
  // Complete commands may be waiting for RunBacklog.
  bool backlogged() const;
  // The connection is closing: drops buffered input, queued replies and
  // output at once (not from inside a call into the session).
  void ReleaseMemory();
  // The connection authenticated another way (a client certificate).
  void SetAuthenticated();
  bool authenticated() const { return authenticated_; }
  // Memory held for this client: unparsed input, the command being read,
  // and finished replies not yet taken (counted against the connection's
  // output limit by the runtime).
  size_t memory() const { return parser_.memory() + held_reply_bytes_ + output_.size(); }
  // The node's answer (Reply or InfoReply) to one of this session's
  // requests; answers to unknown request ids are ignored.
  void OnReply(const Envelope& env);

  // Requests for the node, oldest first.
  std::vector<Envelope> TakeRequests();
  // Reply bytes to send, in command order.
  std::string TakeOutput();

  // The client is to be disconnected once the output is written (QUIT, or a
  // protocol error); no more commands are read.
  bool finished() const { return stop_reading_ && queue_.empty(); }
  // Too many commands queued: stop reading until this is false again.
  bool full() const {
    return queue_.size() >= options_.max_pending || in_flight_.size() >= options_.max_pending;
  }
  // Why the session finished: a protocol error (logged), or QUIT.
  bool protocol_error() const { return protocol_error_; }
  bool lww() const { return lww_; }
  size_t queued() const { return queue_.size(); }

 private:
  enum class Op {
    kGet, kMget, kSet, kDel, kExists, kInfo,
    // Data types (kDataWrite .. kHexists, in this order): one request each.
    // kDataWrite is answered with the node's integer; the others read the key
    // (a GetRequest) and answer from it.
    kDataWrite, kType, kSmembers, kSismember, kScard, kHget, kHgetall, kHlen, kHexists,
    kSetNx,     // SETNX: 1 / 0
    kSetIf,     // SET ... NX / XX: OK / nil
    kExpire,    // EXPIRE, PEXPIRE
    kPersist,
    kTtl,       // TTL, PTTL (Pending.millis)
    kScan,
    kKeys,
    kDbsize,
    kAuth,
  };
  // One key of a command (or one info topic), and what became of it.
  struct Part {
    explicit Part(std::string k) : key(std::move(k)) {}
    std::string key;
    bool done = false;
    bool deleting = false;  // DEL: the read is done, the delete is in flight
                            // (also the write of SET XX, EXPIRE, PERSIST)
    int64_t number = 0;     // integer answers (TTL, EXPIRE, ...)
    bool exists = false;    // GET-like: not nil
    std::string value;      // GET-like: the value; kInfo: the JSON document
    std::string error;      // non-empty: the error reply for this part
    std::string encoded;    // data types: the encoded reply
  };
  struct Pending {
    uint64_t seq = 0;
    Op op = Op::kGet;
    bool lww = false;
    std::vector<std::string> args;  // data-type reads: the member or field asked about
    std::vector<Part> parts;
    size_t waiting = 0;  // parts not done
    bool done = false;
    std::string reply;  // encoded, once done
    // SET / EXPIRE: the expiry (ms; 0: none), and what is written.
    uint64_t ttl_ms = 0;
    bool expire_now = false;  // EXPIRE with a time <= 0: a delete
    bool xx = false;          // SET XX: read first
    std::string value;        // SET XX's value
    bool millis = false;      // PTTL, PEXPIRE
    // Listings (SCAN, KEYS, DBSIZE).
    std::string pattern;
    bool type_ok = true;      // SCAN TYPE: only "string" has keys
    std::vector<std::string> listed;
    std::string next_cursor = "0";
  };

  // Parses and dispatches buffered commands while the queue has room.
  void Pump();
  void Dispatch(RespCommand cmd);
  // Queues a reply that is known at once.
  void Immediate(std::string reply);
  void ImmediateError(std::string_view message);
  // Queues a command that waits for the node, one request per part (a SET's
  // value is moved out of args).
  void StartKeyed(Op op, std::vector<std::string>& args, size_t first_key);
  void StartInfo();
  void StartAuth(std::vector<std::string>& args);
  void Send(uint64_t seq, size_t part, Body body);

  void OnPartReply(Pending& p, size_t index, const Envelope& env);
  void OnGetReply(Pending& p, Part& part, const Reply& reply);
  void FinishPart(Pending& p, Part& part);
  std::string EncodeReply(const Pending& p);
  std::string InfoText(const Pending& p) const;
  // Moves finished replies at the head of the queue to the output.
  void Flush();

  // Data types (resp/session_datatypes.cc). DispatchDataType: false if
  // name is not a data-type command.
  bool DispatchDataType(const std::string& name, std::vector<std::string>& args);
  void StartDataTypeRead(Op op, const std::string& key, std::vector<std::string> args);
  void StartDataTypeWrite(DataTypeRequest req);
  void OnDataTypeReply(Pending& p, Part& part, const Envelope& env);
  // GET and MGET of a key that holds a data type: true if it did (and set
  // the part's answer).
  bool OnDataTypeGet(Pending& p, Part& part, const DvvSet& object);
  void StartSet(std::vector<std::string>& args, bool setnx);
  void StartExpiry(Op op, std::vector<std::string>& args);
  void StartListing(Op op, const std::vector<std::string>& args);
  // Sends the next page request of a listing.
  void SendListing(Pending& p, std::string after, uint32_t limit);
  void OnListReply(Pending& p, Part& part, const Envelope& env);
  // The read half of SET XX, EXPIRE, PERSIST, TTL: decides the answer or
  // sends the write.
  void OnReadForWrite(Pending& p, size_t index, const Reply& reply);
  uint64_t NowMs() const;

  void Command(const std::vector<std::string>& args);
  void Client(const std::vector<std::string>& args);
  void Config(const std::vector<std::string>& args);
  void Ringkv(const std::vector<std::string>& args);

  RespOptions options_;
  RespStats* stats_;
  RespParser parser_;
  bool lww_;
  std::string name_;  // CLIENT SETNAME
  bool stop_reading_ = false;
  bool protocol_error_ = false;
  bool authenticated_ = true;
  bool auth_barrier_ = false;  // an AUTH waits for its answer: parse nothing after it
  size_t budget_ = 0;          // commands this call may still parse
  size_t held_reply_bytes_ = 0;  // finished replies in queue_
  uint64_t next_seq_ = 1;
  uint64_t next_request_id_ = 1;
  std::deque<Pending> queue_;                                  // consecutive seqs, oldest first
  std::map<uint64_t, std::pair<uint64_t, size_t>> in_flight_;  // request id -> (seq, part)
  std::vector<Envelope> requests_;
  std::string output_;
  // SCAN: integer cursors handed out -> the listing cursor (a key).
  static constexpr size_t kMaxScanCursors = 1024;
  std::map<uint64_t, std::string> scan_cursors_;
  uint64_t next_scan_cursor_ = 1;
};

// "UNAVAILABLE <message>", "TIMEOUT <message>", "ERR <message>": the error
// reply (without the leading '-') for a failed node request.
std::string RespErrorFor(const Status& status);

}  // namespace ringkv
