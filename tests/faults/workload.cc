// faults_workload: the client side of the fault lab (tests/faults/run).
//
// Two modes:
//
//   run    A Jepsen-style set workload. Keys set-0..set-K-1 each hold a set of
//          integers, stored as a space-separated list. One "add" of integer x
//          to a key is: get the key (default quorum, with its context), take
//          the union of the elements of every live sibling, add x, and put the
//          union back with the read's context, so concurrent adds show up as
//          siblings and the next add merges them. Several threads do adds
//          against random nodes; every add is recorded in the history file as
//            ADD <key> <x> ok|fail|unknown <node> <ms since start> <message>
//          ok: the put was acknowledged; fail: the node refused it (quorum not
//          met, ...) or we never reached it; unknown: timed out or the
//          connection was lost after sending (the write may or may not have
//          happened). An add whose read failed writes nothing and is recorded
//          as READFAIL.
//
//          Besides, --dt-threads threads run the convergent data types
//          (core/datatypes.h) against random nodes, so both sides of a
//          partition get them: INCR by 1 on ctr-0..ctr-C-1 and SADD of a
//          unique integer to dset-0..dset-C-1 (C = --counters), recorded as
//            INCR <key> 1 ok|fail|unknown <node> <ms> <message>
//            SADD <key> <x> ok|fail|unknown <node> <ms> <message>
//
//   check  After the runner healed every fault: polls until every node
//          answers, every node's hint queue is empty and the primaries of
//          every key hold equal copies (same live siblings: value and dot),
//          up to --limit-s. Each poll first reads every key with r=3 through
//          one node (rotating), so read repair brings replicas that missed
//          writes up to date (anti-entropy is not relied upon). Then the final
//          reads go through the `ringkv` CLI: `get KEY --json --r 3` from every
//          node and `get KEY --local --json` on every node, and the checker
//          reports acknowledged adds that are missing (lost), unacknowledged
//          adds that appeared, hints left and replicas that differ. For the
//          data types: `counter get KEY --json --r 3` and `set members KEY
//          --json --r 3` from every node; every node must answer the same,
//          a counter between its acknowledged increments and those plus
//          the ones whose outcome is unknown or that failed (a failed write
//          is not rolled back), a set with every acknowledged add.
//          Exit status: 0 pass, 1 a check failed, 2 usage or setup error.
//
// Built by tests/faults/run with g++ against the client and core libraries.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "client/client.h"
#include "core/dvv.h"
#include "core/message.h"
#include "core/status.h"

namespace {

using json = nlohmann::json;
using ringkv::Client;
using ringkv::Status;
using Clock = std::chrono::steady_clock;

struct NodeAddr {
  std::string id;
  std::string addr;
};

struct Options {
  std::string mode;
  std::vector<NodeAddr> nodes;
  int threads = 5;
  double rate = 200;  // adds per second, all threads together
  double seconds = 120;
  int keys = 10;
  uint64_t seed = 1;
  std::string history;
  double limit_s = 120;
  std::string cli;
  int client_timeout_ms = 5000;
  int counters = 3;        // ctr-0.. and dset-0..
  int dt_threads = 2;
  double dt_rate = 40;     // data-type operations per second, all threads together
};

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "faults_workload: " << why << "\n"
            << "usage: faults_workload run   --nodes ID@HOST:PORT,... --history FILE [--threads N]\n"
            << "                             [--rate ADDS_PER_S] [--seconds S] [--keys K] [--seed S]\n"
            << "       faults_workload check --nodes ID@HOST:PORT,... --history FILE --cli RINGKV\n"
            << "                             [--keys K] [--limit-s S]\n";
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  if (argc < 2) Usage("give a mode: run or check");
  Options o;
  o.mode = argv[1];
  if (o.mode != "run" && o.mode != "check") Usage("unknown mode " + o.mode);
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--nodes") {
      std::stringstream ss(next());
      std::string item;
      while (std::getline(ss, item, ',')) {
        auto at = item.find('@');
        if (at == std::string::npos) Usage("--nodes: '" + item + "' is not ID@HOST:PORT");
        o.nodes.push_back({item.substr(0, at), item.substr(at + 1)});
      }
    } else if (a == "--threads") {
      o.threads = std::stoi(next());
    } else if (a == "--rate") {
      o.rate = std::stod(next());
    } else if (a == "--seconds") {
      o.seconds = std::stod(next());
    } else if (a == "--keys") {
      o.keys = std::stoi(next());
    } else if (a == "--seed") {
      o.seed = std::stoull(next());
    } else if (a == "--history") {
      o.history = next();
    } else if (a == "--limit-s") {
      o.limit_s = std::stod(next());
    } else if (a == "--cli") {
      o.cli = next();
    } else if (a == "--counters") {
      o.counters = std::stoi(next());
    } else if (a == "--dt-threads") {
      o.dt_threads = std::stoi(next());
    } else if (a == "--dt-rate") {
      o.dt_rate = std::stod(next());
    } else {
      Usage("unknown option " + a);
    }
  }
  if (o.nodes.empty()) Usage("--nodes is required");
  if (o.history.empty()) Usage("--history is required");
  if (o.mode == "check" && o.cli.empty()) Usage("--cli is required for check");
  if (o.threads < 1 || o.keys < 1 || o.rate <= 0) Usage("--threads, --keys and --rate must be positive");
  if (o.counters < 0 || o.dt_threads < 0 || o.dt_rate <= 0) {
    Usage("--counters and --dt-threads must not be negative, --dt-rate positive");
  }
  return o;
}

std::string KeyName(int k) { return fmt::format("set-{}", k); }
std::string CounterName(int k) { return fmt::format("ctr-{}", k); }
std::string DataSetName(int k) { return fmt::format("dset-{}", k); }

// Every key the checker compares across replicas.
std::vector<std::string> AllKeys(const Options& o) {
  std::vector<std::string> keys;
  for (int k = 0; k < o.keys; ++k) keys.push_back(KeyName(k));
  for (int k = 0; k < o.counters; ++k) {
    keys.push_back(CounterName(k));
    keys.push_back(DataSetName(k));
  }
  return keys;
}

// The elements of one stored value: a space-separated list of integers.
void ParseElements(const std::string& value, std::set<uint64_t>* out) {
  const char* p = value.c_str();
  while (*p != '\0') {
    while (*p == ' ') ++p;
    if (*p == '\0') break;
    char* end = nullptr;
    uint64_t x = std::strtoull(p, &end, 10);
    if (end == p) break;  // not ours; ignore the rest
    out->insert(x);
    p = end;
  }
}

std::string FormatElements(const std::set<uint64_t>& elements) {
  std::string out;
  out.reserve(elements.size() * 7);
  for (uint64_t x : elements) {
    if (!out.empty()) out += ' ';
    out += std::to_string(x);
  }
  return out;
}

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// --- run ---------------------------------------------------------------------

struct Record {
  std::string key;
  uint64_t x;
  std::string outcome;  // ok, fail, unknown, readfail
  std::string node;
  int64_t ms;
  std::string message;
  std::string kind = "ADD";  // ADD, INCR, SADD
};

int Run(const Options& o) {
  std::atomic<uint64_t> next_x{0};
  std::atomic<uint64_t> n_ok{0}, n_fail{0}, n_unknown{0}, n_readfail{0};
  std::mutex mu;
  std::vector<Record> records;
  auto t0 = Clock::now();
  auto deadline = t0 + std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000));
  double per_thread_interval_s = o.threads / o.rate;

  auto worker = [&](int thread_index) {
    std::mt19937_64 rng(o.seed * 1000003ULL + static_cast<uint64_t>(thread_index));
    std::vector<std::unique_ptr<Client>> conns(o.nodes.size());
    auto next_start = Clock::now();
    while (Clock::now() < deadline) {
      // A thread that fell behind (slow replies during a fault) does not
      // burst to catch up: it goes on at its rate from now.
      next_start = std::max(next_start, Clock::now()) +
                   std::chrono::microseconds(static_cast<int64_t>(per_thread_interval_s * 1e6));
      size_t ni = rng() % o.nodes.size();
      std::string key = KeyName(static_cast<int>(rng() % static_cast<uint64_t>(o.keys)));
      const NodeAddr& node = o.nodes[ni];
      auto record = [&](uint64_t x, const char* outcome, const std::string& msg) {
        int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(mu);
        records.push_back({key, x, outcome, node.id, ms, msg});
      };

      if (!conns[ni]) {
        auto c = Client::Connect(node.addr, o.client_timeout_ms);
        if (!c.ok()) {
          ++n_readfail;
          record(0, "readfail", c.status().ToString());
          std::this_thread::sleep_until(std::max(next_start, Clock::now() + std::chrono::milliseconds(100)));
          continue;
        }
        conns[ni] = std::move(c).value();
      }
      Client* client = conns[ni].get();

      auto got = client->Get(key);
      if (!got.ok()) {
        ++n_readfail;
        record(0, "readfail", got.status().ToString());
        // After a timeout or a broken connection a late reply could still
        // arrive on this connection: start a fresh one next time.
        if (got.status().code() == Status::Code::kIOError || got.status().code() == Status::Code::kTimeout) {
          conns[ni].reset();
        }
        std::this_thread::sleep_until(next_start);
        continue;
      }
      std::set<uint64_t> elements;
      if (got->found) {
        for (const ringkv::Sibling* s : got->object.LiveSiblings()) ParseElements(s->value, &elements);
      }
      uint64_t x = next_x.fetch_add(1);
      elements.insert(x);
      auto put = client->Put(key, FormatElements(elements), got->context);
      if (put.ok()) {
        ++n_ok;
        record(x, "ok", "");
      } else {
        auto code = put.status().code();
        bool unknown = code == Status::Code::kTimeout || code == Status::Code::kIOError;
        if (unknown) {
          ++n_unknown;
          conns[ni].reset();
        } else {
          ++n_fail;
        }
        record(x, unknown ? "unknown" : "fail", put.status().ToString());
      }
      std::this_thread::sleep_until(next_start);
    }
  };

  // The data types: one operation per request, no read first.
  std::atomic<uint64_t> n_dt_ok{0}, n_dt_fail{0}, n_dt_unknown{0};
  auto dt_worker = [&](int thread_index) {
    std::mt19937_64 rng(o.seed * 7000003ULL + static_cast<uint64_t>(thread_index));
    std::vector<std::unique_ptr<Client>> conns(o.nodes.size());
    double interval_s = o.dt_threads / o.dt_rate;
    auto next_start = Clock::now();
    while (Clock::now() < deadline) {
      next_start = std::max(next_start, Clock::now()) +
                   std::chrono::microseconds(static_cast<int64_t>(interval_s * 1e6));
      size_t ni = rng() % o.nodes.size();
      int k = static_cast<int>(rng() % static_cast<uint64_t>(o.counters));
      bool incr = rng() % 2 == 0;
      const NodeAddr& node = o.nodes[ni];
      ringkv::DataTypeRequest req;
      uint64_t x = 1;
      if (incr) {
        req.key = CounterName(k);
        req.type = ringkv::DataType::kCounter;
        req.op = ringkv::DataTypeOpCode::kIncrement;
        req.delta = 1;
      } else {
        x = next_x.fetch_add(1);
        req.key = DataSetName(k);
        req.type = ringkv::DataType::kSet;
        req.op = ringkv::DataTypeOpCode::kAdd;
        req.args = {std::to_string(x)};
      }
      auto record = [&](const char* outcome, const std::string& msg) {
        int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(mu);
        records.push_back({req.key, x, outcome, node.id, ms, msg, incr ? "INCR" : "SADD"});
      };
      if (!conns[ni]) {
        auto c = Client::Connect(node.addr, o.client_timeout_ms);
        if (!c.ok()) {
          // Never sent: not an attempt.
          std::this_thread::sleep_until(std::max(next_start, Clock::now() + std::chrono::milliseconds(100)));
          continue;
        }
        conns[ni] = std::move(c).value();
      }
      std::string key = req.key;
      auto r = conns[ni]->DataTypeOperation(std::move(req));
      req.key = key;
      if (r.ok()) {
        ++n_dt_ok;
        record("ok", "");
      } else {
        auto code = r.status().code();
        bool unknown = code == Status::Code::kTimeout || code == Status::Code::kIOError;
        if (unknown) {
          ++n_dt_unknown;
          conns[ni].reset();
        } else {
          ++n_dt_fail;
        }
        record(unknown ? "unknown" : "fail", r.status().ToString());
      }
      std::this_thread::sleep_until(next_start);
    }
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i) threads.emplace_back(worker, i);
  if (o.counters > 0) {
    for (int i = 0; i < o.dt_threads; ++i) threads.emplace_back(dt_worker, i);
  }
  // Progress every 10 s.
  std::thread progress([&] {
    uint64_t last_ok = 0;
    while (Clock::now() < deadline) {
      auto wake = std::min(deadline, Clock::now() + std::chrono::seconds(10));
      std::this_thread::sleep_until(wake);
      if (Clock::now() >= deadline) break;
      uint64_t ok = n_ok.load();
      fmt::print("[workload {:6.1f}s] adds: {} ok (+{} in 10 s), {} failed, {} unknown; reads failed: {}; "
                 "INCR/SADD: {} ok, {} failed, {} unknown\n",
                 SecondsSince(t0), ok, ok - last_ok, n_fail.load(), n_unknown.load(), n_readfail.load(),
                 n_dt_ok.load(), n_dt_fail.load(), n_dt_unknown.load());
      std::fflush(stdout);
      last_ok = ok;
    }
  });
  for (auto& t : threads) t.join();
  progress.join();

  std::ofstream out(o.history);
  for (const auto& r : records) {
    std::string msg = r.message;
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    if (r.outcome == "readfail") {
      out << "READFAIL " << r.key << " " << r.node << " " << r.ms << " " << msg << "\n";
    } else {
      out << r.kind << " " << r.key << " " << r.x << " " << r.outcome << " " << r.node << " " << r.ms << " "
          << msg << "\n";
    }
  }
  out.close();
  if (!out) {
    std::cerr << "faults_workload: cannot write " << o.history << "\n";
    return 2;
  }
  fmt::print("[workload {:6.1f}s] done: {} adds acknowledged, {} failed, {} unknown; {} reads failed; "
             "INCR/SADD: {} acknowledged, {} failed, {} unknown\n",
             SecondsSince(t0), n_ok.load(), n_fail.load(), n_unknown.load(), n_readfail.load(),
             n_dt_ok.load(), n_dt_fail.load(), n_dt_unknown.load());
  return 0;
}

// --- check -------------------------------------------------------------------

// A replica's copy as `get --local` shows it: its live siblings (dot -> value).
using SiblingSet = std::map<std::string, std::string>;

struct PollState {
  bool all_answer = true;
  uint64_t hints = 0;
  int keys_differing = 0;
  int repair_reads_failed = 0;
  std::vector<std::string> notes;
};

std::unique_ptr<Client> ConnectTo(const NodeAddr& n) {
  auto c = Client::Connect(n.addr, 3000);
  if (!c.ok()) return nullptr;
  return std::move(c).value();
}

bool ParseJson(const std::string& text, json* out) {
  *out = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return !out->is_discarded();
}

SiblingSet SiblingsOf(const json& local) {
  SiblingSet s;
  if (local.contains("siblings") && local["siblings"].is_array()) {
    for (const auto& e : local["siblings"]) s[e.value("dot", "")] = e.value("value", "");
  }
  return s;
}

// Primaries of each key, as node ids (from the first node that answers).
bool LoadPreflists(const Options& o, std::map<std::string, std::vector<std::string>>* pref) {
  for (const auto& n : o.nodes) {
    auto c = ConnectTo(n);
    if (!c) continue;
    bool ok = true;
    for (const std::string& key : AllKeys(o)) {
      auto doc = c->Info("preflist", key);
      json j;
      if (!doc.ok() || !ParseJson(*doc, &j)) {
        ok = false;
        break;
      }
      std::vector<std::string> ids;
      for (const auto& e : j["primaries"]) ids.push_back(e.value("id", ""));
      (*pref)[key] = ids;
    }
    if (ok) return true;
  }
  return false;
}

PollState Poll(const Options& o, const std::map<std::string, std::vector<std::string>>& pref, int round) {
  PollState st;
  std::map<std::string, std::unique_ptr<Client>> conns;
  for (const auto& n : o.nodes) {
    auto c = ConnectTo(n);
    if (!c) {
      st.all_answer = false;
      st.notes.push_back(n.id + " does not answer");
      continue;
    }
    auto doc = c->Info("hints");
    json j;
    if (!doc.ok() || !ParseJson(*doc, &j)) {
      st.all_answer = false;
      st.notes.push_back(n.id + ": hints: " + (doc.ok() ? "bad JSON" : doc.status().ToString()));
      continue;
    }
    uint64_t q = j.value("queued", uint64_t{0});
    st.hints += q;
    if (q > 0) st.notes.push_back(fmt::format("{}: {} hints queued", n.id, q));
    conns[n.id] = std::move(c);
  }
  // Read repair: every key read with r=3 through one node (rotating).
  ringkv::Quorum all;
  all.r = 3;
  std::vector<std::string> keys = AllKeys(o);
  for (size_t k = 0; k < keys.size(); ++k) {
    const NodeAddr& n = o.nodes[(static_cast<size_t>(round) + k) % o.nodes.size()];
    auto it = conns.find(n.id);
    if (it == conns.end()) {
      ++st.repair_reads_failed;
      continue;
    }
    auto got = it->second->Get(keys[k], all);
    if (!got.ok()) {
      ++st.repair_reads_failed;
      st.notes.push_back(fmt::format("r=3 read of {} via {}: {}", keys[k], n.id, got.status().ToString()));
      conns.erase(it);
    }
  }
  // Give the coordinators' repair writes a moment to land.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (const std::string& key : keys) {
    std::vector<SiblingSet> copies;
    for (const auto& id : pref.at(key)) {
      auto it = conns.find(id);
      if (it == conns.end()) {
        copies.push_back({{"<no answer>", ""}});
        continue;
      }
      auto doc = it->second->Info("local", key);
      json j;
      if (!doc.ok() || !ParseJson(*doc, &j)) {
        copies.push_back({{"<no answer>", ""}});
        continue;
      }
      copies.push_back(SiblingsOf(j));
    }
    bool equal = std::all_of(copies.begin(), copies.end(), [&](const SiblingSet& s) { return s == copies[0]; });
    if (!equal) ++st.keys_differing;
  }
  return st;
}

// Runs `ringkv ARGS` and parses its JSON output.
bool RunCli(const Options& o, const std::string& args, json* out, std::string* error) {
  std::string cmd = o.cli + " " + args + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) {
    *error = "cannot run " + o.cli;
    return false;
  }
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  int rc = pclose(f);
  if (!ParseJson(text, out)) {
    *error = fmt::format("exit {}: {}", rc, text.substr(0, 300));
    return false;
  }
  if (out->contains("error")) {
    *error = out->value("error", std::string("?"));
    // Not found is an answer, not a failure.
    return out->value("code", std::string()) == "not_found";
  }
  return true;
}

int Check(const Options& o) {
  // History.
  struct DtHistory {
    std::set<uint64_t> ok, fail, unknown;  // SADD: the elements
    uint64_t n_ok = 0, n_fail = 0, n_unknown = 0;
  };
  std::map<std::string, DtHistory> dt_counters, dt_sets;
  std::map<std::string, std::set<uint64_t>> acked, unacked_fail, unacked_unknown;
  std::set<uint64_t> all_attempted;
  uint64_t n_ok = 0, n_fail = 0, n_unknown = 0, n_readfail = 0;
  {
    std::ifstream in(o.history);
    if (!in) {
      std::cerr << "faults_workload: cannot read " << o.history << "\n";
      return 2;
    }
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string tag, key, outcome;
      uint64_t x = 0;
      ls >> tag;
      if (tag == "READFAIL") {
        ++n_readfail;
        continue;
      }
      if (tag == "INCR" || tag == "SADD") {
        ls >> key >> x >> outcome;
        DtHistory& h = tag == "INCR" ? dt_counters[key] : dt_sets[key];
        (outcome == "ok" ? h.ok : outcome == "fail" ? h.fail : h.unknown).insert(x);
        (outcome == "ok" ? h.n_ok : outcome == "fail" ? h.n_fail : h.n_unknown) += 1;
        continue;
      }
      if (tag != "ADD") continue;
      ls >> key >> x >> outcome;
      all_attempted.insert(x);
      if (outcome == "ok") {
        ++n_ok;
        acked[key].insert(x);
      } else if (outcome == "fail") {
        ++n_fail;
        unacked_fail[key].insert(x);
      } else {
        ++n_unknown;
        unacked_unknown[key].insert(x);
      }
    }
  }

  // Convergence.
  auto t0 = Clock::now();
  std::map<std::string, std::vector<std::string>> pref;
  while (!LoadPreflists(o, &pref)) {
    if (SecondsSince(t0) > o.limit_s) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  bool converged = false;
  double converge_s = -1;
  PollState last;
  int round = 0;
  double last_report = 0;
  if (!pref.empty()) {
    for (;; ++round) {
      last = Poll(o, pref, round);
      if (last.all_answer && last.hints == 0 && last.keys_differing == 0 && last.repair_reads_failed == 0) {
        converged = true;
        converge_s = SecondsSince(t0);
        break;
      }
      double now = SecondsSince(t0);
      if (now > o.limit_s) break;
      if (now - last_report >= 5) {
        last_report = now;
        fmt::print("[check {:6.1f}s] waiting: {} hints queued, {} keys with differing replicas{}{}\n", now,
                   last.hints, last.keys_differing, last.all_answer ? "" : ", not every node answers",
                   last.repair_reads_failed ? fmt::format(", {} r=3 reads failed", last.repair_reads_failed)
                                            : "");
        std::fflush(stdout);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  }
  if (converged) {
    fmt::print("[check {:6.1f}s] converged after {} poll round(s)\n", converge_s, round + 1);
  } else {
    fmt::print("[check {:6.1f}s] NOT converged within {} s:\n", SecondsSince(t0), o.limit_s);
    for (const auto& n : last.notes) fmt::print("    {}\n", n);
  }
  std::fflush(stdout);

  // Final reads through the CLI: every key from every node (r=3), and every
  // node's own copy (--local).
  std::string tmo = fmt::format("--timeout-ms {}", o.client_timeout_ms);
  std::map<std::string, std::set<uint64_t>> seen_union;           // key -> union over all reads
  std::map<std::string, std::map<std::string, std::set<uint64_t>>> read_by_node;  // key -> node -> elems
  int final_reads_failed = 0;
  std::map<std::string, std::map<std::string, SiblingSet>> local_by_node;  // key -> node -> copy
  std::map<std::string, size_t> siblings_at_end;
  std::vector<std::string> problems;
  for (int k = 0; k < o.keys; ++k) {
    const std::string key = KeyName(k);
    for (const auto& n : o.nodes) {
      json j;
      std::string err;
      if (!RunCli(o, fmt::format("-H {} get {} --json --r 3 {}", n.addr, key, tmo), &j, &err)) {
        ++final_reads_failed;
        problems.push_back(fmt::format("final read of {} via {} failed: {}", key, n.id, err));
      } else {
        std::set<uint64_t> elems;
        size_t live = 0;
        if (j.contains("siblings")) {
          for (const auto& s : j["siblings"]) {
            ParseElements(s.value("value", ""), &elems);
            ++live;
          }
        }
        siblings_at_end[key] = std::max(siblings_at_end[key], live);
        seen_union[key].insert(elems.begin(), elems.end());
        read_by_node[key][n.id] = std::move(elems);
      }
      json l;
      if (!RunCli(o, fmt::format("-H {} get {} --local --json {}", n.addr, key, tmo), &l, &err)) {
        problems.push_back(fmt::format("get --local of {} on {} failed: {}", key, n.id, err));
        local_by_node[key][n.id] = {{"<no answer>", ""}};
      } else {
        local_by_node[key][n.id] = SiblingsOf(l);
      }
    }
  }

  // Hints left, through the CLI too.
  uint64_t hints_left = 0;
  bool hints_known = true;
  for (const auto& n : o.nodes) {
    json j;
    std::string err;
    if (!RunCli(o, fmt::format("-H {} hints --json {}", n.addr, tmo), &j, &err)) {
      hints_known = false;
      problems.push_back(fmt::format("hints on {}: {}", n.id, err));
      continue;
    }
    uint64_t q = j.value("queued", uint64_t{0});
    if (q > 0) problems.push_back(fmt::format("{} still holds {} hints", n.id, q));
    hints_left += q;
  }

  // The data types, through the CLI on every node (r=3).
  uint64_t dt_problems = 0;
  std::vector<std::string> dt_lines;
  for (int k = 0; k < o.counters; ++k) {
    const std::string key = CounterName(k);
    const DtHistory& h = dt_counters[key];
    std::map<std::string, int64_t> values;
    for (const auto& n : o.nodes) {
      json j;
      std::string err;
      if (!RunCli(o, fmt::format("-H {} counter get {} --json --r 3 {}", n.addr, key, tmo), &j, &err)) {
        ++dt_problems;
        problems.push_back(fmt::format("counter get {} via {} failed: {}", key, n.id, err));
        continue;
      }
      values[n.id] = j.value("value", int64_t{-1});
    }
    std::set<int64_t> distinct;
    for (const auto& [id, v] : values) distinct.insert(v);
    int64_t lo = static_cast<int64_t>(h.n_ok), hi = static_cast<int64_t>(h.n_ok + h.n_fail + h.n_unknown);
    bool same = distinct.size() == 1 && values.size() == o.nodes.size();
    int64_t v = distinct.empty() ? -1 : *distinct.begin();
    bool within = same && v >= lo && v <= hi;
    if (!within) ++dt_problems;
    std::string each;
    for (const auto& [id, val] : values) each += fmt::format("{}{}={}", each.empty() ? "" : " ", id, val);
    dt_lines.push_back(fmt::format(
        "counter {:<24}{}  ({} INCR acknowledged, {} failed, {} unknown: the value may be {}..{}){}",
        key, same ? fmt::format("{} on every node", v) : "DIFFERS: " + each, h.n_ok, h.n_fail,
        h.n_unknown, lo, hi, within ? (v == lo ? "  = acknowledged" : "") : "   <-- FAIL"));
  }
  for (int k = 0; k < o.counters; ++k) {
    const std::string key = DataSetName(k);
    const DtHistory& h = dt_sets[key];
    std::map<std::string, std::set<uint64_t>> members;
    for (const auto& n : o.nodes) {
      json j;
      std::string err;
      if (!RunCli(o, fmt::format("-H {} set members {} --json --r 3 {}", n.addr, key, tmo), &j, &err)) {
        ++dt_problems;
        problems.push_back(fmt::format("set members {} via {} failed: {}", key, n.id, err));
        continue;
      }
      std::set<uint64_t> m;
      if (j.contains("members")) {
        for (const auto& e : j["members"]) m.insert(std::strtoull(e.get<std::string>().c_str(), nullptr, 10));
      }
      members[n.id] = std::move(m);
    }
    bool same = members.size() == o.nodes.size();
    for (const auto& [id, m] : members) same = same && m == members.begin()->second;
    uint64_t missing = 0, strangers = 0, extra = 0;
    std::set<uint64_t> any;
    for (const auto& [id, m] : members) any.insert(m.begin(), m.end());
    for (uint64_t x : h.ok) {
      for (const auto& [id, m] : members) missing += m.count(x) ? 0 : 1;
    }
    for (uint64_t x : any) {
      if (h.ok.count(x)) continue;
      if (h.fail.count(x) || h.unknown.count(x)) {
        ++extra;
      } else {
        ++strangers;
      }
    }
    bool ok = same && missing == 0 && strangers == 0;
    if (!ok) ++dt_problems;
    size_t size = members.empty() ? 0 : members.begin()->second.size();
    dt_lines.push_back(fmt::format(
        "set {:<28}{}  ({} SADD acknowledged, {} failed, {} unknown; {} of them present; "
        "{} acknowledged missing on some node){}",
        key, same ? fmt::format("{} members on every node", size) : "DIFFERS between nodes", h.n_ok,
        h.n_fail, h.n_unknown, extra, missing, ok ? (size == h.n_ok ? "  = acknowledged" : "") : "   <-- FAIL"));
  }

  // Lost: an acknowledged add missing from any node's final read.
  uint64_t lost = 0, lost_everywhere = 0, stale_reads = 0;
  for (const auto& [key, xs] : acked) {
    auto& by_node = read_by_node[key];
    for (uint64_t x : xs) {
      int missing = 0;
      for (const auto& n : o.nodes) {
        auto it = by_node.find(n.id);
        if (it == by_node.end() || it->second.count(x) == 0) ++missing;
      }
      if (missing > 0) {
        ++lost;
        if (!seen_union[key].count(x)) ++lost_everywhere;
        if (lost <= 20) {
          problems.push_back(fmt::format("LOST: acknowledged add {} to {} is missing from {} of {} nodes' final reads",
                                         x, key, missing, o.nodes.size()));
        }
      }
    }
  }
  for (const auto& [key, by_node] : read_by_node) {
    for (const auto& [id, elems] : by_node) {
      if (elems != seen_union[key]) ++stale_reads;
    }
  }
  // Unacknowledged adds that appeared; elements nobody wrote.
  uint64_t appeared_fail = 0, appeared_unknown = 0, unexpected = 0;
  for (const auto& [key, elems] : seen_union) {
    for (uint64_t x : elems) {
      if (unacked_fail[key].count(x)) ++appeared_fail;
      else if (unacked_unknown[key].count(x)) ++appeared_unknown;
      else if (!acked[key].count(x)) ++unexpected;
    }
  }
  if (unexpected > 0) {
    problems.push_back(fmt::format("{} elements in final reads were never added to that key", unexpected));
  }

  // Replicas: the primaries' own copies must match.
  int keys_differing = 0;
  uint64_t copies_off_primaries = 0;
  std::vector<std::string> notes;
  for (int k = 0; k < o.keys; ++k) {
    const std::string key = KeyName(k);
    auto pit = pref.find(key);
    if (pit == pref.end()) {
      ++keys_differing;
      continue;
    }
    const auto& primaries = pit->second;
    std::vector<const SiblingSet*> copies;
    for (const auto& id : primaries) copies.push_back(&local_by_node[key][id]);
    bool equal = !copies.empty() &&
                 std::all_of(copies.begin(), copies.end(), [&](const SiblingSet* s) { return *s == *copies[0]; });
    if (!equal) {
      ++keys_differing;
      std::string detail;
      for (size_t i = 0; i < primaries.size(); ++i) {
        std::string dots;
        for (const auto& [dot, v] : *copies[i]) dots += (dots.empty() ? "" : ",") + dot;
        detail += fmt::format(" {}=[{}]", primaries[i], dots);
      }
      problems.push_back(fmt::format("replicas of {} differ:{}", key, detail));
    }
    for (const auto& [id, copy] : local_by_node[key]) {
      if (std::find(primaries.begin(), primaries.end(), id) == primaries.end() && !copy.empty()) {
        ++copies_off_primaries;
        std::string prim;
        for (const auto& p : primaries) prim += (prim.empty() ? "" : ",") + p;
        std::string dots;
        for (const auto& [dot, v] : copy) dots += (dots.empty() ? "" : ",") + dot;
        notes.push_back(fmt::format("{} holds a copy of {} in its own store (siblings {}) but is not one of "
                                    "its primaries ({})", id, key, dots, prim));
      }
    }
  }

  uint64_t acked_total = 0;
  for (const auto& [k, xs] : acked) acked_total += xs.size();
  size_t max_siblings = 0;
  for (const auto& [k, n] : siblings_at_end) max_siblings = std::max(max_siblings, n);
  bool pass = lost == 0 && hints_known && hints_left == 0 && keys_differing == 0 && final_reads_failed == 0 &&
              unexpected == 0 && converged && dt_problems == 0;

  fmt::print("\n");
  for (const auto& p : problems) fmt::print("  ! {}\n", p);
  for (const auto& n : notes) fmt::print("  note: {}\n", n);
  fmt::print("---- set workload check ----\n");
  fmt::print("adds attempted                  {}  ({} reads failed before an add)\n", all_attempted.size(),
             n_readfail);
  fmt::print("acknowledged adds               {}\n", acked_total);
  fmt::print("failed adds (node refused)      {}  ({} appeared anyway)\n", n_fail, appeared_fail);
  fmt::print("unknown adds (timeout/conn)     {}  ({} appeared)\n", n_unknown, appeared_unknown);
  fmt::print("unacked adds that appeared      {}\n", appeared_fail + appeared_unknown);
  fmt::print("LOST acknowledged adds          {}  ({} missing from every node){}\n", lost, lost_everywhere,
             lost ? "   <-- FAIL" : "");
  if (converged) {
    fmt::print("time to converge after heal     {:.1f} s  (r=3 read of every key each poll: read repair;\n"
               "                                anti-entropy not relied upon)\n",
               converge_s);
  } else {
    fmt::print("time to converge after heal     NOT within {:.0f} s   <-- FAIL\n", o.limit_s);
  }
  fmt::print("hints left                      {}{}\n", hints_known ? std::to_string(hints_left) : "unknown",
             hints_left || !hints_known ? "   <-- FAIL" : "");
  fmt::print("keys whose replicas differ      {} of {}{}\n", keys_differing, o.keys,
             keys_differing ? "   <-- FAIL" : "");
  fmt::print("final reads failed              {}{}\n", final_reads_failed, final_reads_failed ? "   <-- FAIL" : "");
  fmt::print("final reads missing elements    {} of {} (node reads short of the union)\n", stale_reads,
             o.keys * o.nodes.size());
  fmt::print("most siblings on a key at end   {}\n", max_siblings);
  if (copies_off_primaries) {
    fmt::print("copies held off the primaries   {}  (not hints; see the notes above)\n", copies_off_primaries);
  }
  if (o.counters > 0) {
    fmt::print("---- data types: INCR and SADD through random nodes, read from every node (r=3) ----\n");
    for (const auto& line : dt_lines) fmt::print("{}\n", line);
  }
  std::fflush(stdout);
  return pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = Parse(argc, argv);
  if (o.mode == "run") return Run(o);
  return Check(o);
}
