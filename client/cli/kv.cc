// get, put, delete: the key-value commands.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include "client/cli/cli.h"
#include "core/bucket_key.h"
#include "core/codec.h"
#include "core/dvv.h"

namespace ringkv::cli {

namespace {

uint64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "expires in 59 s" (by this machine's clock, which may differ from the
// node's), for a value with a ttl.
std::string ExpiryText(uint64_t expires_ms) {
  uint64_t now = WallMillis();
  if (expires_ms <= now) return "expires now (by this machine's clock)";
  return fmt::format("expires in {:.0f} s", static_cast<double>(expires_ms - now) / 1000.0);
}

int RunGet(const GlobalOptions& g, const std::string& bucket, const std::string& key,
           const QuorumOptions& qo) {
  auto client = Connect(g, qo.timeout_ms);
  if (!client.ok()) return Fail(g, client.status());
  auto res = (*client)->Get(GetRequest{key, qo.ToQuorum(), bucket});
  if (!res.ok()) return Fail(g, res.status());
  const GetResult& r = *res;
  if (int code = PrintDataTypeGet(g, key, r); code >= 0) return code;
  std::string context = Base64Encode(r.context);
  std::vector<const Sibling*> live;
  if (r.found) live = r.object.LiveSiblings();

  bool warn = r.warn_siblings != 0 && live.size() > r.warn_siblings;
  if (g.json) {
    json j = json::object();
    AddKey(&j, key);
    if (!IsDefaultBucket(bucket)) j["bucket"] = bucket;
    j["found"] = r.found;
    json siblings = json::array();
    for (const auto* s : live) {
      Printable v = MakePrintable(s->value);
      json e = {{"value", v.text}, {"dot", s->dot.ToString()}};
      if (v.base64) e["encoding"] = "base64";
      if (s->expires_ms != 0) e["expires_ms"] = s->expires_ms;
      siblings.push_back(std::move(e));
    }
    j["siblings"] = std::move(siblings);
    j["context"] = context;
    if (warn) j["sibling_warning"] = r.warn_siblings;
    PrintJson(j);
  } else if (r.found && live.size() == 1) {
    Printable v = MakePrintable(live[0]->value);
    if (v.base64) {
      fmt::print("(value is not printable text: {} bytes, shown as base64)\n", live[0]->value.size());
    }
    fmt::print("{}\n", v.text);
    fmt::print("dot: {}\n", live[0]->dot.ToString());
    if (live[0]->expires_ms != 0) fmt::print("{}\n", ExpiryText(live[0]->expires_ms));
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
      fmt::print("  {:<{}}  {}{}\n", s->dot.ToString(), width, indented,
                 s->expires_ms != 0 ? "  (" + ExpiryText(s->expires_ms) + ")" : "");
    }
    if (any_base64) fmt::print("(values that are not printable text are shown as base64)\n");
    fmt::print("context: {}\n", context);
    fmt::print("(write with --context to replace these siblings with one value)\n");
  } else if (!r.context.empty()) {
    // Deleted: the tombstone's context lets a write supersede the delete.
    fmt::print("context: {}\n", context);
  }
  std::fflush(stdout);
  if (warn) {
    fmt::print(stderr,
               "warning: {} siblings, above the bucket's warning level of {}: read the key and "
               "write back with its context to merge them (writes are refused past the bucket's "
               "max_siblings)\n",
               live.size(), r.warn_siblings);
  }
  if (!r.found) {
    Printable k = MakePrintable(key);
    fmt::print(stderr, "not found: {}{}{}\n", k.base64 ? "(base64) " : "", k.text,
               r.context.empty() ? "" : " (deleted or expired)");
    return kExitNotFound;
  }
  return kExitOk;
}

// What put adds to a plain write: expiry and conditions.
struct WriteFlags {
  std::optional<uint64_t> ttl_s;  // 0: never expires (even in a bucket with a ttl)
  bool if_absent = false;
  bool if_unchanged = false;
};

int RunWrite(const GlobalOptions& g, const std::string& bucket, const std::string& key,
             const std::optional<std::string>& value, const std::string& context_text,
             const QuorumOptions& qo, const WriteFlags& flags) {
  auto context = ParseContext(context_text);
  if (!context.ok()) return Fail(g, context.status());
  if (flags.if_unchanged && context->empty()) {
    return Fail(g, Status::InvalidArgument(
                       "--if-unchanged needs --context: the context of the read it must still match"));
  }
  auto client = Connect(g, qo.timeout_ms);
  if (!client.ok()) return Fail(g, client.status());
  bool is_delete = !value.has_value();
  PutRequest req;
  req.bucket = bucket;
  req.key = key;
  if (value) req.value = *value;
  req.tombstone = is_delete;
  req.context = *context;
  req.quorum = qo.ToQuorum();
  if (flags.ttl_s) {
    if (*flags.ttl_s == 0) {
      req.persist = true;
    } else {
      req.ttl_ms = *flags.ttl_s * 1000;
    }
  }
  req.if_absent = flags.if_absent;
  req.if_unchanged = flags.if_unchanged;
  auto res = (*client)->Put(std::move(req));
  if (!res.ok()) return Fail(g, res.status());
  std::string out_context = Base64Encode(res->context);
  std::string dot = res->dot.actor.empty() ? "" : res->dot.ToString();
  if (g.json) {
    json j = json::object();
    AddKey(&j, key);
    j["ok"] = true;
    if (is_delete) j["deleted"] = true;
    j["dot"] = dot;
    j["context"] = out_context;
    if (!IsDefaultBucket(bucket)) j["bucket"] = bucket;
    if (const Sibling* mine = res->object.FindSibling(res->dot); mine && mine->expires_ms != 0) {
      j["expires_ms"] = mine->expires_ms;
    }
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

struct KvOptions {
  std::string bucket = std::string(kDefaultBucket);
  std::string key, value, value_file, context;
  bool local = false;
  QuorumOptions quorum;
  uint64_t ttl_s = 0;
  bool if_absent = false;
  bool if_unchanged = false;
};

void AddBucketOption(CLI::App* cmd, std::string* bucket) {
  cmd->add_option("-b,--bucket", *bucket,
                  "Bucket of the key (the same key in two buckets is two objects)")
      ->capture_default_str();
}

// The internal key for `get --local` (the node's own copy), which the node
// looks up as it stores it.
Result<std::string> LocalKey(const std::string& bucket, const std::string& key) {
  return InternalKey(bucket, key);
}

}  // namespace

void AddKvCommands(CLI::App* app, Cli* cli) {
  KvOptions* o = cli->Keep<KvOptions>();
  const GlobalOptions* g = &cli->global;

  auto* get = app->add_subcommand("get", "Read a key: every live sibling with its dot, and the context");
  get->add_option("KEY", o->key, "The key")->required();
  AddBucketOption(get, &o->bucket);
  get->add_flag("--local", o->local,
                "Only the copy stored on the node asked (-H), bypassing quorums and hints: "
                "shows what that replica holds");
  AddQuorumOptions(get, &o->quorum, /*reads=*/true);
  get->callback([cli, g, o] {
    cli->run = [g, o] {
      if (!o->local) return RunGet(*g, o->bucket, o->key, o->quorum);
      auto key = LocalKey(o->bucket, o->key);
      if (!key.ok()) return Fail(*g, key.status());
      return RunInfo(*g, "local", *key);
    };
  });

  auto* put = app->add_subcommand("put", "Write a value (a blind write unless --context is given)");
  put->add_option("KEY", o->key, "The key")->required();
  auto* value_opt = put->add_option("VALUE", o->value, "The value (or use --value-file)");
  auto* file_opt = put->add_option("--value-file", o->value_file,
                                   "Read the value from FILE ('-' = stdin), for binary values");
  value_opt->excludes(file_opt);
  put->add_option("--context", o->context,
                  "Context printed by an earlier get/put: replaces the siblings it covers");
  AddBucketOption(put, &o->bucket);
  auto* ttl_opt = put->add_option(
      "--ttl", o->ttl_s,
      "Seconds until the value expires (by the coordinating node's clock); 0: never, even in a "
      "bucket with a default ttl");
  ttl_opt->check(CLI::Range(uint64_t{0}, uint64_t{315360000}));
  auto* absent = put->add_flag(
      "--if-absent", o->if_absent,
      "Store only if the key has no live value at the read quorum (exit 6 otherwise). Not "
      "linearizable: two writers at once may both succeed and leave siblings");
  auto* unchanged = put->add_flag(
      "--if-unchanged", o->if_unchanged,
      "With --context: store only if the key holds nothing the context does not cover, at the "
      "read quorum (exit 6 otherwise)");
  absent->excludes(unchanged);
  AddQuorumOptions(put, &o->quorum, /*reads=*/false);
  put->callback([cli, g, o, value_opt, file_opt, ttl_opt] {
    if (value_opt->count() == 0 && file_opt->count() == 0) {
      throw CLI::RequiredError("ringkv put: give VALUE or --value-file FILE", CLI::ExitCodes::RequiredError);
    }
    bool from_file = file_opt->count() > 0;
    WriteFlags flags;
    if (ttl_opt->count() > 0) flags.ttl_s = o->ttl_s;
    flags.if_absent = o->if_absent;
    flags.if_unchanged = o->if_unchanged;
    cli->run = [g, o, from_file, flags] {
      std::string v = o->value;
      if (from_file) {
        auto data = ReadValueFile(o->value_file);
        if (!data.ok()) return Fail(*g, data.status());
        v = std::move(data).value();
      }
      return RunWrite(*g, o->bucket, o->key, v, o->context, o->quorum, flags);
    };
  });

  auto* del = app->add_subcommand("delete", "Delete a key (writes a tombstone)");
  del->add_option("KEY", o->key, "The key")->required();
  del->add_option("--context", o->context,
                  "Context printed by an earlier get: deletes the siblings it covers "
                  "(without it the delete only adds a tombstone sibling)");
  AddBucketOption(del, &o->bucket);
  AddQuorumOptions(del, &o->quorum, /*reads=*/false);
  del->callback([cli, g, o] {
    cli->run = [g, o] {
      return RunWrite(*g, o->bucket, o->key, std::nullopt, o->context, o->quorum, WriteFlags{});
    };
  });
  for (auto* cmd : {get, put, del}) cli->commands.push_back(cmd);
}

}  // namespace ringkv::cli
