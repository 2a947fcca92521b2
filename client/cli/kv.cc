// get, put, delete: the key-value commands.
#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include "client/cli/cli.h"
#include "core/codec.h"
#include "core/dvv.h"

namespace ringkv::cli {

namespace {

int RunGet(const GlobalOptions& g, const std::string& key, const QuorumOptions& qo) {
  auto client = Connect(g, qo.timeout_ms);
  if (!client.ok()) return Fail(g, client.status());
  auto res = (*client)->Get(key, qo.ToQuorum());
  if (!res.ok()) return Fail(g, res.status());
  const GetResult& r = *res;
  if (int code = PrintDataTypeGet(g, key, r); code >= 0) return code;
  std::string context = Base64Encode(r.context);
  std::vector<const Sibling*> live;
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
  std::string out_context = Base64Encode(res->context);
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

struct KvOptions {
  std::string key, value, value_file, context;
  bool local = false;
  QuorumOptions quorum;
};

}  // namespace

void AddKvCommands(CLI::App* app, Cli* cli) {
  KvOptions* o = cli->Keep<KvOptions>();
  const GlobalOptions* g = &cli->global;

  auto* get = app->add_subcommand("get", "Read a key: every live sibling with its dot, and the context");
  get->add_option("KEY", o->key, "The key")->required();
  get->add_flag("--local", o->local,
                "Only the copy stored on the node asked (-H), bypassing quorums and hints: "
                "shows what that replica holds");
  AddQuorumOptions(get, &o->quorum, /*reads=*/true);
  get->callback([cli, g, o] {
    cli->run = [g, o] { return o->local ? RunInfo(*g, "local", o->key) : RunGet(*g, o->key, o->quorum); };
  });

  auto* put = app->add_subcommand("put", "Write a value (a blind write unless --context is given)");
  put->add_option("KEY", o->key, "The key")->required();
  auto* value_opt = put->add_option("VALUE", o->value, "The value (or use --value-file)");
  auto* file_opt = put->add_option("--value-file", o->value_file,
                                   "Read the value from FILE ('-' = stdin), for binary values");
  value_opt->excludes(file_opt);
  put->add_option("--context", o->context,
                  "Context printed by an earlier get/put: replaces the siblings it covers");
  AddQuorumOptions(put, &o->quorum, /*reads=*/false);
  put->callback([cli, g, o, value_opt, file_opt] {
    if (value_opt->count() == 0 && file_opt->count() == 0) {
      throw CLI::RequiredError("ringkv put: give VALUE or --value-file FILE", CLI::ExitCodes::RequiredError);
    }
    bool from_file = file_opt->count() > 0;
    cli->run = [g, o, from_file] {
      std::string v = o->value;
      if (from_file) {
        auto data = ReadValueFile(o->value_file);
        if (!data.ok()) return Fail(*g, data.status());
        v = std::move(data).value();
      }
      return RunWrite(*g, o->key, v, o->context, o->quorum);
    };
  });

  auto* del = app->add_subcommand("delete", "Delete a key (writes a tombstone)");
  del->add_option("KEY", o->key, "The key")->required();
  del->add_option("--context", o->context,
                  "Context printed by an earlier get: deletes the siblings it covers "
                  "(without it the delete only adds a tombstone sibling)");
  AddQuorumOptions(del, &o->quorum, /*reads=*/false);
  del->callback([cli, g, o] {
    cli->run = [g, o] { return RunWrite(*g, o->key, std::nullopt, o->context, o->quorum); };
  });
  for (auto* cmd : {get, put, del}) cli->commands.push_back(cmd);
}

}  // namespace ringkv::cli
