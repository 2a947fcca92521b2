// Experiments a user runs against a live cluster with `ringkv experiment`
// (client/cli/experiment.cc prints them); built on the client library.
//
// Staleness: the PBS measurement of Bailis et al., "Probabilistically
// Bounded Staleness for Practical Partial Quorums" (VLDB 2012), t-visibility:
// the probability that a read started t ms after a write was acknowledged
// returns that write. For every t and every trial, a new key is written
// (quorum n, w) through one node; once the write is acknowledged the client
// waits t ms and reads the key (quorum n, r) through a *different* node (the
// pair rotates over the nodes, so every node writes and reads). A read is
// consistent if it returns the value just written. Every (t, trial) uses a
// fresh key, so neither an earlier read's read repair nor anti-entropy
// helps a later read. With r + w > n every read is consistent; with r = w =
// 1 the curve shows how long a replica takes to apply a write (make it slow
// with `ringkv-node --inject-replica-delay-ms` or `docker/faults slow`).
// Requests that fail (quorum not met) are counted apart and left out of the
// probability.
//
// Siblings: the versions each read sees under a concurrent write load, the
// Dynamo paper's measurement ("99.94% of requests saw exactly one
// version"). Writers do read-modify-write cycles with the context of their
// read (which resolves the siblings they saw) on a small set of keys, through
// different nodes; readers only read. Every successful read counts: how many
// live siblings its answer held.
//
// Threads: both functions block; Siblings starts one thread per writer and
// reader and joins them before returning; callbacks run on the calling
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace ringkv {

struct StalenessOptions {
  std::vector<std::string> nodes;  // at least two HOST:PORT; writer and reader rotate
  uint32_t n = 3, r = 1, w = 1;
  uint32_t trials = 20;             // per t
  std::vector<uint32_t> t_ms = {0, 5, 10, 20, 50, 100, 200, 500};
  int timeout_ms = 10000;
  std::string key_prefix = "pbs";   // keys are PREFIX/RUN/t/trial
  // Called after each t is done: (t_ms, consistent, trials so far).
  std::function<void(uint32_t, uint32_t, uint32_t)> progress;
};

struct StalenessRow {
  uint32_t t_ms = 0;
  uint32_t trials = 0;      // reads that answered
  uint32_t consistent = 0;  // of those, reads that returned the value written
  uint32_t errors = 0;      // writes or reads that failed (not in trials)
  double p_consistent = 0;  // consistent / trials
};

struct StalenessResult {
  std::vector<StalenessRow> rows;
  double seconds = 0;
};

Result<StalenessResult> RunStaleness(const StalenessOptions& options);

// An SVG plot of P(consistent) against t (text; no plotting library).
std::string StalenessSvg(const StalenessResult& result, const std::string& title);

struct SiblingsOptions {
  std::vector<std::string> nodes;  // writer i and reader i use nodes[i % size]
  uint32_t writers = 8;
  uint32_t readers = 4;
  uint32_t keys = 10;
  double duration_s = 10;
  int timeout_ms = 10000;
  std::string key_prefix = "siblings";
  uint64_t seed = 1;
};

struct SiblingsResult {
  uint64_t reads = 0;        // successful reads of a key with a value
  uint64_t writes = 0;       // acknowledged writes
  uint64_t read_errors = 0;
  uint64_t write_errors = 0;
  std::map<uint64_t, uint64_t> versions;  // live siblings -> reads
  double seconds = 0;
};

Result<SiblingsResult> RunSiblings(const SiblingsOptions& options);

}  // namespace ringkv
