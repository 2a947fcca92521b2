// Client: the C++ library the `ringkv` tool, the benchmarks and the tests use
// to talk to a node.
//
// One Client is one TCP connection to one node, used from one thread.
// Calls block until the node answers or the timeout passes. Send()/Receive()
// expose the raw envelope stream for pipelining (several requests written
// before any reply is read; replies carry the request id).
//
// Errors: a connection problem is IOError naming the address; a node's
// refusal keeps the node's code (InvalidArgument, Unavailable for an unmet
// quorum, Timeout, WrongCluster).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/codec.h"
#include "core/datatypes.h"
#include "core/dvv.h"
#include "core/limits.h"
#include "core/message.h"
#include "core/status.h"

namespace ringkv {

struct GetResult {
  bool found = false;
  // The merged object: live siblings and tombstones, with dots. Present (and
  // possibly all tombstones) when the key has history, even if not found.
  DvvSet object;
  // Serialized causal context to pass to Put/Delete (empty if no history).
  std::string context;
  // The bucket's sibling warning level, as the node said (0: not said).
  uint32_t warn_siblings = 0;
};

struct PutResult {
  DvvSet object;        // the object as the coordinating replica stored it
  std::string context;  // its causal context: pass it to the next write
  Dot dot;              // the dot minted for this write
};

// A read of a counter, set or map: what the key holds (the join of its
// live states) and the merged object it came from.
struct DataTypeReadResult {
  bool found = false;    // false: never written, or deleted (an empty value)
  DataTypeState state;   // the key's value; empty when not found
  DvvSet object;         // the merged object (its clock is the context)
  std::string context;   // serialized causal context (empty if no history)
};

// The answer to a data-type operation.
struct DataTypeResult {
  int64_t integer = 0;     // INCR: the new value; SADD: members added; ...
  std::optional<Dot> dot;  // the write's dot (none when nothing was written)
};

class Client {
 public:
  // Connects to "host:port". timeout_ms bounds the connect and every call.
  static Result<std::unique_ptr<Client>> Connect(const std::string& address,
                                                 int timeout_ms = 10000);
  // Starts connecting and returns at once, for callers that wait on many
  // sockets (an event loop must not sit in connect() while a host does not
  // answer). Poll Connected() until it is true before using the Client.
  static Result<std::unique_ptr<Client>> StartConnect(const std::string& address, int timeout_ms);
  // True once a StartConnect connection is up (at once for Connect's), false
  // while it is still being made, an IOError if it failed.
  Result<bool> Connected();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result<GetResult> Get(std::string_view key, const Quorum& quorum = {});
  // context: from an earlier Get/Put (empty: a blind write).
  Result<PutResult> Put(std::string_view key, std::string_view value, std::string_view context = {},
                        const Quorum& quorum = {});
  Result<PutResult> Delete(std::string_view key, std::string_view context = {},
                           const Quorum& quorum = {});
  // A counter, set or map operation (not a read): req.key, req.type,
  // req.op, req.args, req.delta, req.bucket, req.quorum.
  Result<DataTypeResult> DataTypeOperation(DataTypeRequest req);
  // A quorum read of a key of `type`: WrongType if it holds plain values or
  // another type; not found is an empty value (found = false), not an error.
  Result<DataTypeReadResult> DataTypeRead(std::string_view key, DataType type,
                                          std::string_view bucket = {}, const Quorum& quorum = {});

  // The same with every field of the request (bucket, ttl, conditions).
  Result<GetResult> Get(GetRequest req);
  // A put or, with req.tombstone, a delete. ConditionFailed when an
  // if_absent / if_unchanged condition did not hold.
  Result<PutResult> Put(PutRequest req);
  // One page of a bucket's keys (or their count), by coverage.
  Result<ListKeysReply> ListKeys(ListKeysRequest req);
  // A JSON document: topic is status, ring, stats or preflist (arg: key).
  Result<std::string> Info(std::string_view topic, std::string_view arg = {});

  // Raw stream. Send assigns no id: callers set request_id themselves.
  Status Send(const Envelope& env);
  Status SendBytes(std::string_view bytes);
  // Next envelope from the node (in the order the node answered).
  Result<Envelope> Receive();
  // The next envelope if one has arrived, without waiting: nullopt when none
  // is complete yet. For callers that wait on many connections at once (fd).
  Result<std::optional<Envelope>> TryReceive();
  int fd() const { return fd_; }

  const std::string& address() const { return address_; }
  // Sets the timeout for later calls.
  void set_timeout_ms(int ms) { timeout_ms_ = ms; }

 private:
  Client(int fd, std::string address, int timeout_ms);
  static Result<std::unique_ptr<Client>> Open(const std::string& address, int timeout_ms, bool wait);
  Result<Envelope> Call(Body body);
  Result<PutResult> Write(PutRequest req);

  int fd_;
  std::string address_;
  int timeout_ms_;
  bool connecting_ = false;  // StartConnect's connect() still under way
  uint64_t next_request_id_ = 1;
  FrameReader reader_{kDefaultMaxFrameBytes + 1024};
};

}  // namespace ringkv
