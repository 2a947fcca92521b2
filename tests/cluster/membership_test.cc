// Gossip membership with real processes: joins while writing, a leave, and
// failure detection after kill -9.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "harness.h"
#include "report.h"

using nlohmann::json;
using ringkv::Quorum;
using ringkv::test::Cluster;

namespace {

const std::vector<std::string> kFastGossip = {"--gossip-interval-ms", "200", "--timeout-ms", "1000"};

json Status(Cluster& c, int i) {
  auto doc = c.Connect(i)->Info("status");
  REQUIRE_MESSAGE(doc.ok(), doc.status().ToString());
  return json::parse(*doc);
}

std::string StateOf(const json& status, const std::string& id) {
  for (const auto& m : status["members"]) {
    if (m["id"] == id) return m["state"];
  }
  return "";
}

bool AliveIn(const json& status, const std::string& id) {
  for (const auto& m : status["members"]) {
    if (m["id"] == id) return m["alive"];
  }
  return false;
}

// Polls until pred() or limit; returns seconds waited.
template <typename Pred>
double WaitFor(Pred pred, double limit_s, const std::string& what) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (pred()) return t;
    REQUIRE_MESSAGE(t < limit_s, what << " did not happen within " << limit_s << " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Reads every key with r=n=3 through node i, pipelined; returns how many
// came back with exactly the expected value.
int ReadAll(Cluster& c, int i, const std::map<std::string, std::string>& expected) {
  auto client = c.Connect(i);
  Quorum q;
  q.r = 3;
  int good = 0;
  std::vector<std::pair<std::string, std::string>> items(expected.begin(), expected.end());
  const size_t kDepth = 64;
  for (size_t start = 0; start < items.size(); start += kDepth) {
    size_t end = std::min(items.size(), start + kDepth);
    std::string batch;
    for (size_t k = start; k < end; ++k) {
      ringkv::AppendFrame(ringkv::Envelope{k + 1, {}, {}, ringkv::GetRequest{items[k].first, q}}, &batch);
    }
    REQUIRE(client->SendBytes(batch).ok());
    for (size_t k = start; k < end; ++k) {
      auto env = client->Receive();
      REQUIRE(env.ok());
      auto& reply = std::get<ringkv::Reply>(env->body);
      const auto& want = items[env->request_id - 1].second;
      if (reply.status.ok() && reply.object) {
        auto live = reply.object->LiveSiblings();
        if (live.size() == 1 && live[0]->value == want) ++good;
      }
    }
  }
  return good;
}

// Waits until node 1 sees n2..n<nodes> up.
void WaitAllUp(Cluster& c, int nodes) {
  WaitFor([&] {
    json s = Status(c, 1);
    for (int i = 2; i <= nodes; ++i) {
      if (StateOf(s, "n" + std::to_string(i)) != "up") return false;
    }
    return true;
  }, 60, "all up");
}

void Load(Cluster& c, int via, int from, int to, std::map<std::string, std::string>* written) {
  auto client = c.Connect(via);
  for (int k = from; k < to; ++k) {
    std::string key = "key-" + std::to_string(k), value = "v" + std::to_string(k);
    auto r = client->Put(key, value);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    (*written)[key] = value;
  }
}

}  // namespace

TEST_CASE("membership: two nodes join while a writer writes; nothing is lost and load spreads") {
  Cluster c(3, kFastGossip, Cluster::Bootstrap::kJoin);
  WaitFor([&] { return StateOf(Status(c, 1), "n3") == "up" && StateOf(Status(c, 1), "n2") == "up"; },
          60, "n2 and n3 up");
  std::map<std::string, std::string> written;
  Load(c, 1, 0, 10000, &written);

  // A writer keeps writing through the joins.
  std::atomic<bool> stop{false};
  std::map<std::string, std::string> during;
  std::atomic<int> write_errors{0};
  std::thread writer([&] {
    auto client = c.Connect(2);
    for (int k = 0; !stop; ++k) {
      std::string key = "live-" + std::to_string(k), value = "w" + std::to_string(k);
      auto r = client->Put(key, value);
      if (r.ok()) {
        during[key] = value;
      } else {
        ++write_errors;
      }
    }
  });
  int n4 = c.AddNode();
  int n5 = c.AddNode();
  double joined = WaitFor(
      [&] { return StateOf(Status(c, n4), "n4") == "up" && StateOf(Status(c, n5), "n5") == "up"; },
      180, "n4 and n5 up");
  stop = true;
  writer.join();
  CHECK(write_errors == 0);
  written.insert(during.begin(), during.end());
  // Every node must see the new ring before we read.
  WaitFor([&] {
    for (int i = 1; i <= 5; ++i) {
      json s = Status(c, i);
      if (StateOf(s, "n4") != "up" || StateOf(s, "n5") != "up") return false;
    }
    return true;
  }, 30, "all nodes see n4 and n5 up");
  for (int i = 1; i <= 5; ++i) {
    int good = ReadAll(c, i, written);
    CHECK_MESSAGE(good == static_cast<int>(written.size()), "through n" << i);
  }
  // Old owners drop what they handed off; each node ends with a fair share.
  std::string counts;
  std::vector<uint64_t> objects;
  WaitFor([&] {
    objects.clear();
    uint64_t total = 0;
    for (int i = 1; i <= 5; ++i) {
      objects.push_back(Status(c, i)["objects"].get<uint64_t>());
      total += objects.back();
    }
    return total <= written.size() * 3 + 50;  // drops done (n=3 copies of each key)
  }, 60, "old owners dropping handed-off partitions");
  for (int i = 1; i <= 5; ++i) counts += "n" + std::to_string(i) + "=" + std::to_string(objects[i - 1]) + " ";
  REPORT("membership: " << written.size() << " keys (" << during.size() << " written during the joins); n4 and n5 up "
                        << joined << " s after starting; objects per node: " << counts);
  double mean = static_cast<double>(written.size()) * 3 / 5;
  for (uint64_t o : objects) CHECK(std::abs(static_cast<double>(o) - mean) < mean * 0.25);

  // A node leaves: it hands off, exits 0, and nothing is lost.
  auto leave = c.Cli(3, {"admin", "leave"});
  REQUIRE_MESSAGE(leave.exit_code == 0, leave.err);
  WaitFor([&] { return !c.Running(3) || StateOf(Status(c, 1), "n3") == "left"; }, 120, "n3 left");
  int status = c.StopAndStatus(3);  // already exited: -1 from StopAndStatus, or 0
  WaitFor([&] {
    for (int i : {1, 2, 4, 5}) {
      if (StateOf(Status(c, i), "n3") != "left") return false;
    }
    return true;
  }, 30, "every node sees n3 left");
  for (int i : {1, 2, 4, 5}) CHECK(ReadAll(c, i, written) == static_cast<int>(written.size()));
  (void)status;
}

TEST_CASE("membership: a leaving node exits with status 0") {
  Cluster c(4, kFastGossip, Cluster::Bootstrap::kJoin);
  WaitAllUp(c, 4);
  std::map<std::string, std::string> written;
  Load(c, 1, 0, 1000, &written);
  auto leave = c.Cli(1, {"admin", "leave", "n4"});
  REQUIRE_MESSAGE(leave.exit_code == 0, leave.err);
  int code = c.WaitExit(4, 120);
  CHECK(code == 0);
  for (int i = 1; i <= 3; ++i) CHECK(ReadAll(c, i, written) == 1000);
}

TEST_CASE("membership: a killed node is marked down by every survivor; sloppy writes go on") {
  Cluster c(5, kFastGossip);
  c.Kill(3);
  double detected = WaitFor([&] {
    for (int i : {1, 2, 4, 5}) {
      if (AliveIn(Status(c, i), "n3")) return false;
    }
    return true;
  }, 30, "every survivor marks n3 down");
  REPORT("membership: kill -9 of n3 detected by all 4 survivors within " << detected << " s");
  auto client = c.Connect(1);
  for (int k = 0; k < 200; ++k) {
    auto r = client->Put("after-" + std::to_string(k), "v");
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  }
}

TEST_CASE("membership: removing a dead node makes the survivors rebuild its replicas") {
  Cluster c(4, kFastGossip, Cluster::Bootstrap::kJoin);
  WaitAllUp(c, 4);
  std::map<std::string, std::string> written;
  Load(c, 1, 0, 2000, &written);
  c.Kill(4);
  WaitFor([&] { return !AliveIn(Status(c, 1), "n4"); }, 30, "n1 sees n4 down");
  auto removed = c.Cli(1, {"admin", "remove", "n4"});
  REQUIRE_MESSAGE(removed.exit_code == 0, removed.err);
  // Every survivor takes over n4's partitions: pending handoff drains and
  // each key ends up on all three of its (new) primaries.
  double took = WaitFor([&] {
    for (int i = 1; i <= 3; ++i) {
      json s = Status(c, i);
      if (StateOf(s, "n4") != "removed" || !s["handoff"]["pending"].empty()) return false;
    }
    return true;
  }, 120, "survivors hold n4's partitions");
  int copies = 0;
  took += WaitFor([&] {
    copies = 0;
    for (int i = 1; i <= 3; ++i) {
      auto client = c.Connect(i);
      for (const auto& [key, value] : written) {
        auto doc = client->Info("local", key);
        REQUIRE(doc.ok());
        copies += json::parse(*doc)["found"].get<bool>();
      }
    }
    return copies == 3 * 2000;
  }, 120, "every key on its three new primaries");
  REPORT("membership: after removing dead n4, the 3 survivors rebuilt its replicas in " << took
                                                                                       << " s; " << copies << " copies of 2000 keys");
  CHECK(copies == 3 * 2000);
}
