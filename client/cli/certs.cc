// certs: the cluster's CA, node and client certificates (client/certs.h),
// made with the OpenSSL library. Nothing is sent to a node.
#include <fmt/format.h>

#include "client/certs.h"
#include "client/cli/cli.h"

namespace ringkv::cli {

namespace {

struct CertsOptions {
  std::string dir;
  std::string id;
  std::vector<std::string> hosts;
  std::string name;
  std::string ca_name = "ringkv";
  int days = 0;
  bool force = false;
};

int Written(const GlobalOptions& g, const std::string& what, const std::string& dir,
            const std::string& stem) {
  CertFiles f = FilesFor(dir, stem);
  if (g.json) {
    PrintJson(json{{"what", what}, {"cert", f.cert}, {"key", f.key}});
  } else {
    fmt::print("wrote {}: {} (certificate) and {} (private key, mode 0600)\n", what, f.cert, f.key);
  }
  return kExitOk;
}

int RunCa(const GlobalOptions& g, const CertsOptions& o) {
  auto ca = MakeCa(o.ca_name, o.days > 0 ? o.days : kDefaultCaDays);
  if (!ca.ok()) return Fail(g, ca.status());
  Status s = WriteKeyAndCert(o.dir, "ca", *ca, o.force);
  if (!s.ok()) return Fail(g, s);
  return Written(g, "the cluster CA", o.dir, "ca");
}

int RunNode(const GlobalOptions& g, const CertsOptions& o) {
  auto ca = ReadCa(o.dir);
  if (!ca.ok()) return Fail(g, ca.status());
  auto kc = MakeNodeCert(*ca, o.id, o.hosts, o.days > 0 ? o.days : kDefaultCertDays);
  if (!kc.ok()) return Fail(g, kc.status());
  Status s = WriteKeyAndCert(o.dir, o.id, *kc, o.force);
  if (!s.ok()) return Fail(g, s);
  return Written(g, "node " + o.id, o.dir, o.id);
}

int RunClient(const GlobalOptions& g, const CertsOptions& o) {
  auto ca = ReadCa(o.dir);
  if (!ca.ok()) return Fail(g, ca.status());
  auto kc = MakeClientCert(*ca, o.name, o.days > 0 ? o.days : kDefaultCertDays);
  if (!kc.ok()) return Fail(g, kc.status());
  Status s = WriteKeyAndCert(o.dir, "client-" + o.name, *kc, o.force);
  if (!s.ok()) return Fail(g, s);
  return Written(g, "client " + o.name, o.dir, "client-" + o.name);
}

}  // namespace

void AddCertsCommands(CLI::App* app, Cli* cli) {
  CertsOptions* o = cli->Keep<CertsOptions>();
  const GlobalOptions* g = &cli->global;
  auto* certs = app->add_subcommand(
      "certs",
      "Make TLS certificates for a cluster (with the OpenSSL library): the CA, one per node, "
      "and client certificates. Keys are ECDSA P-256, written mode 0600; existing files are "
      "kept unless --force. Start nodes with --tls-cert DIR/ID.pem --tls-key DIR/ID.key "
      "--tls-ca DIR/ca.pem; clients need --tls-ca DIR/ca.pem");
  certs->require_subcommand(1);
  cli->commands.push_back(certs);

  auto common = [o](CLI::App* cmd, int default_days) {
    cmd->add_option("DIR", o->dir, "Directory of the cluster's certificates")->required();
    cmd->add_option("--days", o->days, fmt::format("Validity in days (default {})", default_days))
        ->check(CLI::Range(1, 36500));
    cmd->add_flag("--force", o->force, "Replace files that exist");
  };
  auto* ca = certs->add_subcommand("ca", "The cluster CA: DIR/ca.pem and DIR/ca.key (keep ca.key safe: "
                                         "it makes certificates every node trusts)");
  common(ca, kDefaultCaDays);
  ca->add_option("--name", o->ca_name, "Name in the CA's subject (ringkv CA NAME)")->capture_default_str();
  ca->callback([cli, g, o] { cli->run = [g, o] { return RunCa(*g, *o); }; });

  auto* node = certs->add_subcommand(
      "node", "A node's certificate, signed by DIR's CA: DIR/ID.pem and DIR/ID.key. It names the "
              "node id (peers check it) and the hosts clients reach the node at (clients check "
              "those)");
  common(node, kDefaultCertDays);
  node->add_option("--id", o->id, "The node id (--id of ringkv-node)")->required();
  node->add_option("--host", o->hosts,
                   "Host names and IP addresses the node is reached at, H[,H...] (e.g. "
                   "127.0.0.1,localhost,node1)")
      ->required()
      ->delimiter(',');
  node->callback([cli, g, o] { cli->run = [g, o] { return RunNode(*g, *o); }; });

  auto* client = certs->add_subcommand(
      "client", "A client certificate, signed by DIR's CA: DIR/client-NAME.pem and .key. With "
                "--tls-cert/--tls-key it logs the client in as the ACL user NAME, without a "
                "password");
  common(client, kDefaultCertDays);
  client->add_option("--name", o->name, "The user name it proves")->required();
  client->callback([cli, g, o] { cli->run = [g, o] { return RunClient(*g, *o); }; });
  for (CLI::App* c : {ca, node, client}) cli->commands.push_back(c);
}

}  // namespace ringkv::cli
