#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include <fmt/format.h>

#include "client/cli/cli.h"
#include "core/codec.h"

namespace ringkv::cli {

void AddQuorumOptions(CLI::App* cmd, QuorumOptions* q, bool reads) {
  cmd->add_option("--n", q->n, "Replicas for this request (default: the node's)")
      ->check(CLI::Range(1, 64))
      ->group("Quorum");
  if (reads) {
    cmd->add_option("--r", q->r, "Replies needed before answering (read quorum)")
        ->check(CLI::Range(1, 64))
        ->group("Quorum");
    cmd->add_option("--pr", q->pr, "Of those, replies needed from primary replicas")
        ->check(CLI::Range(0, 64))
        ->group("Quorum");
  } else {
    cmd->add_option("--w", q->w, "Acknowledgements needed before answering (write quorum)")
        ->check(CLI::Range(1, 64))
        ->group("Quorum");
    cmd->add_option("--pw", q->pw, "Of those, acknowledgements needed from primary replicas")
        ->check(CLI::Range(0, 64))
        ->group("Quorum");
  }
  cmd->add_option("--request-timeout-ms", q->timeout_ms,
                  "How long the coordinating node waits for replicas (default: the node's)")
      ->check(CLI::Range(1, 600000))
      ->group("Quorum");
  auto* sloppy = cmd->add_flag("--sloppy", q->sloppy,
                               "Sloppy quorum: fallbacks may stand in for primaries that are down")
                     ->group("Quorum");
  auto* strict =
      cmd->add_flag("--strict", q->strict, "Strict quorum: primary replicas only")->group("Quorum");
  sloppy->excludes(strict);
  cmd->add_flag("--lww", q->lww,
                "Last-write-wins: collapse siblings to the newest (loses concurrent writes; "
                "for comparison only)")
      ->group("Quorum");
}


int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return kExitOk;
    case Status::Code::kNotFound: return kExitNotFound;
    case Status::Code::kIOError: return kExitConnection;
    case Status::Code::kUnavailable:
    case Status::Code::kTimeout: return kExitQuorum;
    case Status::Code::kUnauthenticated:
    case Status::Code::kPermissionDenied: return kExitAuth;
    case Status::Code::kConditionFailed: return kExitCondition;
    default: return kExitRefused;
  }
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void PrintJson(const json& j) { fmt::print("{}\n", Dump(j)); }

int Fail(const GlobalOptions& g, const Status& s) {
  int code = ExitCodeFor(s);
  // Connection and quorum messages already say what happened ("cannot connect
  // to ...", "write quorum not met: ..."); other refusals get their kind.
  std::string message = code == kExitConnection || code == kExitQuorum ? s.message() : s.ToString();
  if (message.empty()) message = s.ToString();
  if (g.json) {
    PrintJson({{"error", message}, {"code", CodeSlug(s.code())}});
    std::fflush(stdout);
  }
  fmt::print(stderr, "ringkv: {}\n", message);
  return code;
}


Printable MakePrintable(std::string_view bytes) {
  if (IsPrintableUtf8(bytes)) return {std::string(bytes), false};
  return {Base64Encode(bytes), true};
}

std::string KeyForHumans(std::string_view key) {
  Printable p = MakePrintable(key);
  return p.base64 ? fmt::format("(base64) {}", p.text) : fmt::format("\"{}\"", p.text);
}

void AddKey(json* j, std::string_view key) {
  Printable p = MakePrintable(key);
  (*j)["key"] = p.text;
  if (p.base64) (*j)["key_encoding"] = "base64";
}

Result<std::string> ParseContext(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.erase(0, 1);
  if (text.empty()) return std::string();
  auto bytes = Base64Decode(text);
  if (!bytes.ok()) {
    return Status::InvalidArgument(fmt::format(
        "--context is not a context printed by ringkv get/put ({})", bytes.status().message()));
  }
  auto clock = DecodeContext(*bytes);
  if (!clock.ok()) {
    return Status::InvalidArgument(fmt::format(
        "--context is not a context printed by ringkv get/put ({})", clock.status().message()));
  }
  return std::move(bytes).value();
}

Result<std::string> ReadValueFile(const std::string& path) {
  if (path == "-") {
    std::string data{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    if (std::cin.bad()) return Status::InvalidArgument("cannot read the value from stdin");
    return data;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument(
        fmt::format("cannot read --value-file {}: {}", path, std::strerror(errno)));
  }
  std::string data{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) {
    return Status::InvalidArgument(
        fmt::format("cannot read --value-file {}: {}", path, std::strerror(errno)));
  }
  return data;
}

Result<std::unique_ptr<Client>> Connect(const GlobalOptions& g,
                                        uint32_t request_timeout_ms) {
  // The client must outwait the node: a node that waits its full request
  // timeout still answers (with the quorum failure) shortly after.
  int timeout = g.timeout_ms;
  if (request_timeout_ms > 0) timeout = std::max<int64_t>(timeout, int64_t{request_timeout_ms} + 1000);
  return Client::Connect(g.host, timeout);
}


std::string Field(const json& j, const char* name) {
  if (!j.is_object() || !j.contains(name)) return "-";
  const json& v = j.at(name);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) return fmt::format("{:.2f}", v.get<double>());
  if (v.is_null()) return "-";
  return Dump(v);
}

std::string JoinIds(const json& arr) {
  if (!arr.is_array()) return "-";
  std::string out;
  for (const auto& e : arr) {
    std::string id = e.is_string() ? e.get<std::string>() : Field(e, "id");
    out += (out.empty() ? "" : ",") + id;
  }
  return out.empty() ? "-" : out;
}

}  // namespace ringkv::cli
