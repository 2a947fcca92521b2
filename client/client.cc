#include "client/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
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

}  // namespace

Result<std::unique_ptr<Client>> Client::Connect(const std::string& address, int timeout_ms) {
  return Open(address, timeout_ms, /*wait=*/true);
}

Result<std::unique_ptr<Client>> Client::StartConnect(const std::string& address, int timeout_ms) {
  return Open(address, timeout_ms, /*wait=*/false);
}

Result<std::unique_ptr<Client>> Client::Open(const std::string& address, int timeout_ms, bool wait) {
  std::string host, port;
  Status s = SplitAddress(address, &host, &port);
  if (!s.ok()) return s;
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
      std::unique_ptr<Client> c(new Client(fd, address, timeout_ms));
      c->connecting_ = true;
      return c;
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
      return std::unique_ptr<Client>(new Client(fd, address, timeout_ms));
    }
    last_error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(res);
  return Status::IOError(fmt::format("cannot connect to {}: {}", address, last_error));
}

Result<bool> Client::Connected() {
  if (!connecting_) return true;
  struct pollfd pfd {fd_, POLLOUT, 0};
  int rc = poll(&pfd, 1, 0);
  if (rc == 0) return false;
  int err = errno;
  if (rc > 0) {
    socklen_t len = sizeof(err);
    err = 0;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  }
  if (err != 0) {
    return Status::IOError(fmt::format("cannot connect to {}: {}", address_, std::strerror(err)));
  }
  connecting_ = false;
  return true;
}

Client::Client(int fd, std::string address, int timeout_ms)
    : fd_(fd), address_(std::move(address)), timeout_ms_(timeout_ms) {}

Client::~Client() { close(fd_); }

Status Client::SendBytes(std::string_view bytes) {
  int64_t deadline = NowMs() + timeout_ms_;
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
