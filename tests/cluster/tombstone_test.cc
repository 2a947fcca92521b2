// Tombstone reaping on real nodes, watched through `ringkv admin reaper`.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

#include "harness.h"

using nlohmann::json;
using ringkv::test::CliResult;
using ringkv::test::Cluster;

TEST_CASE("reaper: a deleted key's tombstone is erased from every replica after the grace period") {
  Cluster c(3, {"--tombstone-grace", "1"});
  REQUIRE(c.Cli(1, {"put", "gone", "soon"}).exit_code == 0);
  // A delete with the read's context replaces the value with a tombstone.
  std::string context = json::parse(c.Cli(1, {"get", "gone", "--json"}).out)["context"];
  CliResult del = c.Cli(1, {"delete", "gone", "--context", context});
  REQUIRE_MESSAGE(del.exit_code == 0, del.err);
  CHECK(c.Cli(1, {"get", "gone"}).exit_code == 1);  // not found, but its tombstone is stored

  // Every node holds the tombstone until the reaper has checked with the
  // others; then no node holds anything for the key.
  uint64_t erased = 0;
  uint64_t objects = 1;
  for (int attempt = 0; attempt < 300 && (erased < 3 || objects > 0); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    erased = 0;
    objects = 0;
    for (int i = 1; i <= 3; ++i) {
      CliResult r = c.Cli(i, {"admin", "reaper", "--json"});
      REQUIRE_MESSAGE(r.exit_code == 0, r.err);
      erased += json::parse(r.out)["tombstones_erased"].get<uint64_t>();
      objects += json::parse(c.Cli(i, {"status", "--json"}).out)["objects"].get<uint64_t>();
    }
  }
  CHECK(erased == 3);
  CHECK(objects == 0);
  CHECK(c.Cli(1, {"get", "gone"}).exit_code == 1);

  // The human form names the setting and the counters.
  CliResult text = c.Cli(2, {"admin", "reaper"});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("reaped 1 s after the delete") != std::string::npos);
  CHECK(text.out.find("tombstones_erased  1") != std::string::npos);
}
