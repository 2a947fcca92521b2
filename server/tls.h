// TLS for every connection of a node, over memory buffers.
//
// TlsContext holds the node's certificate and key and the cluster CA, as one
// OpenSSL context for accepted connections and one for the connections the
// node makes to its peers. TlsSession is one connection's TLS state over two
// memory BIOs: the runtime feeds it the ciphertext the socket delivered and
// takes back plaintext, and hands it plaintext to send and takes back the
// ciphertext to write. It does no I/O itself, so TLS is a property of the
// connection layer: every listener (peers and clients, RESP, HTTP) gets it
// the same way, and tests run two sessions against each other in memory.
//
// Policy (README "Security"; docs/design-notes.md):
//  - TLS 1.2 at least (1.3 is what two ringkv ends agree on); no session
//    tickets, no renegotiation.
//  - Accepted connections ask for a client certificate but do not require
//    one; one that is offered must be signed by the cluster CA, or the
//    handshake fails. Its identity (core/identity.h) tells a peer node or a
//    client user.
//  - Connections the node makes verify that the server's certificate is
//    signed by the cluster CA and is the node certificate of exactly the node
//    id dialled; they present the node's own certificate.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/identity.h"
#include "core/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;
typedef struct x509_st X509;

namespace ringkv {

// The ringkv identity of a certificate (its ringkv-node: or ringkv-client:
// URI); kNone if it has none, or more than one.
PeerIdentity IdentityOf(X509* cert);

class TlsContext {
 public:
  // Reads PEM files: the node's certificate (chain), its private key, and
  // the CA certificate(s) peers and clients must be signed by. Errors name
  // the file and what is wrong (never the key's contents).
  static Result<std::shared_ptr<TlsContext>> Load(const std::string& cert_file,
                                                  const std::string& key_file,
                                                  const std::string& ca_file);
  static Result<std::shared_ptr<TlsContext>> FromPem(std::string_view cert_pem,
                                                     std::string_view key_pem,
                                                     std::string_view ca_pem);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // What the node's own certificate names (checked against --id at start).
  const PeerIdentity& identity() const { return identity_; }
  SSL_CTX* server_ctx() const { return server_; }
  SSL_CTX* client_ctx() const { return client_; }

 private:
  TlsContext() = default;
  SSL_CTX* server_ = nullptr;
  SSL_CTX* client_ = nullptr;
  PeerIdentity identity_;
};

class TlsSession {
 public:
  enum class Side { kServer, kClient };
  // expected_node (client side): the node id the server's certificate must
  // name; the handshake fails otherwise.
  TlsSession(std::shared_ptr<const TlsContext> ctx, Side side, std::string expected_node = {});
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Client side: starts the handshake (its first message is then in the
  // output).
  Status Start();
  // Ciphertext from the socket. Plaintext it carries is appended to *plain.
  // An error (handshake refused, corrupt record) means the connection must
  // be closed; the message says why, for the log.
  Status Receive(std::string_view cipher, std::string* plain);
  // Encrypts application bytes; only once handshake_done().
  Status Send(std::string_view plain);
  // Ciphertext to write to the socket (handshake messages, records, alerts),
  // appended to *out; false if there was none.
  bool TakeOutput(std::string* out);

  bool handshake_done() const { return done_; }
  // The other end closed the TLS session (close_notify).
  bool closed() const { return closed_; }
  // The verified certificate's identity; kNone without one.
  const PeerIdentity& peer() const { return peer_; }
  const char* version() const;

 private:
  Status Handshake();
  Status Failure(const char* what, int ret);

  std::shared_ptr<const TlsContext> ctx_;
  Side side_;
  std::string expected_node_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // ciphertext received, read by OpenSSL
  BIO* out_ = nullptr;  // ciphertext OpenSSL wrote, to send
  bool done_ = false;
  bool closed_ = false;
  PeerIdentity peer_;
};

}  // namespace ringkv
