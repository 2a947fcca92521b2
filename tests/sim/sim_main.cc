// ringkv-sim: runs many seeded fault schedules (tests/sim/workload.h) on the
// simulator and reports what the checker found.
//
//   ringkv-sim --seeds 500 --minutes 1          500 schedules, seeds 1..500
//   ringkv-sim --seed 17 --minutes 1 --nodes 5 --trace
//                                               replays one schedule, with
//                                               its faults and every problem
//   ringkv-sim --seeds 5 --lww --expect-loss    the control: last-write-wins
//                                               must lose acknowledged adds
//
// Prints one "ERROR seed ..." line per failing seed with the command that
// replays it and the first problems found, and summary lines prefixed
// "[figure] " (scripts/test collects those). Exits 0
// when every schedule passed (with --expect-loss: when adds were lost), 1
// otherwise, 2 on bad usage.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "sim/workload.h"

namespace {

using ringkv::sim::ScheduleOptions;
using ringkv::sim::ScheduleResult;

std::string Counts(const ScheduleResult& r) {
  std::string s = fmt::format(
      "{} nodes, {} acked adds, {} lost, {} keys with differing replicas, "
      "{} hints left, {} resurrections",
      r.nodes, r.adds_acked, r.adds_lost, r.replicas_differing, r.hints_left, r.resurrections);
  s += fmt::format(", {} tombstones reaped", r.tombstones_reaped);
  if (r.puts_lost) s += fmt::format(", {} acknowledged register puts lost", r.puts_lost);
  if (r.phantom_elements) s += fmt::format(", {} phantom elements", r.phantom_elements);
  if (r.final_read_failures) s += fmt::format(", {} final reads failed", r.final_read_failures);
  if (r.acks_mismatched)
    s += fmt::format(", {} puts acknowledged with another write's answer", r.acks_mismatched);
  if (r.counters_out_of_bounds)
    s += fmt::format(", {} counters outside [acknowledged, attempted]", r.counters_out_of_bounds);
  if (r.dt_adds_lost) s += fmt::format(", {} acknowledged set adds lost", r.dt_adds_lost);
  if (r.dt_members_back) s += fmt::format(", {} removed members back", r.dt_members_back);
  if (r.buckets_diverged) s += ", bucket properties diverged";
  if (r.expired_returned) s += fmt::format(", {} expired values returned", r.expired_returned);
  if (r.listing_errors) s += fmt::format(", {} bad listing pages", r.listing_errors);
  if (r.final_listings_wrong)
    s += fmt::format(", {} final listings wrong", r.final_listings_wrong);
  if (!r.exception.empty()) s += ", exception: " + r.exception;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringkv-sim: seeded fault schedules on the simulator, checked for lost writes"};
  uint64_t seeds = 1;
  uint64_t first_seed = 1;
  uint64_t seed = 0;
  double minutes = 1.0;
  double max_minutes = 0;
  int nodes = 0;
  bool lww = false;
  bool expect_loss = false;
  bool trace = false;
  unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  uint64_t quiet_max_s = 300;
  std::string watch;
  uint64_t tombstone_grace_s = ScheduleOptions().tombstone_grace_s;
  app.add_option("--seeds", seeds, "number of schedules")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_option("--first-seed", first_seed, "seed of the first schedule");
  app.add_option("--seed", seed, "run this one seed (same as --first-seed S --seeds 1)");
  app.add_option("--minutes", minutes, "simulated minutes of faults and clients per schedule")
      ->check(CLI::Range(0.05, 600.0));
  app.add_option(
      "--max-minutes", max_minutes,
      "mix: each schedule runs a whole number of minutes from --minutes to this, by its seed");
  app.add_option("--nodes", nodes, "nodes per schedule (3..7 from the seed when not given)")
      ->check(CLI::Range(3, 64));
  app.add_flag("--lww", lww, "control run: every put and delete is last-write-wins");
  app.add_flag("--expect-loss", expect_loss,
               "succeed only if acknowledged adds were lost (with --lww)");
  app.add_flag("--trace", trace, "print each schedule's faults and every problem found");
  app.add_option("--jobs", jobs, "schedules run in parallel")->check(CLI::Range(1u, 256u));
  app.add_option("--watch", watch, "with --trace: also every message about this key");
  app.add_option("--tombstone-grace-s", tombstone_grace_s,
                 "nodes reap tombstones older than this many simulated seconds (0: never)")
      ->capture_default_str();
  app.add_option("--quiet-max-s", quiet_max_s,
                 "simulated seconds allowed to converge after healing");
  CLI11_PARSE(app, argc, argv);
  if (seed != 0) {
    first_seed = seed;
    seeds = 1;
  }

  auto wall_start = std::chrono::steady_clock::now();
  std::vector<ScheduleResult> results(seeds);
  std::atomic<uint64_t> next{0};
  auto worker = [&] {
    for (uint64_t i = next++; i < seeds; i = next++) {
      ScheduleOptions o;
      o.seed = first_seed + i;
      o.nodes = nodes;
      o.minutes = ringkv::sim::MinutesForSeed(o.seed, minutes, max_minutes);
      o.lww = lww;
      o.trace = trace;
      o.watch_key = watch;
      o.max_quiet_ms = quiet_max_s * 1000;
      o.tombstone_grace_s = tombstone_grace_s;
      results[i] = ringkv::sim::RunSchedule(o);
    }
  };
  std::vector<std::thread> threads;
  unsigned n_threads = static_cast<unsigned>(std::min<uint64_t>(jobs, seeds));
  for (unsigned t = 0; t < n_threads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  ScheduleResult sum;
  uint64_t failing = 0, exceptions = 0, deletes_acked = 0, faults = 0, sim_ms = 0, messages = 0;
  uint64_t ops = 0, ops_failed = 0, adds_attempted = 0;
  uint64_t bucket_changes = 0, buckets_diverged = 0, ttl_acked = 0, ttl_expiring = 0;
  uint64_t expired_returned = 0, expired_reaped = 0, listings = 0, listing_errors = 0;
  uint64_t listings_wrong = 0;
  std::vector<uint64_t> converge;
  for (const ScheduleResult& r : results) {
    if (trace) {
      for (const auto& line : r.trace) fmt::print("seed {}: {}\n", r.seed, line);
    }
    if (!r.ok() && expect_loss && !trace) {
      ++failing;  // expected: one line each, to show what the checker caught
      fmt::print("LWW seed {}: {}\n", r.seed, Counts(r));
    } else if (!r.ok()) {
      ++failing;
      fmt::print("{} seed {} ({} simulated min): {}\n  replay: {}\n", lww ? "LWW" : "ERROR", r.seed,
                 r.minutes, Counts(r), ReplayCommand(r));
      size_t shown = trace ? r.problems.size() : std::min<size_t>(r.problems.size(), 4);
      for (size_t p = 0; p < shown; ++p) fmt::print("    {}\n", r.problems[p]);
    } else if (trace) {
      fmt::print("ok seed {}: {}; converged {} ms after healing\n", r.seed, Counts(r),
                 r.converge_ms);
    }
    sum.adds_acked += r.adds_acked;
    sum.adds_lost += r.adds_lost;
    sum.replicas_differing += r.replicas_differing;
    sum.hints_left += r.hints_left;
    sum.resurrections += r.resurrections;
    sum.puts_lost += r.puts_lost;
    sum.deleted_keys_checked += r.deleted_keys_checked;
    sum.deleted_keys_reaped += r.deleted_keys_reaped;
    sum.tombstones_reaped += r.tombstones_reaped;
    sum.phantom_elements += r.phantom_elements;
    sum.final_read_failures += r.final_read_failures;
    sum.acks_mismatched += r.acks_mismatched;
    sum.counter_attempted += r.counter_attempted;
    sum.counter_acked += r.counter_acked;
    sum.counters_out_of_bounds += r.counters_out_of_bounds;
    sum.dt_adds_attempted += r.dt_adds_attempted;
    sum.dt_adds_acked += r.dt_adds_acked;
    sum.dt_adds_lost += r.dt_adds_lost;
    sum.dt_members_back += r.dt_members_back;
    exceptions += !r.exception.empty();
    deletes_acked += r.deletes_acked;
    faults += r.faults;
    sim_ms += r.simulated_ms;
    messages += r.messages;
    ops += r.client_ops;
    ops_failed += r.client_ops_failed;
    adds_attempted += r.adds_attempted;
    converge.push_back(r.converge_ms);
    bucket_changes += r.bucket_changes_acked;
    buckets_diverged += r.buckets_diverged;
    ttl_acked += r.ttl_writes_acked;
    ttl_expiring += r.ttl_expiring_acked;
    expired_returned += r.expired_returned;
    expired_reaped += r.expired_reaped;
    listings += r.listings;
    listing_errors += r.listing_errors;
    listings_wrong += r.final_listings_wrong;
  }
  std::sort(converge.begin(), converge.end());
  uint64_t converge_median = converge.empty() ? 0 : converge[converge.size() / 2];
  uint64_t converge_max = converge.empty() ? 0 : converge.back();

  std::string name = lww ? "sim-lww-control" : "sim";
  std::string nodes_desc = nodes ? std::to_string(nodes) : std::string("3-7");
  std::string minutes_desc = max_minutes > minutes ? fmt::format("{:g}-{:g}", minutes, max_minutes)
                                                   : fmt::format("{:g}", minutes);
  fmt::print(
      "[figure] {}: {} schedules ({} nodes, {} simulated min of faults each, then healed){}: "
      "{} acknowledged adds, {} lost; {} keys with differing replicas; {} hints left; "
      "{} resurrections ({} deleted keys checked, {} of them reaped from every primary); "
      "{} acknowledged register puts lost; "
      "{} tombstones reaped (grace {}); {} failing; simulated {:.1f} h in {:.1f} s "
      "wall ({:.2f} schedules/s on {} threads)\n",
      name, seeds, nodes_desc, minutes_desc, lww ? " in lww mode" : "", sum.adds_acked,
      sum.adds_lost, sum.replicas_differing, sum.hints_left, sum.resurrections,
      sum.deleted_keys_checked, sum.deleted_keys_reaped, sum.puts_lost, sum.tombstones_reaped,
      tombstone_grace_s ? fmt::format("{} s", tombstone_grace_s) : std::string("off"), failing,
      sim_ms / 3.6e6, wall_s, seeds / wall_s, n_threads);
  fmt::print(
      "[figure] {}: {} faults injected; {} client ops ({} failed or unanswered), {} adds tried, "
      "{} deletes acknowledged; {} messages delivered; converged {:.0f} s (median) / {:.0f} s "
      "(max) after healing; {} phantom elements, {} puts acknowledged with another write's "
      "answer, {} final reads failed, {} exceptions\n",
      name, faults, ops, ops_failed, adds_attempted, deletes_acked, messages,
      converge_median / 1000.0, converge_max / 1000.0, sum.phantom_elements, sum.acks_mismatched,
      sum.final_read_failures, exceptions);
  fmt::print(
      "[figure] {}: data types: counters {} acknowledged of {} attempted increments, {} keys "
      "outside [acknowledged, attempted]; sets {} acknowledged adds of {}, {} lost, {} removed "
      "members back\n",
      name, sum.counter_acked, sum.counter_attempted, sum.counters_out_of_bounds, sum.dt_adds_acked,
      sum.dt_adds_attempted, sum.dt_adds_lost, sum.dt_members_back);
  fmt::print(
      "[figure] {}: buckets, TTL, listings: {} bucket property changes acknowledged, {} "
      "schedules with properties not converged; {} ttl-bucket writes acknowledged ({} with an "
      "expiry), {} expired values returned, {} expired objects reaped; {} listing pages during "
      "faults, {} bad; {} final listings wrong\n",
      name, bucket_changes, buckets_diverged, ttl_acked, ttl_expiring, expired_returned,
      expired_reaped, listings, listing_errors, listings_wrong);
  std::fflush(stdout);

  if (expect_loss) {
    if (sum.adds_lost == 0 || exceptions > 0) {
      fmt::print("expected the control run to lose acknowledged adds; it lost {}\n", sum.adds_lost);
      return 1;
    }
    return 0;
  }
  return failing == 0 ? 0 : 1;
}
