// counter, set, map: the convergent data types (core/datatypes.h). Their
// updates merge instead of making siblings; a read shows one value.
#include <cstdio>
#include <limits>

#include <fmt/format.h>

#include "client/cli/cli.h"
#include "core/codec.h"
#include "core/datatypes.h"

namespace ringkv::cli {

namespace {

constexpr const char* kBucketHelp =
    "Bucket of the key (default: the default bucket). Bucket properties come with "
    "buckets (issue 18); until then every bucket name means the default bucket";

struct DataTypeOptions {
  std::string bucket;
  std::string key;
  std::vector<std::string> items;  // members; or field, value
  std::string field;
  std::string value;
  int64_t by = 1;
  QuorumOptions quorum;
};

// Data-type requests have no lww mode (it would drop concurrent states).
void AddOptions(CLI::App* cmd, DataTypeOptions* o, bool reads) {
  cmd->add_option("-b,--bucket", o->bucket, kBucketHelp);
  AddQuorumOptions(cmd, &o->quorum, reads);
  cmd->remove_option(cmd->get_option("--lww"));
}

// A list of byte strings for JSON: as text, or all as base64 (with
// "encoding": "base64" beside them) if one is not printable.
bool AllPrintable(const std::vector<std::string>& items) {
  for (const auto& s : items) {
    if (MakePrintable(s).base64) return false;
  }
  return true;
}

std::string ForJson(const std::string& s, bool base64) { return base64 ? Base64Encode(s) : s; }

// Text lines: printable values as they are, others as "(base64) ...".
std::string ForText(const std::string& s) {
  Printable p = MakePrintable(s);
  return p.base64 ? "(base64) " + p.text : p.text;
}

Result<std::unique_ptr<Client>> Open(const GlobalOptions& g, const DataTypeOptions& o) {
  return Connect(g, o.quorum.timeout_ms);
}

Quorum RequestQuorum(const DataTypeOptions& o) {
  Quorum q = o.quorum.ToQuorum();
  q.lww = false;
  return q;
}

Result<DataTypeResult> Operate(const GlobalOptions& g, const DataTypeOptions& o, DataType type,
                               DataTypeOpCode op, std::vector<std::string> args, int64_t delta) {
  auto client = Open(g, o);
  if (!client.ok()) return client.status();
  DataTypeRequest req;
  req.key = o.key;
  req.bucket = o.bucket;
  req.type = type;
  req.op = op;
  req.args = std::move(args);
  req.delta = delta;
  req.quorum = RequestQuorum(o);
  return (*client)->DataTypeOperation(std::move(req));
}

Result<DataTypeReadResult> Read(const GlobalOptions& g, const DataTypeOptions& o, DataType type) {
  auto client = Open(g, o);
  if (!client.ok()) return client.status();
  return (*client)->DataTypeRead(o.key, type, o.bucket, RequestQuorum(o));
}

json Base(const DataTypeOptions& o) {
  json j = json::object();
  AddKey(&j, o.key);
  if (!o.bucket.empty()) j["bucket"] = o.bucket;
  return j;
}

std::string DotText(const DataTypeResult& r) { return r.dot ? r.dot->ToString() : ""; }

// --- counter -------------------------------------------------------------------

int RunCounterAdd(const GlobalOptions& g, const DataTypeOptions& o, bool decrement) {
  int64_t delta = o.by;
  if (decrement) {
    if (delta == std::numeric_limits<int64_t>::min()) {
      return Fail(g, Status::InvalidArgument("--by is out of range"));
    }
    delta = -delta;
  }
  auto r = Operate(g, o, DataType::kCounter, DataTypeOpCode::kIncrement, {}, delta);
  if (!r.ok()) return Fail(g, r.status());
  if (g.json) {
    json j = Base(o);
    j["value"] = r->integer;
    j["dot"] = DotText(*r);
    PrintJson(j);
  } else {
    fmt::print("{}\n", r->integer);
  }
  return kExitOk;
}

int RunCounterGet(const GlobalOptions& g, const DataTypeOptions& o) {
  auto r = Read(g, o, DataType::kCounter);
  if (!r.ok()) return Fail(g, r.status());
  int64_t value = r->state.counter().Value();
  if (g.json) {
    json j = Base(o);
    j["found"] = r->found;
    j["value"] = value;
    PrintJson(j);
  } else {
    fmt::print("{}\n", value);
  }
  return kExitOk;
}

// --- set -------------------------------------------------------------------------

int RunSetChange(const GlobalOptions& g, const DataTypeOptions& o, bool remove) {
  auto r = Operate(g, o, DataType::kSet, remove ? DataTypeOpCode::kRemove : DataTypeOpCode::kAdd,
                   o.items, 0);
  if (!r.ok()) return Fail(g, r.status());
  if (g.json) {
    json j = Base(o);
    j[remove ? "removed" : "added"] = r->integer;
    j["dot"] = DotText(*r);
    PrintJson(j);
  } else {
    fmt::print("{} {}\n", r->integer, remove ? "removed" : "added");
  }
  return kExitOk;
}

int RunSetMembers(const GlobalOptions& g, const DataTypeOptions& o) {
  auto r = Read(g, o, DataType::kSet);
  if (!r.ok()) return Fail(g, r.status());
  std::vector<std::string> members = r->state.set().Members();
  if (g.json) {
    json j = Base(o);
    j["found"] = r->found;
    bool base64 = !AllPrintable(members);
    json list = json::array();
    for (const auto& m : members) list.push_back(ForJson(m, base64));
    j["members"] = std::move(list);
    if (base64) j["encoding"] = "base64";
    PrintJson(j);
  } else {
    for (const auto& m : members) fmt::print("{}\n", ForText(m));
  }
  return kExitOk;
}

int RunSetContains(const GlobalOptions& g, const DataTypeOptions& o) {
  auto r = Read(g, o, DataType::kSet);
  if (!r.ok()) return Fail(g, r.status());
  bool contains = r->state.set().Contains(o.items.at(0));
  if (g.json) {
    json j = Base(o);
    Printable m = MakePrintable(o.items[0]);
    j["member"] = m.text;
    if (m.base64) j["member_encoding"] = "base64";
    j["contains"] = contains;
    PrintJson(j);
  } else {
    fmt::print("{}\n", contains ? "true" : "false");
  }
  return contains ? kExitOk : kExitNotFound;
}

// --- map -------------------------------------------------------------------------

int RunMapSet(const GlobalOptions& g, const DataTypeOptions& o) {
  auto r = Operate(g, o, DataType::kMap, DataTypeOpCode::kSetFields, {o.field, o.value}, 0);
  if (!r.ok()) return Fail(g, r.status());
  if (g.json) {
    json j = Base(o);
    j["added"] = r->integer;
    j["dot"] = DotText(*r);
    PrintJson(j);
  } else {
    fmt::print("ok{}\n", r->integer > 0 ? " (new field)" : "");
  }
  return kExitOk;
}

int RunMapDel(const GlobalOptions& g, const DataTypeOptions& o) {
  auto r = Operate(g, o, DataType::kMap, DataTypeOpCode::kRemoveFields, o.items, 0);
  if (!r.ok()) return Fail(g, r.status());
  if (g.json) {
    json j = Base(o);
    j["removed"] = r->integer;
    j["dot"] = DotText(*r);
    PrintJson(j);
  } else {
    fmt::print("{} removed\n", r->integer);
  }
  return kExitOk;
}

int RunMapGet(const GlobalOptions& g, const DataTypeOptions& o, bool one_field) {
  auto r = Read(g, o, DataType::kMap);
  if (!r.ok()) return Fail(g, r.status());
  std::vector<std::pair<std::string, std::string>> fields;
  if (one_field) {
    if (auto v = r->state.map().Get(o.field)) fields.emplace_back(o.field, *v);
  } else {
    fields = r->state.map().Fields();
  }
  if (g.json) {
    json j = Base(o);
    j["found"] = r->found;
    std::vector<std::string> all;
    for (const auto& [f, v] : fields) {
      all.push_back(f);
      all.push_back(v);
    }
    bool base64 = !AllPrintable(all);
    json obj = json::object();
    for (const auto& [f, v] : fields) obj[ForJson(f, base64)] = ForJson(v, base64);
    j["fields"] = std::move(obj);
    if (base64) j["encoding"] = "base64";
    PrintJson(j);
  } else if (one_field) {
    if (!fields.empty()) fmt::print("{}\n", ForText(fields[0].second));
  } else {
    for (const auto& [f, v] : fields) fmt::print("{}\t{}\n", ForText(f), ForText(v));
  }
  if (one_field && fields.empty()) {
    if (!g.json) fmt::print(stderr, "not found: field {} of {}\n", ForText(o.field), KeyForHumans(o.key));
    return kExitNotFound;
  }
  return kExitOk;
}

CLI::App* Leaf(CLI::App* group, Cli* cli, const char* name, const char* help) {
  CLI::App* cmd = group->add_subcommand(name, help);
  cli->commands.push_back(cmd);
  return cmd;
}

}  // namespace

int PrintDataTypeGet(const GlobalOptions& g, std::string_view key, const GetResult& r) {
  if (!r.found) return -1;
  auto contents = ReadKeyContents(r.object);
  if (!contents.ok()) return Fail(g, contents.status());
  if (contents->type == DataType::kNone) return -1;
  const DataTypeState& st = contents->state;
  std::string context = Base64Encode(r.context);
  if (g.json) {
    json j = json::object();
    AddKey(&j, key);
    j["found"] = true;
    j["type"] = DataTypeName(st.type());
    switch (st.type()) {
      case DataType::kCounter:
        j["value"] = st.counter().Value();
        break;
      case DataType::kSet: {
        std::vector<std::string> members = st.set().Members();
        bool base64 = !AllPrintable(members);
        json list = json::array();
        for (const auto& m : members) list.push_back(ForJson(m, base64));
        j["members"] = std::move(list);
        if (base64) j["encoding"] = "base64";
        break;
      }
      case DataType::kMap: {
        std::vector<std::string> all;
        for (const auto& [f, v] : st.map().Fields()) {
          all.push_back(f);
          all.push_back(v);
        }
        bool base64 = !AllPrintable(all);
        json obj = json::object();
        for (const auto& [f, v] : st.map().Fields()) obj[ForJson(f, base64)] = ForJson(v, base64);
        j["fields"] = std::move(obj);
        if (base64) j["encoding"] = "base64";
        break;
      }
      case DataType::kNone:
        break;
    }
    j["states"] = contents->joined;
    j["context"] = context;
    PrintJson(j);
    return kExitOk;
  }
  fmt::print("{} {}: {}\n", DataTypeName(st.type()), KeyForHumans(key), st.Describe());
  if (st.type() == DataType::kSet) {
    for (const auto& m : st.set().Members()) fmt::print("  {}\n", ForText(m));
  } else if (st.type() == DataType::kMap) {
    for (const auto& [f, v] : st.map().Fields()) fmt::print("  {}\t{}\n", ForText(f), ForText(v));
  }
  if (contents->joined > 1) {
    fmt::print("({} states from concurrent writes, joined; the next operation stores them as one)\n",
               contents->joined);
  }
  fmt::print("context: {}\n", context);
  fmt::print("(ringkv {} ... reads and changes it; delete with --context)\n", DataTypeName(st.type()));
  return kExitOk;
}

void AddDataTypeCommands(CLI::App* app, Cli* cli) {
  DataTypeOptions* o = cli->Keep<DataTypeOptions>();
  const GlobalOptions* g = &cli->global;

  auto* counter = app->add_subcommand(
      "counter",
      "A counter (PN-counter): increments through any nodes, even on both sides of a\n"
      "partition, add up; it never shows siblings");
  counter->require_subcommand(1);
  cli->commands.push_back(counter);
  for (bool decr : {false, true}) {
    auto* cmd = Leaf(counter, cli, decr ? "decr" : "incr",
                     decr ? "Subtract from the counter (default 1); prints the value the "
                            "coordinating replica then holds"
                          : "Add to the counter (default 1); prints the value the coordinating "
                            "replica then holds");
    cmd->add_option("KEY", o->key, "The key")->required();
    cmd->add_option("--by", o->by, decr ? "How much to subtract" : "How much to add")
        ->capture_default_str();
    AddOptions(cmd, o, /*reads=*/false);
    cmd->callback([cli, g, o, decr] { cli->run = [g, o, decr] { return RunCounterAdd(*g, *o, decr); }; });
  }
  auto* cget = Leaf(counter, cli, "get", "Read the counter (a quorum read); a missing key reads 0");
  cget->add_option("KEY", o->key, "The key")->required();
  AddOptions(cget, o, /*reads=*/true);
  cget->callback([cli, g, o] { cli->run = [g, o] { return RunCounterGet(*g, *o); }; });

  auto* set = app->add_subcommand(
      "set",
      "A set (add-wins observed-remove set): a remove removes the members it saw; an add\n"
      "concurrent with it wins");
  set->require_subcommand(1);
  cli->commands.push_back(set);
  for (bool remove : {false, true}) {
    auto* cmd = Leaf(set, cli, remove ? "remove" : "add",
                     remove ? "Remove members; prints how many were members (as the coordinating "
                              "replica saw it)"
                            : "Add members; prints how many were new");
    cmd->add_option("KEY", o->key, "The key")->required();
    cmd->add_option("MEMBER", o->items, "Members")->required();
    AddOptions(cmd, o, /*reads=*/false);
    cmd->callback([cli, g, o, remove] {
      cli->run = [g, o, remove] { return RunSetChange(*g, *o, remove); };
    });
  }
  auto* members = Leaf(set, cli, "members", "The members, one a line (--json: {\"members\": [...]})");
  members->add_option("KEY", o->key, "The key")->required();
  AddOptions(members, o, /*reads=*/true);
  members->callback([cli, g, o] { cli->run = [g, o] { return RunSetMembers(*g, *o); }; });
  auto* contains =
      Leaf(set, cli, "contains", "Whether MEMBER is in the set: prints true (exit 0) or false (exit 1)");
  contains->add_option("KEY", o->key, "The key")->required();
  contains->add_option("MEMBER", o->items, "The member")->required()->expected(1);
  AddOptions(contains, o, /*reads=*/true);
  contains->callback([cli, g, o] { cli->run = [g, o] { return RunSetContains(*g, *o); }; });

  auto* map = app->add_subcommand(
      "map",
      "A map of fields to values: fields are add-wins like set members; a value is a\n"
      "register (the latest write wins, by timestamp); HINCRBY over RESP makes a counter");
  map->require_subcommand(1);
  cli->commands.push_back(map);
  auto* mset = Leaf(map, cli, "set", "Set FIELD to VALUE");
  mset->add_option("KEY", o->key, "The key")->required();
  mset->add_option("FIELD", o->field, "The field")->required();
  mset->add_option("VALUE", o->value, "Its value")->required();
  AddOptions(mset, o, /*reads=*/false);
  mset->callback([cli, g, o] { cli->run = [g, o] { return RunMapSet(*g, *o); }; });
  auto* mdel = Leaf(map, cli, "del", "Remove fields; prints how many were present");
  mdel->add_option("KEY", o->key, "The key")->required();
  mdel->add_option("FIELD", o->items, "Fields")->required();
  AddOptions(mdel, o, /*reads=*/false);
  mdel->callback([cli, g, o] { cli->run = [g, o] { return RunMapDel(*g, *o); }; });
  auto* mget = Leaf(map, cli, "get",
                    "Every field and its value, a tab between (--json: {\"fields\": {...}}); "
                    "with FIELD, its value only (exit 1 if absent)");
  mget->add_option("KEY", o->key, "The key")->required();
  auto* field_opt = mget->add_option("FIELD", o->field, "One field");
  AddOptions(mget, o, /*reads=*/true);
  mget->callback([cli, g, o, field_opt] {
    bool one = field_opt->count() > 0;
    cli->run = [g, o, one] { return RunMapGet(*g, *o, one); };
  });
}

}  // namespace ringkv::cli
