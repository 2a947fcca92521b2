// libFuzzer target: the Redis-protocol parser and session (resp/). Every
// byte a Redis client sends goes through them; nothing may crash, hang or
// grow past the limits, whatever the bytes and wherever reads split them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/message.h"
#include "resp/parser.h"
#include "resp/session.h"

using namespace ringkv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  uint8_t mode = data[0];
  RespLimits limits;
  limits.max_bulk_bytes = 64;
  limits.max_bulk_header_bytes = (mode & 1) ? 64 : 4096;
  limits.max_args = 16;
  limits.max_inline_bytes = 256;
  limits.max_command_bytes = 1024;

  // The parser alone, fed in pieces.
  RespParser parser(limits);
  size_t at = 0;
  while (at < all.size()) {
    size_t piece = 1 + static_cast<uint8_t>(all[at]) % 61;
    parser.Append(all.substr(at, piece));
    at += piece;
    RespCommand cmd;
    std::string error;
    RespParser::Result r;
    while ((r = parser.Next(&cmd, &error)) == RespParser::Result::kCommand) {
      if (cmd.args.size() > limits.max_args) __builtin_trap();
    }
    if (parser.memory() > 64 * 1024) __builtin_trap();
    if (r == RespParser::Result::kError) break;
  }

  // The session: its requests are answered at once, as a node on one
  // machine would, with a reply chosen by the mode.
  RespOptions o;
  o.limits = limits;
  o.max_pending = 8;
  o.max_keys = 8;
  o.auth_required = mode & 2;
  o.commands_per_turn = (mode & 4) ? 3 : 0;
  RespStats stats;
  RespSession session(o, &stats);
  session.Feed(all);
  for (int round = 0; round < 64; ++round) {
    auto reqs = session.TakeRequests();
    if (reqs.empty()) {
      if (!session.backlogged()) break;
      session.RunBacklog();
      continue;
    }
    for (const Envelope& req : reqs) {
      if (std::holds_alternative<InfoRequest>(req.body)) {
        session.OnReply(Envelope{req.request_id, {}, {}, InfoReply{Status::OK(), "{\"members\":[{}]}"}});
      } else if (mode & 8) {
        session.OnReply(Envelope{req.request_id, {}, {}, Reply{Status::Unavailable("x"), {}, {}}});
      } else {
        session.OnReply(Envelope{req.request_id, {}, {}, Reply{Status::NotFound("x"), {}, {}}});
      }
    }
  }
  session.TakeOutput();
  return 0;
}
