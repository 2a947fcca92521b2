// ringkv: the command-line client. Each invocation opens one connection to
// one node (-H), sends one request and prints the answer, as text for people
// or as one JSON document per command with --json. The commands live in
// client/cli/ (cli.h says how they are put together).
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "client/cli/cli.h"

int main(int argc, char** argv) {
  using namespace ringkv::cli;
  CLI::App app{
      "ringkv: the client of a ringkv cluster, a Dynamo-style leaderless key-value store.\n\n"
      "Concurrent writes to a key are all kept as siblings, each tagged with the dot\n"
      "(node:counter) of its write; `get` shows them all and prints a context.\n"
      "A write that passes that context back (--context) replaces every sibling the\n"
      "context covers, while a write without one only adds a sibling."};
  app.name("ringkv");
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand too

  Cli cli;
  GlobalOptions& g = cli.global;
  if (const char* env = std::getenv("RINGKV_HOST"); env != nullptr && *env != '\0') g.host = env;
  app.add_option("-H,--host", g.host, "Node to talk to as HOST:PORT (default: $RINGKV_HOST, else 127.0.0.1:7100)")
      ->capture_default_str();
  app.add_flag("--json", g.json, "Print one machine-readable JSON document per command");
  app.add_option("--timeout-ms", g.timeout_ms, "Client-side timeout for connecting and each reply")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600000));
  // A node with TLS and users (README "Security").
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
  };
  g.tls_ca = env("RINGKV_TLS_CA");
  g.tls_cert = env("RINGKV_TLS_CERT");
  g.tls_key = env("RINGKV_TLS_KEY");
  g.user = env("RINGKV_USER");
  g.password_file = env("RINGKV_PASSWORD_FILE");
  app.add_option("--tls-ca", g.tls_ca,
                 "Speak TLS; the node's certificate must be signed by this CA (PEM) and name the "
                 "host of -H (default: $RINGKV_TLS_CA)")
      ->group("Security");
  app.add_option("--tls-cert", g.tls_cert,
                 "A client certificate to present (`ringkv certs client`); one whose name is a "
                 "user of the node logs in as that user (default: $RINGKV_TLS_CERT)")
      ->group("Security");
  app.add_option("--tls-key", g.tls_key, "The key of --tls-cert (default: $RINGKV_TLS_KEY)")
      ->group("Security");
  app.add_option("--user", g.user,
                 "Log in as this user (default: $RINGKV_USER); the password comes from "
                 "--password-file, else $RINGKV_PASSWORD, else the terminal")
      ->group("Security");
  app.add_option("--password-file", g.password_file,
                 "A file whose first line is the password (default: $RINGKV_PASSWORD_FILE)")
      ->group("Security");

  AddKvCommands(&app, &cli);
  AddInfoCommands(&app, &cli);
  AddBenchCommand(&app, &cli);
  AddExperimentCommands(&app, &cli);
  AddDataTypeCommands(&app, &cli);
  AddBucketCommands(&app, &cli);
  AddKeysCommand(&app, &cli);
  AddCertsCommands(&app, &cli);
  AddAclCommands(&app, &cli);

  std::string sub_footer = std::string(kGlobalOptionsHelp) + "\n\n" + kExitCodesHelp;
  for (CLI::App* cmd : cli.commands) {
    cmd->fallthrough();
    cmd->footer(sub_footer);
  }
  app.footer(kExitCodesHelp);

  CLI11_PARSE(app, argc, argv);
  if (!cli.run) return kExitRefused;  // unreachable: every leaf command sets run
  return cli.run();
}
