// Certificates for a ringkv cluster, made with the OpenSSL library (no
// `openssl` command): the cluster CA, node certificates and client
// certificates, as `ringkv certs` writes them.
//
// Every key is ECDSA P-256; certificates are X.509 v3 signed with SHA-256.
//  - CA: CN "ringkv CA NAME", CA:TRUE (pathlen 0), keyCertSign and cRLSign.
//  - node ID: CN ID, SAN URI ringkv-node:ID plus each host (DNS name or IP
//    address), extended key usage serverAuth and clientAuth (a node is a TLS
//    server to clients and peers, and a TLS client to peers).
//  - client NAME: CN NAME, SAN URI ringkv-client:NAME, clientAuth only (it
//    cannot serve as a node's certificate).
// core/identity.h says how a node reads these identities.
//
// Files: DIR/ca.pem + ca.key, DIR/ID.pem + ID.key, DIR/client-NAME.pem +
// client-NAME.key. Private keys are created with mode 0600 (never readable
// by others, not even for a moment); certificates 0644. Existing files are
// refused unless `force` (then replaced atomically).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ringkv {

struct KeyAndCert {
  std::string key_pem;   // PKCS#8, unencrypted
  std::string cert_pem;
};

inline constexpr int kDefaultCaDays = 3650;
inline constexpr int kDefaultCertDays = 825;

Result<KeyAndCert> MakeCa(std::string_view name, int days = kDefaultCaDays);
// hosts: DNS names or IP addresses the node is reached at (at least one).
Result<KeyAndCert> MakeNodeCert(const KeyAndCert& ca, std::string_view id,
                                const std::vector<std::string>& hosts, int days = kDefaultCertDays);
Result<KeyAndCert> MakeClientCert(const KeyAndCert& ca, std::string_view name,
                                  int days = kDefaultCertDays);

// InvalidArgument unless a valid node id (1-64 of letters, digits, . _ -).
Status CheckNodeId(std::string_view id);
// InvalidArgument unless a DNS name or an IP address.
Status CheckHost(std::string_view host);

// The files of one key and certificate in dir (stem: "ca", "n1",
// "client-alice"); the directory is created if missing.
struct CertFiles {
  std::string key;
  std::string cert;
};
CertFiles FilesFor(const std::string& dir, const std::string& stem);
Status WriteKeyAndCert(const std::string& dir, const std::string& stem, const KeyAndCert& kc,
                       bool force);
// The CA of dir (ca.pem and ca.key), with a clear error when it is missing.
Result<KeyAndCert> ReadCa(const std::string& dir);

}  // namespace ringkv
