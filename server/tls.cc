#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

namespace ringkv {

namespace {

// The oldest OpenSSL error on this thread's queue, as text (and clears it).
std::string OpenSslError(const char* fallback) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  const char* reason = ERR_reason_error_string(e);
  return reason != nullptr ? reason : fmt::format("OpenSSL error {:x}", e);
}

// Never asks for a passphrase (OpenSSL's default would read the terminal).
int NoPassphrase(char*, int, int, void*) { return -1; }

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr MemBio(std::string_view pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate in a PEM text, in order.
std::vector<X509*> ReadCerts(std::string_view pem) {
  std::vector<X509*> out;
  BioPtr bio = MemBio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) out.push_back(x);
  ERR_clear_error();  // the end of the text reads as an error
  return out;
}

void FreeCerts(std::vector<X509*>& certs) {
  for (X509* x : certs) X509_free(x);
  certs.clear();
}

Result<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument(fmt::format("cannot read {} {}", what, path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::InvalidArgument(fmt::format("cannot read {} {}", what, path));
  return ss.str();
}

SSL_CTX* NewContext(bool server) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

}  // namespace

PeerIdentity IdentityOf(X509* cert) {
  PeerIdentity out;
  if (cert == nullptr) return out;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  int found = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_URI) continue;
    const ASN1_STRING* s = n->d.uniformResourceIdentifier;
    std::string_view uri(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    if (uri.starts_with(kNodeUriPrefix)) {
      out = {PeerKind::kNode, std::string(uri.substr(kNodeUriPrefix.size()))};
      ++found;
    } else if (uri.starts_with(kClientUriPrefix)) {
      out = {PeerKind::kClient, std::string(uri.substr(kClientUriPrefix.size()))};
      ++found;
    }
  }
  GENERAL_NAMES_free(names);
  if (found != 1 || out.name.empty()) return PeerIdentity{};
  return out;
}

Result<std::shared_ptr<TlsContext>> TlsContext::Load(const std::string& cert_file,
                                                     const std::string& key_file,
                                                     const std::string& ca_file) {
  auto cert = ReadFile(cert_file, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(key_file, "--tls-key");
  if (!key.ok()) return key.status();
  auto ca = ReadFile(ca_file, "--tls-ca");
  if (!ca.ok()) return ca.status();
  auto ctx = FromPem(*cert, *key, *ca);
  std::fill(key->begin(), key->end(), '\0');
  if (!ctx.ok()) {
    return Status::InvalidArgument(fmt::format("TLS files ({}, {}, {}): {}", cert_file, key_file,
                                               ca_file, ctx.status().message()));
  }
  return ctx;
}

Result<std::shared_ptr<TlsContext>> TlsContext::FromPem(std::string_view cert_pem,
                                                        std::string_view key_pem,
                                                        std::string_view ca_pem) {
  std::shared_ptr<TlsContext> out(new TlsContext());
  std::vector<X509*> chain = ReadCerts(cert_pem);
  std::vector<X509*> cas = ReadCerts(ca_pem);
  EVP_PKEY* key = nullptr;
  {
    BioPtr bio = MemBio(key_pem);
    key = PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr);
  }
  auto cleanup = [&] {
    FreeCerts(chain);
    FreeCerts(cas);
    EVP_PKEY_free(key);
    ERR_clear_error();
  };
  if (chain.empty()) {
    cleanup();
    return Status::InvalidArgument("the certificate file holds no PEM certificate");
  }
  if (key == nullptr) {
    cleanup();
    return Status::InvalidArgument(
        "the key file holds no unencrypted PEM private key (ringkv certs writes one)");
  }
  if (cas.empty()) {
    cleanup();
    return Status::InvalidArgument("the CA file holds no PEM certificate");
  }
  out->identity_ = IdentityOf(chain[0]);
  for (bool server : {true, false}) {
    SSL_CTX* ctx = NewContext(server);
    if (ctx == nullptr) {
      cleanup();
      return Status::Internal("cannot create a TLS context: " + OpenSslError("?"));
    }
    (server ? out->server_ : out->client_) = ctx;
    bool ok = SSL_CTX_use_certificate(ctx, chain[0]) == 1;
    for (size_t i = 1; ok && i < chain.size(); ++i) ok = SSL_CTX_add1_chain_cert(ctx, chain[i]) == 1;
    if (!ok) {
      std::string why = OpenSslError("unusable certificate");
      cleanup();
      return Status::InvalidArgument("the certificate cannot be used: " + why);
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
      ERR_clear_error();
      cleanup();
      return Status::InvalidArgument("the private key does not belong to the certificate");
    }
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (X509* ca : cas) X509_STORE_add_cert(store, ca);
    if (server) {
      // Tells clients which CA their certificate must come from.
      STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
      for (X509* ca : cas) sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca)));
      SSL_CTX_set_client_CA_list(ctx, names);
    }
  }
  cleanup();
  return out;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(server_);
  SSL_CTX_free(client_);
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> ctx, Side side, std::string expected_node)
    : ctx_(std::move(ctx)), side_(side), expected_node_(std::move(expected_node)) {
  ssl_ = SSL_new(side == Side::kServer ? ctx_->server_ctx() : ctx_->client_ctx());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  // An empty input BIO means "more to come", not end of stream.
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);  // the SSL owns both BIOs now
  if (side == Side::kServer) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

const char* TlsSession::version() const { return SSL_get_version(ssl_); }

Status TlsSession::Failure(const char* what, int ret) {
  int err = SSL_get_error(ssl_, ret);
  long verify = SSL_get_verify_result(ssl_);
  std::string why;
  if (verify != X509_V_OK) {
    why = fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(verify));
    ERR_clear_error();
  } else if (err == SSL_ERROR_SSL) {
    why = OpenSslError("protocol error");
  } else {
    why = fmt::format("TLS error {}", err);
    ERR_clear_error();
  }
  return Status::Unauthenticated(fmt::format("TLS {} failed: {}", what, why));
}

Status TlsSession::Start() {
  if (side_ == Side::kClient && !done_) return Handshake();
  return Status::OK();
}

Status TlsSession::Handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r != 1) {
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::OK();
    return Failure("handshake", r);
  }
  done_ = true;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert != nullptr && SSL_get_verify_result(ssl_) == X509_V_OK) peer_ = IdentityOf(cert);
  if (side_ == Side::kClient && !expected_node_.empty() &&
      !(peer_.kind == PeerKind::kNode && peer_.name == expected_node_)) {
    return Status::Unauthenticated(
        fmt::format("TLS handshake failed: the server's certificate is for {}, not node {}",
                    DescribeIdentity(peer_), expected_node_));
  }
  return Status::OK();
}

Status TlsSession::Receive(std::string_view cipher, std::string* plain) {
  if (!cipher.empty() &&
      BIO_write(in_, cipher.data(), static_cast<int>(cipher.size())) != static_cast<int>(cipher.size())) {
    return Status::Internal("TLS: cannot buffer received bytes");
  }
  if (!done_) {
    Status s = Handshake();
    if (!s.ok() || !done_) return s;
  }
  char buf[16 * 1024];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n > 0) {
      plain->append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::OK();
    if (err == SSL_ERROR_ZERO_RETURN) {
      closed_ = true;
      return Status::OK();
    }
    return Failure("read", n);
  }
}

Status TlsSession::Send(std::string_view plain) {
  if (!done_) return Status::Internal("TLS: data sent before the handshake finished");
  while (!plain.empty()) {
    ERR_clear_error();
    int chunk = static_cast<int>(std::min<size_t>(plain.size(), 1 << 30));
    int n = SSL_write(ssl_, plain.data(), chunk);
    if (n <= 0) return Failure("write", n);
    plain.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

bool TlsSession::TakeOutput(std::string* out) {
  size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return false;
  size_t at = out->size();
  out->resize(at + pending);
  int n = BIO_read(out_, out->data() + at, static_cast<int>(pending));
  out->resize(at + static_cast<size_t>(n > 0 ? n : 0));
  return n > 0;
}

}  // namespace ringkv
