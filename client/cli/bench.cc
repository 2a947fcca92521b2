// bench: the load generator (client/bench.h); this only parses and prints.
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "client/bench.h"
#include "client/cli/cli.h"

namespace ringkv::cli {

namespace {

struct BenchCliOptions {
  BenchOptions bench;
  QuorumOptions quorum;
  std::vector<std::string> hosts;
  std::string ratio = "1:1";
  std::string distribution = "uniform";
  std::string type = "plain";
  bool progress = false;
};

// Adds `ringkv bench` and its flags; *out receives what was parsed.
CLI::App* AddBenchOptions(CLI::App* app, BenchCliOptions* out) {
  auto* cmd = app->add_subcommand(
      "bench",
      "Load generator: N client connections (driven by --threads event-loop threads) run\n"
      "gets and puts and report throughput, latency percentiles, errors by kind, not-found\n"
      "and sibling counts.\n"
      "Errors during the run are counted in the report, not in the exit code.");
  BenchOptions& b = out->bench;
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
      ->check(CLI::Range(size_t{0}, kDefaultMaxValueBytes));
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
  cmd->add_option("-b,--bucket", b.bucket, "Bucket of the keys (default: the bucket default)");
  cmd->add_flag("--preload", b.preload,
                "Write every key once (blind puts) before measuring, so gets find data");
  cmd->add_option("--type", out->type,
                  "What the keys hold: plain values; counter (a put is an increment by 1, INCR); "
                  "set (a put adds a random member, SADD). Gets read the value; counters and "
                  "sets never show siblings")
      ->capture_default_str()
      ->check(CLI::IsMember({"plain", "counter", "set"}));
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
  return cmd;
}

int RunBenchCommand(const GlobalOptions& g, BenchCliOptions cli, bool requests_given) {
  BenchOptions o = std::move(cli.bench);
  o.requests_set = requests_given;
  o.hosts = cli.hosts.empty() ? std::vector<std::string>{g.host} : cli.hosts;
  o.quorum = cli.quorum.ToQuorum();
  o.distribution =
      cli.distribution == "zipf" ? KeyDistribution::kZipf : KeyDistribution::kUniform;
  o.type = cli.type == "counter" ? DataType::kCounter
           : cli.type == "set"   ? DataType::kSet
                                 : DataType::kNone;
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
  Status valid = ValidateBenchOptions(o);
  if (!valid.ok()) return Fail(g, valid);
  auto client = ResolveClientOptions(g);
  if (!client.ok()) return Fail(g, client.status());
  o.client = std::move(client).value();

  bool tty = isatty(STDERR_FILENO) != 0;
  std::function<void(const BenchProgress&)> progress;
  if (cli.progress || (tty && !g.json)) {
    progress = [tty](const BenchProgress& p) {
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
  auto result = RunBench(o, progress);
  if (progress && tty) fmt::print(stderr, "\r\033[K");
  if (!result.ok()) return Fail(g, result.status());
  if (g.json) {
    fmt::print("{}\n", BenchReportJson(o, *result));
  } else {
    fmt::print("{}", FormatBenchReport(o, *result));
  }
  return kExitOk;
}

}  // namespace

void AddBenchCommand(CLI::App* app, Cli* cli) {
  BenchCliOptions* o = cli->Keep<BenchCliOptions>();
  const GlobalOptions* g = &cli->global;
  CLI::App* cmd = AddBenchOptions(app, o);
  cmd->callback([cli, g, o, cmd] {
    bool requests_given = cmd->get_option("--requests")->count() > 0;
    cli->run = [g, o, requests_given] { return RunBenchCommand(*g, std::move(*o), requests_given); };
  });
  cli->commands.push_back(cmd);
}

}  // namespace ringkv::cli
