#include "harness.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace ringkv::test {

namespace fs = std::filesystem;

std::vector<uint16_t> FreePorts(int count) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  for (int i = 0; i < count; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw std::runtime_error("cannot bind a free port");
    }
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ports.push_back(ntohs(addr.sin_port));
    fds.push_back(fd);
  }
  for (int fd : fds) close(fd);
  return ports;
}

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Starts a child that is killed if this test process dies (even by a crash),
// so no node outlives its test. The kernel sends that signal when the
// *thread* that forked the child exits, so a node must be started from a
// thread that lives as long as the node: the test's own.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& in_path,
            const std::string& out_path, const std::string& err_path,
            const std::vector<std::string>& env = {}) {
  std::vector<std::string> env_copy = env;  // putenv keeps the pointers
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int in = open(in_path.c_str(), O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = out_path == err_path ? out : open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(127);
    // What a developer's shell exports for a secure cluster must not leak in.
    for (const char* v : {"RINGKV_TLS_CA", "RINGKV_TLS_CERT", "RINGKV_TLS_KEY", "RINGKV_USER",
                          "RINGKV_PASSWORD", "RINGKV_PASSWORD_FILE"}) {
      unsetenv(v);
    }
    for (std::string& e : env_copy) putenv(e.data());
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

CliResult RunProgram(const std::vector<std::string>& argv, const std::string& input,
                     const std::vector<std::string>& env) {
  char tmpl[] = "/tmp/ringkv-run-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string in = dir + "/in", out = dir + "/out", err = dir + "/err";
  std::ofstream(in, std::ios::binary) << input;
  pid_t pid = Spawn(argv, in, out, err, env);
  int status = 0;
  waitpid(pid, &status, 0);
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  fs::remove_all(dir);
  return r;
}

Cluster::Cluster(int nodes, std::vector<std::string> node_flags, Bootstrap bootstrap, bool resp,
                 bool http)
    : node_flags_(std::move(node_flags)), bootstrap_(bootstrap) {
  Init(nodes, resp, http);
}

Cluster::Cluster(int nodes, std::vector<std::string> node_flags, Bootstrap bootstrap, bool resp,
                 ClusterSecurity security, bool http)
    : node_flags_(std::move(node_flags)), bootstrap_(bootstrap), security_(std::move(security)) {
  Init(nodes, resp, http);
}

void Cluster::MakeNodeCert(int i) {
  if (fs::exists(CertsDir() + "/" + Id(i) + ".pem")) return;
  CliResult r = RunProgram({RINGKV_CLI_BIN, "certs", "node", CertsDir(), "--id", Id(i), "--host",
                            "127.0.0.1,localhost"});
  if (r.exit_code != 0) throw std::runtime_error("ringkv certs node failed: " + r.err);
}

std::vector<std::string> Cluster::AdminFlags() const {
  std::vector<std::string> flags;
  if (!admin_.tls_ca.empty()) flags.insert(flags.end(), {"--tls-ca", admin_.tls_ca});
  if (!admin_.user.empty()) flags.insert(flags.end(), {"--user", admin_.user});
  return flags;
}

std::vector<std::string> Cluster::AdminEnv() const {
  if (admin_.user.empty()) return {};
  return {"RINGKV_PASSWORD=" + admin_.password};
}

CliResult Cluster::RunCli(std::vector<std::string> args, const std::vector<std::string>& env) const {
  args.insert(args.begin(), RINGKV_CLI_BIN);
  return RunProgram(args, "", env);
}

Result<std::unique_ptr<Client>> Cluster::Open(int i, int timeout_ms) const {
  return Client::Connect(Address(i), timeout_ms, admin_);
}

void Cluster::Init(int nodes, bool resp, bool http) {
  char tmpl[] = "/tmp/ringkv-cluster-XXXXXX";
  dir_ = mkdtemp(tmpl);
  ports_ = FreePorts((1 + resp + http) * nodes);  // one call: all distinct
  if (http) {
    http_ports_.assign(ports_.end() - nodes, ports_.end());
    ports_.resize(ports_.size() - nodes);
  }
  if (resp) {
    resp_ports_.assign(ports_.begin() + nodes, ports_.end());
    ports_.resize(nodes);
  }
  for (int i = 1; i <= nodes; ++i) {
    pids_[i] = 0;
  }
  if (security_.tls) {
    CliResult r = RunProgram({RINGKV_CLI_BIN, "certs", "ca", CertsDir()});
    if (r.exit_code != 0) throw std::runtime_error("ringkv certs ca failed: " + r.err);
    admin_.tls_ca = CaFile();
  }
  for (const auto& u : security_.users) {
    CliResult r = RunProgram({RINGKV_CLI_BIN, "acl", "add", AclFile(), u.name, "--role", u.role,
                              "--iterations", "1000"},
                             "", {"RINGKV_PASSWORD=" + u.password});
    if (r.exit_code != 0) throw std::runtime_error("ringkv acl add failed: " + r.err);
    if (u.role == "admin" && admin_.user.empty()) {
      admin_.user = u.name;
      admin_.password = u.password;
    }
  }
  for (int i = 1; i <= nodes; ++i) Start(i);
  WaitConverged();
}

void Cluster::WaitConverged(double limit_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  while (std::chrono::steady_clock::now() < deadline) {
    bool all = true;
    for (int i = 1; i <= size() && all; ++i) {
      if (!Running(i)) continue;
      auto c = Open(i, 2000);
      if (!c.ok()) {
        all = false;
        break;
      }
      auto doc = (*c)->Info("status");
      if (!doc.ok()) {
        all = false;
        break;
      }
      // Cheap string checks: every running peer listed as up and alive.
      for (int j = 1; j <= size() && all; ++j) {
        if (!Running(j)) continue;
        std::string needle = "\"id\":\"" + Id(j) + "\"";
        size_t at = doc->find(needle);
        if (at == std::string::npos) {
          all = false;
          break;
        }
        size_t obj_start = doc->rfind('{', at);
        size_t obj_end = doc->find('}', at);
        std::string member = doc->substr(obj_start, obj_end - obj_start);
        if (member.find("\"alive\":true") == std::string::npos ||
            member.find("\"state\":\"up\"") == std::string::npos) {
          all = false;
        }
      }
    }
    if (all) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("cluster did not converge: nodes do not all see each other up");
}

Cluster::~Cluster() {
  for (auto& [i, pid] : pids_) {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  if (std::getenv("RINGKV_KEEP_TEST_DIR") == nullptr) fs::remove_all(dir_);
}

std::string Cluster::Address(int i) const { return "127.0.0.1:" + std::to_string(ports_.at(i - 1)); }
std::string Cluster::DataDir(int i) const { return dir_ + "/data/" + Id(i); }
std::string Cluster::LogPath(int i) const { return dir_ + "/" + Id(i) + ".log"; }

std::string Cluster::LogTail(int i, size_t bytes) const {
  std::string log = ReadFile(LogPath(i));
  return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

void Cluster::Start(int i) {
  if (Running(i)) return;
  std::vector<std::string> argv = {RINGKV_NODE_BIN, "--id", Id(i), "--listen", Address(i),
                                   "--data-dir", DataDir(i)};
  if (bootstrap_ == Bootstrap::kPeers) {
    std::string peers;
    for (int j = 1; j <= size(); ++j) {
      if (!peers.empty()) peers += ",";
      peers += Id(j) + "@" + Address(j);
    }
    argv.insert(argv.end(), {"--peers", peers});
  } else if (i != 1) {
    argv.insert(argv.end(), {"--join", Address(1)});
  }
  if (!resp_ports_.empty()) {
    argv.insert(argv.end(), {"--resp-listen", "127.0.0.1:" + std::to_string(RespPort(i))});
  }
  if (!http_ports_.empty()) {
    argv.insert(argv.end(), {"--http-listen", "127.0.0.1:" + std::to_string(HttpPort(i))});
  }
  if (security_.tls) {
    MakeNodeCert(i);
    argv.insert(argv.end(), {"--tls-cert", CertsDir() + "/" + Id(i) + ".pem", "--tls-key",
                             CertsDir() + "/" + Id(i) + ".key", "--tls-ca", CaFile()});
  }
  if (!security_.users.empty()) argv.insert(argv.end(), {"--acl", AclFile()});
  argv.insert(argv.end(), node_flags_.begin(), node_flags_.end());
  pids_[i] = Spawn(argv, "/dev/null", LogPath(i), LogPath(i));
  if (!WaitReady(i)) {
    throw std::runtime_error("node " + Id(i) + " did not start; log:\n" + LogTail(i));
  }
}

bool Cluster::WaitReady(int i) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    int status = 0;
    if (waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {
      pids_[i] = 0;
      return false;
    }
    auto c = Open(i, 1000);
    if (c.ok() && (*c)->Info("status").ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

int Cluster::AddNode() {
  if (bootstrap_ != Bootstrap::kJoin) throw std::runtime_error("AddNode needs a --join cluster");
  std::vector<uint16_t> fresh = FreePorts(3);
  ports_.push_back(fresh[0]);
  if (!resp_ports_.empty()) resp_ports_.push_back(fresh[1]);
  if (!http_ports_.empty()) http_ports_.push_back(fresh[2]);
  int i = size();
  pids_[i] = 0;
  Start(i);
  return i;
}

void Cluster::Kill(int i) {
  if (!Running(i)) return;
  kill(pids_[i], SIGKILL);
  waitpid(pids_[i], nullptr, 0);
  pids_[i] = 0;
}

int Cluster::StopAndStatus(int i) {
  if (!Running(i)) return -1;
  kill(pids_[i], SIGTERM);
  int status = 0;
  waitpid(pids_[i], &status, 0);
  pids_[i] = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void Cluster::Stop(int i) { StopAndStatus(i); }

int Cluster::WaitExit(int i, double limit_s) {
  if (!Running(i)) return -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {
      pids_[i] = 0;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Kill(i);
  return -1;
}

bool Cluster::Running(int i) const {
  auto it = pids_.find(i);
  return it != pids_.end() && it->second > 0;
}

CliResult Cluster::Cli(int i, std::vector<std::string> args) const {
  std::vector<std::string> argv = {RINGKV_CLI_BIN, "-H", Address(i)};
  std::vector<std::string> flags = AdminFlags();
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, "", AdminEnv());
}

std::unique_ptr<Client> Cluster::Connect(int i) const {
  auto c = Open(i, 10000);
  if (!c.ok()) throw std::runtime_error(c.status().ToString());
  return std::move(c).value();
}

}  // namespace ringkv::test
