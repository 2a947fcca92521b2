// bucket set, show, list: bucket properties (node/buckets.h), cluster
// metadata that any node takes and gossip spreads to every member.
#include <fmt/format.h>

#include "client/cli/cli.h"

namespace ringkv::cli {

namespace {

struct BucketOptions {
  std::string name;
  uint32_t n = 0, r = 0, w = 0, pr = 0, pw = 0, max_siblings = 0, warn_siblings = 0;
  std::string mode;
  bool lww = false;
  uint64_t ttl_s = 0;
};

std::string TtlText(const json& b) {
  uint64_t ttl = b.contains("ttl") && b["ttl"].is_number() ? b["ttl"].get<uint64_t>() : 0;
  return ttl == 0 ? "none" : fmt::format("{} s", ttl);
}

void PrintBucket(const json& b) {
  std::string set = "(none: the node's defaults)";
  if (b.contains("set") && b["set"].is_array() && !b["set"].empty()) {
    set.clear();
    for (const auto& f : b["set"]) set += (set.empty() ? "" : ", ") + f.get<std::string>();
  }
  fmt::print("bucket        {}\n", Field(b, "name"));
  fmt::print("quorum        n={} r={} w={} pr={} pw={} mode={}\n", Field(b, "n"), Field(b, "r"),
             Field(b, "w"), Field(b, "pr"), Field(b, "pw"), Field(b, "mode"));
  fmt::print("lww           {}\n", Field(b, "lww"));
  fmt::print("siblings      at most {} per key, warn above {}\n", Field(b, "max_siblings"),
             Field(b, "warn_siblings"));
  fmt::print("ttl           {}\n", TtlText(b));
  fmt::print("set here      {}\n", set);
  if (b.value("exists", false)) {
    fmt::print("last change   by {} at {} ms (wall clock)\n", Field(b, "changed_by"),
               Field(b, "changed_ms"));
  }
}

int RunBucketInfo(const GlobalOptions& g, const std::string& topic, const std::string& arg) {
  int exit_code = kExitOk;
  std::optional<json> fetched = FetchInfo(g, topic, arg, &exit_code);
  if (!fetched) return exit_code;
  json& j = *fetched;
  if (g.json) {
    PrintJson(j);
    return kExitOk;
  }
  if (topic != "bucket-list") {
    PrintBucket(j);
    return kExitOk;
  }
  if (!j.contains("buckets") || !j["buckets"].is_array() || j["buckets"].empty()) {
    fmt::print("no bucket has properties: every bucket uses the node's defaults\n");
    return kExitOk;
  }
  Table t({"BUCKET", "N", "R", "W", "PR", "PW", "MODE", "LWW", "MAX SIBLINGS", "WARN", "TTL"});
  for (const auto& b : j["buckets"]) {
    t.Add({Field(b, "name"), Field(b, "n"), Field(b, "r"), Field(b, "w"), Field(b, "pr"),
           Field(b, "pw"), Field(b, "mode"), Field(b, "lww"), Field(b, "max_siblings"),
           Field(b, "warn_siblings"), TtlText(b)});
  }
  t.Print();
  return kExitOk;
}

}  // namespace

void AddBucketCommands(CLI::App* app, Cli* cli) {
  BucketOptions* o = cli->Keep<BucketOptions>();
  const GlobalOptions* g = &cli->global;
  auto* bucket = app->add_subcommand(
      "bucket",
      "Buckets and their properties: quorum defaults, lww, the sibling cap, a default ttl.\n"
      "Properties are cluster metadata: set on any node, gossip brings them to every member\n"
      "within a few rounds; a change made on two nodes at once keeps the later one.\n"
      "A request's own flags override its bucket's, which override the node's.");
  bucket->require_subcommand(1);
  cli->commands.push_back(bucket);

  auto* set = bucket->add_subcommand(
      "set", "Create or change a bucket: only the properties given change");
  set->add_option("NAME", o->name, "The bucket (letters, digits, '.', '_', '-'; at most 64)")
      ->required();
  auto* n = set->add_option("--n", o->n,
                            "Replicas of the bucket's keys: only when the bucket is created and "
                            "holds no keys, at most the cluster's n; never changed afterwards")
                ->check(CLI::Range(1, 64));
  auto* r = set->add_option("--r", o->r, "Default read quorum (0: the node's)")->check(CLI::Range(0, 64));
  auto* w = set->add_option("--w", o->w, "Default write quorum (0: the node's)")->check(CLI::Range(0, 64));
  auto* pr = set->add_option("--pr", o->pr, "Default primaries among the read replies")
                 ->check(CLI::Range(0, 64));
  auto* pw = set->add_option("--pw", o->pw, "Default primaries among the write acknowledgements")
                 ->check(CLI::Range(0, 64));
  auto* mode = set->add_option("--mode", o->mode,
                               "Default mode: sloppy (fallbacks with hints), strict (primaries "
                               "only), or default (the node's)")
                   ->check(CLI::IsMember({"sloppy", "strict", "default"}));
  auto* lww = set->add_flag("--lww,!--no-lww", o->lww,
                            "Last-write-wins: writes keep only the newest sibling and reads "
                            "answer it (loses concurrent writes); --no-lww turns it off");
  auto* max_siblings =
      set->add_option("--max-siblings", o->max_siblings,
                      "A write that would leave more live siblings is refused (exit 4); "
                      "0: the default, 100")
          ->check(CLI::Range(0, 1000000));
  auto* warn_siblings =
      set->add_option("--warn-siblings", o->warn_siblings,
                      "get warns above this many siblings; 0: the default, 25")
          ->check(CLI::Range(0, 1000000));
  auto* ttl = set->add_option("--ttl", o->ttl_s,
                              "Default expiry of the bucket's values, in seconds (put --ttl "
                              "overrides it); 0: none")
                  ->check(CLI::Range(uint64_t{0}, uint64_t{315360000}));
  set->callback([=] {
    json req = {{"name", o->name}};
    if (n->count()) req["n"] = o->n;
    if (r->count()) req["r"] = o->r;
    if (w->count()) req["w"] = o->w;
    if (pr->count()) req["pr"] = o->pr;
    if (pw->count()) req["pw"] = o->pw;
    if (mode->count()) req["mode"] = o->mode;
    if (lww->count()) req["lww"] = o->lww;
    if (max_siblings->count()) req["max_siblings"] = o->max_siblings;
    if (warn_siblings->count()) req["warn_siblings"] = o->warn_siblings;
    if (ttl->count()) req["ttl"] = o->ttl_s;
    std::string arg = Dump(req);
    cli->run = [g, arg] { return RunBucketInfo(*g, "bucket-set", arg); };
  });
  cli->commands.push_back(set);

  auto* show = bucket->add_subcommand(
      "show", "A bucket's properties in effect on the node asked, and which the bucket sets");
  show->add_option("NAME", o->name, "The bucket")->required();
  show->callback([cli, g, o] { cli->run = [g, o] { return RunBucketInfo(*g, "bucket-show", o->name); }; });
  cli->commands.push_back(show);

  auto* list = bucket->add_subcommand("list", "Every bucket that has properties");
  list->callback([cli, g] { cli->run = [g] { return RunBucketInfo(*g, "bucket-list", ""); }; });
  cli->commands.push_back(list);
}

}  // namespace ringkv::cli
