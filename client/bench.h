// Bench: a load generator for a ringkv cluster, built on the client library.
// `ringkv bench` parses flags into a BenchOptions, calls RunBench and prints
// the BenchResult; tests may call RunBench directly.
//
// Shape of a run: `clients` connections, client i to hosts[i % hosts.size()],
// driven by `threads` threads (client i on thread i % threads), each waiting
// on its connections with epoll, as redis-benchmark does: 50 blocking threads
// cost the machine more in wake-ups than the requests. Each connection keeps
// `pipeline` requests in flight: it writes that many, then sends a new one
// for every reply it reads (a sliding window; replies are matched by request
// id, so a node may answer out of order). An optional preload phase first
// writes every key once (blind puts, keys shared out among the clients);
// then the measured phase runs for `duration_s` seconds or `requests`
// operations, whichever is set.
//
// What is measured: an operation is one get or one put. Its latency runs from
// the moment its request is written to the socket to the moment its reply is
// read, in microseconds, recorded in per-connection Histograms merged at the end
// (so percentiles are within 1%). With `rmw` a put is a read followed by a
// write that passes the read's context back, and its latency covers both.
// Operations the node refuses are counted by status code and are not in the
// latency histograms; a lost connection counts every operation then in
// flight as a "connection" error (or "client_timeout" when no reply came
// within timeout_ms), and the client reconnects and carries on.
//
// With `type` a counter or a set, the keys hold that data type
// (core/datatypes.h): a "put" is an increment by 1 (INCR) or an add of a
// member "member:" + 12 digits drawn from the key space (SADD), answered by
// the coordinating replica with an integer; a "get" is a quorum read of the
// key's value. Reads never see siblings then; `siblings_seen` counts reads
// that joined more than one state of a key (concurrent writes).
//
// Keys are "key:" and 12 decimal digits (key:000000012345), as
// redis-benchmark names its keys with -r, so the two tools move the same
// bytes. Values are `value_size` printable bytes. Key choice is
// deterministic for a given seed: client i draws from its own generator
// seeded from (seed, i).
//
// Threads: RunBench blocks; it starts its own threads and joins them before
// returning. The progress callback runs on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "client/client.h"
#include "core/histogram.h"
#include "core/message.h"
#include "core/status.h"

namespace ringkv {

enum class KeyDistribution { kUniform, kZipf };

struct BenchOptions {
  std::vector<std::string> hosts;  // host:port; at least one
  int clients = 50;                // connections
  int threads = 1;                 // threads driving them (epoll), at most `clients`
  // Measured phase: `requests` operations in all if non-zero, otherwise
  // `duration_s` seconds. requests_set with requests == 0 skips the
  // measured phase (useful with preload: load and stop).
  uint64_t requests = 0;
  bool requests_set = false;
  double duration_s = 10.0;
  uint64_t keys = 100000;    // key space: key:000000000000 .. keys-1
  size_t value_size = 100;   // bytes per value
  uint32_t get_weight = 1;   // --ratio G:P
  uint32_t put_weight = 1;
  KeyDistribution distribution = KeyDistribution::kUniform;
  double zipf_exponent = 0.99;
  uint64_t seed = 1;
  int pipeline = 1;          // requests in flight per connection
  bool preload = false;      // write every key once before measuring
  bool rmw = false;          // puts read first and write with the context
  DataType type = DataType::kNone;  // kCounter, kSet: data-type keys (see above)
  // Per-request quorum: gets use n, r, pr, mode; puts use n, w, pw, mode.
  Quorum quorum;
  std::string bucket;  // empty: the default bucket
  int timeout_ms = 10000;    // connect, and longest wait for any one reply
  // TLS and login for every connection (client/client.h). The connections
  // are made at once, in parallel, so logins (a password check each on the
  // node) overlap.
  ClientOptions client;
};

// What the progress callback sees, about once a second.
struct BenchProgress {
  const char* phase = "run";  // "preload" or "run"
  double elapsed_s = 0;       // since the phase started
  uint64_t ops = 0;           // operations completed in the phase so far
  double ops_per_s = 0;       // over the last interval
};

// Counts and latencies of one phase.
struct BenchPhaseResult {
  double elapsed_s = 0;
  uint64_t ops = 0;         // completed operations, failed ones included
  uint64_t gets = 0;        // successful gets (found or not)
  uint64_t puts = 0;        // successful puts
  uint64_t not_found = 0;   // gets that found no live value
  uint64_t siblings_seen = 0;  // reads that returned more than one live sibling
  uint64_t max_siblings = 0;   // most live siblings one read returned
  // Failed operations by kind: the node's status code ("unavailable",
  // "timeout", "invalid_argument", ...), or "connection" / "client_timeout".
  std::map<std::string, uint64_t> errors;
  uint64_t reconnects = 0;       // connections re-established after a loss
  uint64_t connect_failures = 0; // reconnect attempts that failed
  Histogram latency;             // successful operations, microseconds
  Histogram get_latency;
  Histogram put_latency;
  double client_cpu_s = 0;       // CPU time of the client's threads

  uint64_t error_count() const;
  // Completed operations per second of the phase.
  double ops_per_s() const { return elapsed_s > 0 ? static_cast<double>(ops) / elapsed_s : 0; }
};

struct BenchResult {
  bool preloaded = false;
  BenchPhaseResult preload;  // meaningful when preloaded
  bool measured = false;
  BenchPhaseResult run;      // meaningful when measured
};

// Checks the options (InvalidArgument naming the bad one).
Status ValidateBenchOptions(const BenchOptions& options);

// Runs the benchmark. Fails (IOError) only if some client cannot connect at
// the start; failures during the run are counted in the result instead.
Result<BenchResult> RunBench(const BenchOptions& options,
                             const std::function<void(const BenchProgress&)>& progress = {});

// The report `ringkv bench` prints: human text, and one JSON document.
std::string FormatBenchReport(const BenchOptions& options, const BenchResult& result);
std::string BenchReportJson(const BenchOptions& options, const BenchResult& result);

// Draws ranks 1..n with P(k) proportional to 1/k^s in O(1) time and memory
// (rejection-inversion, Hörmann and Derflinger 1996). Exposed for tests.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double s);
  // u01() yields doubles uniform in [0, 1).
  template <typename Uniform>
  uint64_t Sample(Uniform&& u01) const {
    for (;;) {
      double u = h_integral_n_ + u01() * (h_integral_x1_ - h_integral_n_);
      double x = HIntegralInverse(u);
      auto k = static_cast<uint64_t>(x + 0.5);
      if (k < 1) k = 1;
      if (k > n_) k = n_;
      if (static_cast<double>(k) - x <= threshold_ ||
          u >= HIntegral(static_cast<double>(k) + 0.5) - H(static_cast<double>(k))) {
        return k;
      }
    }
  }

 private:
  double H(double x) const;
  double HIntegral(double x) const;
  double HIntegralInverse(double x) const;

  uint64_t n_;
  double s_;
  double h_integral_x1_;
  double h_integral_n_;
  double threshold_;
};

}  // namespace ringkv
