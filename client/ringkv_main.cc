// ringkv: the command-line client. Each invocation opens one connection to
// one node (-H), sends one request and prints the answer, as text for people
// or as one JSON document per command with --json.
//
// Exit codes are part of the interface (scripts and tests rely on them):
// 0 ok, 1 key not found, 2 cannot connect / connection lost, 3 quorum not met
// or timed out, 4 any other refusal. kExitCodesHelp below is what --help shows.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "client/bench.h"
#include "client/client.h"
#include "core/codec.h"
#include "core/dvv.h"
#include "core/message.h"
#include "core/status.h"

namespace {

using json = nlohmann::ordered_json;  // keeps fields in the order we print them
using ringkv::Status;

enum ExitCode : int {
  kExitOk = 0,
  kExitNotFound = 1,
  kExitConnection = 2,
  kExitQuorum = 3,
  kExitRefused = 4,
};

constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0  success\n"
    "  1  key not found (get)\n"
    "  2  cannot connect to the node, or the connection was lost\n"
    "  3  quorum not met or timed out (the node's message says which replicas answered)\n"
    "  4  any other refusal (bad argument or context, wrong cluster, ...)\n"
    "With --json every command prints one JSON document on stdout; errors are\n"
    "{\"error\": MESSAGE, \"code\": CODE}.";

constexpr const char* kGlobalOptionsHelp =
    "Global options (-H HOST:PORT, --json, --timeout-ms) may also be given after the "
    "subcommand; see ringkv --help.";

struct GlobalOptions {
  std::string host = "127.0.0.1:7100";
  bool json = false;
  int timeout_ms = 10000;
};

// Per-request quorum flags; zero / unset means "the node's default".
struct QuorumOptions {
  uint32_t n = 0, r = 0, w = 0, pr = 0, pw = 0;
  uint32_t timeout_ms = 0;
  bool sloppy = false;
  bool strict = false;
  bool lww = false;

  ringkv::Quorum ToQuorum() const {
    ringkv::Quorum q;
    q.n = n;
    q.r = r;
    q.w = w;
    q.pr = pr;
    q.pw = pw;
    q.timeout_ms = timeout_ms;
    q.mode = sloppy ? ringkv::Mode::kSloppy : strict ? ringkv::Mode::kStrict : ringkv::Mode::kDefault;
    q.lww = lww;
    return q;
  }
};

// Adds the quorum flags to a subcommand. reads: get (n, r, pr); otherwise a
// write (n, w, pw).
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
    default: return kExitRefused;
  }
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void PrintJson(const json& j) { fmt::print("{}\n", Dump(j)); }

// Reports a failure on stderr (and as a JSON document on stdout with --json)
// and returns the exit code for it.
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

// Text that is safe to print and to put in JSON: the bytes themselves when
// they are printable UTF-8, else their base64.
struct Printable {
  std::string text;
  bool base64 = false;
};

Printable MakePrintable(std::string_view bytes) {
  if (ringkv::IsPrintableUtf8(bytes)) return {std::string(bytes), false};
  return {ringkv::Base64Encode(bytes), true};
}

// The key as it appears in messages: quoted, or base64 with a note.
std::string KeyForHumans(std::string_view key) {
  Printable p = MakePrintable(key);
  return p.base64 ? fmt::format("(base64) {}", p.text) : fmt::format("\"{}\"", p.text);
}

void AddKey(json* j, std::string_view key) {
  Printable p = MakePrintable(key);
  (*j)["key"] = p.text;
  if (p.base64) (*j)["key_encoding"] = "base64";
}

// Turns the --context text back into the bytes the node handed out.
ringkv::Result<std::string> ParseContext(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.erase(0, 1);
  if (text.empty()) return std::string();
  auto bytes = ringkv::Base64Decode(text);
  if (!bytes.ok()) {
    return Status::InvalidArgument(fmt::format(
        "--context is not a context printed by ringkv get/put ({})", bytes.status().message()));
  }
  auto clock = ringkv::DecodeContext(*bytes);
  if (!clock.ok()) {
    return Status::InvalidArgument(fmt::format(
        "--context is not a context printed by ringkv get/put ({})", clock.status().message()));
  }
  return std::move(bytes).value();
}

ringkv::Result<std::string> ReadValueFile(const std::string& path) {
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

ringkv::Result<std::unique_ptr<ringkv::Client>> Connect(const GlobalOptions& g,
                                                        uint32_t request_timeout_ms = 0) {
  // The client must outwait the node: a node that waits its full request
  // timeout still answers (with the quorum failure) shortly after.
  int timeout = g.timeout_ms;
  if (request_timeout_ms > 0) timeout = std::max<int64_t>(timeout, int64_t{request_timeout_ms} + 1000);
  return ringkv::Client::Connect(g.host, timeout);
}

// ---------------------------------------------------------------------------
// Tables for the info commands.

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(const std::string& indent = "") const {
    std::vector<size_t> width(header_.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
      for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
        width[i] = std::max(width[i], row[i].size());
      }
    };
    measure(header_);
    for (const auto& r : rows_) measure(r);
    auto print_row = [&](const std::vector<std::string>& row) {
      std::string line = indent;
      for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
        line += i + 1 == row.size() ? row[i] : fmt::format("{:<{}}  ", row[i], width[i]);
      }
      fmt::print("{}\n", line);
    };
    print_row(header_);
    for (const auto& r : rows_) print_row(r);
  }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// A field of a node document as text ("-" when absent), so the tables keep
// working when a node adds, renames or drops a field.
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

void PrintStatus(const json& j) {
  fmt::print("node      {} ({})\n", Field(j, "node"), Field(j, "address"));
  fmt::print("cluster   {}\n", Field(j, "cluster"));
  fmt::print("version   {}, up {} s\n", Field(j, "version"), Field(j, "uptime_s"));
  fmt::print("ring      {} partitions\n", Field(j, "ring_size"));
  if (j.contains("defaults")) {
    const json& d = j["defaults"];
    fmt::print("defaults  n={} r={} w={} timeout={} ms mode={}\n", Field(d, "n"), Field(d, "r"),
               Field(d, "w"), Field(d, "timeout_ms"), Field(d, "mode"));
  }
  fmt::print("objects   {}\n", Field(j, "objects"));
  fmt::print("pending   {} requests\n", Field(j, "pending_requests"));
  if (j.contains("state")) fmt::print("state     {}\n", Field(j, "state"));
  if (j.contains("handoff") && j["handoff"].is_object()) {
    const json& h = j["handoff"];
    size_t pending = h.contains("pending") && h["pending"].is_array() ? h["pending"].size() : 0;
    fmt::print("handoff   {} partitions held, {} pending, {} received ({} objects, {} bytes in), "
               "{} objects served, {} partitions dropped\n",
               Field(h, "partitions_held"), pending, Field(h, "partitions_received"),
               Field(h, "objects_in"), Field(h, "bytes_in"), Field(h, "objects_served"),
               Field(h, "dropped_partitions"));
  }
  if (j.contains("members") && j["members"].is_array()) {
    fmt::print("\n");
    Table members({"ID", "ADDRESS", "STATE", "ALIVE", "PHI", "INCARNATION", "OWNS", "HELD"});
    for (const auto& m : j["members"]) {
      std::string phi = m.contains("phi") && m["phi"].is_number() && m["phi"].get<double>() >= 0
                            ? fmt::format("{:.2f}", m["phi"].get<double>())
                            : "-";
      members.Add({Field(m, "id"), Field(m, "address"), Field(m, "state"), Field(m, "alive"), phi,
                   Field(m, "incarnation"), Field(m, "owns"), Field(m, "partitions_held")});
    }
    members.Print();
  }
}

void PrintRing(const json& j) {
  fmt::print("ring: {} partitions, n_val {}, {} members\n\n", Field(j, "ring_size"),
             Field(j, "n_val"), j.contains("members") ? j["members"].size() : 0);
  if (j.contains("nodes") && j["nodes"].is_array()) {
    Table nodes({"NODE", "FIRST OWNER OF", "REPLICAS", "% OF MEAN"});
    for (const auto& n : j["nodes"]) {
      std::string pct = n.contains("percent_of_mean") && n["percent_of_mean"].is_number()
                            ? fmt::format("{:.1f}%", n["percent_of_mean"].get<double>())
                            : "-";
      nodes.Add({Field(n, "id"), Field(n, "first_owner_of"), Field(n, "replicas"), pct});
    }
    nodes.Print();
  }
  if (j.contains("partitions") && j["partitions"].is_array()) {
    fmt::print("\n");
    Table parts({"PARTITION", "START", "PRIMARIES"});
    for (const auto& p : j["partitions"]) {
      parts.Add({Field(p, "partition"), Field(p, "start"),
                 p.contains("primaries") ? JoinIds(p["primaries"]) : "-"});
    }
    parts.Print();
  }
}

void PrintStats(const json& j) {
  fmt::print("node {}\n\n", Field(j, "node"));
  // Counters in a stable, meaningful order; fields a newer node adds follow.
  static const char* kOrder[] = {"gets",          "puts",
                                 "deletes",       "forwarded_puts",
                                 "get_not_found", "read_quorum_failures",
                                 "write_quorum_failures", "invalid_requests",
                                 "read_repairs",  "siblings_seen",
                                 "max_siblings",  "replica_reads",
                                 "replica_writes", "wrong_cluster_refused",
                                 "pending_requests", "objects"};
  std::vector<std::string> names(std::begin(kOrder), std::end(kOrder));
  for (const auto& [name, v] : j.items()) {
    if (v.is_number() && std::find(names.begin(), names.end(), name) == names.end()) {
      names.push_back(name);
    }
  }
  Table counters({"COUNTER", "VALUE"});
  for (const auto& name : names) {
    if (j.contains(name) && j[name].is_number()) counters.Add({name, Field(j, name.c_str())});
  }
  counters.Print();
  Table latency({"LATENCY", "COUNT", "P50 MS", "P90 MS", "P99 MS", "P99.9 MS", "MAX MS"});
  bool any = false;
  for (const auto& [name, v] : j.items()) {
    if (!v.is_object() || !v.contains("count")) continue;
    std::string op = name;
    if (auto pos = op.rfind("_latency"); pos != std::string::npos) op = op.substr(0, pos);
    latency.Add({op, Field(v, "count"), Field(v, "p50_ms"), Field(v, "p90_ms"), Field(v, "p99_ms"),
                 Field(v, "p999_ms"), Field(v, "max_ms")});
    any = true;
  }
  if (any) {
    fmt::print("\n");
    latency.Print();
  }
}

void PrintPreflist(const json& j) {
  fmt::print("key        {}\n", Field(j, "key"));
  fmt::print("hash       {}\n", Field(j, "hash"));
  fmt::print("partition  {}\n\n", Field(j, "partition"));
  Table t({"ROLE", "NODE", "ALIVE"});
  for (const char* role : {"primaries", "fallbacks"}) {
    if (!j.contains(role) || !j[role].is_array()) continue;
    for (const auto& e : j[role]) {
      t.Add({role == std::string("primaries") ? "primary" : "fallback", Field(e, "id"),
             Field(e, "alive")});
    }
  }
  t.Print();
}

void PrintHints(const json& j) {
  fmt::print("node {}: {} hints queued, {} stored since start, {} replayed, {} failed sends\n",
             Field(j, "node"), Field(j, "queued"), Field(j, "stored"), Field(j, "replayed"),
             Field(j, "failed"));
  if (!j.contains("targets") || !j["targets"].is_object() || j["targets"].empty()) return;
  fmt::print("\n");
  Table t({"FOR NODE", "QUEUED", "OLDEST AGE S", "REPLAYED", "FAILED", "IN FLIGHT"});
  for (const auto& [target, v] : j["targets"].items()) {
    std::string age = v.contains("oldest_age_s") && v["oldest_age_s"].is_number()
                          ? fmt::format("{:.1f}", v["oldest_age_s"].get<double>())
                          : "-";
    t.Add({target, Field(v, "queued"), age, Field(v, "replayed"), Field(v, "failed"),
           Field(v, "in_flight")});
  }
  t.Print();
}

// `admin leave [NODE]`: finds NODE's address through the node asked, then
// tells NODE itself to leave (a node hands off its own partitions).
int RunLeave(const GlobalOptions& g, const std::string& node) {
  auto client = Connect(g);
  if (!client.ok()) return Fail(g, client.status());
  std::unique_ptr<ringkv::Client> target = std::move(client).value();
  if (!node.empty()) {
    auto doc = target->Info("status");
    if (!doc.ok()) return Fail(g, doc.status());
    json st = json::parse(*doc, nullptr, false);
    if (st.is_discarded()) return Fail(g, Status::Internal("status is not JSON"));
    if (st.value("node", "") != node) {
      std::string address;
      for (const auto& m : st["members"]) {
        if (m.value("id", "") == node) address = m.value("address", "");
      }
      if (address.empty()) {
        return Fail(g, Status::InvalidArgument(fmt::format("{} knows no member named {}", g.host, node)));
      }
      GlobalOptions there = g;
      there.host = address;
      auto c2 = Connect(there);
      if (!c2.ok()) return Fail(g, c2.status());
      target = std::move(c2).value();
    }
  }
  auto doc = target->Info("admin-leave");
  if (!doc.ok()) return Fail(g, doc.status());
  json st = json::parse(*doc, nullptr, false);
  if (g.json) {
    PrintJson(json{{"node", st.value("node", node)}, {"state", st.value("state", "leaving")}});
  } else {
    fmt::print("{} is leaving: it hands each of its partitions to the next owner, then goes left "
               "and exits (watch with `ringkv status`)\n",
               st.value("node", node));
  }
  return kExitOk;
}

int RunRemove(const GlobalOptions& g, const std::string& node) {
  auto client = Connect(g);
  if (!client.ok()) return Fail(g, client.status());
  auto doc = (*client)->Info("admin-remove", node);
  if (!doc.ok()) return Fail(g, doc.status());
  if (g.json) {
    PrintJson(json{{"node", node}, {"state", "removed"}});
  } else {
    fmt::print("{} is removed: the others take over its partitions and rebuild its replicas from "
               "the remaining copies\n", node);
  }
  return kExitOk;
}

void PrintAae(const json& j) {
  fmt::print("node {}: anti-entropy {}, every {} ms, at most {} keys/s\n", Field(j, "node"),
             j.value("enabled", false) ? "on" : "off", Field(j, "interval_ms"),
             Field(j, "max_keys_per_sec"));
  fmt::print("trees {} ({} built){}\n", Field(j, "trees"), Field(j, "trees_ready"),
             j.value("exchanging", false) ? ", an exchange is running" : "");
  fmt::print("exchanges {} ({} failed), segments differing {}, keys differing {}, keys repaired "
             "{} ({} sent, {} here), bytes {}\n",
             Field(j, "exchanges"), Field(j, "exchanges_failed"), Field(j, "segments_differing"),
             Field(j, "keys_differing"), Field(j, "keys_repaired"), Field(j, "repairs_sent"),
             Field(j, "repairs_local"), Field(j, "bytes"));
  if (!j.contains("partitions") || j["partitions"].empty()) return;
  fmt::print("\n");
  Table t({"PARTITION", "PEER", "SECONDS AGO", "DIFFERENCES", "REPAIRED", "BYTES", "OK"});
  for (const auto& p : j["partitions"]) {
    t.Add({Field(p, "partition"), Field(p, "peer"),
           p.contains("seconds_ago") ? fmt::format("{:.1f}", p["seconds_ago"].get<double>()) : "-",
           Field(p, "differences"), Field(p, "repaired"), Field(p, "bytes"), Field(p, "ok")});
  }
  t.Print();
}

void PrintReaper(const json& j) {
  fmt::print("node {}: tombstones are reaped {:g} s after the delete, at most {} keys/s{}\n",
             Field(j, "node"), j.value("grace_s", 0.0), Field(j, "max_keys_per_sec"),
             j.value("checking", false) ? "; a check is running" : "");
  fmt::print("\n");
  Table t({"COUNTER", "VALUE"});
  for (const auto& [name, v] : j.items()) {
    if (name == "node" || name == "grace_s" || name == "max_keys_per_sec" || name == "checking") continue;
    t.Add({name, Field(j, name.c_str())});
  }
  t.Print();
}

// This node's own copy of a key, as `get` prints it.
void PrintLocal(const json& j) {
  fmt::print("node {}: ", Field(j, "node"));
  if (j.value("found", false) == false) {
    fmt::print("no live value for {} (clock {}, {} tombstones)\n", Field(j, "key"),
               Field(j, "clock"), Field(j, "tombstones"));
    return;
  }
  fmt::print("{} sibling(s) for {} (clock {})\n", j["siblings"].size(), Field(j, "key"),
             Field(j, "clock"));
  for (const auto& s : j["siblings"]) {
    fmt::print("  {}  {}{}\n", Field(s, "dot"), Field(s, "value"),
               s.contains("encoding") ? " (base64)" : "");
  }
}

// ---------------------------------------------------------------------------
// Commands

int RunGet(const GlobalOptions& g, const std::string& key, const QuorumOptions& qo) {
  auto client = Connect(g, qo.timeout_ms);
  if (!client.ok()) return Fail(g, client.status());
  auto res = (*client)->Get(key, qo.ToQuorum());
  if (!res.ok()) return Fail(g, res.status());
  const ringkv::GetResult& r = *res;
  std::string context = ringkv::Base64Encode(r.context);
  std::vector<const ringkv::Sibling*> live;
  if (r.found) live = r.object.LiveSiblings();

  if (g.json) {
    json j = json::object();
    AddKey(&j, key);
    j["found"] = r.found;
    json siblings = json::array();
    for (const auto* s : live) {
      Printable v = MakePrintable(s->value);
      json e = {{"value", v.text}, {"dot", s->dot.ToString()}};
      if (v.base64) e["encoding"] = "base64";
      siblings.push_back(std::move(e));
    }
    j["siblings"] = std::move(siblings);
    j["context"] = context;
    PrintJson(j);
  } else if (r.found && live.size() == 1) {
    Printable v = MakePrintable(live[0]->value);
    if (v.base64) {
      fmt::print("(value is not printable text: {} bytes, shown as base64)\n", live[0]->value.size());
    }
    fmt::print("{}\n", v.text);
    fmt::print("dot: {}\n", live[0]->dot.ToString());
    fmt::print("context: {}\n", context);
  } else if (r.found) {
    fmt::print("{} siblings for {}:\n", live.size(), KeyForHumans(key));
    size_t width = 0;
    for (const auto* s : live) width = std::max(width, s->dot.ToString().size());
    bool any_base64 = false;
    for (const auto* s : live) {
      Printable v = MakePrintable(s->value);
      any_base64 |= v.base64;
      // Multi-line values stay under their own column.
      std::string text = v.base64 ? "(base64) " + v.text : v.text;
      std::string pad(2 + width + 2, ' ');
      std::string indented;
      for (char c : text) {
        indented += c;
        if (c == '\n') indented += pad;
      }
      fmt::print("  {:<{}}  {}\n", s->dot.ToString(), width, indented);
    }
    if (any_base64) fmt::print("(values that are not printable text are shown as base64)\n");
    fmt::print("context: {}\n", context);
    fmt::print("(write with --context to replace these siblings with one value)\n");
  } else if (!r.context.empty()) {
    // Deleted: the tombstone's context lets a write supersede the delete.
    fmt::print("context: {}\n", context);
  }
  std::fflush(stdout);
  if (!r.found) {
    Printable k = MakePrintable(key);
    fmt::print(stderr, "not found: {}{}{}\n", k.base64 ? "(base64) " : "", k.text,
               r.context.empty() ? "" : " (deleted)");
    return kExitNotFound;
  }
  return kExitOk;
}

int RunWrite(const GlobalOptions& g, const std::string& key, const std::optional<std::string>& value,
             const std::string& context_text, const QuorumOptions& qo) {
  auto context = ParseContext(context_text);
  if (!context.ok()) return Fail(g, context.status());
  auto client = Connect(g, qo.timeout_ms);
  if (!client.ok()) return Fail(g, client.status());
  bool is_delete = !value.has_value();
  auto res = is_delete ? (*client)->Delete(key, *context, qo.ToQuorum())
                       : (*client)->Put(key, *value, *context, qo.ToQuorum());
  if (!res.ok()) return Fail(g, res.status());
  std::string out_context = ringkv::Base64Encode(res->context);
  std::string dot = res->dot.actor.empty() ? "" : res->dot.ToString();
  if (g.json) {
    json j = json::object();
    AddKey(&j, key);
    j["ok"] = true;
    if (is_delete) j["deleted"] = true;
    j["dot"] = dot;
    j["context"] = out_context;
    PrintJson(j);
    return kExitOk;
  }
  fmt::print("{} {}\n", is_delete ? "deleted" : "ok", dot);
  fmt::print("context: {}\n", out_context);
  size_t live = res->object.LiveSiblings().size();
  if (!is_delete && live > 1) {
    fmt::print("(the coordinating replica now holds {} siblings: this write was concurrent with "
               "others; get and write back with --context to resolve)\n",
               live);
  }
  return kExitOk;
}

int RunInfo(const GlobalOptions& g, const std::string& topic, const std::string& arg) {
  auto client = Connect(g);
  if (!client.ok()) return Fail(g, client.status());
  auto doc = (*client)->Info(topic, arg);
  if (!doc.ok()) return Fail(g, doc.status());
  json j = json::parse(*doc, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Fail(g, Status::Internal(fmt::format("{} sent a {} document that is not JSON",
                                                g.host, topic)));
  }
  if (g.json) {
    PrintJson(j);
  } else if (topic == "status") {
    PrintStatus(j);
  } else if (topic == "ring") {
    PrintRing(j);
  } else if (topic == "stats") {
    PrintStats(j);
  } else if (topic == "hints") {
    PrintHints(j);
  } else if (topic.starts_with("aae-")) {
    PrintAae(j);
  } else if (topic == "reaper") {
    PrintReaper(j);
  } else if (topic == "local") {
    PrintLocal(j);
    if (j.value("found", false) == false) return kExitNotFound;
  } else {
    PrintPreflist(j);
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// bench: the load generator (client/bench.h); this only parses and prints.

struct BenchCliOptions {
  ringkv::BenchOptions bench;
  QuorumOptions quorum;
  std::vector<std::string> hosts;
  std::string ratio = "1:1";
  std::string distribution = "uniform";
  bool progress = false;
};

// Adds `ringkv bench` and its flags; *out receives what was parsed.
CLI::App* AddBenchCommand(CLI::App* app, BenchCliOptions* out) {
  auto* cmd = app->add_subcommand(
      "bench",
      "Load generator: N client connections (driven by --threads event-loop threads) run\n"
      "gets and puts and report throughput, latency percentiles, errors by kind, not-found\n"
      "and sibling counts.\n"
      "Errors during the run are counted in the report, not in the exit code.");
  ringkv::BenchOptions& b = out->bench;
  cmd->add_option("--clients", b.clients, "Connections (clients), each with its own request window")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  cmd->add_option("--threads", b.threads,
                  "Threads driving the connections (each waits on its share with epoll; more "
                  "than --clients is the same as --clients). Like redis-benchmark's default, one: "
                  "on the machine the cluster runs on, every extra thread takes CPU from the nodes")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  auto* requests =
      cmd->add_option("--requests", b.requests,
                      "Run this many operations in all instead of for --duration "
                      "(0 with --preload: load every key and stop)");
  auto* duration = cmd->add_option("--duration", b.duration_s, "Seconds to run")
                       ->capture_default_str()
                       ->check(CLI::PositiveNumber);
  requests->excludes(duration);
  cmd->add_option("--keys", b.keys, "Key space: key:000000000000 .. (keys-1)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000000000}));
  cmd->add_option("--value-size", b.value_size, "Bytes per value")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, ringkv::kDefaultMaxValueBytes));
  cmd->add_option("--ratio", out->ratio, "Share of gets to puts, G:P (e.g. 9:1; 0:1 is puts only)")
      ->capture_default_str();
  cmd->add_option("--distribution", out->distribution,
                  "Key choice: uniform, or zipf (exponent --zipf-exponent over the key space)")
      ->capture_default_str()
      ->check(CLI::IsMember({"uniform", "zipf"}));
  cmd->add_option("--zipf-exponent", b.zipf_exponent, "Exponent of the zipf distribution")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", b.seed, "Seed of the key and operation choice (same seed, same keys)")
      ->capture_default_str();
  cmd->add_option("--pipeline", b.pipeline,
                  "Requests in flight per connection (a new one is sent for each reply)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--hosts", out->hosts,
                  "Nodes to spread the clients over, H1,H2,... (default: -H)")
      ->delimiter(',');
  cmd->add_flag("--preload", b.preload,
                "Write every key once (blind puts) before measuring, so gets find data");
  cmd->add_flag("--rmw", b.rmw,
                "Puts read the key first and write with its context, as a client resolving "
                "siblings does (keeps sibling counts bounded); a put's latency covers both");
  cmd->add_flag("--progress", out->progress,
                "A progress line on stderr every second (default: when stderr is a terminal "
                "and without --json)");
  QuorumOptions& q = out->quorum;
  cmd->add_option("--n", q.n, "Replicas per request (default: the node's)")
      ->check(CLI::Range(1, 64))
      ->group("Quorum");
  cmd->add_option("--r", q.r, "Read quorum of gets")->check(CLI::Range(1, 64))->group("Quorum");
  cmd->add_option("--w", q.w, "Write quorum of puts")->check(CLI::Range(1, 64))->group("Quorum");
  cmd->add_option("--request-timeout-ms", q.timeout_ms,
                  "How long the coordinating node waits for replicas (default: the node's)")
      ->check(CLI::Range(1, 600000))
      ->group("Quorum");
  auto* sloppy = cmd->add_flag("--sloppy", q.sloppy,
                               "Sloppy quorum: fallbacks may stand in for primaries that are down")
                     ->group("Quorum");
  auto* strict =
      cmd->add_flag("--strict", q.strict, "Strict quorum: primary replicas only")->group("Quorum");
  sloppy->excludes(strict);
  cmd->add_flag("--lww", q.lww,
                "Last-write-wins requests: a put keeps only the newest sibling and a get answers it "
                "(Redis SET/GET semantics, as the Redis-protocol rows of bench/compare run; loses "
                "concurrent writes)")
      ->group("Quorum");
  cmd->fallthrough();
  cmd->footer(std::string(kGlobalOptionsHelp) + "\n\n" + kExitCodesHelp);
  return cmd;
}

int RunBenchCommand(const GlobalOptions& g, BenchCliOptions cli, bool requests_given) {
  ringkv::BenchOptions o = std::move(cli.bench);
  o.requests_set = requests_given;
  o.hosts = cli.hosts.empty() ? std::vector<std::string>{g.host} : cli.hosts;
  o.quorum = cli.quorum.ToQuorum();
  o.distribution =
      cli.distribution == "zipf" ? ringkv::KeyDistribution::kZipf : ringkv::KeyDistribution::kUniform;
  unsigned get_share = 0, put_share = 0;
  char tail = 0;
  if (std::sscanf(cli.ratio.c_str(), "%u:%u%c", &get_share, &put_share, &tail) != 2) {
    return Fail(g, Status::InvalidArgument(
                       fmt::format("--ratio '{}' is not GETS:PUTS (e.g. 1:1 or 9:1)", cli.ratio)));
  }
  o.get_weight = get_share;
  o.put_weight = put_share;
  // Outwait the node, as Connect() does for the other commands.
  o.timeout_ms = g.timeout_ms;
  if (o.quorum.timeout_ms > 0) {
    o.timeout_ms = std::max<int64_t>(o.timeout_ms, int64_t{o.quorum.timeout_ms} + 1000);
  }
  Status valid = ringkv::ValidateBenchOptions(o);
  if (!valid.ok()) return Fail(g, valid);

  bool tty = isatty(STDERR_FILENO) != 0;
  std::function<void(const ringkv::BenchProgress&)> progress;
  if (cli.progress || (tty && !g.json)) {
    progress = [tty](const ringkv::BenchProgress& p) {
      std::string line = fmt::format("[{}] {:.0f} s  {} ops  {:.0f} ops/s", p.phase, p.elapsed_s,
                                     p.ops, p.ops_per_s);
      if (tty) {
        fmt::print(stderr, "\r\033[K{}", line);
      } else {
        fmt::print(stderr, "{}\n", line);
      }
      std::fflush(stderr);
    };
  }
  auto result = ringkv::RunBench(o, progress);
  if (progress && tty) fmt::print(stderr, "\r\033[K");
  if (!result.ok()) return Fail(g, result.status());
  if (g.json) {
    fmt::print("{}\n", ringkv::BenchReportJson(o, *result));
  } else {
    fmt::print("{}", ringkv::FormatBenchReport(o, *result));
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ringkv: the client of a ringkv cluster, a Dynamo-style leaderless key-value store.\n\n"
      "Concurrent writes to a key are all kept as siblings, each tagged with the dot\n"
      "(node:counter) of its write; `get` shows them all and prints a context.\n"
      "A write that passes that context back (--context) replaces every sibling the\n"
      "context covers, while a write without one only adds a sibling."};
  app.name("ringkv");
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand too

  GlobalOptions g;
  if (const char* env = std::getenv("RINGKV_HOST"); env != nullptr && *env != '\0') g.host = env;
  app.add_option("-H,--host", g.host, "Node to talk to as HOST:PORT (default: $RINGKV_HOST, else 127.0.0.1:7100)")
      ->capture_default_str();
  app.add_flag("--json", g.json, "Print one machine-readable JSON document per command");
  app.add_option("--timeout-ms", g.timeout_ms, "Client-side timeout for connecting and each reply")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600000));

  std::string key, value, value_file, context;
  QuorumOptions qo;

  auto* get = app.add_subcommand("get", "Read a key: every live sibling with its dot, and the context");
  get->add_option("KEY", key, "The key")->required();
  bool local = false;
  get->add_flag("--local", local,
                "Only the copy stored on the node asked (-H), bypassing quorums and hints: "
                "shows what that replica holds");
  AddQuorumOptions(get, &qo, /*reads=*/true);

  auto* put = app.add_subcommand("put", "Write a value (a blind write unless --context is given)");
  put->add_option("KEY", key, "The key")->required();
  auto* value_opt = put->add_option("VALUE", value, "The value (or use --value-file)");
  auto* file_opt = put->add_option("--value-file", value_file,
                                   "Read the value from FILE ('-' = stdin), for binary values");
  value_opt->excludes(file_opt);
  put->add_option("--context", context,
                  "Context printed by an earlier get/put: replaces the siblings it covers");
  AddQuorumOptions(put, &qo, /*reads=*/false);

  auto* del = app.add_subcommand("delete", "Delete a key (writes a tombstone)");
  del->add_option("KEY", key, "The key")->required();
  del->add_option("--context", context,
                  "Context printed by an earlier get: deletes the siblings it covers "
                  "(without it the delete only adds a tombstone sibling)");
  AddQuorumOptions(del, &qo, /*reads=*/false);

  auto* status = app.add_subcommand("status", "The node: cluster, defaults, objects and members");
  auto* ring = app.add_subcommand("ring", "Partition ownership: share per node, then every partition");
  auto* stats = app.add_subcommand("stats", "The node's counters and latency percentiles");
  auto* preflist = app.add_subcommand("preflist", "Where a key lives: partition, hash, replicas");
  preflist->add_option("KEY", key, "The key")->required();
  auto* hints = app.add_subcommand(
      "hints", "Hinted handoff on the node: writes held for down nodes, per target, and replays");
  auto* admin = app.add_subcommand(
      "admin",
      "Membership operations: leave, remove; anti-entropy (aae) and tombstone reaping (reaper) status");
  admin->require_subcommand(1);
  std::string admin_node;
  auto* leave = admin->add_subcommand(
      "leave", "NODE (default: the node asked) hands its partitions to their next owners, then exits");
  leave->add_option("NODE", admin_node, "The node that leaves");
  auto* remove = admin->add_subcommand(
      "remove", "Take a dead NODE out of the cluster; the others rebuild its replicas");
  remove->add_option("NODE", admin_node, "The node to remove (it must be down)")->required();
  auto* aae = admin->add_subcommand("aae", "Anti-entropy on the node: status, rebuild, exchange");
  aae->require_subcommand(1);
  auto* aae_status = aae->add_subcommand(
      "status", "Trees, exchanges, keys repaired, bytes; the last exchange per partition");
  auto* aae_rebuild = aae->add_subcommand("rebuild", "Rebuild every Merkle tree from storage");
  auto* aae_exchange = aae->add_subcommand("exchange", "Start an exchange now");
  auto* reaper = admin->add_subcommand(
      "reaper", "Tombstone reaping on the node: passes, keys checked with the other replicas, "
                "tombstones erased (counters since the node started)");

  std::string sub_footer = std::string(kGlobalOptionsHelp) + "\n\n" + kExitCodesHelp;
  for (auto* cmd : {get, put, del, status, ring, stats, preflist, hints, admin, leave, remove, aae,
                    aae_status, aae_rebuild, aae_exchange, reaper}) {
    cmd->fallthrough();
    cmd->footer(sub_footer);
  }
  app.footer(kExitCodesHelp);
  BenchCliOptions bench_options;
  auto* bench = AddBenchCommand(&app, &bench_options);

  CLI11_PARSE(app, argc, argv);

  if (*bench) {
    return RunBenchCommand(g, std::move(bench_options), bench->get_option("--requests")->count() > 0);
  }

  if (*put && value_opt->count() == 0 && file_opt->count() == 0) {
    std::cerr << "ringkv put: give VALUE or --value-file FILE\n"
              << "Run with --help for more information.\n";
    return static_cast<int>(CLI::ExitCodes::RequiredError);
  }

  if (*get && local) return RunInfo(g, "local", key);
  if (*get) return RunGet(g, key, qo);
  if (*put) {
    std::string v = value;
    if (file_opt->count() > 0) {
      auto data = ReadValueFile(value_file);
      if (!data.ok()) return Fail(g, data.status());
      v = std::move(data).value();
    }
    return RunWrite(g, key, v, context, qo);
  }
  if (*del) return RunWrite(g, key, std::nullopt, context, qo);
  if (*status) return RunInfo(g, "status", "");
  if (*ring) return RunInfo(g, "ring", "");
  if (*stats) return RunInfo(g, "stats", "");
  if (*preflist) return RunInfo(g, "preflist", key);
  if (*hints) return RunInfo(g, "hints", "");
  if (*leave) return RunLeave(g, admin_node);
  if (*remove) return RunRemove(g, admin_node);
  if (*aae_status) return RunInfo(g, "aae-status", "");
  if (*aae_rebuild) return RunInfo(g, "aae-rebuild", "");
  if (*aae_exchange) return RunInfo(g, "aae-exchange", "");
  if (*reaper) return RunInfo(g, "reaper", "");
  return kExitRefused;  // unreachable: require_subcommand(1)
}
