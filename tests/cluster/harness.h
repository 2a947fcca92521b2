// A test harness that runs real ringkv-node processes on 127.0.0.1 and drives
// them through the `ringkv` CLI and the client library.
//
// Ports are picked free by the kernel, data lives in a fresh temp dir, and
// every process a Cluster starts is killed when it goes out of scope.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"

namespace ringkv::test {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Picks `count` distinct free TCP ports on 127.0.0.1.
std::vector<uint16_t> FreePorts(int count);

// Runs a program to completion, capturing stdout/stderr; stdin from `input`;
// env: more "NAME=VALUE" variables for it.
CliResult RunProgram(const std::vector<std::string>& argv, const std::string& input = "",
                     const std::vector<std::string>& env = {});

// TLS and users for a Cluster (README "Security"). With tls the harness makes
// a CA and a certificate per node with `ringkv certs` (hosts 127.0.0.1 and
// localhost) and starts every node with --tls-cert/--tls-key/--tls-ca; with
// users it writes them with `ringkv acl add` (fast hashes: 1000 iterations)
// and starts every node with --acl. The first admin user is the one the
// harness itself (and Cli, Connect) logs in as.
struct ClusterSecurity {
  struct User {
    std::string name, role, password;
  };
  bool tls = false;
  std::vector<User> users;
};

class Cluster {
 public:
  enum class Bootstrap {
    kPeers,  // every node listed with --peers, all up at once
    kJoin,   // n1 founds the cluster, the others --join n1
  };
  // Starts `nodes` nodes n1..nN. node_flags are appended to every node's
  // command line. With resp, every node also serves the Redis protocol
  // (--resp-listen) on a port of its own, RespPort(i); with http, HTTP
  // (--http-listen) on HttpPort(i).
  explicit Cluster(int nodes, std::vector<std::string> node_flags = {},
                   Bootstrap bootstrap = Bootstrap::kPeers, bool resp = false, bool http = false);
  Cluster(int nodes, std::vector<std::string> node_flags, Bootstrap bootstrap, bool resp,
          ClusterSecurity security, bool http = false);
  ~Cluster();

  int size() const { return static_cast<int>(ports_.size()); }
  std::string Id(int i) const { return "n" + std::to_string(i); }
  std::string Address(int i) const;  // 1-based
  uint16_t RespPort(int i) const { return resp_ports_.at(i - 1); }  // needs resp
  uint16_t HttpPort(int i) const { return http_ports_.at(i - 1); }  // needs http
  std::string DataDir(int i) const;
  std::string LogPath(int i) const;
  std::string LogTail(int i, size_t bytes = 4000) const;

  void Start(int i);   // and wait until it answers; call from the test's thread (see Spawn)
  // Waits until every running node sees every other running node alive and
  // up (connections made, gossip spread).
  void WaitConverged(double limit_s = 60);
  // Starts one more node that joins through n1; returns its index.
  int AddNode();
  void Kill(int i);    // SIGKILL
  void Stop(int i);    // SIGTERM, wait for exit; returns its exit status
  int StopAndStatus(int i);
  // Waits (up to limit_s) for node i to exit by itself; its exit status, or
  // -1 if it had to be killed.
  int WaitExit(int i, double limit_s);
  bool Running(int i) const;
  pid_t Pid(int i) const { return pids_.count(i) != 0 ? pids_.at(i) : 0; }

  // Security: the files the harness made, and how it logs in (empty
  // without TLS / users).
  std::string CertsDir() const { return dir_ + "/certs"; }
  std::string CaFile() const { return CertsDir() + "/ca.pem"; }
  std::string AclFile() const { return dir_ + "/users.acl"; }
  const ClientOptions& AdminOptions() const { return admin_; }
  // The global flags and environment `ringkv` needs to log in as the admin.
  std::vector<std::string> AdminFlags() const;
  std::vector<std::string> AdminEnv() const;
  // `ringkv args...` with exactly these flags and variables (no -H added).
  CliResult RunCli(std::vector<std::string> args, const std::vector<std::string>& env = {}) const;

  // `ringkv -H <node i> args...` (as the admin on a secure cluster)
  CliResult Cli(int i, std::vector<std::string> args) const;
  std::unique_ptr<Client> Connect(int i) const;

 private:
  bool WaitReady(int i);
  void Init(int nodes, bool resp, bool http);
  void MakeNodeCert(int i);
  Result<std::unique_ptr<Client>> Open(int i, int timeout_ms) const;

  std::string dir_;
  std::vector<uint16_t> ports_;
  std::vector<uint16_t> resp_ports_;  // empty unless resp
  std::vector<uint16_t> http_ports_;  // empty unless http
  std::vector<std::string> node_flags_;
  Bootstrap bootstrap_;
  std::map<int, pid_t> pids_;
  ClusterSecurity security_;
  ClientOptions admin_;
};

}  // namespace ringkv::test
