// `ringkv experiment staleness` and `siblings` against real nodes.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "harness.h"

using namespace ringkv;
using namespace ringkv::test;
using json = nlohmann::json;

TEST_CASE("experiment staleness: with r + w > n every read returns the write") {
  Cluster c(3);
  CliResult r = c.Cli(1, {"experiment", "staleness", "--n", "3", "--r", "2", "--w", "2",
                          "--trials", "10", "--t-ms", "0,5,20", "--json"});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  json j = json::parse(r.out);
  CHECK(j["nodes"].size() == 3);
  REQUIRE(j["rows"].size() == 3);
  for (const auto& row : j["rows"]) {
    CHECK(row["trials"] == 10);
    CHECK(row["errors"] == 0);
    CHECK(row["p_consistent"] == 1.0);
  }
  MESSAGE("[figure] experiment staleness n=3 r=2 w=2: P(consistent) 1.0 at t = 0, 5, 20 ms "
          "(10 trials each, ", j["seconds"].get<double>(), " s)");
  // The table and the plot.
  std::string svg = c.DataDir(1) + "-staleness.svg";
  r = c.Cli(2, {"experiment", "staleness", "--n", "3", "--r", "3", "--w", "1", "--trials", "3",
                "--t-ms", "0", "--svg", svg});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("r + w = 4 > n = 3") != std::string::npos);
  CHECK(r.out.find("1.000") != std::string::npos);
  std::ifstream in(svg);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.starts_with("<svg"));
  CHECK(text.find("<polyline") != std::string::npos);

  // Bad input changes nothing and says why.
  r = c.Cli(1, {"experiment", "staleness", "--n", "3", "--r", "4", "--w", "1"});
  CHECK(r.exit_code == 4);
  r = c.Cli(1, {"experiment", "staleness", "--nodes", c.Address(1), "--trials", "1"});
  CHECK(r.exit_code == 4);
  CHECK(r.err.find("at least two nodes") != std::string::npos);
}

TEST_CASE("experiment staleness: r = w = 1 with replicas applying writes late shows the window") {
  // The testing knob: every node applies incoming replica writes 2 s late.
  Cluster c(3, {"--inject-replica-delay-ms", "2000"});
  CliResult r = c.Cli(1, {"experiment", "staleness", "--n", "3", "--r", "1", "--w", "1",
                          "--trials", "3", "--t-ms", "0,4000", "--json"});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  json j = json::parse(r.out);
  REQUIRE(j["rows"].size() == 2);
  // Read at once through another node: its own (first) reply lacks the
  // write, unless this machine stalled for 2 s in between, three times.
  CHECK(j["rows"][0]["p_consistent"].get<double>() < 1.0);
  CHECK(j["rows"][1]["p_consistent"] == 1.0);  // 4 s later every replica has it
  CHECK(c.LogTail(1).find("testing knob on") != std::string::npos);
  MESSAGE("[figure] experiment staleness n=3 r=1 w=1, replicas 2 s late: P(consistent) ",
          j["rows"][0]["p_consistent"].get<double>(), " at t=0, ",
          j["rows"][1]["p_consistent"].get<double>(), " at t=4000 ms (3 trials each)");
}

TEST_CASE("experiment siblings: every read is counted by its number of versions") {
  Cluster c(3);
  CliResult r = c.Cli(1, {"experiment", "siblings", "--writers", "4", "--readers", "2", "--keys",
                          "3", "--duration", "2", "--json"});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  json j = json::parse(r.out);
  CHECK(j["writes"].get<uint64_t>() > 0);
  uint64_t reads = 0;
  double percent = 0;
  for (const auto& row : j["versions"]) {
    CHECK(row["versions"].get<uint64_t>() >= 1);
    reads += row["reads"].get<uint64_t>();
    percent += row["percent"].get<double>();
  }
  CHECK(reads == j["reads"].get<uint64_t>());
  CHECK(reads > 0);
  CHECK(percent == doctest::Approx(100.0));
  MESSAGE("[figure] experiment siblings (4 writers, 2 readers, 3 keys, 2 s): ", j.dump());
}
