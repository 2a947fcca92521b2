#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include <fmt/format.h>

#include "client/cli/cli.h"
#include "core/codec.h"

namespace ringkv::cli {

void AddQuorumOptions(CLI::App* cmd, QuorumOptions* q, bool reads) {
  cmd->add_option("--n", q->n, "Replicas for this request (default: the node's)")
      ->check(CLI::Range(1, 64))
      ->group("Quorum");
  if (reads) {
    cmd->add_option("--r", q->r, "Replies needed before answering (read quorum)")
        ->check(CLI::Range(1, 64))
        ->group("Quorum");
    cmd->add_option("--pr", q->pr, "Of those, replies needed from primary replicas")
        ->check(CLI::Range(0, 64))
        ->group("Quorum");
  } else {
    cmd->add_option("--w", q->w, "Acknowledgements needed before answering (write quorum)")
        ->check(CLI::Range(1, 64))
        ->group("Quorum");
    cmd->add_option("--pw", q->pw, "Of those, acknowledgements needed from primary replicas")
        ->check(CLI::Range(0, 64))
        ->group("Quorum");
  }
  cmd->add_option("--request-timeout-ms", q->timeout_ms,
                  "How long the coordinating node waits for replicas (default: the node's)")
      ->check(CLI::Range(1, 600000))
      ->group("Quorum");
  auto* sloppy = cmd->add_flag("--sloppy", q->sloppy,
                               "Sloppy quorum: fallbacks may stand in for primaries that are down")
                     ->group("Quorum");
  auto* strict =
      cmd->add_flag("--strict", q->strict, "Strict quorum: primary replicas only")->group("Quorum");
  sloppy->excludes(strict);
  cmd->add_flag("--lww", q->lww,
                "Last-write-wins: collapse siblings to the newest (loses concurrent writes; "
                "for comparison only)")
      ->group("Quorum");
}


int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return kExitOk;
    case Status::Code::kNotFound: return kExitNotFound;
    case Status::Code::kIOError: return kExitConnection;
    case Status::Code::kUnavailable:
    case Status::Code::kTimeout: return kExitQuorum;
    case Status::Code::kUnauthenticated:
    case Status::Code::kPermissionDenied: return kExitAuth;
    case Status::Code::kConditionFailed: return kExitCondition;
    default: return kExitRefused;
  }
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void PrintJson(const json& j) { fmt::print("{}\n", Dump(j)); }

int Fail(const GlobalOptions& g, const Status& s) {
  int code = ExitCodeFor(s);
  // Connection and quorum messages already say what happened ("cannot connect
  // to ...", "write quorum not met: ..."); other refusals get their kind.
  std::string message = code == kExitConnection || code == kExitQuorum ? s.message() : s.ToString();
  if (message.empty()) message = s.ToString();
  if (g.json) {
    PrintJson({{"error", message}, {"code", CodeSlug(s.code())}});
    std::fflush(stdout);
  }
  fmt::print(stderr, "ringkv: {}\n", message);
  return code;
}


Printable MakePrintable(std::string_view bytes) {
  if (IsPrintableUtf8(bytes)) return {std::string(bytes), false};
  return {Base64Encode(bytes), true};
}

std::string KeyForHumans(std::string_view key) {
  Printable p = MakePrintable(key);
  return p.base64 ? fmt::format("(base64) {}", p.text) : fmt::format("\"{}\"", p.text);
}

void AddKey(json* j, std::string_view key) {
  Printable p = MakePrintable(key);
  (*j)["key"] = p.text;
  if (p.base64) (*j)["key_encoding"] = "base64";
}

Result<std::string> ParseContext(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.erase(0, 1);
  if (text.empty()) return std::string();
  auto bytes = Base64Decode(text);
  if (!bytes.ok()) {
    return Status::InvalidArgument(fmt::format(
        "--context is not a context printed by ringkv get/put ({})", bytes.status().message()));
  }
  auto clock = DecodeContext(*bytes);
  if (!clock.ok()) {
    return Status::InvalidArgument(fmt::format(
        "--context is not a context printed by ringkv get/put ({})", clock.status().message()));
  }
  return std::move(bytes).value();
}

Result<std::string> ReadValueFile(const std::string& path) {
  if (path == "-") {
    std::string data{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    if (std::cin.bad()) return Status::InvalidArgument("cannot read the value from stdin");
    return data;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument(
        fmt::format("cannot read --value-file {}: {}", path, std::strerror(errno)));
  }
  std::string data{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) {
    return Status::InvalidArgument(
        fmt::format("cannot read --value-file {}: {}", path, std::strerror(errno)));
  }
  return data;
}

Result<std::string> PromptPassword(const std::string& prompt, bool confirm) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::InvalidArgument("no terminal to ask for the password on");
  struct termios old {};
  bool restore = tcgetattr(fd, &old) == 0;
  if (restore) {
    struct termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  auto read_line = [fd](const std::string& p, std::string* out) {
    if (::write(fd, p.data(), p.size()) < 0) return false;
    out->clear();
    char ch;
    while (::read(fd, &ch, 1) == 1) {
      if (ch == '\n') return true;
      if (ch != '\r') out->push_back(ch);
      if (out->size() > 4096) return false;
    }
    return false;
  };
  std::string first, second;
  bool ok = read_line(prompt, &first) && (!confirm || read_line("Again: ", &second));
  if (restore) tcsetattr(fd, TCSAFLUSH, &old);
  ::close(fd);
  if (!second.empty()) OPENSSL_cleanse(second.data(), second.size());
  if (!ok) {
    OPENSSL_cleanse(first.data(), first.size());
    return Status::InvalidArgument("could not read the password from the terminal");
  }
  if (confirm && first != second) {
    OPENSSL_cleanse(first.data(), first.size());
    return Status::InvalidArgument("the two passwords differ");
  }
  return first;
}

Result<ClientOptions> ResolveClientOptions(const GlobalOptions& g) {
  ClientOptions o;
  o.tls_ca = g.tls_ca;
  o.tls_cert = g.tls_cert;
  o.tls_key = g.tls_key;
  if ((!o.tls_cert.empty() || !o.tls_key.empty()) && o.tls_ca.empty()) {
    return Status::InvalidArgument(
        "--tls-cert/--tls-key need --tls-ca (the cluster's CA, to check the node's certificate)");
  }
  o.user = g.user;
  if (o.user.empty()) return o;
  if (!g.password_file.empty()) {
    std::ifstream in(g.password_file, std::ios::binary);
    if (!in) {
      return Status::InvalidArgument(
          fmt::format("cannot read --password-file {}: {}", g.password_file, std::strerror(errno)));
    }
    std::getline(in, o.password);
    if (!o.password.empty() && o.password.back() == '\r') o.password.pop_back();
    if (o.password.empty()) {
      return Status::InvalidArgument(fmt::format("--password-file {} is empty", g.password_file));
    }
    return o;
  }
  if (const char* env = std::getenv("RINGKV_PASSWORD"); env != nullptr && *env != '\0') {
    o.password = env;
    return o;
  }
  auto typed = PromptPassword(fmt::format("Password for {}: ", o.user), false);
  if (!typed.ok()) {
    return Status::Unauthenticated(fmt::format(
        "no password for user {}: set RINGKV_PASSWORD or give --password-file FILE", o.user));
  }
  o.password = std::move(typed).value();
  return o;
}

Result<std::unique_ptr<Client>> Connect(const GlobalOptions& g,
                                        uint32_t request_timeout_ms) {
  // The client must outwait the node: a node that waits its full request
  // timeout still answers (with the quorum failure) shortly after.
  int timeout = g.timeout_ms;
  if (request_timeout_ms > 0) timeout = std::max<int64_t>(timeout, int64_t{request_timeout_ms} + 1000);
  auto options = ResolveClientOptions(g);
  if (!options.ok()) return options.status();
  return Client::Connect(g.host, timeout, *options);
}


std::string Field(const json& j, const char* name) {
  if (!j.is_object() || !j.contains(name)) return "-";
  const json& v = j.at(name);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) return fmt::format("{:.2f}", v.get<double>());
  if (v.is_null()) return "-";
  return Dump(v);
}

std::string JoinIds(const json& arr) {
  if (!arr.is_array()) return "-";
  std::string out;
  for (const auto& e : arr) {
    std::string id = e.is_string() ? e.get<std::string>() : Field(e, "id");
    out += (out.empty() ? "" : ",") + id;
  }
  return out.empty() ? "-" : out;
}

}  // namespace ringkv::cli
