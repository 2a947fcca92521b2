#include "client/certs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "core/acl.h"
#include "core/identity.h"

namespace ringkv {

namespace {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string OpenSslReason() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  const char* r = e != 0 ? ERR_reason_error_string(e) : nullptr;
  return r != nullptr ? r : "unknown OpenSSL error";
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

int NoPassphrase(char*, int, int, void*) { return -1; }

bool IsIp(std::string_view host) {
  std::string h(host);
  in_addr a4;
  in6_addr a6;
  return inet_pton(AF_INET, h.c_str(), &a4) == 1 || inet_pton(AF_INET6, h.c_str(), &a6) == 1;
}

Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) {
    return Status::Internal(fmt::format("cannot make extension {}: {}", OBJ_nid2sn(nid), OpenSslReason()));
  }
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return Status::Internal("cannot add an extension: " + OpenSslReason());
  return Status::OK();
}

// A certificate for `key`, named cn, valid `days`, with extensions (nid,
// value); signed by issuer_key (issuer null: self-signed).
Result<CertPtr> Build(EVP_PKEY* key, const std::string& cn, int days, X509* issuer,
                      EVP_PKEY* issuer_key, const std::vector<std::pair<int, std::string>>& exts) {
  CertPtr x(X509_new());
  if (!x) return Status::Internal("cannot allocate a certificate");
  X509_set_version(x.get(), 2);  // v3
  // A random 127-bit serial: unique without bookkeeping.
  BIGNUM* serial = BN_new();
  BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x.get()));
  BN_free(serial);
  // An hour back, for clocks a little behind.
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), static_cast<long>(days) * 86400L);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("ringkv"),
                             -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(x.get(), key);
  X509* issuer_cert = issuer != nullptr ? issuer : x.get();
  for (const auto& [nid, value] : exts) {
    Status s = AddExt(x.get(), issuer_cert, nid, value);
    if (!s.ok()) return s;
  }
  if (X509_sign(x.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    return Status::Internal("cannot sign the certificate: " + OpenSslReason());
  }
  return x;
}

Result<KeyAndCert> Pem(EVP_PKEY* key, X509* cert) {
  BioPtr kb(BIO_new(BIO_s_mem())), cb(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(kb.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_X509(cb.get(), cert) != 1) {
    return Status::Internal("cannot write PEM: " + OpenSslReason());
  }
  return KeyAndCert{BioText(kb.get()), BioText(cb.get())};
}

Result<KeyPtr> NewKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Status::Internal("cannot make a P-256 key: " + OpenSslReason());
  return key;
}

// The CA's key and certificate, parsed and checked to belong together.
Status ParseCa(const KeyAndCert& ca, KeyPtr* key, CertPtr* cert) {
  BioPtr kb(BIO_new_mem_buf(ca.key_pem.data(), static_cast<int>(ca.key_pem.size())));
  BioPtr cb(BIO_new_mem_buf(ca.cert_pem.data(), static_cast<int>(ca.cert_pem.size())));
  key->reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, NoPassphrase, nullptr));
  cert->reset(PEM_read_bio_X509(cb.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (!*key || !*cert) return Status::InvalidArgument("the CA's key or certificate is not PEM");
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the CA's key does not belong to its certificate");
  }
  if (X509_check_ca(cert->get()) == 0) {
    return Status::InvalidArgument("the CA certificate is not a CA (basicConstraints CA:TRUE)");
  }
  return Status::OK();
}

Result<KeyAndCert> MakeLeaf(const KeyAndCert& ca, const std::string& cn, const std::string& san,
                            const char* eku, int days) {
  if (days < 1 || days > 36500) return Status::InvalidArgument("--days must be 1..36500");
  KeyPtr ca_key;
  CertPtr ca_cert;
  Status s = ParseCa(ca, &ca_key, &ca_cert);
  if (!s.ok()) return s;
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = Build(key->get(), cn, days, ca_cert.get(), ca_key.get(),
                    {{NID_basic_constraints, "critical,CA:FALSE"},
                     {NID_key_usage, "critical,digitalSignature"},
                     {NID_ext_key_usage, eku},
                     {NID_subject_alt_name, san},
                     {NID_subject_key_identifier, "hash"},
                     {NID_authority_key_identifier, "keyid:always"}});
  if (!cert.ok()) return cert.status();
  return Pem(key->get(), cert->get());
}

// Writes a file created with `mode` (never wider, not even for a moment);
// an existing file is an error unless force, then replaced atomically.
Status WriteFile(const std::string& path, std::string_view data, mode_t mode, bool force) {
  std::string target = force ? path + ".tmp" : path;
  if (force) ::unlink(target.c_str());
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0 && errno == EEXIST) {
    return Status::InvalidArgument(fmt::format("{} exists; pass --force to replace it", path));
  }
  if (fd < 0) return Status::IOError(fmt::format("cannot create {}: {}", target, std::strerror(errno)));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(target.c_str());
      return Status::IOError(fmt::format("cannot write {}: {}", target, why));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(target.c_str());
    return Status::IOError(fmt::format("cannot write {}: {}", target, std::strerror(errno)));
  }
  if (force && ::rename(target.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(target.c_str());
    return Status::IOError(fmt::format("cannot replace {}: {}", path, why));
  }
  return Status::OK();
}

Result<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Status CheckNodeId(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  if (!ok) return Status::InvalidArgument(fmt::format("node id '{}' must be 1-64 letters, digits, '.', '_' or '-'", id));
  return Status::OK();
}

Status CheckHost(std::string_view host) {
  if (IsIp(host)) return Status::OK();
  bool ok = !host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '*';
  });
  if (!ok) return Status::InvalidArgument(fmt::format("--host '{}' is not a DNS name or an IP address", host));
  return Status::OK();
}

Result<KeyAndCert> MakeCa(std::string_view name, int days) {
  if (days < 1 || days > 36500) return Status::InvalidArgument("--days must be 1..36500");
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = Build(key->get(), fmt::format("ringkv CA {}", name), days, nullptr, nullptr,
                    {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                     {NID_key_usage, "critical,keyCertSign,cRLSign"},
                     {NID_subject_key_identifier, "hash"}});
  if (!cert.ok()) return cert.status();
  return Pem(key->get(), cert->get());
}

Result<KeyAndCert> MakeNodeCert(const KeyAndCert& ca, std::string_view id,
                                const std::vector<std::string>& hosts, int days) {
  Status s = CheckNodeId(id);
  if (!s.ok()) return s;
  if (hosts.empty()) {
    return Status::InvalidArgument("a node certificate needs the hosts it is reached at (--host)");
  }
  std::string san = fmt::format("URI:{}{}", kNodeUriPrefix, id);
  for (const std::string& h : hosts) {
    s = CheckHost(h);
    if (!s.ok()) return s;
    san += fmt::format(",{}:{}", IsIp(h) ? "IP" : "DNS", h);
  }
  return MakeLeaf(ca, std::string(id), san, "serverAuth,clientAuth", days);
}

Result<KeyAndCert> MakeClientCert(const KeyAndCert& ca, std::string_view name, int days) {
  Status s = CheckUserName(name);
  if (!s.ok()) return s;
  return MakeLeaf(ca, std::string(name), fmt::format("URI:{}{}", kClientUriPrefix, name),
                  "clientAuth", days);
}

CertFiles FilesFor(const std::string& dir, const std::string& stem) {
  return {dir + "/" + stem + ".key", dir + "/" + stem + ".pem"};
}

Status WriteKeyAndCert(const std::string& dir, const std::string& stem, const KeyAndCert& kc,
                       bool force) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError(fmt::format("cannot create {}: {}", dir, ec.message()));
  CertFiles f = FilesFor(dir, stem);
  if (!force) {
    // Neither file may exist: check both before writing either.
    for (const std::string& p : {f.key, f.cert}) {
      if (::access(p.c_str(), F_OK) == 0) {
        return Status::InvalidArgument(fmt::format("{} exists; pass --force to replace it", p));
      }
    }
  }
  Status s = WriteFile(f.key, kc.key_pem, 0600, force);
  if (!s.ok()) return s;
  return WriteFile(f.cert, kc.cert_pem, 0644, force);
}

Result<KeyAndCert> ReadCa(const std::string& dir) {
  CertFiles f = FilesFor(dir, "ca");
  auto key = ReadText(f.key);
  auto cert = ReadText(f.cert);
  if (!key.ok() || !cert.ok()) {
    return Status::InvalidArgument(fmt::format(
        "no CA in {} (need {} and {}): make one with `ringkv certs ca {}`", dir, f.cert, f.key, dir));
  }
  KeyAndCert ca{std::move(key).value(), std::move(cert).value()};
  KeyPtr k;
  CertPtr c;
  Status s = ParseCa(ca, &k, &c);
  if (!s.ok()) return Status::InvalidArgument(fmt::format("{}: {}", dir, s.message()));
  return ca;
}

}  // namespace ringkv
