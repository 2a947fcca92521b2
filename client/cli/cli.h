// The ringkv command line: what its commands share (global options, quorum
// flags, exit codes, printing, connecting) and how each group of commands
// registers itself.
//
// Every command group lives in a file of its own (kv.cc: get, put, delete;
// info.cc: status, ring, stats, preflist, hints, admin; bench.cc: bench;
// datatypes.cc: counter, set, map; bucket.cc: bucket; keys.cc: keys;
// experiment.cc: experiment; certs.cc: certs; acl.cc: acl)
// and adds its subcommands to the app with Add...Commands(app, cli). A
// subcommand's callback sets cli->run, which main calls after parsing.
//
// Exit codes are part of the interface (scripts and tests rely on them):
// 0 ok, 1 key not found, 2 cannot connect / connection lost, 3 quorum not met
// or timed out, 4 any other refusal, 5 not authenticated or not allowed, 6 a
// condition not met. kExitCodesHelp is what --help shows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "client/client.h"
#include "core/message.h"
#include "core/status.h"

namespace ringkv::cli {

using json = nlohmann::ordered_json;  // keeps fields in the order we print them

enum ExitCode : int {
  kExitOk = 0,
  kExitNotFound = 1,
  kExitConnection = 2,
  kExitQuorum = 3,
  kExitRefused = 4,
  kExitAuth = 5,       // not authenticated, or not allowed
  kExitCondition = 6,  // a conditional write's condition did not hold
};

inline constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0  success\n"
    "  1  key not found (get)\n"
    "  2  cannot connect to the node, or the connection was lost\n"
    "  3  quorum not met or timed out (the node's message says which replicas answered)\n"
    "  4  any other refusal (bad argument or context, wrong cluster, wrong type, too many\n"
    "     siblings, ...)\n"
    "  5  not authenticated (no user, wrong password, a TLS certificate refused or\n"
    "     missing) or not allowed (the user's role)\n"
    "  6  condition not met (put --if-absent / --if-unchanged)\n"
    "With --json every command prints one JSON document on stdout; errors are\n"
    "{\"error\": MESSAGE, \"code\": CODE}.";

inline constexpr const char* kGlobalOptionsHelp =
    "Global options (-H HOST:PORT, --json, --timeout-ms, and --tls-ca, --tls-cert, --tls-key, "
    "--user, --password-file for a node with TLS and users) may also be given after the "
    "subcommand; see ringkv --help.";

struct GlobalOptions {
  std::string host = "127.0.0.1:7100";
  bool json = false;
  int timeout_ms = 10000;
  // A node with TLS and users (README "Security"); from RINGKV_* by default.
  std::string tls_ca, tls_cert, tls_key;
  std::string user;
  std::string password_file;
};

// The TLS files and the login of g: the password from --password-file (or
// RINGKV_PASSWORD_FILE), else RINGKV_PASSWORD, else asked on the terminal;
// an error when a user is given and there is no way to get a password.
Result<ClientOptions> ResolveClientOptions(const GlobalOptions& g);
// Reads a password from the terminal (/dev/tty) without echo; with confirm,
// asks twice and fails if they differ. An error if there is no terminal.
Result<std::string> PromptPassword(const std::string& prompt, bool confirm);

// Per-request quorum flags; zero / unset means "the node's default".
struct QuorumOptions {
  uint32_t n = 0, r = 0, w = 0, pr = 0, pw = 0;
  uint32_t timeout_ms = 0;
  bool sloppy = false;
  bool strict = false;
  bool lww = false;

  ringkv::Quorum ToQuorum() const {
    ringkv::Quorum q;
    q.n = n;
    q.r = r;
    q.w = w;
    q.pr = pr;
    q.pw = pw;
    q.timeout_ms = timeout_ms;
    q.mode = sloppy ? ringkv::Mode::kSloppy : strict ? ringkv::Mode::kStrict : ringkv::Mode::kDefault;
    q.lww = lww;
    return q;
  }
};

// Adds the quorum flags to a subcommand. reads: get (n, r, pr); otherwise a
// write (n, w, pw).
void AddQuorumOptions(CLI::App* cmd, QuorumOptions* q, bool reads);

int ExitCodeFor(const Status& s);
std::string Dump(const json& j);
void PrintJson(const json& j);
// Reports a failure on stderr (and as a JSON document on stdout with --json)
// and returns the exit code for it.
int Fail(const GlobalOptions& g, const Status& s);

// Text that is safe to print and to put in JSON: the bytes themselves when
// they are printable UTF-8, else their base64.
struct Printable {
  std::string text;
  bool base64 = false;
};

Printable MakePrintable(std::string_view bytes);
// The key as it appears in messages: quoted, or base64 with a note.
std::string KeyForHumans(std::string_view key);
// Sets "key" (and "key_encoding" for base64) in *j.
void AddKey(json* j, std::string_view key);

// Turns the --context text back into the bytes the node handed out.
Result<std::string> ParseContext(std::string text);
// A value from FILE, or from stdin for "-".
Result<std::string> ReadValueFile(const std::string& path);
// Connects to g.host; request_timeout_ms (the node's wait) makes the client
// wait longer than the node does.
Result<std::unique_ptr<Client>> Connect(const GlobalOptions& g, uint32_t request_timeout_ms = 0);

// A text table with aligned columns.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(const std::string& indent = "") const {
    std::vector<size_t> width(header_.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
      for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
        width[i] = std::max(width[i], row[i].size());
      }
    };
    measure(header_);
    for (const auto& r : rows_) measure(r);
    auto print_row = [&](const std::vector<std::string>& row) {
      std::string line = indent;
      for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
        line += i + 1 == row.size() ? row[i] : fmt::format("{:<{}}  ", row[i], width[i]);
      }
      fmt::print("{}\n", line);
    };
    print_row(header_);
    for (const auto& r : rows_) print_row(r);
  }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// A field of a node document as text ("-" when absent), so the tables keep
// working when a node adds, renames or drops a field.
std::string Field(const json& j, const char* name);
// "n1,n2" from an array of ids or of objects with "id".
std::string JoinIds(const json& arr);

// `get` of a key holding a counter, set or map: prints its value (the join
// of its states: a data-type key shows no siblings) and the context, and
// returns the exit code; -1 if the key holds plain values (datatypes.cc).
int PrintDataTypeGet(const GlobalOptions& g, std::string_view key, const GetResult& r);

// Asks the node for an info document and prints it (as a table, or as JSON).
int RunInfo(const GlobalOptions& g, const std::string& topic, const std::string& arg);
// Asks the node for an info topic's JSON document. On failure it reports the
// error (Fail) and returns nothing, with the exit code in *exit_code.
std::optional<json> FetchInfo(const GlobalOptions& g, const std::string& topic,
                              const std::string& arg, int* exit_code);

// What main hands every command group: the global options, a place to keep
// the group's parsed options, and the action of the chosen subcommand.
struct Cli {
  GlobalOptions global;
  std::function<int()> run;
  // Subcommands that take the global options after their own (fallthrough)
  // and show the exit codes in --help.
  std::vector<CLI::App*> commands;

  // An object that lives as long as the program, for a group's options.
  template <typename T>
  T* Keep() {
    auto owned = std::make_shared<T>();
    T* raw = owned.get();
    kept_.push_back(std::move(owned));
    return raw;
  }

 private:
  std::vector<std::shared_ptr<void>> kept_;
};

// The command groups.
void AddKvCommands(CLI::App* app, Cli* cli);     // get, put, delete
void AddInfoCommands(CLI::App* app, Cli* cli);   // status, ring, stats, preflist, hints, admin
void AddBenchCommand(CLI::App* app, Cli* cli);   // bench
void AddExperimentCommands(CLI::App* app, Cli* cli);  // experiment staleness|siblings
void AddDataTypeCommands(CLI::App* app, Cli* cli);  // counter, set, map
void AddBucketCommands(CLI::App* app, Cli* cli);  // bucket set, show, list
void AddKeysCommand(CLI::App* app, Cli* cli);     // keys
void AddCertsCommands(CLI::App* app, Cli* cli);  // certs ca, node, client
void AddAclCommands(CLI::App* app, Cli* cli);    // acl add, remove, list

}  // namespace ringkv::cli
