// keys: a bucket's live keys in key order, listed by coverage
// (node/key_listing.h), a page at a time, printed as they come.
#include <cstdio>
#include <set>

#include <fmt/format.h>

#include "client/cli/cli.h"
#include "core/bucket_key.h"
#include "core/codec.h"
#include "core/limits.h"

namespace ringkv::cli {

namespace {

struct KeysOptions {
  std::string bucket = std::string(kDefaultBucket);
  std::string prefix;
  std::string after;
  std::string after_base64;
  uint64_t limit = 0;
  uint32_t page = kDefaultListPage;
  bool count = false;
  uint32_t timeout_ms = 0;
};

std::string MissedText(const std::set<uint32_t>& missed) {
  std::string out;
  size_t shown = 0;
  for (uint32_t p : missed) {
    if (shown++ == 16) {
      out += fmt::format(", ... ({} in all)", missed.size());
      break;
    }
    out += (out.empty() ? "" : ", ") + std::to_string(p);
  }
  return out;
}

int RunKeys(const GlobalOptions& g, const KeysOptions& o) {
  std::string after = o.after;
  if (!o.after_base64.empty()) {
    auto bytes = Base64Decode(o.after_base64);
    if (!bytes.ok()) {
      return Fail(g, Status::InvalidArgument("--after-base64: " + bytes.status().message()));
    }
    after = std::move(bytes).value();
  }
  auto client = Connect(g, o.timeout_ms);
  if (!client.ok()) return Fail(g, client.status());
  if (o.count) {
    ListKeysRequest req;
    req.bucket = o.bucket;
    req.prefix = o.prefix;
    req.count_only = true;
    req.timeout_ms = o.timeout_ms;
    auto res = (*client)->ListKeys(std::move(req));
    if (!res.ok()) return Fail(g, res.status());
    std::set<uint32_t> missed(res->missed.begin(), res->missed.end());
    if (g.json) {
      json j = {{"count", res->count}, {"complete", missed.empty()}};
      if (!missed.empty()) j["missed_partitions"] = json(std::vector<uint32_t>(missed.begin(), missed.end()));
      PrintJson(j);
    } else {
      fmt::print("{}\n", res->count);
    }
    if (!missed.empty()) {
      fmt::print(stderr,
                 "ringkv: the count is incomplete: no live replica answered for partitions {} "
                 "(their keys are not counted)\n",
                 MissedText(missed));
      return kExitQuorum;
    }
    return kExitOk;
  }

  // Streams: every page is printed as it arrives, so memory stays one page
  // whatever the bucket holds (--json writes the document as it goes too).
  std::set<uint32_t> missed;
  uint64_t listed = 0;
  bool more = true;
  std::string cursor = after;
  bool opened = false;  // --json: the document has begun on stdout
  while (more && (o.limit == 0 || listed < o.limit)) {
    ListKeysRequest req;
    req.bucket = o.bucket;
    req.prefix = o.prefix;
    req.after = cursor;
    req.limit = o.page;
    if (o.limit != 0) req.limit = static_cast<uint32_t>(std::min<uint64_t>(o.page, o.limit - listed));
    req.timeout_ms = o.timeout_ms;
    auto res = (*client)->ListKeys(std::move(req));
    if (!res.ok() && !opened) return Fail(g, res.status());
    if (!res.ok()) {
      // Keys were printed already: end the one document with the error.
      json tail = {{"complete", false}, {"error", res.status().ToString()},
                   {"code", CodeSlug(res.status().code())}, {"count", listed}};
      fmt::print("],{}\n", Dump(tail).substr(1));
      std::fflush(stdout);
      fmt::print(stderr, "ringkv: {}\n", res.status().ToString());
      return ExitCodeFor(res.status());
    }
    if (g.json && !opened) fmt::print("{{\"keys\":[");
    opened = true;
    missed.insert(res->missed.begin(), res->missed.end());
    for (const std::string& key : res->keys) {
      Printable p = MakePrintable(key);
      if (g.json) {
        json k = p.base64 ? json{{"key", p.text}, {"encoding", "base64"}} : json(p.text);
        fmt::print("{}{}", listed == 0 ? "" : ",", Dump(k));
      } else {
        fmt::print("{}{}\n", p.base64 ? "(base64) " : "", p.text);
      }
      ++listed;
    }
    std::fflush(stdout);
    more = res->more && !res->keys.empty();
    if (!res->keys.empty()) cursor = res->keys.back();
  }
  bool complete = missed.empty();
  if (g.json && !opened) fmt::print("{{\"keys\":[");
  if (g.json) {
    json tail = json::object();
    tail["complete"] = complete;
    if (more) {
      Printable p = MakePrintable(cursor);
      tail["next"] = p.text;
      if (p.base64) tail["next_encoding"] = "base64";
    } else {
      tail["next"] = nullptr;
    }
    if (!complete) tail["missed_partitions"] = json(std::vector<uint32_t>(missed.begin(), missed.end()));
    tail["count"] = listed;
    std::string rest = Dump(tail);  // {"complete":...}: splice it after the keys
    fmt::print("],{}\n", rest.substr(1));
  } else if (more) {
    Printable p = MakePrintable(cursor);
    fmt::print(stderr, "(--limit reached; continue with --after{} {})\n",
               p.base64 ? "-base64" : "", p.base64 ? p.text : "'" + p.text + "'");
  }
  std::fflush(stdout);
  if (!complete) {
    fmt::print(stderr,
               "ringkv: the listing is incomplete: no live replica answered for partitions {} "
               "(their keys are missing)\n",
               MissedText(missed));
    return kExitQuorum;
  }
  return kExitOk;
}

}  // namespace

void AddKeysCommand(CLI::App* app, Cli* cli) {
  KeysOptions* o = cli->Keep<KeysOptions>();
  const GlobalOptions* g = &cli->global;
  auto* cmd = app->add_subcommand(
      "keys",
      "List a bucket's live keys in key order (deleted and expired keys are left out).\n"
      "A coverage query: the node asks one live replica of each partition for its keys and\n"
      "merges them, a page at a time, printed as they come. With a node down the listing is\n"
      "complete while every partition has a live replica; otherwise the partitions missed are\n"
      "named and the exit code is 3. Each page scans every object of every partition: meant\n"
      "for operators and small buckets, not for a request path.");
  cmd->add_option("-b,--bucket", o->bucket, "The bucket")->capture_default_str();
  cmd->add_option("--prefix", o->prefix, "Only keys that start with this");
  cmd->add_option("--limit", o->limit, "Stop after this many keys (0: all)")->capture_default_str();
  auto* after = cmd->add_option("--after", o->after,
                                "Only keys after this one: the cursor (\"next\") of an earlier "
                                "listing");
  auto* after64 = cmd->add_option("--after-base64", o->after_base64,
                                  "The cursor as base64, for keys that are not text");
  after->excludes(after64);
  cmd->add_option("--page-size", o->page, "Keys per request to the node")
      ->capture_default_str()
      ->check(CLI::Range(uint32_t{1}, kMaxListPage));
  cmd->add_flag("--count", o->count, "Print the number of live keys (with --prefix) instead");
  cmd->add_option("--request-timeout-ms", o->timeout_ms,
                  "How long the node waits for each replica's page (default 10000)")
      ->check(CLI::Range(1, 600000));
  cmd->callback([cli, g, o] { cli->run = [g, o] { return RunKeys(*g, *o); }; });
  cli->commands.push_back(cmd);
}

}  // namespace ringkv::cli
