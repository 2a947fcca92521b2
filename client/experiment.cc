#include "client/experiment.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "client/client.h"

namespace ringkv {

namespace {

using SteadyClock = std::chrono::steady_clock;

std::string RunId() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

bool Returns(const GetResult& got, const std::string& value) {
  if (!got.found) return false;
  for (const Sibling* s : got.object.LiveSiblings()) {
    if (s->value == value) return true;
  }
  return false;
}

}  // namespace

Result<StalenessResult> RunStaleness(const StalenessOptions& o) {
  if (o.nodes.size() < 2) {
    return Status::InvalidArgument(
        "the staleness experiment reads through another node than it writes: it needs at "
        "least two nodes");
  }
  if (o.r < 1 || o.w < 1 || o.r > o.n || o.w > o.n) {
    return Status::InvalidArgument(fmt::format("need 1 <= r, w <= n (n={} r={} w={})", o.n, o.r, o.w));
  }
  if (o.trials == 0 || o.t_ms.empty()) return Status::InvalidArgument("no trials to run");
  std::vector<std::unique_ptr<Client>> clients;
  for (const auto& addr : o.nodes) {
    auto c = Client::Connect(addr, o.timeout_ms);
    if (!c.ok()) return c.status();
    clients.push_back(std::move(c).value());
  }
  Quorum wq;
  wq.n = o.n;
  wq.w = o.w;
  Quorum rq;
  rq.n = o.n;
  rq.r = o.r;
  std::string run = RunId();
  StalenessResult result;
  auto started = SteadyClock::now();
  size_t pair = 0;
  for (uint32_t t : o.t_ms) {
    StalenessRow row;
    row.t_ms = t;
    for (uint32_t trial = 0; trial < o.trials; ++trial, ++pair) {
      Client& writer = *clients[pair % clients.size()];
      Client& reader = *clients[(pair + 1) % clients.size()];
      std::string key = fmt::format("{}/{}/{}/{}", o.key_prefix, run, t, trial);
      std::string value = fmt::format("v{}-{}", run, pair);
      auto put = writer.Put(key, value, {}, wq);
      if (!put.ok()) {
        if (put.status().code() == Status::Code::kIOError) return put.status();
        ++row.errors;
        continue;
      }
      std::this_thread::sleep_until(SteadyClock::now() + std::chrono::milliseconds(t));
      auto got = reader.Get(key, rq);
      if (!got.ok()) {
        if (got.status().code() == Status::Code::kIOError) return got.status();
        ++row.errors;
        continue;
      }
      ++row.trials;
      if (got.ok() && Returns(*got, value)) ++row.consistent;
    }
    row.p_consistent = row.trials == 0 ? 0.0 : static_cast<double>(row.consistent) / row.trials;
    result.rows.push_back(row);
    if (o.progress) o.progress(t, row.consistent, row.trials);
  }
  result.seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  return result;
}

std::string StalenessSvg(const StalenessResult& result, const std::string& title) {
  // x: t on a square-root scale (short delays matter most), y: 0..1.
  const double W = 640, H = 400, L = 60, R = 20, T = 40, B = 50;
  double t_max = 1;
  for (const auto& row : result.rows) t_max = std::max<double>(t_max, row.t_ms);
  auto x = [&](double t) { return L + (W - L - R) * std::sqrt(t / t_max); };
  auto y = [&](double p) { return T + (H - T - B) * (1 - p); };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">{3}</text>\n",
      W, H, W / 2, title);
  for (int i = 0; i <= 10; i += 2) {
    double p = i / 10.0;
    s += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e0e0e0\"/>\n"
                     "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.1f}</text>\n",
                     L, W - R, y(p), y(p), L - 6, y(p) + 4, p);
  }
  for (const auto& row : result.rows) {
    s += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#999\"/>\n"
                     "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                     x(row.t_ms), H - B, H - B + 5, H - B + 18, row.t_ms);
  }
  s += fmt::format("<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#333\"/>\n"
                   "<line x1=\"{0}\" x2=\"{3}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#333\"/>\n",
                   L, T, H - B, W - R);
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">t: ms after the write was "
                   "acknowledged (square-root scale)</text>\n",
                   (L + W - R) / 2, H - 12);
  s += fmt::format("<text transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">"
                   "P(read returns the write)</text>\n",
                   (T + H - B) / 2);
  std::string points;
  for (const auto& row : result.rows) {
    if (row.trials == 0) continue;
    points += fmt::format("{:.1f},{:.1f} ", x(row.t_ms), y(row.p_consistent));
  }
  s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"#1e88e5\" stroke-width=\"2\"/>\n",
                   points);
  for (const auto& row : result.rows) {
    if (row.trials == 0) continue;
    s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"#1e88e5\"><title>t={} ms: "
                     "{}/{} consistent</title></circle>\n",
                     x(row.t_ms), y(row.p_consistent), row.t_ms, row.consistent, row.trials);
  }
  return s + "</svg>\n";
}

Result<SiblingsResult> RunSiblings(const SiblingsOptions& o) {
  if (o.nodes.empty()) return Status::InvalidArgument("no nodes to run against");
  if (o.writers == 0 || o.keys == 0) return Status::InvalidArgument("need at least one writer and one key");
  // Connect everyone first, so a bad address fails before any load.
  uint32_t workers = o.writers + o.readers;
  std::vector<std::unique_ptr<Client>> clients;
  for (uint32_t i = 0; i < workers; ++i) {
    auto c = Client::Connect(o.nodes[i % o.nodes.size()], o.timeout_ms);
    if (!c.ok()) return c.status();
    clients.push_back(std::move(c).value());
  }
  std::string run = RunId();
  auto key_of = [&](uint64_t k) { return fmt::format("{}/{}/{}", o.key_prefix, run, k); };
  std::mutex mu;
  SiblingsResult total;
  std::atomic<bool> lost{false};
  Status lost_status;
  auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                           std::chrono::duration<double>(o.duration_s));
  auto started = SteadyClock::now();
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] {
      bool writer = i < o.writers;
      Client& c = *clients[i];
      std::mt19937_64 rng(o.seed * 1000003 + i);
      SiblingsResult mine;
      uint64_t seq = 0;
      while (SteadyClock::now() < deadline && !lost) {
        std::string key = key_of(rng() % o.keys);
        auto got = c.Get(key);
        if (got.ok()) {
          if (got->found) {
            ++mine.reads;
            ++mine.versions[got->object.LiveSiblings().size()];
          }
        } else {
          if (got.status().code() == Status::Code::kIOError) {
            std::lock_guard<std::mutex> l(mu);
            if (!lost.exchange(true)) lost_status = got.status();
            break;
          }
          ++mine.read_errors;
          continue;
        }
        if (!writer) continue;
        std::string context = got->context;  // resolves every sibling it read
        auto put = c.Put(key, fmt::format("w{}-{}", i, ++seq), context);
        if (put.ok()) {
          ++mine.writes;
        } else if (put.status().code() == Status::Code::kIOError) {
          std::lock_guard<std::mutex> l(mu);
          if (!lost.exchange(true)) lost_status = put.status();
          break;
        } else {
          ++mine.write_errors;
        }
      }
      std::lock_guard<std::mutex> l(mu);
      total.reads += mine.reads;
      total.writes += mine.writes;
      total.read_errors += mine.read_errors;
      total.write_errors += mine.write_errors;
      for (const auto& [v, n] : mine.versions) total.versions[v] += n;
    });
  }
  for (auto& t : threads) t.join();
  if (lost) return lost_status;
  total.seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  return total;
}

}  // namespace ringkv
