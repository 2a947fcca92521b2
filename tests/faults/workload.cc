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
//   check  After the runner healed every fault: polls until every node
//          answers, every node's hint queue is empty and the primaries of
//          every key hold equal copies (same live siblings: value and dot),
//          up to --limit-s. Each poll first reads every key with r=3 through
//          one node (rotating), so read repair brings replicas that missed
//          writes up to date (anti-entropy is not relied upon). Then the final
//          reads go through the `ringkv` CLI: `get KEY --json --r 3` from every
//          node and `get KEY --local --json` on every node, and the checker
//          reports acknowledged adds that are missing (lost), unacknowledged
//          adds that appeared, hints left and replicas that differ.
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
    } else {
      Usage("unknown option " + a);
    }
  }
  if (o.nodes.empty()) Usage("--nodes is required");
  if (o.history.empty()) Usage("--history is required");
  if (o.mode == "check" && o.cli.empty()) Usage("--cli is required for check");
  if (o.threads < 1 || o.keys < 1 || o.rate <= 0) Usage("--threads, --keys and --rate must be positive");
  return o;
}

std::string KeyName(int k) { return fmt::format("set-{}", k); }

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

  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i) threads.emplace_back(worker, i);
  // Progress every 10 s.
  std::thread progress([&] {
    uint64_t last_ok = 0;
    while (Clock::now() < deadline) {
      auto wake = std::min(deadline, Clock::now() + std::chrono::seconds(10));
      std::this_thread::sleep_until(wake);
      if (Clock::now() >= deadline) break;
      uint64_t ok = n_ok.load();
      fmt::print("[workload {:6.1f}s] adds: {} ok (+{} in 10 s), {} failed, {} unknown; reads failed: {}\n",
                 SecondsSince(t0), ok, ok - last_ok, n_fail.load(), n_unknown.load(), n_readfail.load());
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
      out << "ADD " << r.key << " " << r.x << " " << r.outcome << " " << r.node << " " << r.ms << " " << msg
          << "\n";
    }
  }
  out.close();
  if (!out) {
    std::cerr << "faults_workload: cannot write " << o.history << "\n";
    return 2;
  }
  fmt::print("[workload {:6.1f}s] done: {} adds acknowledged, {} failed, {} unknown; {} reads failed\n",
             SecondsSince(t0), n_ok.load(), n_fail.load(), n_unknown.load(), n_readfail.load());
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
    for (int k = 0; k < o.keys; ++k) {
      auto doc = c->Info("preflist", KeyName(k));
      json j;
      if (!doc.ok() || !ParseJson(*doc, &j)) {
        ok = false;
        break;
      }
      std::vector<std::string> ids;
      for (const auto& e : j["primaries"]) ids.push_back(e.value("id", ""));
      (*pref)[KeyName(k)] = ids;
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
  for (int k = 0; k < o.keys; ++k) {
    const NodeAddr& n = o.nodes[static_cast<size_t>(round + k) % o.nodes.size()];
    auto it = conns.find(n.id);
    if (it == conns.end()) {
      ++st.repair_reads_failed;
      continue;
    }
    auto got = it->second->Get(KeyName(k), all);
    if (!got.ok()) {
      ++st.repair_reads_failed;
      st.notes.push_back(fmt::format("r=3 read of {} via {}: {}", KeyName(k), n.id, got.status().ToString()));
      conns.erase(it);
    }
  }
  // Give the coordinators' repair writes a moment to land.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int k = 0; k < o.keys; ++k) {
    const std::string key = KeyName(k);
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
              unexpected == 0 && converged;

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
  std::fflush(stdout);
  return pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = Parse(argc, argv);
  if (o.mode == "run") return Run(o);
  return Check(o);
}
