#include "client/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

#include <fmt/format.h>

#include "core/limits.h"

namespace ringkv {

namespace {

Status SplitAddress(const std::string& address, std::string* host, std::string* port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return Status::InvalidArgument(fmt::format("'{}' is not HOST:PORT", address));
  }
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return Status::OK();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The oldest OpenSSL error of this thread, as text (and clears the queue).
std::string OpenSslReason(const char* fallback) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  const char* r = e != 0 ? ERR_reason_error_string(e) : nullptr;
  return r != nullptr ? r : fallback;
}

int NoPassphrase(char*, int, int, void*) { return -1; }

bool IsIpAddress(const std::string& host) {
  in_addr a4;
  in6_addr a6;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Connect(const std::string& address, int timeout_ms,
                                                const ClientOptions& options) {
  return Open(address, timeout_ms, /*wait=*/true, options);
}

Result<std::unique_ptr<Client>> Client::StartConnect(const std::string& address, int timeout_ms,
                                                     const ClientOptions& options) {
  return Open(address, timeout_ms, /*wait=*/false, options);
}

Result<std::unique_ptr<Client>> Client::Open(const std::string& address, int timeout_ms, bool wait,
                                             const ClientOptions& options) {
  std::string host, port;
  Status s = SplitAddress(address, &host, &port);
  if (!s.ok()) return s;
  int64_t deadline = NowMs() + timeout_ms;
  // The set-up after TCP: TLS, login. Waits for it when `wait`.
  auto finish = [&](std::unique_ptr<Client> c, bool tcp_up) -> Result<std::unique_ptr<Client>> {
    c->options_ = options;
    c->host_ = host;
    c->stage_ = Stage::kConnecting;
    if (tcp_up) {
      auto r = c->Advance();
      if (!r.ok()) return r.status();
    }
    if (!wait) return c;
    for (;;) {
      auto ready = c->Advance();
      if (!ready.ok()) return ready.status();
      if (*ready) return c;
      if (!c->Wait(deadline, c->want_write_)) {
        return Status::IOError(fmt::format("cannot connect to {}: no answer within {} ms{}", address,
                                           timeout_ms,
                                           c->stage_ == Stage::kHandshake ? " (TLS handshake)"
                                           : c->stage_ == Stage::kLogin   ? " (login)"
                                                                          : ""));
      }
    }
  };
  struct addrinfo hints {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  struct addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return Status::IOError(fmt::format("cannot resolve {}: {}", address, gai_strerror(rc)));
  }
  std::string last_error = "no address";
  for (struct addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS && !wait) {
      freeaddrinfo(res);
      return finish(std::unique_ptr<Client>(new Client(fd, address, timeout_ms)), false);
    }
    if (rc < 0 && errno == EINPROGRESS) {
      struct pollfd pfd {fd, POLLOUT, 0};
      rc = poll(&pfd, 1, timeout_ms);
      if (rc == 0) {
        errno = ETIMEDOUT;
        rc = -1;
      } else if (rc > 0) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          errno = err;
          rc = -1;
        } else {
          rc = 0;
        }
      }
    }
    if (rc == 0) {
      freeaddrinfo(res);
      return finish(std::unique_ptr<Client>(new Client(fd, address, timeout_ms)), true);
    }
    last_error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(res);
  return Status::IOError(fmt::format("cannot connect to {}: {}", address, last_error));
}

Result<bool> Client::Connected() { return Advance(); }

Result<bool> Client::Advance() {
  for (;;) {
    switch (stage_) {
      case Stage::kReady:
        return true;
      case Stage::kConnecting: {
        struct pollfd pfd {fd_, POLLOUT, 0};
        int rc = poll(&pfd, 1, 0);
        if (rc == 0) {
          want_write_ = true;
          return false;
        }
        int err = errno;
        if (rc > 0) {
          socklen_t len = sizeof(err);
          err = 0;
          getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        }
        if (err != 0) {
          return Status::IOError(fmt::format("cannot connect to {}: {}", address_, std::strerror(err)));
        }
        if (options_.tls()) {
          Status s = StartTls();
          if (!s.ok()) return s;
          stage_ = Stage::kHandshake;
        } else {
          stage_ = Stage::kLogin;
        }
        break;
      }
      case Stage::kHandshake: {
        ERR_clear_error();
        int r = SSL_connect(ssl_);
        if (r != 1) {
          int err = SSL_get_error(ssl_, r);
          if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            want_write_ = err == SSL_ERROR_WANT_WRITE;
            return false;
          }
          return TlsError("handshake", r);
        }
        stage_ = Stage::kLogin;
        break;
      }
      case Stage::kLogin: {
        if (options_.user.empty()) {
          stage_ = Stage::kReady;
          break;
        }
        if (login_id_ == 0) {
          login_id_ = next_request_id_++;
          Status s = Send(Envelope{login_id_, {}, {}, AuthRequest{options_.user, options_.password}});
          if (!s.ok()) return s;
        }
        auto env = TryReceive();
        if (!env.ok()) return env.status();
        if (!env->has_value()) {
          want_write_ = false;
          return false;
        }
        auto* reply = std::get_if<Reply>(&(**env).body);
        if ((**env).request_id == login_id_ || (**env).request_id == 0) {
          if (reply == nullptr) return Status::Internal(fmt::format("{} answered the login oddly", address_));
          if (!reply->status.ok()) return reply->status;
          if ((**env).request_id == login_id_) stage_ = Stage::kReady;
        }
        break;
      }
    }
  }
}

bool Client::Wait(int64_t deadline_ms, bool for_write) {
  int64_t left = deadline_ms - NowMs();
  if (left <= 0) return false;
  struct pollfd pfd {fd_, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
  return true;
}

Status Client::StartTls() {
  ssl_ctx_ = SSL_CTX_new(TLS_client_method());
  if (ssl_ctx_ == nullptr) return Status::Internal("cannot create a TLS context: " + OpenSslReason("?"));
  SSL_CTX_set_min_proto_version(ssl_ctx_, TLS1_2_VERSION);
  SSL_CTX_set_options(ssl_ctx_, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ssl_ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_default_passwd_cb(ssl_ctx_, NoPassphrase);
  SSL_CTX_set_verify(ssl_ctx_, SSL_VERIFY_PEER, nullptr);
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ssl_ctx_, options_.tls_ca.c_str(), nullptr) != 1) {
    return Status::InvalidArgument(fmt::format("cannot use --tls-ca {}: {}", options_.tls_ca,
                                               OpenSslReason("not a PEM certificate")));
  }
  if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
    if (options_.tls_cert.empty() || options_.tls_key.empty()) {
      return Status::InvalidArgument("a client certificate needs both --tls-cert and --tls-key");
    }
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx_, options_.tls_cert.c_str()) != 1) {
      return Status::InvalidArgument(fmt::format("cannot use --tls-cert {}: {}", options_.tls_cert,
                                                 OpenSslReason("not a PEM certificate")));
    }
    if (SSL_CTX_use_PrivateKey_file(ssl_ctx_, options_.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ssl_ctx_) != 1) {
      ERR_clear_error();
      return Status::InvalidArgument(fmt::format(
          "cannot use --tls-key {}: not the unencrypted PEM key of --tls-cert", options_.tls_key));
    }
  }
  ssl_ = SSL_new(ssl_ctx_);
  SSL_set_fd(ssl_, fd_);
  SSL_set_connect_state(ssl_);
  // The certificate must name the host dialled (a DNS name or an IP).
  if (IsIpAddress(host_)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host_.c_str());
  } else {
    SSL_set1_host(ssl_, host_.c_str());
    SSL_set_tlsext_host_name(ssl_, host_.c_str());
  }
  return Status::OK();
}

Status Client::TlsError(const char* what, int ret) {
  int err = SSL_get_error(ssl_, ret);
  int saved_errno = errno;
  long verify = SSL_get_verify_result(ssl_);
  std::string reason = err == SSL_ERROR_SSL ? OpenSslReason("protocol error") : "";
  ERR_clear_error();
  if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return Status::Unauthenticated(fmt::format(
        "the TLS certificate of {} does not name {} (a node certificate names the hosts given to "
        "`ringkv certs node --host`)",
        address_, host_));
  }
  if (verify != X509_V_OK) {
    return Status::Unauthenticated(fmt::format(
        "the TLS certificate of {} is not trusted: {} (is --tls-ca the cluster's CA?)", address_,
        X509_verify_cert_error_string(verify)));
  }
  if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && saved_errno == 0) ||
      (err == SSL_ERROR_SSL && reason.find("unexpected eof") != std::string::npos)) {
    return Status::Unauthenticated(fmt::format(
        "{} closed the connection during the TLS {}: does the node run with TLS (--tls-cert)? A "
        "node without TLS closes TLS connections",
        address_, what));
  }
  if (err == SSL_ERROR_SYSCALL) {
    return Status::IOError(
        fmt::format("lost connection to {} during the TLS {}: {}", address_, what, std::strerror(saved_errno)));
  }
  return Status::Unauthenticated(fmt::format("TLS {} with {} failed: {}{}", what, address_, reason,
                                             reason.find("wrong version") != std::string::npos
                                                 ? " (the node does not speak TLS on this port)"
                                                 : ""));
}

Client::Client(int fd, std::string address, int timeout_ms)
    : fd_(fd), address_(std::move(address)), timeout_ms_(timeout_ms) {}

Client::~Client() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ssl_ctx_ != nullptr) SSL_CTX_free(ssl_ctx_);
  if (!options_.password.empty()) OPENSSL_cleanse(options_.password.data(), options_.password.size());
  close(fd_);
}

Status Client::SendBytes(std::string_view bytes) {
  int64_t deadline = NowMs() + timeout_ms_;
  while (ssl_ != nullptr && !bytes.empty()) {
    ERR_clear_error();
    int n = SSL_write(ssl_, bytes.data(), static_cast<int>(std::min<size_t>(bytes.size(), INT_MAX)));
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      if (!Wait(deadline, err == SSL_ERROR_WANT_WRITE)) {
        return Status::IOError(fmt::format("timed out sending to {}", address_));
      }
      continue;
    }
    if (err == SSL_ERROR_SYSCALL && errno != 0) {
      return Status::IOError(fmt::format("lost connection to {}: {}", address_, std::strerror(errno)));
    }
    return Status::IOError(fmt::format("lost connection to {}: {}", address_, OpenSslReason("TLS error")));
  }
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int64_t left = deadline - NowMs();
      if (left <= 0) return Status::IOError(fmt::format("timed out sending to {}", address_));
      struct pollfd pfd {fd_, POLLOUT, 0};
      poll(&pfd, 1, static_cast<int>(left));
      continue;
    }
    return Status::IOError(fmt::format("lost connection to {}: {}", address_, std::strerror(errno)));
  }
  return Status::OK();
}

Status Client::Send(const Envelope& env) {
  std::string frame;
  AppendFrame(env, &frame);
  return SendBytes(frame);
}

Result<Envelope> Client::Receive() {
  int64_t deadline = NowMs() + timeout_ms_;
  for (;;) {
    auto env = TryReceive();
    if (!env.ok()) return env.status();
    if (env->has_value()) return std::move(**env);
    int64_t left = deadline - NowMs();
    if (left <= 0) return Status::Timeout(fmt::format("no answer from {} within {} ms", address_, timeout_ms_));
    struct pollfd pfd {fd_, POLLIN, 0};
    poll(&pfd, 1, static_cast<int>(left));
  }
}

Result<std::optional<Envelope>> Client::TryReceive() {
  std::string frame;
  char buf[64 * 1024];
  for (;;) {
    int r = reader_.Next(&frame);
    if (r < 0) {
      return Status::IOError(fmt::format("{} sent a frame of {} bytes, over the limit", address_,
                                         reader_.oversize_length()));
    }
    if (r == 1) {
      auto env = DecodeEnvelope(frame);
      if (!env.ok()) {
        return Status::IOError(fmt::format("{} sent a bad frame: {}", address_, env.status().message()));
      }
      return std::optional<Envelope>(std::move(env).value());
    }
    if (ssl_ != nullptr) {
      ERR_clear_error();
      int m = SSL_read(ssl_, buf, sizeof(buf));
      if (m > 0) {
        reader_.Append(std::string_view(buf, static_cast<size_t>(m)));
        continue;
      }
      int err = SSL_get_error(ssl_, m);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return std::optional<Envelope>();
      if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0)) {
        ERR_clear_error();
        return Status::IOError(fmt::format("{} closed the connection", address_));
      }
      if (err == SSL_ERROR_SYSCALL) {
        return Status::IOError(fmt::format("lost connection to {}: {}", address_, std::strerror(errno)));
      }
      return Status::IOError(
          fmt::format("lost connection to {}: {}", address_, OpenSslReason("TLS error")));
    }
    ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      reader_.Append(std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n == 0) return Status::IOError(fmt::format("{} closed the connection", address_));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::optional<Envelope>();
    return Status::IOError(fmt::format("lost connection to {}: {}", address_, std::strerror(errno)));
  }
}

Result<Envelope> Client::Call(Body body) {
  uint64_t id = next_request_id_++;
  Status s = Send(Envelope{id, {}, {}, std::move(body)});
  if (!s.ok()) return s;
  for (;;) {
    auto env = Receive();
    if (!env.ok()) return env;
    if (env->request_id == id) return env;
    // An error about a frame we sent (request id 0) ends the call too.
    if (env->request_id == 0) {
      if (auto* r = std::get_if<Reply>(&env->body); r != nullptr && !r->status.ok()) return r->status;
    }
  }
}

Result<GetResult> Client::Get(std::string_view key, const Quorum& quorum) {
  return Get(GetRequest{std::string(key), quorum, {}});
}

Result<PutResult> Client::Put(PutRequest req) { return Write(std::move(req)); }

Result<ListKeysReply> Client::ListKeys(ListKeysRequest req) {
  auto env = Call(std::move(req));
  if (!env.ok()) return env.status();
  if (auto* r = std::get_if<Reply>(&env->body)) {
    return r->status.ok() ? Status::Internal("unexpected reply") : r->status;
  }
  auto* reply = std::get_if<ListKeysReply>(&env->body);
  if (reply == nullptr) {
    return Status::Internal(fmt::format("unexpected {} from {}", BodyName(env->body), address_));
  }
  if (!reply->status.ok()) return reply->status;
  return std::move(*reply);
}

Result<GetResult> Client::Get(GetRequest req) {
  auto env = Call(std::move(req));
  if (!env.ok()) return env.status();
  auto* reply = std::get_if<Reply>(&env->body);
  if (reply == nullptr) return Status::Internal(fmt::format("unexpected {} from {}", BodyName(env->body), address_));
  if (!reply->status.ok() && !reply->status.IsNotFound()) return reply->status;
  GetResult out;
  out.found = reply->status.ok();
  out.warn_siblings = reply->warn_siblings;
  if (reply->object) {
    out.object = std::move(*reply->object);
    out.context = EncodeContext(out.object.clock());
  }
  return out;
}

Result<PutResult> Client::Write(PutRequest req) {
  auto env = Call(std::move(req));
  if (!env.ok()) return env.status();
  auto* reply = std::get_if<Reply>(&env->body);
  if (reply == nullptr) return Status::Internal(fmt::format("unexpected {} from {}", BodyName(env->body), address_));
  if (!reply->status.ok()) return reply->status;
  PutResult out;
  if (reply->object) {
    out.object = std::move(*reply->object);
    out.context = EncodeContext(out.object.clock());
  }
  if (reply->dot) out.dot = *reply->dot;
  return out;
}

Result<PutResult> Client::Put(std::string_view key, std::string_view value, std::string_view context,
                              const Quorum& quorum) {
  PutRequest req;
  req.key = std::string(key);
  req.value = std::string(value);
  req.context = std::string(context);
  req.quorum = quorum;
  return Write(std::move(req));
}

Result<PutResult> Client::Delete(std::string_view key, std::string_view context, const Quorum& quorum) {
  PutRequest req;
  req.key = std::string(key);
  req.tombstone = true;
  req.context = std::string(context);
  req.quorum = quorum;
  return Write(std::move(req));
}

Result<DataTypeResult> Client::DataTypeOperation(DataTypeRequest req) {
  auto env = Call(std::move(req));
  if (!env.ok()) return env.status();
  if (auto* r = std::get_if<Reply>(&env->body)) {
    return r->status.ok() ? Status::Internal("unexpected reply") : r->status;
  }
  auto* reply = std::get_if<DataTypeReply>(&env->body);
  if (reply == nullptr) return Status::Internal(fmt::format("unexpected {} from {}", BodyName(env->body), address_));
  if (!reply->status.ok()) return reply->status;
  return DataTypeResult{reply->integer, reply->dot};
}

Result<DataTypeReadResult> Client::DataTypeRead(std::string_view key, DataType type,
                                                std::string_view bucket, const Quorum& quorum) {
  DataTypeRequest req;
  req.key = std::string(key);
  req.bucket = std::string(bucket);
  req.type = type;
  req.op = DataTypeOpCode::kRead;
  req.quorum = quorum;
  auto env = Call(std::move(req));
  if (!env.ok()) return env.status();
  if (auto* r = std::get_if<DataTypeReply>(&env->body)) {
    return r->status.ok() ? Status::Internal("unexpected reply") : r->status;
  }
  auto* reply = std::get_if<Reply>(&env->body);
  if (reply == nullptr) return Status::Internal(fmt::format("unexpected {} from {}", BodyName(env->body), address_));
  if (!reply->status.ok() && !reply->status.IsNotFound()) return reply->status;
  DataTypeReadResult out;
  out.state = DataTypeState(type);
  if (!reply->object) return out;
  out.object = std::move(*reply->object);
  out.context = EncodeContext(out.object.clock());
  auto contents = ReadKeyContents(out.object);
  if (!contents.ok()) return contents.status();
  if (contents->opaque) {
    return Status::WrongType(fmt::format("the key holds plain values, not a {}", DataTypeName(type)));
  }
  if (contents->type != DataType::kNone && contents->type != type) {
    return Status::WrongType(fmt::format("the key holds a {}, not a {}",
                                         DataTypeName(contents->type), DataTypeName(type)));
  }
  if (contents->type == type) {
    out.found = true;
    out.state = std::move(contents->state);
  }
  return out;
}

Result<std::string> Client::Info(std::string_view topic, std::string_view arg) {
  auto env = Call(InfoRequest{std::string(topic), std::string(arg)});
  if (!env.ok()) return env.status();
  if (auto* r = std::get_if<Reply>(&env->body)) {
    return r->status.ok() ? Status::Internal("unexpected reply") : r->status;
  }
  auto* reply = std::get_if<InfoReply>(&env->body);
  if (reply == nullptr) return Status::Internal(fmt::format("unexpected {} from {}", BodyName(env->body), address_));
  if (!reply->status.ok()) return reply->status;
  return std::move(reply->json);
}

}  // namespace ringkv
