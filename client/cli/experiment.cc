// experiment staleness, experiment siblings: measurements of what Dynamo's
// papers measured, run against a live cluster (client/experiment.h).
#include <cstdio>
#include <fstream>

#include "client/cli/cli.h"
#include "client/experiment.h"

namespace ringkv::cli {

namespace {

struct NodesOptions {
  std::vector<std::string> nodes;
};

// The nodes to run through: --nodes, else every member that -H's node sees
// up and alive (their advertised addresses).
Result<std::vector<std::string>> ResolveNodes(const GlobalOptions& g, const std::vector<std::string>& given) {
  if (!given.empty()) return given;
  auto client = Connect(g);
  if (!client.ok()) return client.status();
  auto doc = (*client)->Info("status");
  if (!doc.ok()) return doc.status();
  json j = json::parse(*doc, nullptr, false);
  std::vector<std::string> out;
  if (j.is_object() && j.contains("members") && j["members"].is_array()) {
    for (const auto& m : j["members"]) {
      if (m.value("state", "") == "up" && m.value("alive", false) && m.contains("address")) {
        out.push_back(m["address"].get<std::string>());
      }
    }
  }
  if (out.empty()) out.push_back(g.host);
  return out;
}

struct StalenessFlags {
  NodesOptions nodes;
  uint32_t n = 3, r = 1, w = 1, trials = 20;
  std::vector<uint32_t> t_ms;
  std::string svg;
};

int RunStalenessCommand(const GlobalOptions& g, const StalenessFlags& f) {
  auto nodes = ResolveNodes(g, f.nodes.nodes);
  if (!nodes.ok()) return Fail(g, nodes.status());
  StalenessOptions o;
  o.nodes = *nodes;
  o.n = f.n;
  o.r = f.r;
  o.w = f.w;
  o.trials = f.trials;
  if (!f.t_ms.empty()) o.t_ms = f.t_ms;
  o.timeout_ms = g.timeout_ms;
  o.progress = [](uint32_t t, uint32_t consistent, uint32_t trials) {
    fmt::print(stderr, "staleness: t={} ms: {}/{} reads returned the write\n", t, consistent, trials);
  };
  auto result = RunStaleness(o);
  if (!result.ok()) return Fail(g, result.status());
  if (!f.svg.empty()) {
    std::ofstream out(f.svg);
    out << StalenessSvg(*result, fmt::format("PBS t-visibility: n={} r={} w={}, {} trials per t",
                                             o.n, o.r, o.w, o.trials));
    if (!out) {
      return Fail(g, Status::InvalidArgument(fmt::format("cannot write --svg {}", f.svg)));
    }
  }
  if (g.json) {
    json rows = json::array();
    for (const auto& r : result->rows) {
      rows.push_back({{"t_ms", r.t_ms}, {"p_consistent", r.p_consistent}, {"consistent", r.consistent},
                      {"trials", r.trials}, {"errors", r.errors}});
    }
    PrintJson({{"experiment", "staleness"}, {"n", o.n}, {"r", o.r}, {"w", o.w},
               {"trials_per_t", o.trials}, {"nodes", o.nodes}, {"rows", rows},
               {"seconds", result->seconds}});
    return kExitOk;
  }
  fmt::print("staleness (PBS t-visibility): n={} r={} w={}, {} trials per t, through {} nodes "
             "(writer and reader differ; the pair rotates)\n\n",
             o.n, o.r, o.w, o.trials, o.nodes.size());
  Table t({"T MS", "P(CONSISTENT)", "CONSISTENT", "TRIALS", "ERRORS"});
  for (const auto& r : result->rows) {
    t.Add({std::to_string(r.t_ms), fmt::format("{:.3f}", r.p_consistent), std::to_string(r.consistent),
           std::to_string(r.trials), std::to_string(r.errors)});
  }
  t.Print();
  fmt::print("\n{}\n", o.r + o.w > o.n
                           ? fmt::format("r + w = {} > n = {}: every read quorum meets every write "
                                         "quorum, so every read should return the write.",
                                         o.r + o.w, o.n)
                           : fmt::format("r + w = {} <= n = {}: partial quorums; a read may miss a "
                                         "write until enough replicas have applied it.",
                                         o.r + o.w, o.n));
  if (!f.svg.empty()) fmt::print("plot: {}\n", f.svg);
  fmt::print("({:.1f} s)\n", result->seconds);
  return kExitOk;
}

struct SiblingsFlags {
  NodesOptions nodes;
  uint32_t writers = 8, readers = 4, keys = 10;
  double duration = 10;
};

int RunSiblingsCommand(const GlobalOptions& g, const SiblingsFlags& f) {
  auto nodes = ResolveNodes(g, f.nodes.nodes);
  if (!nodes.ok()) return Fail(g, nodes.status());
  SiblingsOptions o;
  o.nodes = *nodes;
  o.writers = f.writers;
  o.readers = f.readers;
  o.keys = f.keys;
  o.duration_s = f.duration;
  o.timeout_ms = g.timeout_ms;
  fmt::print(stderr, "siblings: {} writers (read-modify-write) and {} readers on {} keys through {} "
                     "nodes for {} s...\n",
             o.writers, o.readers, o.keys, o.nodes.size(), o.duration_s);
  auto result = RunSiblings(o);
  if (!result.ok()) return Fail(g, result.status());
  const SiblingsResult& r = *result;
  auto share = [&](uint64_t n) { return r.reads == 0 ? 0.0 : 100.0 * static_cast<double>(n) / r.reads; };
  if (g.json) {
    json rows = json::array();
    for (const auto& [versions, n] : r.versions) {
      rows.push_back({{"versions", versions}, {"reads", n}, {"percent", share(n)}});
    }
    PrintJson({{"experiment", "siblings"}, {"writers", o.writers}, {"readers", o.readers},
               {"keys", o.keys}, {"nodes", o.nodes}, {"seconds", r.seconds}, {"reads", r.reads},
               {"writes", r.writes}, {"read_errors", r.read_errors},
               {"write_errors", r.write_errors}, {"versions", rows}});
    return kExitOk;
  }
  fmt::print("siblings: versions seen per read, {} writers doing read-modify-write and {} readers "
             "on {} keys through {} nodes, {:.1f} s\n\n",
             o.writers, o.readers, o.keys, o.nodes.size(), r.seconds);
  Table t({"VERSIONS", "READS", "% OF READS"});
  for (const auto& [versions, n] : r.versions) {
    t.Add({std::to_string(versions), std::to_string(n), fmt::format("{:.3f}%", share(n))});
  }
  t.Print();
  fmt::print("\n{} reads, {} writes ({:.0f} ops/s); {} read and {} write errors\n", r.reads, r.writes,
             r.seconds > 0 ? (r.reads + r.writes) / r.seconds : 0.0, r.read_errors, r.write_errors);
  fmt::print("Dynamo (SOSP 2007) saw exactly one version in 99.94% of its requests over 24 hours; "
             "more writers on fewer keys mean more concurrent writes, hence more siblings.\n");
  return kExitOk;
}

}  // namespace

void AddExperimentCommands(CLI::App* app, Cli* cli) {
  CLI::App* exp = app->add_subcommand(
      "experiment", "Measurements of what the Dynamo and PBS papers measured, on this cluster");
  exp->require_subcommand(1);

  auto* sf = cli->Keep<StalenessFlags>();
  CLI::App* st = exp->add_subcommand(
      "staleness",
      "PBS t-visibility (Bailis et al., VLDB 2012): the probability that a read started t ms "
      "after a write was acknowledged returns it. Each trial writes a new key with (n, w) "
      "through one node and, t ms after the acknowledgement, reads it with (n, r) through "
      "another. With r + w > n every read returns the write; with r = w = 1, start the nodes "
      "with --inject-replica-delay-ms (a testing knob) or use docker/faults slow to see the "
      "window");
  st->add_option("--n", sf->n, "Replicas")->capture_default_str()->check(CLI::Range(1, 64));
  st->add_option("--r", sf->r, "Read quorum")->capture_default_str()->check(CLI::Range(1, 64));
  st->add_option("--w", sf->w, "Write quorum")->capture_default_str()->check(CLI::Range(1, 64));
  st->add_option("--trials", sf->trials, "Writes and reads per t")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  st->add_option("--t-ms", sf->t_ms, "Delays between the acknowledgement and the read, in ms "
                                     "(default 0,5,10,20,50,100,200,500)")
      ->delimiter(',')
      ->check(CLI::Range(0, 600000));
  st->add_option("--nodes", sf->nodes.nodes,
                 "Nodes to write and read through, HOST:PORT,... (default: every member -H sees up)")
      ->delimiter(',');
  st->add_option("--svg", sf->svg, "Also write a plot of P(consistent) against t to FILE (SVG)");
  cli->commands.push_back(st);
  st->callback([cli, sf] { cli->run = [cli, sf] { return RunStalenessCommand(cli->global, *sf); }; });

  auto* bf = cli->Keep<SiblingsFlags>();
  CLI::App* sb = exp->add_subcommand(
      "siblings",
      "Versions seen per read under a concurrent write load (the Dynamo paper's \"99.94% of "
      "requests saw exactly one version\"): writers do read-modify-write with the context of "
      "their read through different nodes, readers count the siblings of every read");
  sb->add_option("--writers", bf->writers, "Writer threads")->capture_default_str()->check(CLI::Range(1, 1000));
  sb->add_option("--readers", bf->readers, "Reader threads")->capture_default_str()->check(CLI::Range(0, 1000));
  sb->add_option("--keys", bf->keys, "Keys the load is spread over")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  sb->add_option("--duration", bf->duration, "Seconds to run")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  sb->add_option("--nodes", bf->nodes.nodes,
                 "Nodes the clients connect to, HOST:PORT,... (default: every member -H sees up)")
      ->delimiter(',');
  cli->commands.push_back(sb);
  sb->callback([cli, bf] { cli->run = [cli, bf] { return RunSiblingsCommand(cli->global, *bf); }; });
}

}  // namespace ringkv::cli
